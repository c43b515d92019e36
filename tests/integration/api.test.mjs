/*
 * Copyright (C) Maestro authors
 */

/*
 * The REST API: submit, get, list (filters, cursor pagination), cancel,
 * checkpoints, agents, agent logs, healthz.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, api, submit, getWorkflow, waitStatus, waitFor, sse, chain,
    sleep, ID_RE,
} from './lib/harness.mjs';


const ECHO2 = {
    name: 'echo2',
    entry: 'a',
    nodes: {
        a: { agent: 'echo' },
        b: { agent: 'echo', config: { tag: 'b' } },
    },
    edges: [
        { from: 'a', to: 'b' },
        { from: 'b', to: '$end' },
    ],
};

const AGENT_STATUSES = ['idle', 'planning', 'executing', 'waiting', 'complete',
                        'error'];


function assertTimes(wf) {
    const now = Date.now();
    for (const k of ['created_at', 'started_at', 'finished_at',
                     'updated_at']) {
        assert.equal(typeof wf[k], 'number', `${k} is a number`);
        assert.ok(wf[k] > now - 3600e3 && wf[k] <= now + 5000,
                  `${k} ${wf[k]} is a ms epoch near now`);
    }
    assert.ok(wf.created_at <= wf.started_at, 'created_at <= started_at');
    assert.ok(wf.started_at <= wf.finished_at, 'started_at <= finished_at');
    assert.ok(wf.updated_at >= wf.started_at, 'updated_at >= started_at');
}

function assertCompleteShape(wf, id, prompt) {
    assert.equal(wf.id, id);
    assert.equal(wf.status, 'complete');
    assert.equal(wf.progress, 100);
    assert.equal(wf.prompt, prompt);
    assert.equal(wf.error, null);
    assert.equal(typeof wf.result, 'string', 'result is a string');
    assert.ok(wf.result.length > 0, 'result is not empty');
    assertTimes(wf);

    assert.equal(typeof wf.agents, 'object');
    assert.ok(Object.keys(wf.agents).length > 0, 'agents not empty');
    for (const [node, a] of Object.entries(wf.agents)) {
        assert.equal(typeof a.name, 'string', `${node}.name`);
        assert.equal(typeof a.agent, 'string', `${node}.agent`);
        assert.ok(AGENT_STATUSES.includes(a.status),
                  `${node}.status ${a.status}`);
        assert.equal(a.status, 'complete', `${node} complete`);
        /* agents' progress is in percent, as the workflow's */
        assert.equal(a.progress, 100, `${node}.progress is full`);
        assert.equal(typeof a.metrics, 'object', `${node}.metrics`);
        for (const k of ['tokens', 'execution_ms', 'memory_bytes']) {
            assert.equal(typeof a.metrics[k], 'number', `${node}.metrics.${k}`);
            assert.ok(a.metrics[k] >= 0, `${node}.metrics.${k} >= 0`);
        }
        assert.ok(Number.isInteger(a.attempts) && a.attempts >= 1,
                  `${node}.attempts ${a.attempts}`);
    }

    for (const k of ['prompt', 'completion', 'total']) {
        assert.equal(typeof wf.tokens[k], 'number', `tokens.${k}`);
    }
    assert.equal(wf.tokens.total, wf.tokens.prompt + wf.tokens.completion);
    const agentTokens = Object.values(wf.agents)
        .reduce((n, a) => n + a.metrics.tokens, 0);
    assert.equal(wf.tokens.total, agentTokens,
                 `workflow tokens ${JSON.stringify(wf.tokens)} = the sum of `
                 + `its agents' tokens ${agentTokens}`);

    for (const k of ['queued_ms', 'run_ms', 'total_ms']) {
        assert.equal(typeof wf.timings[k], 'number', `timings.${k}`);
        assert.ok(wf.timings[k] >= 0, `timings.${k} >= 0`);
    }
    assert.ok(wf.timings.total_ms >= wf.timings.run_ms,
              'total_ms >= run_ms');

    assert.ok(Number.isInteger(wf.last_event_id) && wf.last_event_id > 0,
              `last_event_id ${wf.last_event_id}`);
    assert.ok(wf.links && wf.links.self.includes(id), 'links.self');
}


