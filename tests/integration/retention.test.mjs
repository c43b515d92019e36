/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_event_retention: the event logs of workflows finished longer
 * ago than the retention go; their records and checkpoints stay, and a
 * stream of them answers 410 events_expired instead of hanging.
 *
 * maestro_workflow_retention*: finished workflows go whole by age, beyond
 * a count, beyond a user's count; DELETE /api/v1/workflows/{id}; store
 * pressure frees a small map so submissions keep being accepted.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
    startMaestro, api, submit, waitStatus, waitFor, sse, chain, stopClean,
    FINAL,
} from './lib/harness.mjs';


const ECHO = chain(['a', 'echo'], ['b', 'echo']);


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


describe('workflow retention by age', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            http: ['maestro_workflow_retention 2s;'],
        });
    });

    after(() => stopClean(m));

    test('a finished workflow goes whole after the age; a running one stays',
         async () => {
        const done = await submit(m.base, { prompt: 'old', workflow: ECHO });
        await waitStatus(m.base, done.id, 'complete', 10000);

        const live = await submit(m.base, {
            prompt: 'long lived',
            workflow: chain(['s', 'sleep', { ms: 5000 }]),
        });

        assert.equal((await api(m.base, 'GET',
                                `/api/v1/workflows/${done.id}`)).status, 200);

        await waitFor(async () => (await api(m.base, 'GET',
            `/api/v1/workflows/${done.id}`)).status === 404,
            8000, 200, 'the finished workflow to expire');

        for (const p of ['/checkpoints', '/events']) {
            const r = await api(m.base, 'GET',
                                `/api/v1/workflows/${done.id}${p}`);
            assert.equal(r.status, 404, p);
        }

        const r = await api(m.base, 'GET', `/api/v1/workflows/${live.id}`);
        assert.equal(r.status, 200);
        assert.equal(r.json.status, 'running');

        assert.match(m.errorLog(), /deleted \d+ finished workflows: \d+ by age/);
    });
});


