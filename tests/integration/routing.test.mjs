/*
 * Copyright (C) Maestro authors
 */

/*
 * Intent and complexity routing: POST /api/v1/analyze, workflow "auto",
 * X-Maestro-Route / X-Maestro-Complexity, and nginx -t on bad rules.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaestro, api, nginxT, waitStatus } from './lib/harness.mjs';


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
