/*
 * Copyright (C) Maestro authors
 */

/*
 * Bounded requests: submissions over maestro_graph_max_* and
 * maestro_prompt_max_size are refused with their codes (the 10,000-node
 * fan-out of issue #12 by default); raised, a big fan-out runs and the
 * store grows by what each step changed, not by the graph; a step that
 * grows the state past maestro_state_max_size fails the workflow
 * (state_too_large); GET /checkpoints comes in pages.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
    startMaestro, api, submit, getWorkflow, waitStatus, waitFor, chain,
    stopClean, sleep,
} from './lib/harness.mjs';


/* "start" fans out to n echo nodes */
function fan(n, maxSteps) {
    const g = { name: 'fan', entry: 'start', max_steps: maxSteps,
                nodes: { start: { agent: 'echo' } }, edges: [] };
    for (let i = 0; i < n; i++) {
        g.nodes[`n${i}`] = { agent: 'echo' };
        g.edges.push({ from: 'start', to: `n${i}` });
    }
    return g;
}


describe('bounds at their defaults', () => {
    let m;

    before(async () => {
        m = await startMaestro({ http: 'maestro_max_body 16m;' });
    });

    after(() => stopClean(m));

    test('the 10,000-node fan-out with max_steps 100000 is refused',
         async () => {
        const body = { prompt: 'abuse', workflow: fan(10000, 100000) };
        assert.ok(JSON.stringify(body).length > 500000);
        const r = await api(m.base, 'POST', '/api/v1/workflows', body);
        assert.equal(r.status, 422);
        assert.equal(r.json.error.code, 'graph_too_large');
        assert.match(r.json.error.message,
                     /10001 nodes, more than 1000 \(maestro_graph_max_nodes\)/);
        assert.match(m.errorLog(), /submission refused: the graph has 10001/);
    });

    test('each bound has its code', async () => {
        const cases = [
            [fan(1500, 10), 422, 'graph_too_large', /edges/],
            [{ ...chain(['a', 'echo']), max_steps: 20000 }, 422,
             'max_steps_too_large', /maestro_graph_max_steps/],
        ];
        /* 1500 nodes pass neither: nodes first */
        cases[0][3] = /maestro_graph_max_nodes/;
        for (const [workflow, status, code, re] of cases) {
            const r = await api(m.base, 'POST', '/api/v1/workflows',
                                { prompt: 'x', workflow });
            assert.equal(r.status, status, JSON.stringify(r.json));
            assert.equal(r.json.error.code, code);
            assert.match(r.json.error.message, re);
        }

        const r = await api(m.base, 'POST', '/api/v1/workflows',
                            { prompt: 'p'.repeat(1024 * 1024 + 1) });
        assert.equal(r.status, 413);
        assert.equal(r.json.error.code, 'prompt_too_large');
        assert.match(r.json.error.message, /maestro_prompt_max_size/);

        const c = await api(m.base, 'POST', '/api/v1/workflows', {
            prompt: 'x', context: [{ name: 'big',
                                     content: 'c'.repeat(5 << 20) }] });
        assert.equal(c.status, 413);
        assert.equal(c.json.error.code, 'context_too_large');
    });

    test('GET /checkpoints in pages', async () => {
        const w = await submit(m.base, {
            prompt: 'pages', workflow: chain(['a', 'echo'], ['b', 'echo'],
                                             ['c', 'echo'], ['d', 'echo']),
        });
        const wf = await waitStatus(m.base, w.id);
        assert.equal(wf.status, 'complete');

        const cpPath = `/api/v1/workflows/${w.id}/checkpoints`;
        const all = [];
        let cursor = null;
        let pages = 0;
        do {
            const r = await api(m.base, 'GET', cursor
                ? `${cpPath}?limit=2&cursor=${cursor}` : `${cpPath}?limit=2`);
            assert.equal(r.status, 200);
            assert.ok(r.json.items.length <= 2);
            all.push(...r.json.items);
            cursor = r.json.next_cursor;
            pages++;
        } while (cursor !== null && pages < 50);

        assert.ok(all.length >= 5, `${all.length} checkpoints`);
        assert.equal(pages, Math.ceil(all.length / 2));
        all.forEach((it, i) => assert.equal(it.seq, all[0].seq + i));
        assert.equal(all.at(-1).checkpoint.status, 'complete');

        const whole = await api(m.base, 'GET', `${cpPath}?limit=100`);
        assert.deepEqual(whole.json.items, all);
        assert.equal(whole.json.next_cursor, null);

        const dflt = await api(m.base, 'GET', cpPath);
        assert.equal(dflt.json.items.length, Math.min(all.length, 20));

        for (const q of ['limit=0', 'limit=101', 'limit=x', 'cursor=abc']) {
            const r = await api(m.base, 'GET', `${cpPath}?${q}`);
            assert.equal(r.status, 400, q);
            assert.equal(r.json.error.code, 'invalid_field');
        }
    });
});


describe('bounds raised', () => {
    let m;

    before(async () => {
        m = await startMaestro({ http: [
            'maestro_max_body 16m;',
            'maestro_graph_max_nodes 20000;',
            'maestro_graph_max_edges 20000;',
            'maestro_graph_max_fanout 20000;',
            'maestro_graph_max_steps 100000;',
        ].join('\n') });
    });

    after(() => stopClean(m));

    test('a 2,000-node fan-out runs; the store grows by the step, not '
         + 'the graph', async () => {
        const store = path.join(m.prefix, 'store', 'data.mdb');
        const w = await submit(m.base, { prompt: 'f',
                                         workflow: fan(2000, 100000) });
        const done = async () => {
            const wf = await getWorkflow(m.base, w.id);
            return Object.values(wf.agents)
                .filter((a) => a.status === 'complete').length;
        };
        await waitFor(async () => (await done()) >= 20, 30000, 200,
                      'the fan-out running');
        const s0 = fs.statSync(store).size;
        const d0 = await done();
        await sleep(3000);
        const d1 = await done();
        const s1 = fs.statSync(store).size;
        const steps = d1 - d0;
        assert.ok(steps >= 20, `${steps} steps in 3 s`);
        /* a whole checkpoint of it is ~130 KB, its record was ~300 KB */
        const perStep = (s1 - s0) / steps;
        process.stderr.write(`# fan-out: ${steps} steps, store +${s1 - s0}`
                             + ` B, ${Math.round(perStep)} B a step\n`);
        assert.ok(perStep < 32 * 1024, `${perStep} bytes a step`);

        const c = await api(m.base, 'POST',
                            `/api/v1/workflows/${w.id}/cancel`);
        assert.equal(c.status, 202);
        const wf = await waitStatus(m.base, w.id);
        assert.equal(wf.status, 'cancelled');
    });

});


describe('maestro_state_max_size', () => {
    let m;

    before(async () => {
        m = await startMaestro({ http: 'maestro_state_max_size 4k;' });
    });

    after(() => stopClean(m));

    test('a step that grows the state past the bound fails the workflow',
         async () => {
        const w = await submit(m.base, {
            prompt: 'q'.repeat(1500),
            workflow: chain(['a', 'echo'], ['b', 'echo'], ['c', 'echo']),
        });
        const wf = await waitStatus(m.base, w.id);
        assert.equal(wf.status, 'failed');
        assert.match(wf.error, new RegExp('state_too_large: the state is '
            + '\\d+ bytes, more than 4096 \\(maestro_state_max_size\\)'));
        assert.match(m.errorLog(), /state_too_large/);
    });
});
