/*
 * Copyright (C) Maestro authors
 */

/*
 * A full store (maestro_store_size 8m, the default headroom of 1m), on
 * two workers: ~700 two-step workflows submitted at once get 202 or 507
 * store_full, never a 500; every accepted one ends (complete, or failed
 * with error_code store_full) and its SSE stream ends with done or error
 * (a failed one's WebSocket stream too);
 * cancel works on the full store; /healthz says it is full; a reload
 * with a bigger map takes work again; and no workflow is said to have
 * lost its worker. The same with a headroom too small for the final
 * writes (64k): the map then really fills and some final writes find no
 * room; those workflows stay their worker's (retried, never failed as a
 * dead worker's) and end once the reload gives room, resumed by a new
 * worker.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
    startMaestro, buildConf, api, submit, waitStatus, waitFor, sse, chain,
    stopClean, FINAL,
} from './lib/harness.mjs';
import { wsOpen, wsUrl } from './lib/ws.mjs';


const N = 700;
const CONCURRENCY = 24;
const PAD = 'x'.repeat(2000);       /* each workflow some KB of records */

const BASE_OPTS = {
    workers: 2,
    storeSize: '8m',
    /* the refusals and store_full ends are logged at [error] / [warn] */
    errorLogLevel: 'notice',
};


/* runs fn over items, at most n at once; resolves to the results */
async function pool(items, n, fn) {
    const out = new Array(items.length);
    let next = 0;

    async function worker() {
        while (next < items.length) {
            const i = next++;
            out[i] = await fn(items[i], i);
        }
    }

    await Promise.all(Array.from({ length: n }, worker));
    return out;
}