describe('REST API', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2 });
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

    test('GET /healthz', async () => {
        const r = await api(m.base, 'GET', '/healthz');
        assert.equal(r.status, 200);
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.equal(r.json.status, 'ok');
        assert.equal(typeof r.json.store.used_bytes, 'number');
        assert.equal(r.json.store.map_bytes, 256 * 1024 * 1024);
        assert.ok(r.json.store.used_bytes > 0
                  && r.json.store.used_bytes <= r.json.store.map_bytes);
        assert.ok(Number.isInteger(r.json.workflows.active)
                  && r.json.workflows.active >= 0);
    });

    test('submit the default workflow and poll it to completion', async () => {
        const prompt = 'Explain how nginx worker processes share '
            + 'connections, in three short points.';
        const r = await api(m.base, 'POST', '/api/v1/workflows',
                            { prompt, user_id: 'u-api-default' });
        assert.equal(r.status, 202, r.text);
        const { id } = r.json;
        assert.match(id, ID_RE);
        assert.equal(r.json.status, 'queued');
        assert.equal(r.json.workflow, 'default');
        assert.equal(r.json.links.self, `/api/v1/workflows/${id}`);
        assert.equal(r.json.links.events, `/api/v1/workflows/${id}/events`);
        assert.equal(r.json.links.cancel, `/api/v1/workflows/${id}/cancel`);
        assert.equal(r.json.links.checkpoints,
                     `/api/v1/workflows/${id}/checkpoints`);
        assert.ok(r.headers.location, 'Location header');
        assert.ok(r.headers.location.endsWith(`/api/v1/workflows/${id}`),
                  `Location ${r.headers.location}`);

        const wf = await waitStatus(m.base, id, ['complete', 'failed',
                                                 'cancelled'], 60000);
        assert.equal(wf.status, 'complete', JSON.stringify(wf));
        assertCompleteShape(wf, id, prompt);
        assert.equal(wf.workflow, 'default');
        assert.equal(wf.user_id, 'u-api-default');

        const agents = new Set(Object.values(wf.agents).map((a) => a.agent));
        for (const a of ['planner', 'llm', 'reviewer']) {
            assert.ok(agents.has(a), `agent ${a} ran: ${[...agents]}`);
        }
    });

    test('submit an inline echo-only graph', async () => {
        const prompt = 'echo this prompt';
        const r = await api(m.base, 'POST', '/api/v1/workflows',
                            { prompt, workflow: ECHO2 });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.json.status, 'queued');
        assert.equal(r.json.workflow, 'echo2');

        const wf = await waitStatus(m.base, r.json.id, 'complete', 15000);
        assertCompleteShape(wf, r.json.id, prompt);
        assert.deepEqual(Object.keys(wf.agents).sort(), ['a', 'b']);
        assert.equal(wf.agents.a.agent, 'echo');
        assert.equal(wf.agents.b.agent, 'echo');
        assert.equal(wf.agents.a.attempts, 1);
        assert.equal(wf.user_id ?? null, null);
    });

    test('list: user_id filter, cursor pagination newest first, status',
         async () => {
        const user = `u-list-${process.pid}-${Date.now()}`;
        const ids = [];
        for (let i = 0; i < 7; i++) {
            const w = await submit(m.base, { prompt: `list ${i}`,
                                             workflow: ECHO2, user_id: user });
            ids.push(w.id);
            await sleep(5);
        }
        /* another user's workflow must not show up */
        const other = await submit(m.base, { prompt: 'other', workflow: ECHO2,
                                             user_id: `${user}-other` });

        const seen = [];
        const pages = [];
        let cursor = null;
        for (let guard = 0; guard < 10; guard++) {
            const q = `user_id=${encodeURIComponent(user)}&limit=3`
                + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
            const r = await api(m.base, 'GET', `/api/v1/workflows?${q}`);
            assert.equal(r.status, 200, r.text);
            assert.ok(Array.isArray(r.json.items));
            assert.ok(r.json.items.length <= 3, 'page size <= limit');
            pages.push(r.json.items.length);
            for (const it of r.json.items) {
                assert.match(it.id, ID_RE);
                assert.equal(it.user_id, user);
                assert.ok(typeof it.status === 'string');
                seen.push(it);
            }
            cursor = r.json.next_cursor;
            assert.ok(cursor === null || typeof cursor === 'string');
            if (cursor === null) {
                break;
            }
        }
        assert.equal(cursor, null, 'pagination ends with next_cursor null');
        assert.deepEqual(pages.slice(0, 2), [3, 3]);
        const seenIds = seen.map((i) => i.id);
        assert.equal(new Set(seenIds).size, seenIds.length, 'no duplicates');
        assert.deepEqual(seenIds, [...ids].reverse(),
                         'all 7, newest first, no gaps');
        for (let i = 1; i < seen.length; i++) {
            assert.ok(seen[i - 1].created_at >= seen[i].created_at,
                      'created_at non-increasing');
        }
        assert.ok(!seenIds.includes(other.id));

        /* status filter */
        for (const id of ids) {
            await waitStatus(m.base, id, 'complete', 15000);
        }
        let r = await api(m.base, 'GET', `/api/v1/workflows?status=complete`
                          + `&user_id=${encodeURIComponent(user)}&limit=100`);
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.items.map((i) => i.id), [...ids].reverse());
        assert.ok(r.json.items.every((i) => i.status === 'complete'));
        assert.equal(r.json.next_cursor, null);

        r = await api(m.base, 'GET', `/api/v1/workflows?status=running`
                      + `&user_id=${encodeURIComponent(user)}`);
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.items, []);

        /* no filter: default limit, newest first, includes ours */
        r = await api(m.base, 'GET', '/api/v1/workflows');
        assert.equal(r.status, 200);
        assert.ok(r.json.items.length >= 8 && r.json.items.length <= 50);
        assert.equal(r.json.items[0].id, other.id, 'newest first');

        /* bad limits */
        for (const bad of ['0', '1001', 'abc', '-1', '']) {
            r = await api(m.base, 'GET', `/api/v1/workflows?limit=${bad}`);
            assert.equal(r.status, 400, `limit=${bad}: ${r.text}`);
            assert.equal(r.json.error.code, 'invalid_field');
        }
        r = await api(m.base, 'GET', '/api/v1/workflows?limit=1000');
        assert.equal(r.status, 200);
    });

    test('cancel a running workflow, then cancel again -> 409', async () => {
        const w = await submit(m.base, {
            prompt: 'sleep a while',
            workflow: chain(['s', 'sleep', { ms: 5000 }]),
        });
        await waitFor(async () => {
            const wf = await getWorkflow(m.base, w.id);
            return wf.status === 'running'
                && wf.agents.s && wf.agents.s.status === 'executing';
        }, 10000, 50, 'sleep step executing');

        const t0 = Date.now();
        let r = await api(m.base, 'POST', `/api/v1/workflows/${w.id}/cancel`);
        assert.equal(r.status, 202, r.text);
        assert.equal(r.json.id, w.id);
        assert.equal(r.json.cancel_requested, true);
        assert.ok(['running', 'cancelled'].includes(r.json.status),
                  r.json.status);

        const wf = await waitStatus(m.base, w.id, ['cancelled', 'complete',
                                                   'failed'], 4000);
        assert.equal(wf.status, 'cancelled');
        assert.ok(Date.now() - t0 <= 2000,
                  `cancelled within 2 s (took ${Date.now() - t0} ms)`);
        assert.equal(typeof wf.finished_at, 'number');

        const s = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { timeoutMs: 5000 });
        const last = s.events[s.events.length - 1];
        assert.equal(last.event, 'done');
        assert.equal(last.data.status, 'cancelled');

        r = await api(m.base, 'POST', `/api/v1/workflows/${w.id}/cancel`);
        assert.equal(r.status, 409, r.text);
        assert.equal(r.json.error.code, 'already_finished');
    });

    test('a step that ignores its deadline is abandoned on time, also '
         + 'when it runs right after another step', async () => {
        /* n runs first; h, which sleeps on past its 500 ms, follows on
           the same pool thread: the host still abandons it at 500 ms
           plus its 2 s grace */
        const t0 = Date.now();
        const w = await submit(m.base, {
            prompt: 'stubborn',
            workflow: chain(['n', 'echo', null, { timeout_ms: 300 }],
                            ['h', 'sleep', { ms: 4000, ignore_deadline: true },
                             { timeout_ms: 500 }]),
        });
        const wf = await waitStatus(m.base, w.id, ['failed', 'complete'],
                                    8000);
        assert.equal(wf.status, 'failed');
        assert.match(wf.error, /^h: timed out after 500 ms/);
        assert.equal(wf.agents.n.status, 'complete');
        const ms = Date.now() - t0;
        assert.ok(ms >= 2400 && ms < 3800, `abandoned after ${ms} ms`);
    });

    test('a step past its timeout_ms is retried, then fails the workflow',
         async () => {
        const t0 = Date.now();
        const w = await submit(m.base, {
            prompt: 'too slow',
            workflow: chain(['s', 'sleep', { ms: 5000 },
                             { timeout_ms: 300,
                               retry: { max: 1, backoff_ms: 100 } }]),
        });
        const wf = await waitStatus(m.base, w.id, ['failed', 'complete'],
                                    8000);
        assert.equal(wf.status, 'failed');
        assert.match(wf.error, /^s: timed out after 300 ms/);
        assert.equal(wf.agents.s.attempts, 2);
        assert.equal(wf.agents.s.status, 'error');
        assert.ok(Date.now() - t0 < 4000, `failed in ${Date.now() - t0} ms`);

        const s = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { timeoutMs: 5000 });
        const statuses = s.events.filter((e) => e.event === 'agent_status'
                                                && e.data.id === 's')
            .map((e) => e.data.status);
        assert.ok(statuses.includes('waiting'), statuses.join());
        assert.equal(s.events[s.events.length - 1].event, 'error');
    });

    test('GET /workflows/{id}/graph: the graph it runs', async () => {
        const w = await submit(m.base, { prompt: 'graph', workflow: ECHO2 });
        let r = await api(m.base, 'GET', `/api/v1/workflows/${w.id}/graph`);
        assert.equal(r.status, 200);
        assert.equal(r.json.id, w.id);
        assert.deepEqual(r.json.graph, ECHO2);

        const d = await submit(m.base, { prompt: 'named' });
        r = await api(m.base, 'GET', `/api/v1/workflows/${d.id}/graph`);
        assert.equal(r.status, 200);
        assert.equal(r.json.workflow, 'default');
        assert.deepEqual(Object.keys(r.json.graph.nodes).sort(),
                         ['llm', 'planner', 'reviewer']);
        assert.ok(r.json.graph.edges.length >= 3);

        r = await api(m.base, 'GET',
                      '/api/v1/workflows/wf_00000000000000000000/graph');
        assert.equal(r.status, 404);
    });

    test('cancel a complete workflow -> 409 already_finished', async () => {
        const w = await submit(m.base, { prompt: 'quick', workflow: ECHO2 });
        await waitStatus(m.base, w.id, 'complete', 15000);
        const r = await api(m.base, 'POST', `/api/v1/workflows/${w.id}/cancel`);
        assert.equal(r.status, 409, r.text);
        assert.equal(r.json.error.code, 'already_finished');
        assert.equal((await getWorkflow(m.base, w.id)).status, 'complete');
    });

    test('checkpoints grow with steps; the last one is complete', async () => {
        const prompt = 'checkpoint me';
        const w = await submit(m.base, {
            prompt,
            workflow: chain(['a', 'echo'], ['s', 'sleep', { ms: 1500 }],
                            ['b', 'echo']),
        });
        await waitFor(async () => {
            const wf = await getWorkflow(m.base, w.id);
            return wf.agents.s && wf.agents.s.status === 'executing';
        }, 10000, 50, 'sleep step executing');

        const cpPath = `/api/v1/workflows/${w.id}/checkpoints`;
        let r = await api(m.base, 'GET', cpPath);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.id, w.id);
        const mid = r.json.items;
        assert.ok(mid.length >= 1, 'a checkpoint exists while running');
        assert.notEqual(mid[mid.length - 1].checkpoint.status, 'complete');

        await waitStatus(m.base, w.id, 'complete', 15000);
        r = await api(m.base, 'GET', cpPath);
        assert.equal(r.status, 200);
        const items = r.json.items;
        assert.ok(items.length > mid.length,
                  `checkpoints grew: ${mid.length} -> ${items.length}`);
        for (let i = 1; i < items.length; i++) {
            assert.ok(items[i].seq > items[i - 1].seq, 'seq increasing');
        }
        for (let i = 0; i < mid.length; i++) {
            assert.deepEqual(items[i], mid[i], 'earlier checkpoints unchanged');
        }
        const last = items[items.length - 1].checkpoint;
        assert.equal(last.status, 'complete');
        assert.ok(last.steps_run >= 3, `steps_run ${last.steps_run}`);
        assert.equal(typeof last.superstep, 'number');
        assert.ok(Array.isArray(last.frontier));
        assert.deepEqual(last.frontier, []);
        assert.equal(last.state.prompt, prompt);
        assert.equal(last.state.outputs.a.echo, prompt);
        assert.equal(last.state.outputs.s.slept_ms, 1500);
        assert.equal(last.state.outputs.b.echo, prompt);

        const first = items[0].checkpoint;
        assert.equal(first.steps_run, 0);
        assert.deepEqual(first.frontier.map((f) => f.node ?? f), ['a']);
    });

    test('GET /api/v1/agents lists every configured agent', async () => {
        const r = await api(m.base, 'GET', '/api/v1/agents');
        assert.equal(r.status, 200, r.text);
        const byName = Object.fromEntries(r.json.items.map((a) => [a.name, a]));
        for (const n of ['planner', 'llm', 'reviewer', 'echo', 'sleep', 'fail',
                         'crash', 'noop', 'memory']) {
            assert.ok(byName[n], `agent ${n} listed`);
            assert.equal(typeof byName[n].plugin, 'string');
            assert.match(byName[n].version, /^\d+\.\d+\.\d+/);
            assert.equal(typeof byName[n].description, 'string');
            assert.ok(Array.isArray(byName[n].capabilities));
        }
        assert.equal(byName.echo.version, '1.0.0');
        assert.deepEqual(byName.echo.capabilities, ['test', 'echo']);
        assert.ok(byName.echo.plugin.endsWith('echo.so'));
        assert.equal(byName.echo.description, 'test fixture: echoes its input');
    });

    test('GET /api/v1/agents/{name}/logs after a run', async () => {
        const w = await submit(m.base, { prompt: 'log me', workflow: ECHO2 });
        await waitStatus(m.base, w.id, 'complete', 15000);

        let r = await api(m.base, 'GET', '/api/v1/agents/echo/logs?limit=50');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.agent, 'echo');
        const items = r.json.items;
        assert.ok(items.length >= 2 && items.length <= 50,
                  `the echo agent's log has this run's 2 entries: ${r.text}`);
        for (const it of items) {
            assert.equal(typeof it.timestamp, 'number');
            assert.equal(typeof it.level, 'string');
            assert.equal(it.agent, 'echo');
            assert.equal(typeof it.message, 'string');
        }
        for (let i = 1; i < items.length; i++) {
            assert.ok(items[i].timestamp >= items[i - 1].timestamp,
                      'newest last');
        }
        const mine = items.filter((it) => it.workflow_id === w.id);
        assert.equal(mine.filter((it) => /echo: \d+ bytes/.test(it.message))
                         .length, 2, 'the log line of each echo node');
        assert.equal(items[items.length - 1].workflow_id, w.id,
                     'the newest entry is last');

        r = await api(m.base, 'GET', '/api/v1/agents/echo/logs?limit=1');
        assert.equal(r.status, 200);
        assert.equal(r.json.items.length, 1);
        assert.equal(r.json.items[0].workflow_id, w.id);

        r = await api(m.base, 'GET', '/api/v1/agents/no_such_agent/logs');
        assert.equal(r.status, 404, r.text);
        assert.equal(r.json.error.code, 'not_found');
    });
});
