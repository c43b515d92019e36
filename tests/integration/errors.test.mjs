/*
 * Copyright (C) Maestro authors
 */

/*
 * Bad input of every kind gets the documented status and error code, as
 * JSON, and never crashes a worker or touches stored workflows.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, api, rawRequest, submit, getWorkflow, waitStatus, chain,
} from './lib/harness.mjs';


const ECHO = chain(['a', 'echo'], ['b', 'echo']);
const UNKNOWN_ID = 'wf_0123456789abcdef0123';


function assertError(r, status, code, what) {
    assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
    assert.match(String(r.headers['content-type']), /^application\/json/,
                 `${what}: content-type`);
    assert.ok(r.json && r.json.error, `${what}: error object: ${r.text}`);
    assert.equal(r.json.error.code, code, `${what}: code`);
    assert.equal(typeof r.json.error.message, 'string');
    assert.ok(r.json.error.message.length > 0, `${what}: message`);
    return r.json.error;
}

const post = (m, body, headers) =>
    api(m.base, 'POST', '/api/v1/workflows', body, headers);


describe('error handling', () => {
    let m;
    let workers;
    const kept = [];

    before(async () => {
        m = await startMaestro({ workers: 2, http: 'maestro_queue_size 64;' });
        workers = m.workerPids().sort();
        for (let i = 0; i < 2; i++) {
            const w = await submit(m.base, { prompt: `keep ${i}`,
                                             workflow: ECHO,
                                             user_id: 'u-errors' });
            kept.push(await waitStatus(m.base, w.id, 'complete', 15000));
        }
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

    test('malformed JSON -> 400 invalid_json', async () => {
        for (const body of ['{"prompt": ', '{prompt: "x"}', '{"prompt":"x",}',
                            'nope', '{"prompt":"x"} trailing']) {
            assertError(await post(m, body), 400, 'invalid_json', body);
        }
    });

    test('JSON nested deeper than 64 levels -> 400 invalid_json',
         async () => {
        const at = (n) => '{"prompt":"x","context":' + '['.repeat(n - 1)
            + ']'.repeat(n - 1) + '}';
        const e = assertError(await post(m, at(65)), 400, 'invalid_json',
                              'deep');
        assert.equal(e.message, 'JSON nested deeper than 64 levels');

        /* 64 parses: the refusal is the context's shape, not the depth */
        const r = await post(m, at(64));
        assert.equal(r.status, 400);
        assert.notEqual(r.json.error.message,
                        'JSON nested deeper than 64 levels');
    });

    test('empty body -> 400 invalid_json', async () => {
        const r = await rawRequest(m.base, {
            method: 'POST', path: '/api/v1/workflows',
            headers: { 'Content-Type': 'application/json',
                       'Content-Length': '0' },
        });
        const e = assertError(r, 400, 'invalid_json', 'empty body');
        assert.equal(e.message, 'empty body');
    });

    test('JSON that is not an object -> 400 invalid_json', async () => {
        /* jansson takes an object or an array at the top, nothing else */
        const top = (col, near) => `line 1 column ${col}: '[' or '{' `
            + `expected near '${near}'`;
        for (const [body, message] of [
            ['[1,2]', 'body must be a JSON object'],
            ['"a prompt"', top(10, '"a prompt"')],
            ['42', top(2, '42')],
            ['null', top(4, 'null')],
            ['true', top(4, 'true')],
        ]) {
            const e = assertError(await post(m, body), 400, 'invalid_json',
                                  body);
            assert.equal(e.message, message, body);
        }
    });

    test('missing prompt -> 400 missing_field naming it', async () => {
        const e = assertError(await post(m, {}), 400, 'missing_field', '{}');
        assert.match(e.message, /prompt/);
        assertError(await post(m, { user_id: 'x' }), 400, 'missing_field',
                    'no prompt');
    });

    test('empty or non-string prompt -> 400 invalid_field', async () => {
        for (const prompt of ['', 42, true, [], {}, ['x']]) {
            const e = assertError(await post(m, { prompt }), 400,
                                  'invalid_field', JSON.stringify(prompt));
            assert.match(e.message, /prompt/);
        }
    });

    test('wrong types of optional fields -> 400 invalid_field', async () => {
        const cases = [
            { prompt: 'x', user_id: 5 },
            { prompt: 'x', user_id: {} },
            { prompt: 'x', workflow: 5 },
            { prompt: 'x', workflow: [] },
            { prompt: 'x', context: 5 },
            { prompt: 'x', context: [{ name: 1, content: 'c' }] },
            { prompt: 'x', context: [{ name: 'n', content: 7 }] },
            { prompt: 'x', context: [5] },
            { prompt: 'x', context: {} },
        ];
        for (const body of cases) {
            assertError(await post(m, body), 400, 'invalid_field',
                        JSON.stringify(body));
        }
    });

    test('bad UTF-8 -> 400 invalid_utf8', async () => {
        const body = Buffer.concat([Buffer.from('{"prompt":"bad '),
                                    Buffer.from([0xff, 0xfe]),
                                    Buffer.from('"}')]);
        assertError(await post(m, body), 400, 'invalid_utf8', 'ff fe');

        /* overlong encoding of "/" and a lone surrogate half */
        const overlong = Buffer.concat([Buffer.from('{"prompt":"x'),
                                        Buffer.from([0xc0, 0xaf]),
                                        Buffer.from('"}')]);
        assertError(await post(m, overlong), 400, 'invalid_utf8', 'c0 af');
        const surrogate = Buffer.concat([Buffer.from('{"prompt":"x'),
                                         Buffer.from([0xed, 0xa0, 0x80]),
                                         Buffer.from('"}')]);
        assertError(await post(m, surrogate), 400, 'invalid_utf8',
                    'ed a0 80');
    });

    test('wrong Content-Type -> 415 unsupported_media_type', async () => {
        const body = JSON.stringify({ prompt: 'x', workflow: ECHO });
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded',
                          'application/jsonx', 'multipart/form-data']) {
            assertError(await post(m, body, { 'Content-Type': ct }), 415,
                        'unsupported_media_type', ct);
        }
        const r = await rawRequest(m.base, {
            method: 'POST', path: '/api/v1/workflows', body,
        });
        assertError(r, 415, 'unsupported_media_type', 'no Content-Type');

        /* a charset parameter is allowed, any case */
        const ok = await post(m, body, {
            'Content-Type': 'Application/JSON; charset=utf-8',
        });
        assert.equal(ok.status, 202, ok.text);
    });

    test('body over maestro_max_body -> 413 (Content-Length)', async () => {
        const big = Buffer.alloc(2 * 1024 * 1024, 'a');
        const body = Buffer.concat([Buffer.from('{"prompt":"'), big,
                                    Buffer.from('"}')]);
        /* repeated: a refusal that read on after answering was reset
           by the close in about one try of 40 */
        for (let i = 0; i < 40; i++) {
            const r = await rawRequest(m.base, {
                method: 'POST', path: '/api/v1/workflows', body,
                headers: { 'Content-Type': 'application/json' },
            });
            const e = assertError(r, 413, 'body_too_large',
                                  `Content-Length 2 MiB, try ${i}`);
            /* the limit as a plain number: no format letter left over */
            assert.match(e.message,
                         /^body is larger than 1048576 bytes \(maestro_max_body\)$/);
        }
    });

    test('body over maestro_max_body -> 413 (chunked)', async () => {
        const big = Buffer.alloc(2 * 1024 * 1024, 'a');
        const body = Buffer.concat([Buffer.from('{"prompt":"'), big,
                                    Buffer.from('"}')]);
        const r = await rawRequest(m.base, {
            method: 'POST', path: '/api/v1/workflows', body, chunked: true,
            headers: { 'Content-Type': 'application/json' },
        });
        const e = assertError(r, 413, 'body_too_large', 'chunked 2 MiB');
        assert.match(e.message,
                     /^body is larger than 1048576 bytes \(maestro_max_body\)$/);
    });

    test('a body just under the limit is accepted', async () => {
        const r = await post(m, { prompt: 'p'.repeat(900 * 1024),
                                  workflow: chain(['n', 'noop']) });
        assert.equal(r.status, 202, r.text.slice(0, 300));
    });

    test('unknown workflow name -> 422 unknown_workflow', async () => {
        const e = assertError(await post(m, { prompt: 'x',
                                              workflow: 'no_such_flow' }),
                              422, 'unknown_workflow', 'name');
        assert.match(e.message, /no_such_flow/);
    });

    test('invalid inline graphs -> 422 invalid_graph', async () => {
        let e = assertError(await post(m, {
            prompt: 'x', workflow: chain(['a', 'echo'], ['b', 'ghost_agent']),
        }), 422, 'invalid_graph', 'unknown agent');
        assert.match(e.message, /ghost_agent/);

        e = assertError(await post(m, {
            prompt: 'x',
            workflow: {
                name: 'loop', entry: 'a',
                nodes: { a: { agent: 'echo' }, b: { agent: 'echo' } },
                edges: [{ from: 'a', to: 'b' }, { from: 'b', to: 'a' }],
            },
        }), 422, 'invalid_graph', 'cycle');
        assert.match(e.message, /cycle with no exit/);

        e = assertError(await post(m, {
            prompt: 'x',
            workflow: { name: 'noentry', entry: 'zz',
                        nodes: { a: { agent: 'echo' } }, edges: [] },
        }), 422, 'invalid_graph', 'missing entry');
        assert.match(e.message, /zz/);

        e = assertError(await post(m, {
            prompt: 'x',
            workflow: { name: 'badedge', entry: 'a',
                        nodes: { a: { agent: 'echo' } },
                        edges: [{ from: 'a', to: 'nowhere' }] },
        }), 422, 'invalid_graph', 'edge to unknown node');
        assert.match(e.message, /nowhere/);

        assertError(await post(m, {
            prompt: 'x',
            workflow: { name: 'badre', entry: 'a',
                        nodes: { a: { agent: 'echo' }, b: { agent: 'echo' } },
                        edges: [{ from: 'a', to: 'b',
                                  when: { path: 'x', matches: '([' } },
                                { from: 'a', to: '$end', else: true }] },
        }), 422, 'invalid_graph', 'bad regex');

        assertError(await post(m, { prompt: 'x', workflow: {} }), 422,
                    'invalid_graph', 'empty graph');
    });

    test('unknown and malformed ids -> 404 not_found', async () => {
        for (const id of [UNKNOWN_ID, 'abc', 'wf_XYZ', 'wf_0123',
                          'wf_0123456789abcdef01234', '%2e%2e%2fetc']) {
            assertError(await api(m.base, 'GET', `/api/v1/workflows/${id}`),
                        404, 'not_found', `GET ${id}`);
        }
        assertError(await api(m.base, 'GET',
                              `/api/v1/workflows/${UNKNOWN_ID}/events`),
                    404, 'not_found', 'events');
        assertError(await api(m.base, 'GET',
                              `/api/v1/workflows/${UNKNOWN_ID}/checkpoints`),
                    404, 'not_found', 'checkpoints');
        assertError(await api(m.base, 'POST',
                              `/api/v1/workflows/${UNKNOWN_ID}/cancel`),
                    404, 'not_found', 'cancel');
        assertError(await api(m.base, 'GET', '/api/v1/workflows/abc/events'),
                    404, 'not_found', 'events of malformed id');
    });

    test('wrong method -> 405 method_not_allowed with Allow', async () => {
        const id = kept[0].id;
        const cases = [
            ['DELETE', '/api/v1/workflows', ['GET', 'POST']],
            ['PUT', `/api/v1/workflows/${id}`, ['GET', 'DELETE']],
            ['PATCH', `/api/v1/workflows/${id}`, ['GET', 'DELETE']],
            ['GET', `/api/v1/workflows/${id}/cancel`, ['POST']],
            ['POST', `/api/v1/workflows/${id}/checkpoints`, ['GET']],
            ['POST', `/api/v1/workflows/${id}/events`, ['GET']],
            ['POST', '/api/v1/agents', ['GET']],
            ['GET', '/api/v1/stream/workflow', ['POST']],
            ['POST', '/healthz', ['GET']],
        ];
        for (const [method, p, allow] of cases) {
            const r = await api(m.base, method, p);
            assertError(r, 405, 'method_not_allowed', `${method} ${p}`);
            assert.ok(r.headers.allow, `${method} ${p}: Allow header`);
            const got = r.headers.allow.split(/\s*,\s*/).filter((x) => x);
            for (const a of allow) {
                assert.ok(got.includes(a), `${method} ${p}: Allow ${got}`);
            }
            assert.ok(!got.includes(method), `${method} ${p}: Allow ${got}`);
        }
    });

    test('unknown paths -> 404 not_found', async () => {
        for (const p of ['/api/v1/nope', '/api/v1/', '/api/v1',
                         '/api/v2/workflows', '/api/v1/workflowsx',
                         '/api/v1/agents/echo/nope',
                         `/api/v1/workflows/${kept[0].id}/nope`]) {
            assertError(await api(m.base, 'GET', p), 404, 'not_found', p);
        }
    });

    test('after all that: same workers, workflows intact, still serving',
         async () => {
        assert.deepEqual(m.workerPids().sort(), workers,
                         'no worker died or was replaced');
        for (const k of kept) {
            assert.deepEqual(await getWorkflow(m.base, k.id), k,
                             `${k.id} unchanged`);
        }
        const r = await api(m.base, 'GET',
                            '/api/v1/workflows?user_id=u-errors');
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.items.map((i) => i.id).sort(),
                         kept.map((k) => k.id).sort());

        const w = await submit(m.base, { prompt: 'still alive',
                                         workflow: ECHO });
        const wf = await waitStatus(m.base, w.id, 'complete', 15000);
        assert.equal(wf.status, 'complete');
        assert.equal((await api(m.base, 'GET', '/healthz')).status, 200);
    });
});