for (const headroom of [null, '64k']) describe(`a full store, headroom `
                                               + `${headroom ?? 'default'}`,
                                               () => {
    const OPTS = headroom === null ? BASE_OPTS
        : { ...BASE_OPTS, http: [`maestro_store_headroom ${headroom};`] };
    const HEADROOM = headroom === null ? 1024 * 1024 : 64 * 1024;
    /* the default headroom holds every final write; 64k may not */
    const SMALL = headroom !== null;
    let m;
    const accepted = [];
    let sleeper;

    before(async () => {
        m = await startMaestro(OPTS);
    });

    after(() => stopClean(m));

    test('~700 submissions: 202 or 507 store_full, never a 500',
         async () => {
        /* a long step, running while the store fills: cancelled later */
        sleeper = await submit(m.base, {
            prompt: 'sleeps through it',
            workflow: chain(['s', 'sleep', { ms: 60000 }]),
        });

        const graph = chain(['a', 'echo'], ['b', 'sleep', { ms: 20 }]);
        const statuses = {};

        const answers = await pool([...Array(N).keys()], CONCURRENCY,
            async (i) => {
                const r = await api(m.base, 'POST', '/api/v1/workflows', {
                    prompt: `workflow ${i} ${PAD}`, workflow: graph,
                });
                statuses[r.status] = (statuses[r.status] ?? 0) + 1;
                return r;
            });

        console.log(`# ${N} submissions: ${JSON.stringify(statuses)}`);

        for (const r of answers) {
            if (r.status === 202) {
                accepted.push(r.json.id);
                continue;
            }
            assert.equal(r.status, 507, `${r.status} ${r.text}`);
            assert.equal(r.json.error.code, 'store_full');
            assert.match(r.json.error.message, /maestro_store_size/);
            assert.equal(r.headers['retry-after'], '10');
        }

        assert.ok(accepted.length > 50, JSON.stringify(statuses));
        assert.ok(statuses[507] > 0, JSON.stringify(statuses));

        const h = await api(m.base, 'GET', '/healthz');
        assert.equal(h.status, 200);
        assert.equal(h.json.store.full, true, JSON.stringify(h.json.store));
        assert.ok(['closed', 'reserve'].includes(h.json.store.state));
        assert.equal(h.json.store.map_bytes, 8 * 1024 * 1024);
        assert.equal(h.json.store.headroom_bytes, HEADROOM);

        /* one line says so, naming the directive */
        await waitFor(() => /the store is full: .*maestro_store_size/
            .test(m.errorLog()), 5000, 100, 'the store-full log line');
    });

    test('cancel works on the full store', async () => {
        const r = await api(m.base, 'POST',
                            `/api/v1/workflows/${sleeper.id}/cancel`);
        assert.ok(r.status === 200 || r.status === 202,
                  `${r.status} ${r.text}`);
        const wf = await waitStatus(m.base, sleeper.id, FINAL, 10000);
        assert.equal(wf.status, 'cancelled');
    });

    async function allEnd() {
        const ends = { complete: 0, failed: 0 };
        const failed = [];

        await pool(accepted, CONCURRENCY, async (id) => {
            const wf = await waitStatus(m.base, id, FINAL, 30000);
            if (wf.status === 'failed') {
                assert.equal(wf.error_code, 'store_full', JSON.stringify(wf));
            } else {
                assert.equal(wf.status, 'complete', JSON.stringify(wf));
            }
            ends[wf.status]++;

            const s = await sse(`${m.base}/api/v1/workflows/${id}/events`,
                                { timeoutMs: 10000 });
            assert.equal(s.status, 200);
            const last = s.events[s.events.length - 1];
            assert.ok(last && ['done', 'error'].includes(last.event),
                      `${id}: stream ended ${s.ended} after `
                      + `${last && last.event}`);
            if (wf.status === 'failed') {
                assert.equal(last.event, 'error');
                assert.equal(last.data.code, 'store_full');
                failed.push(id);
            }
        });

        /* their WebSocket streams end the same way */
        for (const id of failed.slice(0, 5)) {
            const h = await wsOpen(wsUrl(m, `/api/v1/workflows/${id}/ws`));
            const end = await h.waitDone(id);
            assert.equal(end.type, 'error');
            assert.equal(end.data.code, 'store_full');
            await h.close();
        }

        console.log(`# accepted ${accepted.length}: ${JSON.stringify(ends)}`);
        assert.ok(ends.complete > 0);
    }

    test('every accepted workflow ends, and its stream with it',
         { skip: SMALL && 'after the reload, below' }, allEnd);

    test('a reload with a bigger map takes work again', async () => {
        fs.writeFileSync(m.confPath,
                         buildConf({ ...OPTS, storeSize: '32m' }, m.prefix,
                                   m.port));
        await m.reload();

        await waitFor(async () => {
            const h = await api(m.base, 'GET', '/healthz');
            return h.json && h.json.store.full === false
                   && h.json.store.map_bytes === 32 * 1024 * 1024;
        }, 10000, 100, 'both workers on the bigger map');

        const graph = chain(['a', 'echo'], ['b', 'sleep', { ms: 20 }]);
        const ids = await pool([...Array(40).keys()], 8, async (i) => {
            const wf = await submit(m.base, { prompt: `after ${i}`,
                                              workflow: graph });
            return wf.id;
        });

        for (const id of ids) {
            const wf = await waitStatus(m.base, id, FINAL, 20000);
            assert.equal(wf.status, 'complete', JSON.stringify(wf));
        }
    });

    test('every accepted workflow ends once there is room',
         { skip: !SMALL && 'before the reload, above' }, allEnd);

    test('no workflow is said to have lost its worker', async () => {
        /* the leases of any left over expire, and claimers look at them */
        await new Promise((r) => setTimeout(r, 4000));

        await pool([...accepted, sleeper.id], CONCURRENCY, async (id) => {
            const wf = await waitStatus(m.base, id, FINAL, 10000);
            assert.doesNotMatch(String(wf.error ?? ''), /worker died/);
        });
        assert.doesNotMatch(m.errorLog(), SMALL ? /worker died/
                                                : /worker died|resumed by/);
    });
});
