/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_event_retention: the event logs of workflows finished longer
 * ago than the retention go; their records and checkpoints stay, and a
 * stream of them answers 410 events_expired instead of hanging.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, api, submit, waitStatus, waitFor, sse, chain,
} from './lib/harness.mjs';


describe('event retention', () => {
    let m;

    before(async () => {
        /* the harness's lease is 3s: the housekeeping runs every second */
        m = await startMaestro({
            workers: 1,
            http: ['maestro_event_retention 1s;'],
        });
    });

    after(async () => {
        if (m) {
            try {
                m.assertCleanLog();
            } finally {
                await m.stop();
            }
        }
    });

    test('old finished workflows lose their events, not their records',
         async () => {
        const done = await submit(m.base, { prompt: 'short lived',
                                            workflow: chain(['a', 'echo']) });
        await waitStatus(m.base, done.id, 'complete', 10000);

        /* at first the events are there */
        const first = await sse(`${m.base}/api/v1/workflows/${done.id}/events`,
                                { timeoutMs: 5000 });
        assert.equal(first.status, 200);
        assert.equal(first.events[first.events.length - 1].event, 'done');

        /* a running one is never pruned */
        const live = await submit(m.base, {
            prompt: 'long lived',
            workflow: chain(['s', 'sleep', { ms: 4000 }]),
        });

        await waitFor(async () => {
            const r = await api(m.base, 'GET',
                                `/api/v1/workflows/${done.id}/events`);
            return r.status === 410;
        }, 8000, 200, 'events of the finished workflow to expire');

        const r = await api(m.base, 'GET',
                            `/api/v1/workflows/${done.id}/events`);
        assert.equal(r.status, 410);
        assert.equal(r.json.error.code, 'events_expired');

        const rec = await api(m.base, 'GET', `/api/v1/workflows/${done.id}`);
        assert.equal(rec.status, 200);
        assert.equal(rec.json.status, 'complete');
        assert.equal(typeof rec.json.result, 'string');

        const cps = await api(m.base, 'GET',
                              `/api/v1/workflows/${done.id}/checkpoints`);
        assert.equal(cps.status, 200);
        assert.ok(cps.json.items.length > 0);

        const s = await sse(`${m.base}/api/v1/workflows/${live.id}/events`,
                            { timeoutMs: 8000 });
        assert.equal(s.status, 200);
        assert.equal(s.events[0].id, 1);
        assert.equal(s.events[s.events.length - 1].event, 'done');
    });
});