describe('workflow retention by count, per user, and DELETE', () => {
    let m, audit;
    const ADMIN = 'admin-' + crypto.randomBytes(16).toString('hex');
    const key = {};
    const as = (t) => ({ Authorization: `Bearer ${t}`, Connection: 'close' });
    const call = (who, method, p, body) =>
        api(m.base, method, p, body, as(who === 'admin' ? ADMIN : key[who]));

    async function finished(who, body) {
        const r = await call(who, 'POST', '/api/v1/workflows', body);
        assert.equal(r.status, 202, r.text);
        await waitFor(async () => FINAL.includes(
            (await call(who, 'GET', `/api/v1/workflows/${r.json.id}`))
                .json?.status), 10000, 50, `${r.json.id} to finish`);
        return r.json.id;
    }

    const ids = async (who) => (await call(who, 'GET',
        '/api/v1/workflows?limit=1000')).json.items.map((w) => w.id);

    before(async () => {
        process.env.MAESTRO_ADMIN_KEY = ADMIN;
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            http: ['maestro_auth on;', 'maestro_audit_log logs/audit.log;',
                   'maestro_workflow_retention 0;',
                   'maestro_workflow_retention_count 6;',
                   'maestro_workflow_retention_user_count 3;',
                   'maestro_store_pressure off;'],
        });
        delete process.env.MAESTRO_ADMIN_KEY;
        audit = path.join(m.prefix, 'logs/audit.log');

        for (const u of ['alice', 'bob', 'carol']) {
            const r = await call('admin', 'POST', '/api/v1/keys',
                                 { user_id: u });
            key[u] = r.json.key;
        }
    });

    after(() => stopClean(m));

    test('a user keeps their newest N; the others\' stay', async () => {
        const a = [];
        for (let i = 0; i < 5; i++) {
            a.push(await finished('alice', { prompt: `a${i}`,
                                             workflow: ECHO }));
        }
        const b = await finished('bob', { prompt: 'b0', workflow: ECHO });

        await waitFor(async () => (await ids('alice')).length === 3,
                      8000, 200, 'alice down to 3 workflows');

        assert.deepEqual((await ids('alice')).sort(), a.slice(2).sort());
        assert.deepEqual(await ids('bob'), [b]);
    });

    test('everyone\'s newest N stay: the oldest go first', async () => {
        const before = await ids('admin');
        assert.equal(before.length, 4);

        const c = [];
        for (let i = 0; i < 3; i++) {
            c.push(await finished('carol', { prompt: `c${i}`,
                                             workflow: ECHO }));
        }

        await waitFor(async () => (await ids('admin')).length === 6,
                      8000, 200, 'down to 6 workflows');

        /* the oldest of all was alice's third */
        const after = await ids('admin');
        const oldest = before.sort()[0];
        assert.ok(!after.includes(oldest), 'the oldest went');
        for (const id of c) {
            assert.ok(after.includes(id));
        }
    });

    test('DELETE a workflow: 409 while running, 204, then 404',
         async () => {
        const r = await call('bob', 'POST', '/api/v1/workflows', {
            prompt: 'slow', workflow: chain(['s', 'sleep', { ms: 1500 }]),
        });
        assert.equal(r.status, 202);
        const id = r.json.id;

        let d = await call('bob', 'DELETE', `/api/v1/workflows/${id}`);
        assert.equal(d.status, 409, d.text);
        assert.equal(d.json.error.code, 'conflict');

        await waitFor(async () => FINAL.includes(
            (await call('bob', 'GET', `/api/v1/workflows/${id}`))
                .json?.status), 10000, 100, 'the slow one to finish');

        /* another tenant's is not found, and stays */
        d = await call('alice', 'DELETE', `/api/v1/workflows/${id}`);
        assert.equal(d.status, 404);
        assert.equal(d.json.error.code, 'not_found');

        d = await call('bob', 'DELETE', `/api/v1/workflows/${id}`);
        assert.equal(d.status, 204, d.text);
        assert.equal(d.text, '');

        for (const p of ['', '/checkpoints', '/events']) {
            const g = await call('admin', 'GET', `/api/v1/workflows/${id}${p}`);
            assert.equal(g.status, 404, p);
        }

        d = await call('bob', 'DELETE', `/api/v1/workflows/${id}`);
        assert.equal(d.status, 404);
        d = await call('bob', 'DELETE', '/api/v1/workflows/not-an-id');
        assert.equal(d.status, 404);

        await waitFor(() => fs.existsSync(audit)
                      && fs.readFileSync(audit, 'utf8')
                          .includes('workflow_deleted'),
                      3000, 50, 'the audit line');
        const line = fs.readFileSync(audit, 'utf8').split('\n')
            .find((l) => l.includes('workflow_deleted'));
        assert.equal(JSON.parse(line).workflow, id);
    });
});


describe('store pressure on a small map', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport', storeSize: '8m',
            http: ['maestro_workflow_retention 0;',
                   'maestro_workflow_retention_count 0;',
                   'maestro_workflow_retention_user_count 0;',
                   'maestro_store_pressure_mark 50;',
                   'maestro_store_pressure_min_age 0;'],
        });
    });

    after(() => stopClean(m));

    test('far more than the map holds is accepted; the oldest go',
         async () => {
        const big = 'x'.repeat(500);
        const total = 2400;
        const accepted = [];
        let refused = 0;

        for (let i = 0; i < total; i += 16) {
            const rs = await Promise.all(Array.from({ length: 16 }, (_, k) =>
                api(m.base, 'POST', '/api/v1/workflows',
                    { prompt: `p${i + k} ${big}`, workflow: ECHO })));
            for (const r of rs) {
                if (r.status === 202) {
                    accepted.push(r.json.id);
                } else {
                    refused++;
                }
            }
        }

        assert.equal(refused, 0, 'every submission accepted');
        assert.equal(accepted.length, total);

        /* the newest finish; the oldest made room */
        await waitStatus(m.base, accepted[total - 1], 'complete', 15000);
        const first = await api(m.base, 'GET',
                                `/api/v1/workflows/${accepted[0]}`);
        assert.equal(first.status, 404);

        const h = await api(m.base, 'GET', '/healthz');
        assert.equal(h.status, 200);

        assert.match(m.errorLog(), /by store pressure/);
    });
});
