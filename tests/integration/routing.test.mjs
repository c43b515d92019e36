/*
 * Copyright (C) Maestro authors
 */

/*
 * Intent and complexity routing: POST /api/v1/analyze, workflow "auto",
 * X-Maestro-Route / X-Maestro-Complexity the same on every way in (REST,
 * the stream endpoint, "model": "auto" on /v1, WebSocket), and nginx -t
 * on bad rules.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
    startMaestro, api, nginxT, waitStatus, sse,
} from './lib/harness.mjs';
import { wsOpen, wsUrl } from './lib/ws.mjs';


const ECHO = { name: 'coder', nodes: { a: { agent: 'echo' } }, edges: [] };


describe('routing', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 1,
            workflows: { coder: ECHO },
            http: [
                String.raw`maestro_intent code "\b(bug|stack trace|compile)\b" "` + '```' + '";',
                String.raw`maestro_intent translate "\btranslate\b" "번역";`,
                'maestro_intent_route code coder;',
            ],
            server: ['location /v1/ { maestro_api; }'],
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

    test('analyze: intent, complexity, signals and the route', async () => {
        let r = await api(m.base, 'POST', '/api/v1/analyze',
                          { prompt: 'Why does this COMPILE fail?' });
        assert.equal(r.status, 200);
        assert.equal(r.json.intent, 'code');
        assert.equal(r.json.complexity, 'simple');
        assert.deepEqual(r.json.route, { workflow: 'coder' });
        assert.equal(r.headers['x-maestro-route'], 'coder');
        assert.equal(r.headers['x-maestro-complexity'], 'simple');

        r = await api(m.base, 'POST', '/api/v1/analyze',
                      { prompt: '이 문장을 번역해 주세요' });
        assert.equal(r.json.intent, 'translate');
        /* no route of its own: the default workflow */
        assert.deepEqual(r.json.route, { workflow: 'default' });

        const long = Array.from({ length: 60 }, () => 'word').join(' ');
        r = await api(m.base, 'POST', '/api/v1/analyze', { prompt: long });
        assert.equal(r.json.intent, 'general');
        assert.equal(r.json.complexity, 'moderate');
        assert.equal(r.json.signals.words, 60);

        r = await api(m.base, 'POST', '/api/v1/analyze',
                      { prompt: '1. plan it\n2. build it\n3. ship it' });
        assert.equal(r.json.complexity, 'complex');
        assert.equal(r.json.signals.steps, 3);

        r = await api(m.base, 'POST', '/api/v1/analyze', { text: 'x' });
        assert.equal(r.status, 400);
        assert.equal(r.json.error.code, 'missing_field');

        r = await api(m.base, 'GET', '/api/v1/analyze');
        assert.equal(r.status, 405);
    });

    test('workflow "auto" runs the routed workflow', async () => {
        let r = await api(m.base, 'POST', '/api/v1/workflows',
                          { prompt: 'there is a bug here', workflow: 'auto' });
        assert.equal(r.status, 202);
        assert.equal(r.headers['x-maestro-route'], 'coder');
        assert.equal(r.json.workflow, 'coder');
        const wf = await waitStatus(m.base, r.json.id, 'complete', 10000);
        assert.deepEqual(Object.keys(wf.agents), ['a']);

        r = await api(m.base, 'POST', '/api/v1/workflows',
                      { prompt: 'hello', workflow: 'auto' });
        assert.equal(r.status, 202);
        assert.equal(r.json.workflow, 'default');
        assert.equal(r.headers['x-maestro-complexity'], 'simple');
    });

    test('every way in routes alike, with the same headers', async () => {
        const client = new OpenAI({ apiKey: 'x', baseURL: `${m.base}/v1`,
                                    maxRetries: 0 });
        const long = Array.from({ length: 120 }, (_, i) => `w${i}`).join(' ');
        const cases = [
            ['there is a bug in it', 'coder', 'simple'],
            ['translate this please', 'default', 'simple'],
            [long, 'default', 'complex'],
        ];

        for (const [prompt, route, complexity] of cases) {
            const an = await api(m.base, 'POST', '/api/v1/analyze',
                                 { prompt });
            const rest = await api(m.base, 'POST', '/api/v1/workflows',
                                   { prompt, workflow: 'auto' });
            const stream = await sse(`${m.base}/api/v1/stream/workflow`, {
                method: 'POST', untilClose: true, timeoutMs: 15000,
                body: { prompt, workflow: 'auto' } });
            const { data: c, response } = await client.chat.completions
                .create({ model: 'auto',
                          messages: [{ role: 'user', content: prompt }] })
                .withResponse();

            assert.equal(rest.status, 202, rest.text);
            assert.equal(stream.status, 200);
            assert.deepEqual(an.json.route, { workflow: route });
            assert.equal(rest.json.workflow, route);
            assert.equal(c.model, `maestro/${route}`);

            for (const [way, h] of [
                ['analyze', an.headers], ['REST', rest.headers],
                ['stream', stream.headers],
                ['auto', Object.fromEntries(response.headers)]])
            {
                assert.equal(h['x-maestro-route'], route, `${way}: route`);
                assert.equal(h['x-maestro-complexity'], complexity,
                             `${way}: complexity`);
            }

            const wf = await waitStatus(m.base,
                stream.headers['x-maestro-workflow-id'], 'complete', 10000);
            assert.equal(wf.workflow, route);
        }
    });

    test('WebSocket: "auto" runs the routed workflow', async () => {
        const ws = await wsOpen(wsUrl(m, '/api/v1/ws/rt'));
        ws.send({ type: 'prompt_submission', prompt: 'a bug again',
                  workflow: 'auto' });
        const ok = await ws.waitMsg((x) => x.type === 'action_result');
        await ws.close();
        assert.equal(ok.ok, true);
        const wf = await waitStatus(m.base, ok.workflow_id, 'complete', 10000);
        assert.equal(wf.workflow, 'coder');
    });

    test('no route at all: a clear error on each way in', async () => {
        const bare = await startMaestro({
            workers: 1, defaultWorkflow: false,
            server: ['location /v1/ { maestro_api; }'],
        });
        try {
            const rest = await api(bare.base, 'POST', '/api/v1/workflows',
                                   { prompt: 'hello', workflow: 'auto' });
            assert.equal(rest.status, 422);
            assert.equal(rest.json.error.code, 'unknown_workflow');
            assert.equal(rest.json.error.message,
                         'found no route: configure maestro_intent_route '
                         + 'or a default workflow');

            const client = new OpenAI({ apiKey: 'x',
                                        baseURL: `${bare.base}/v1`,
                                        maxRetries: 0 });
            await assert.rejects(client.chat.completions.create({
                model: 'auto', messages: [{ role: 'user', content: 'hi' }],
            }), (e) => {
                assert.equal(e.status, 404);
                assert.equal(e.code, 'model_not_found');
                assert.equal(e.error.message, 'auto found no route: configure '
                             + 'maestro_intent_route, maestro_model_tier '
                             + 'or a default workflow');
                return true;
            });

            const an = await api(bare.base, 'POST', '/api/v1/analyze',
                                 { prompt: 'hello' });
            assert.equal(an.status, 200);
            assert.equal(an.json.route, null);
            assert.equal(an.headers['x-maestro-route'], undefined);
            bare.assertCleanLog();
        } finally {
            await bare.stop();
        }
    });
});


describe('routing: nginx -t', () => {
    test('a pattern that does not compile names the intent and offset',
         async () => {
        const r = await nginxT({ http: ['maestro_intent broken "(oops";'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /intent "broken"/);
        assert.match(r.output, /offset/);
    });

    test('a route to an unknown workflow', async () => {
        const r = await nginxT({ http: ['maestro_intent x "y";',
                                        'maestro_intent_route x nowhere;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /no workflow named "nowhere"/);
    });
});
