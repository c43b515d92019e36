/*
 * Copyright (C) Maestro authors
 */

/*
 * The blast radius of a worker's death: a crashing agent, or kill -9
 * twice, must fail no healthy workflow that ran next to it on the same
 * worker (the suspect lane, core/flow/mst_run_lane.c). Default retry
 * policy (retry.max 0) throughout.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, api, submit, submitCrashing, getWorkflow, waitStatus,
    waitFor, chain, sleep, FINAL,
} from './lib/harness.mjs';


const SIGNAL_9 = /\[alert\] \d+#\d+: worker process \d+ exited on signal 9$/;
const SIGNAL_11 = /\[alert\] \d+#\d+: worker process \d+ exited on signal 11/;


async function stopClean(m) {
    if (m) {
        try {
            m.assertCleanLog();
        } finally {
            await m.stop();
        }
    }
}


/* n healthy workflows whose sleep step is running, spread over workers */
async function healthy(m, n, ms, tag) {
    const ids = [];
    for (let i = 0; i < n; i++) {
        const w = await submit(m.base, {
            prompt: `${tag} ${i}`,
            workflow: chain(['s', 'sleep', { ms }], ['e', 'echo']),
        });
        ids.push(w.id);
    }
    await waitFor(async () => {
        for (const id of ids) {
            const wf = await getWorkflow(m.base, id);
            if (!wf.agents.s || wf.agents.s.status !== 'executing') {
                return false;
            }
        }
        return true;
    }, 10000, 50, `${n} sleep steps executing`);
    return ids;
}


async function allFinal(m, ids, timeoutMs) {
    const out = [];
    for (const id of ids) {
        out.push(await waitStatus(m.base, id, FINAL, timeoutMs));
    }
    return out;
}


describe('a crashing agent next to healthy workflows', () => {
    let m;

    before(async () => {
        /* reuseport: the kernel spreads connections, so both workers run
           healthy workflows */
        m = await startMaestro({ workers: 2, leaseTimeout: '3s',
                                 listenParams: 'reuseport' });
    });

    after(() => stopClean(m));

    test('the 10 healthy ones complete, the crashing one fails', async () => {
        m.allowLogInTest(SIGNAL_11);
        const t0 = Date.now();
        const ids = await healthy(m, 10, 2500, 'healthy');

        const c = await submitCrashing(m.base, {
            prompt: 'crash please', workflow: chain(['c', 'crash']),
        });

        const crashed = await waitStatus(m.base, c.id, FINAL, 60000);
        const done = await allFinal(m, ids, 60000);
        const elapsed = Date.now() - t0;

        const bad = done.filter((wf) => wf.status !== 'complete');
        /* the crash did hit neighbours: their step ran again, alone */
        const hit = done.filter((wf) => wf.agents.s.attempts >= 2);
        const crashes = m.errorLog().split('\n')
            .filter((l) => /exited on signal 11/.test(l)).length;

        console.log(`# crash next to 10 healthy: ${crashes} crashes, `
                    + `${hit.length}/10 healthy interrupted, `
                    + `${10 - bad.length}/10 complete in ${elapsed} ms; `
                    + `crasher ${crashed.status}: ${crashed.error}`);

        assert.deepEqual(bad.map((wf) => [wf.status, wf.error]), [],
                         'every healthy workflow completes');
        assert.ok(hit.length >= 1, 'a healthy step was interrupted');

        assert.equal(crashed.status, 'failed');
        assert.match(crashed.error,
                     /^c: worker died while running the step alone/);
        assert.match(crashed.error, /crashes its worker/);
        assert.equal(crashed.agents.c.status, 'error');

        /* one unattributed death, then 2 of its own (retry.max 0 + 2) */
        assert.equal(crashes, 3, `${crashes} crashes`);
        assert.match(m.errorLog(), /each to run again alone/);

        await m.waitWorkers();
        assert.equal((await api(m.base, 'GET', '/healthz')).status, 200);
    });
});


describe('two kill -9 in a row', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2, leaseTimeout: '3s',
                                 listenParams: 'reuseport' });
    });

    after(() => stopClean(m));

    test('8 healthy workflows all complete', async () => {
        m.allowLogInTest(SIGNAL_9);
        const t0 = Date.now();
        const ids = await healthy(m, 8, 1500, 'killed twice');
        await sleep(200);

        const first = m.kill9AllWorkers();
        assert.equal(first.length, 2);
        await m.waitWorkers(first);

        /* the second kill lands while the suspects run again (alone) */
        await waitFor(async () => {
            for (const id of ids) {
                const wf = await getWorkflow(m.base, id);
                if (wf.agents.s.status === 'executing'
                    && wf.agents.s.attempts >= 2)
                {
                    return true;
                }
            }
            return false;
        }, 15000, 20, 'a suspect running again');
        await sleep(200);

        const second = m.kill9AllWorkers();
        assert.equal(second.length, 2);
        await m.waitWorkers(second);

        const done = await allFinal(m, ids, 60000);
        const elapsed = Date.now() - t0;

        const bad = done.filter((wf) => wf.status !== 'complete');
        const retried = done.filter((wf) => wf.agents.s.attempts >= 3).length;

        console.log(`# two kill -9 of 2 workers running 8 healthy: `
                    + `${8 - bad.length}/8 complete in ${elapsed} ms `
                    + `(${retried} steps ran 3 times)`);

        assert.deepEqual(bad.map((wf) => [wf.status, wf.error]), [],
                         'every workflow completes');
        for (const wf of done) {
            assert.ok(wf.agents.s.attempts >= 2,
                      `${wf.id}: interrupted, attempts ${wf.agents.s.attempts}`);
        }
    });
});
