/*
 * Copyright (C) Maestro authors
 */

/*
 * GET /healthz counts what is really running: the workflows of a worker
 * killed with -9 are "orphaned", not "active", until a live worker claims
 * them; then they are active again, counted once.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, stopClean, submit, api, chain, waitFor,
} from './lib/harness.mjs';


const SLOW = chain(['s', 'sleep', { ms: 60000 }]);

const health = async (m) => (await api(m.base, 'GET', '/healthz')).json;


describe('/healthz workflows', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2 });
    });

    after(() => stopClean(m));

    test('a killed worker\'s workflows: orphaned until claimed, then '
         + 'active once', async () => {
        m.allowLogInTest(/signal 9|exited on signal/);
        const ids = [];
        for (let i = 0; i < 8; i++) {
            ids.push((await submit(m.base, { prompt: `slow ${i}`,
                                             workflow: SLOW })).id);
        }
        await waitFor(async () => (await health(m)).workflows.active === 8,
                      10000, 50, '8 active');
        assert.equal((await health(m)).workflows.orphaned, 0);

        /* both workers, as an OOM killer might: every workflow is a
           dead worker's until the respawned ones claim it */
        const dead = m.kill9AllWorkers();
        await m.waitWorkers(dead);
        const lost = 8;

        /* counted once whatever the moment: active + orphaned */
        const h = (await health(m)).workflows;
        assert.equal(h.active + h.orphaned, 8, JSON.stringify(h));
        assert.ok(h.orphaned <= lost, JSON.stringify(h));

        /* claimed by live workers: active 8, not 8 + the dead one's */
        const settled = await waitFor(async () => {
            const w = (await health(m)).workflows;
            return w.orphaned === 0 ? w : null;
        }, 15000, 100, 'the orphans to be claimed');
        assert.equal(settled.active, 8, JSON.stringify(settled));

        for (const id of ids) {
            await api(m.base, 'POST', `/api/v1/workflows/${id}/cancel`, {});
        }
        await waitFor(async () => (await health(m)).workflows.active === 0,
                      15000, 100, 'all cancelled');
    });
});
