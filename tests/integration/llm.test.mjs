/*
 * Copyright (C) Maestro authors
 */

/*
 * The LLM path of the default workflow: against the fake OpenAI server
 * (requests, streamed tokens, host retries on 500), and offline (no
 * provider: an extractive answer labelled maestro-offline).
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, startFakeOpenAI, submit, waitStatus, sse,
    assertContiguous, api, chain, waitFor,
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

async function reset(fake) {
    const r = await fetch(`http://127.0.0.1:${fake.port}/__reset`,
                          { method: 'POST' });
    assert.equal(r.status, 200);
}


describe('LLM provider: the fake OpenAI server', () => {
    let fake;
    let m;

    before(async () => {
        fake = await startFakeOpenAI();
        m = await startMaestro({
            workers: 2,
            http: `maestro_llm_provider ${fake.url} model=fake-model `
                + 'timeout=10s retries=3;',
        });
    });

    after(async () => {
        try {
            await stopClean(m);
        } finally {
            if (fake) {
                await fake.stop();
            }
        }
    });

    test('the default workflow calls the provider and streams tokens',
         async () => {
        await reset(fake);
        /*
         * Stream slowly (50 ms between chunks), so that the tokens arrive
         * over several flush intervals: the host batches what arrives
         * within maestro_flush_interval into one token event.
         */
        await fake.control(['slow_stream:50', 'slow_stream:50',
                            'slow_stream:50', 'slow_stream:50']);
        const prompt = 'Summarise the benefits of event-driven servers';
        const w = await submit(m.base, { prompt });
        const r = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { timeoutMs: 60000 });
        assert.equal(r.status, 200);
        assert.equal(r.ended, 'done', `ended ${r.ended}: ${JSON.stringify(
            r.events.slice(-3))}`);
        assertContiguous(r.events, 1);

        const stats = await fake.stats();
        assert.ok(stats.by_path['/v1/chat/completions'] >= 1,
                  JSON.stringify(stats.by_path));
        const req = stats.last_request;
        assert.equal(req.method, 'POST');
        assert.equal(req.body.model, 'fake-model');
        assert.ok(Array.isArray(req.body.messages)
                  && req.body.messages.length >= 1);

        const tokens = r.events.filter((e) => e.event === 'token');
        for (const t of tokens) {
            assert.equal(typeof t.data.agent, 'string');
            assert.equal(typeof t.data.text, 'string');
        }
        const llmTokens = tokens.filter((t) => t.data.agent === 'llm');
        assert.ok(llmTokens.length >= 3,
                  `the llm answer streamed as several token events: `
                  + `${llmTokens.length}`);
        const streamed = llmTokens.map((t) => t.data.text).join('');
        assert.match(streamed, new RegExp(`^Echo: ${prompt}`));

        const wf = await waitStatus(m.base, w.id, 'complete', 10000);
        assert.ok(wf.result.includes(streamed.trim()),
                  `the result holds the streamed answer:\n${wf.result}`);
        assert.doesNotMatch(wf.result, /maestro-offline/);
        assert.equal(r.events[r.events.length - 1].data.result, wf.result);
        assert.ok(wf.tokens.total > 0, `tokens ${JSON.stringify(wf.tokens)}`);
        assert.ok(wf.tokens.completion > 0);
    });

    test('two 500s from the provider: the host retries, workflow completes',
         async () => {
        await reset(fake);
        const q = await fake.control(['500', '500']);
        assert.equal(q.queued, 2);

        const w = await submit(m.base, { prompt: 'Explain retries briefly' });
        const wf = await waitStatus(m.base, w.id, ['complete', 'failed'],
                                    60000);
        assert.equal(wf.status, 'complete', wf.error);
        assert.match(wf.result, /Echo: /);

        const stats = await fake.stats();
        const calls = stats.by_path['/v1/chat/completions'];
        assert.ok(calls >= 3, `${calls} chat requests (2 failed + retries)`);
        const left = await fake.control([]);
        assert.equal(left.queued, 0, 'both faults were consumed');
    });

    /* the plugins' calls are made by the worker's event-driven engine */

    test('cancelling a workflow stops its agent\'s LLM call at once',
         async () => {
        await reset(fake);
        await fake.control(['hang']);
        const w = await submit(m.base, { prompt: 'never answered',
                                         workflow: chain(['l', 'llm']) });
        await waitFor(async () => (await fake.stats()).requests > 0, 10000);
        const t0 = Date.now();
        const c = await api(m.base, 'POST',
                            `/api/v1/workflows/${w.id}/cancel`);
        assert.equal(c.status, 202, JSON.stringify(c.json));
        assert.equal(c.json.cancel_requested, true);
        const wf = await waitStatus(m.base, w.id, ['cancelled', 'failed'],
                                    8000);
        assert.equal(wf.status, 'cancelled');
        assert.ok(Date.now() - t0 < 5000, 'long before the 10 s timeout');
    });

    test('a stream broken after its first token fails the call; the '
         + 'retry policy runs it again', async () => {
        await reset(fake);
        await fake.control(['reset_mid_stream']);
        const w = await submit(m.base, {
            prompt: 'alpha beta gamma delta epsilon',
            workflow: {
                name: 'retry-llm', entry: 'l',
                nodes: { l: { agent: 'llm', retry: { max: 1, backoff_ms: 50 } } },
                edges: [],
            } });
        const wf = await waitStatus(m.base, w.id, ['complete', 'failed'],
                                    30000);
        assert.equal(wf.status, 'complete', wf.error);
        assert.equal(wf.agents.l.attempts, 2, 'failed once, then ran again');
        const logs = await api(m.base, 'GET', '/api/v1/agents/llm/logs?limit=50');
        assert.ok(JSON.stringify(logs.json).includes('broke the stream'),
                  'the first attempt said why');
    });
});


describe('LLM offline (no provider)', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2 });
    });

    after(() => stopClean(m));

    test('the answer is labelled maestro-offline and cites the context',
         async () => {
        const sentence = 'The deployment checklist requires a tested '
            + 'rollback plan before every release';
        const w = await submit(m.base, {
            prompt: 'What does the deployment checklist require before a '
                + 'release?',
            context: [{
                name: 'notes.md',
                content: `# Ops notes\n\n${sentence}. Coffee is served at `
                    + 'nine in the kitchen. Parking is in the north lot.\n',
            }],
        });
        const wf = await waitStatus(m.base, w.id, ['complete', 'failed'],
                                    60000);
        assert.equal(wf.status, 'complete', wf.error);
        assert.match(wf.result, /maestro-offline/);
        assert.ok(wf.result.includes(sentence),
                  `result cites the sentence:\n${wf.result}`);
        assert.match(wf.result, /notes\.md/);
        assert.doesNotMatch(wf.result, /Coffee is served/,
                            'irrelevant sentences are not the answer');
    });

    test('a context string works too', async () => {
        const w = await submit(m.base, {
            prompt: 'Which port does the staging database listen on?',
            context: 'The staging database listens on port 6543. '
                + 'Lunch is at noon.',
        });
        const wf = await waitStatus(m.base, w.id, ['complete', 'failed'],
                                    60000);
        assert.equal(wf.status, 'complete', wf.error);
        assert.match(wf.result, /maestro-offline/);
        assert.match(wf.result, /staging database listens on port 6543/);
    });
});
