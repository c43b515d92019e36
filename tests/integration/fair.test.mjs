/*
 * Copyright (C) Maestro authors
 */

/*
 * The fair scheduler (mst_sched.h): short workflows next to a huge
 * fan-out. Their p99 (server side: finished_at - created_at) with the
 * fan-out running stays within 2x of their p99 alone (plus a floor of
 * FLOOR_MS for timer and thread wake-up granularity); a cancel of the
 * fan-out ends it within ~1 s; no lease lapses (2 workers and a 2 s
 * lease: a lapse is claimed by the other worker, which the log says, and
 * the step runs again, which its attempts say).
 *
 * Two fan-outs: FAIR_SMALL nodes (default 500), where a step's store
 * write is small and every target is asserted, and FAIR_WIDTH (default
 * 10000), where each step still rewrites the whole record (see the todo
 * below). FAIR_SAMPLES: short workflows per measure.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, stopClean, api, submit, waitStatus, getWorkflow, chain,
    waitFor,
} from './lib/harness.mjs';


const WIDTH = Number(process.env.FAIR_WIDTH || 10000);
const SMALL = Number(process.env.FAIR_SMALL || 500);
const SAMPLES = Number(process.env.FAIR_SAMPLES || 60);
const PARALLEL = 4;             /* short workflows at once */
const FLOOR_MS = 40;

const SHORT = chain(['a', 'sleep', { ms: 30 }], ['b', 'sleep', { ms: 30 }],
                    ['c', 'sleep', { ms: 30 }]);


/* root, then WIDTH sleep nodes at once */
function fanOut(width) {
    const g = { name: 'fan', entry: 'root', max_steps: width + 10,
                nodes: { root: { agent: 'echo' } }, edges: [] };
    for (let i = 0; i < width; i++) {
        g.nodes[`n${i}`] = { agent: 'sleep', config: { ms: 30 } };
        g.edges.push({ from: 'root', to: `n${i}` });
    }
    return g;
}


function p99(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
}


function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}


/* SAMPLES short workflows, PARALLEL at a time: their durations (ms) */
async function shortRun(base, tag) {
    const times = [];
    const submits = [];
    let next = 0;

    async function lane() {
        while (next < SAMPLES) {
            const i = next++;
            const t0 = Date.now();
            const w = await submit(base, { prompt: `${tag} ${i}`,
                                           workflow: SHORT });
            submits.push(Date.now() - t0);
            const done = await waitStatus(base, w.id, 'complete', 60000);
            times.push(done.finished_at - done.created_at);
        }
    }

    await Promise.all(Array.from({ length: PARALLEL }, lane));

    return { times, submits };
}


/* every node of a record ran at most once */
function assertOnce(rec) {
    for (const [node, a] of Object.entries(rec.agents || {})) {
        assert.ok((a.attempts ?? 0) <= 1,
                  `${rec.id} ${node} began ${a.attempts} times`);
    }
}


/*
 * One measure: the short workflows alone, then next to a fan-out of
 * width nodes, then its cancel. Returns the numbers.
 */
async function measure(m, width) {
    const out = {};

    /* warm up: the pool threads are seen, the graph cache is filled */
    await shortRun(m.base, 'warm');
    const alone = await shortRun(m.base, 'alone');
    out.alone = p99(alone.times);

    const t0 = Date.now();
    const big = await submit(m.base, { prompt: 'wide',
                                       workflow: fanOut(width) });
    out.submitBig = Date.now() - t0;

    /* its steps run */
    await waitFor(async () => {
        const r = await getWorkflow(m.base, big.id);
        return r.status === 'running'
            && Object.entries(r.agents || {})
                .some(([k, a]) => k !== 'root' && a.status === 'complete');
    }, 30000, 100, 'the fan-out runs');

    const load = await shortRun(m.base, 'load');
    out.load = p99(load.times);

    const c0 = Date.now();
    const r = await api(m.base, 'POST', `/api/v1/workflows/${big.id}/cancel`);
    assert.equal(r.status, 202, r.text);
    out.cancelAnswered = Date.now() - c0;
    const done = await waitStatus(m.base, big.id, 'cancelled', 30000);
    out.cancelled = Date.now() - c0;
    out.big = done;

    const ran = Object.entries(done.agents || {})
        .filter(([k, a]) => k !== 'root' && a.status === 'complete').length;

    console.log(`# ${width}-node fan-out: short p99 alone ${out.alone} ms `
                + `(median ${median(alone.times)}, submit p99 `
                + `${p99(alone.submits)}), next to it ${out.load} ms `
                + `(median ${median(load.times)}, submit p99 `
                + `${p99(load.submits)}); fan-out submitted in `
                + `${out.submitBig} ms, ${ran} of its steps done; cancel `
                + `answered in ${out.cancelAnswered} ms, cancelled in `
                + `${out.cancelled} ms`);

    return out;
}


/* no lease lapsed: nobody claimed, no step began twice */
function assertNoLapse(m, big) {
    const log = m.errorLog();
    assert.doesNotMatch(log, /lease of workflow "wf_[0-9a-f]+" lost/);
    assert.doesNotMatch(log, /claimed workflow/);
    assertOnce(big);
}


function start() {
    return startMaestro({
        workers: 2,
        leaseTimeout: '2s',
        threadPools: 'thread_pool maestro threads=4;\n'
                     + 'thread_pool maestro_io threads=2;',
        /* the bounds raised for the wide fan-out (mst_limits.h) */
        http: 'maestro_max_body 8m;\n'
              + 'maestro_graph_max_nodes 20000;\n'
              + 'maestro_graph_max_edges 20000;\n'
              + 'maestro_graph_max_fanout 20000;\n'
              + 'maestro_graph_max_steps 100000;',
        storeSize: '2g',
    });
}


describe(`fair share: short workflows next to a ${SMALL}-node fan-out`,
         () => {
    let m;

    before(async () => {
        m = await start();
    });

    after(() => stopClean(m));

    test('p99 within 2x of alone, cancel within 1 s, every step once',
         async () => {
        const r = await measure(m, SMALL);

        assert.ok(r.load <= 2 * r.alone + FLOOR_MS,
                  `p99 ${r.load} ms next to the fan-out, ${r.alone} alone`);
        assert.ok(r.cancelled <= 1000 + FLOOR_MS,
                  `cancelled in ${r.cancelled} ms`);
        assertNoLapse(m, r.big);
    });
});


describe(`fair share: short workflows next to a ${WIDTH}-node fan-out`,
         () => {
    let m;
    let r;

    before(async () => {
        m = await start();
    });

    after(() => stopClean(m));

    test('the short ones finish, no lease lapses, every step once',
         async () => {
        r = await measure(m, WIDTH);
        assertNoLapse(m, r.big);
    });

    /*
     * Each step of this fan-out commits its whole 1.7 MB record and
     * checkpoint (i12-bounds makes that proportional to the change):
     * one commit holds the store's write lock ~200 ms, which a short
     * workflow's commit waits for at every step, whatever the scheduler.
     */
    test('p99 within 2x of alone, cancel within 1 s',
         { todo: 'per-step cost proportional to the change (i12-bounds)' },
         () => {
        assert.ok(r, 'measured');
        assert.ok(r.load <= 2 * r.alone + FLOOR_MS,
                  `p99 ${r.load} ms next to the fan-out, ${r.alone} alone`);
        assert.ok(r.cancelled <= 1000 + FLOOR_MS,
                  `cancelled in ${r.cancelled} ms`);
    });
});
