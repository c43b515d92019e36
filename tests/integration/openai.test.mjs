/*
 * Copyright (C) Maestro authors
 */

/*
 * The OpenAI-compatible facade, driven by the official `openai` SDK:
 * GET /v1/models, POST /v1/chat/completions with maestro/<workflow>
 * models, streaming and not, and OpenAI-shaped errors that the SDK turns
 * into its own exceptions.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMaestro, sse, api } from './lib/harness.mjs';


const FAILING = {
    name: 'failing',
    nodes: { f: { agent: 'fail', config: { permanent: true } } },
    edges: [],
};

const ECHO = {
    name: 'echoes',
    nodes: { a: { agent: 'echo' } },
    edges: [],
};


describe('OpenAI-compatible API', () => {
    let m, client;

    before(async () => {
        m = await startMaestro({
            workers: 2,
            workflows: { failing: FAILING, echoes: ECHO },
            server: ['location /v1/ { maestro_api; client_max_body_size 0; }'],
        });
        client = new OpenAI({ apiKey: 'unused', baseURL: `${m.base}/v1`,
                              maxRetries: 0 });
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

    test('models.list names every workflow as maestro/<name>, and auto',
         async () => {
        const models = await client.models.list();
        const ids = models.data.map((x) => x.id).sort();
        assert.deepEqual(ids, ['auto', 'maestro/default', 'maestro/echoes',
                               'maestro/failing']);
        for (const x of models.data) {
            assert.equal(x.object, 'model');
            assert.equal(x.owned_by, 'maestro');
        }
    });

    test('a completion runs the workflow and answers its result',
         async () => {
        const { data: c, response } = await client.chat.completions.create({
            model: 'maestro/default',
            user: 'sdk-user',
            messages: [
                { role: 'system',
                  content: 'Nginx uses an event-driven architecture with '
                           + 'worker processes.' },
                { role: 'user',
                  content: 'Explain how nginx handles connections.' },
            ],
        }).withResponse();

        assert.equal(c.object, 'chat.completion');
        assert.equal(c.model, 'maestro/default');
        assert.equal(c.choices[0].message.role, 'assistant');
        assert.equal(c.choices[0].finish_reason, 'stop');
        assert.match(c.choices[0].message.content, /maestro-offline/);
        /* the system message went in as context, with its source */
        assert.match(c.choices[0].message.content,
                     /event-driven architecture.*\(source: system-1\)/);
        assert.ok(c.usage.total_tokens > 0);
        assert.equal(c.usage.total_tokens,
                     c.usage.prompt_tokens + c.usage.completion_tokens);

        /* the same workflow, as Maestro sees it */
        const id = response.headers.get('x-maestro-workflow-id');
        assert.equal(c.id, `chatcmpl-${id}`);
        const wf = (await api(m.base, 'GET', `/api/v1/workflows/${id}`)).json;
        assert.equal(wf.status, 'complete');
        assert.equal(wf.user_id, 'sdk-user');
        assert.equal(wf.result, c.choices[0].message.content);
        assert.equal(wf.tokens.total, c.usage.total_tokens);
    });

    test('a stream sends the tokens as chunks, then stop and usage',
         async () => {
        const { data: stream, response } = await client.chat.completions
            .create({
                model: 'maestro/default',
                stream: true,
                stream_options: { include_usage: true },
                messages: [{ role: 'user',
                             content: 'Compare nginx with Apache.' }],
            }).withResponse();

        let text = '', first = null, finish = null, usage = null, n = 0;
        for await (const ch of stream) {
            n++;
            assert.equal(ch.object, 'chat.completion.chunk');
            if (first === null) first = ch;
            if (ch.choices.length) {
                text += ch.choices[0].delta.content || '';
                finish = ch.choices[0].finish_reason || finish;
            }
            if (ch.usage) usage = ch.usage;
        }

        assert.equal(first.choices[0].delta.role, 'assistant');
        assert.equal(finish, 'stop');
        assert.ok(usage && usage.total_tokens > 0, 'usage chunk');
        assert.ok(n >= 3);

        /* the deltas are exactly the workflow's token events */
        const id = response.headers.get('x-maestro-workflow-id');
        const s = await sse(`${m.base}/api/v1/workflows/${id}/events`,
                            { timeoutMs: 5000 });
        const tokens = s.events.filter((e) => e.event === 'token')
            .map((e) => e.data.text).join('');
        assert.equal(text, tokens);
        assert.ok(text.length > 0);
    });

    test('a failed workflow is an error the SDK raises, streaming or not',
         async () => {
        await assert.rejects(
            client.chat.completions.create({
                model: 'maestro/failing',
                messages: [{ role: 'user', content: 'fail please' }],
            }),
            (e) => e.status === 500 && e.code === 'workflow_failed');

        const stream = await client.chat.completions.create({
            model: 'maestro/failing',
            stream: true,
            messages: [{ role: 'user', content: 'fail please' }],
        });
        await assert.rejects((async () => {
            for await (const ch of stream) { void ch; }
        })(), (e) => /fail/.test(e.message));
    });

    test('bad requests are OpenAI-shaped errors', async () => {
        await assert.rejects(
            client.chat.completions.create({
                model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }],
            }),
            (e) => e.status === 404 && e.code === 'model_not_found'
                   && e.param === 'model');

        await assert.rejects(
            client.chat.completions.create({ model: 'maestro/echoes',
                                             messages: [] }),
            (e) => e.status === 400 && e.param === 'messages');

        /* typed fields are typed, for a workflow and a provider's model */
        for (const model of ['maestro/echoes', 'gpt-4o']) {
            for (const [field, value, code] of [
                ['stream', 'yes', 'invalid_type'],
                ['temperature', '0.5', 'invalid_type'],
                ['temperature', 7, 'invalid_value'],
                ['n', 0, 'invalid_value'],
                ['max_tokens', 2.5, 'invalid_type'],
                ['stop', [1], 'invalid_type'],
            ]) {
                const r = await api(m.base, 'POST', '/v1/chat/completions',
                                    { model, [field]: value,
                                      messages: [{ role: 'user',
                                                   content: 'x' }] });
                const what = `${model} ${field}=${JSON.stringify(value)}`;
                assert.equal(r.status, 400, `${what}: ${r.text}`);
                assert.equal(r.json.error.type, 'invalid_request_error',
                             what);
                assert.equal(r.json.error.param, field, what);
                assert.equal(r.json.error.code, code, what);
            }
        }

        await assert.rejects(
            client.chat.completions.create({
                model: 'maestro/echoes',
                messages: [{ role: 'assistant', content: 'no user' }],
            }),
            (e) => e.status === 400 && e.code === 'invalid_value');

        const r = await api(m.base, 'POST', '/v1/chat/completions',
                            '{"model": "maestro/echoes", "messages": [',
                            { 'content-type': 'application/json' });
        assert.equal(r.status, 400);
        assert.equal(r.json.error.code, 'invalid_json');
        assert.equal(r.json.error.type, 'invalid_request_error');

        const g = await api(m.base, 'GET', '/v1/chat/completions');
        assert.equal(g.status, 405);
        assert.equal(g.json.error.code, 'method_not_allowed');

        const u = await api(m.base, 'GET', '/v1/nope');
        assert.equal(u.status, 404);
        assert.equal(u.json.error.code, 'unknown_url');
        assert.equal(u.json.error.message, 'Unknown request URL: /v1/nope');

        /* the limit as a number and the directive that raises it */
        const big = await api(m.base, 'POST', '/v1/chat/completions',
                              JSON.stringify({ model: 'maestro/echoes',
                                               messages: [{ role: 'user',
                                                 content: 'x'.repeat(
                                                     2 * 1024 * 1024) }] }));
        assert.equal(big.status, 413);
        assert.equal(big.json.error.code, 'body_too_large');
        assert.equal(big.json.error.message,
                     'body is larger than 1048576 bytes (maestro_max_body)');
    });

    test('content parts and a user id reach the workflow', async () => {
        const { data: c, response } = await client.chat.completions.create({
            model: 'maestro/echoes',
            user: 'parts-user',
            messages: [{ role: 'user', content: [
                { type: 'text', text: 'first part' },
                { type: 'text', text: 'second part' },
            ] }],
        }).withResponse();

        const id = response.headers.get('x-maestro-workflow-id');
        const wf = (await api(m.base, 'GET', `/api/v1/workflows/${id}`)).json;
        assert.equal(wf.prompt, 'first part\nsecond part');
        assert.equal(wf.user_id, 'parts-user');
        assert.match(c.choices[0].message.content, /first part/);
    });
});
