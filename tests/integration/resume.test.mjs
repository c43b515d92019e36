/*
 * Copyright (C) Maestro authors
 */

/*
 * Crash safety: kill -9 of the workers mid-workflow, and a plugin that
 * crashes its worker every time (crash-loop guard).
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, api, submit, submitCrashing, getWorkflow, waitStatus,
    waitFor, sse, chain, assertContiguous, sleep,
} from './lib/harness.mjs';


async function stopClean(m) {
    if (m) {
        try {
            m.assertCleanLog();
        } finally {
            await m.stop();
        }
    }
}


describe('kill -9 of the workers mid-workflow', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2, leaseTimeout: '3s' });
    });

    after(() => stopClean(m));

    test('the workflow resumes from its checkpoint and completes',
         async () => {
        const prompt = 'survive a kill -9';
        const w = await submit(m.base, {
            prompt,
            workflow: chain(['a', 'echo'], ['s', 'sleep', { ms: 3000 }],
                            ['b', 'echo']),
        });
        await waitFor(async () => {
            const wf = await getWorkflow(m.base, w.id);
            return wf.agents.s && wf.agents.s.status === 'executing';
        }, 10000, 50, 'sleep step executing');
        await sleep(500);   /* well into the step */

        /* the master reports the killed workers at [alert]: expected */
        m.allowLogInTest(
            /\[alert\] \d+#\d+: worker process \d+ exited on signal 9$/);
        const killed = m.kill9AllWorkers();
        assert.equal(killed.length, 2);
        const respawned = await m.waitWorkers(killed);
        assert.equal(respawned.length, 2);

        const wf = await waitStatus(m.base, w.id, ['complete', 'failed',
                                                   'cancelled'], 15000);
        assert.equal(wf.status, 'complete', JSON.stringify(wf.error));
        assert.equal(wf.progress, 100);
        assert.equal(wf.agents.s.status, 'complete');
        assert.ok(wf.agents.s.attempts >= 2,
                  `the interrupted step ran again: attempts `
                  + `${wf.agents.s.attempts}`);
        assert.equal(wf.agents.a.attempts, 1, 'a finished step is not rerun');

        const cp = await api(m.base, 'GET',
                             `/api/v1/workflows/${w.id}/checkpoints`);
        assert.equal(cp.status, 200);
        const last = cp.json.items[cp.json.items.length - 1].checkpoint;
        assert.equal(last.status, 'complete');
        assert.equal(last.state.outputs.a.echo, prompt);
        assert.equal(last.state.outputs.s.slept_ms, 3000);
        assert.equal(last.state.outputs.b.echo, prompt);
        for (let i = 1; i < cp.json.items.length; i++) {
            assert.ok(cp.json.items[i].seq > cp.json.items[i - 1].seq);
        }

        const r = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { untilClose: true, timeoutMs: 10000 });
        assert.equal(r.status, 200);
        assertContiguous(r.events, 1);
        assert.equal(new Set(r.events.map((e) => e.id)).size,
                     r.events.length, 'no duplicate ids');
        const finals = r.events.filter((e) => e.event === 'done'
                                       || e.event === 'error');
        assert.equal(finals.length, 1, 'a single final event');
        assert.equal(r.events[r.events.length - 1].event, 'done');
        assert.equal(r.events[r.events.length - 1].data.status, 'complete');
        assert.equal(wf.last_event_id, r.events.length);

        /* the new workers serve */
        const h = await api(m.base, 'GET', '/healthz');
        assert.equal(h.status, 200);
    });
});


describe('crash-loop guard', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2, leaseTimeout: '3s' });
    });

    after(() => stopClean(m));

    test('a plugin that always crashes fails its workflow, server serves',
         async () => {
        /* the master reports the crashed workers at [alert]: expected */
        m.allowLogInTest(
            /\[alert\] \d+#\d+: worker process \d+ exited on signal 11/);
        const w = await submitCrashing(m.base, {
            prompt: 'crash please',
            workflow: chain(['c', 'crash', { crash_times: 99 },
                             { retry: { max: 1, backoff_ms: 100 } }]),
        });
        const wf = await waitStatus(m.base, w.id, ['complete', 'failed',
                                                   'cancelled'], 30000);
        assert.equal(wf.status, 'failed');
        assert.equal(typeof wf.error, 'string');
        assert.match(wf.error, /worker/i);
        assert.match(wf.error, /died|exited|crash|signal|lost/i);
        assert.equal(wf.agents.c.status, 'error');
        /* its first death is unattributed (it may have run beside
           others), then retry.max 1 + 2 of its own, running alone */
        assert.equal(wf.agents.c.attempts, 4,
                     `attempts ${wf.agents.c.attempts}`);
        assert.match(wf.error, /alone, 3 times \(retry\.max 1\)/);

        const r = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { untilClose: true, timeoutMs: 10000 });
        assertContiguous(r.events, 1);
        const last = r.events[r.events.length - 1];
        assert.equal(last.event, 'error');
        assert.equal(last.data.status, 'failed');
        assert.equal(last.data.id, w.id);

        const crashes = m.errorLog().split('\n')
            .filter((l) => /exited on signal 11/.test(l));
        assert.equal(crashes.length, 4, `${crashes.length} crashes`);

        /* still serving, and a normal workflow still runs */
        await m.waitWorkers();
        assert.equal((await api(m.base, 'GET', '/healthz')).status, 200);
        const ok = await submit(m.base, { prompt: 'after the crashes',
                                          workflow: chain(['e', 'echo']) });
        const done = await waitStatus(m.base, ok.id, 'complete', 15000);
        assert.equal(done.status, 'complete');
    });
});
