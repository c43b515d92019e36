/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_cors_origin: an allowed origin's preflight is answered 204
 * before authentication (maestro_auth on, no credential), a disallowed
 * one's 403 cors_forbidden; every answer to an allowed origin carries
 * Access-Control-Allow-Origin and the exposed headers, errors (401, 429,
 * 400) included; a disallowed origin, or none, gets no CORS header;
 * "*" at location level, and a location without the directive, which
 * has none at all.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startMaestro, rawRequest, stopClean } from './lib/harness.mjs';


const ADMIN = 'admin-' + crypto.randomBytes(16).toString('hex');
const APP = 'https://app.example';
const DEV = 'http://localhost:5173';
const EXPOSE = 'RateLimit, RateLimit-Policy, Retry-After, Location';

const CORS_HEADERS = ['access-control-allow-origin',
                      'access-control-allow-methods',
                      'access-control-allow-headers',
                      'access-control-max-age',
                      'access-control-expose-headers',
                      'access-control-allow-credentials'];


function req(m, method, path, headers = {}, body) {
    return rawRequest(m.base, {
        method, path, body: body === undefined ? undefined
                                               : JSON.stringify(body),
        headers: body === undefined ? headers
                                    : { 'Content-Type': 'application/json',
                                        ...headers },
    });
}


function preflight(m, path, origin, method = 'POST') {
    return req(m, 'OPTIONS', path, {
        Origin: origin,
        'Access-Control-Request-Method': method,
        'Access-Control-Request-Headers': 'authorization, content-type',
    });
}


function assertNoCors(r) {
    for (const h of CORS_HEADERS) {
        assert.equal(r.headers[h], undefined, `${h} not sent`);
    }
}


function assertAllowed(r, origin) {
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.equal(r.headers['access-control-expose-headers'], EXPOSE);
    assert.match(r.headers.vary || '', /\bOrigin\b/);
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
}


describe('maestro_cors_origin (maestro_auth on)', () => {
    let m;

    before(async () => {
        process.env.MAESTRO_ADMIN_KEY = ADMIN;
        m = await startMaestro({
            workers: 1,
            http: ['maestro_auth on;',
                   `maestro_cors_origin ${APP};`,
                   `maestro_cors_origin ${DEV.toUpperCase()};`,
                   'maestro_limit_zone name=rl size=1m;'],
            server: ['location /v1/ {',
                     '    maestro_api;',
                     '    maestro_limit zone=rl key=ip rate=1r/m;',
                     '}'],
        });
        delete process.env.MAESTRO_ADMIN_KEY;
    });
    after(() => stopClean(m));

    test('preflight of an allowed origin: 204 before authentication',
         async () => {
        for (const origin of [APP, DEV, 'https://APP.example:443']) {
            const r = await preflight(m, '/api/v1/workflows', origin);
            assert.equal(r.status, 204, origin);
            assert.equal(r.text, '');
            assert.equal(r.headers['access-control-allow-origin'], origin);
            assert.equal(r.headers['access-control-allow-methods'],
                         'GET, POST, DELETE, OPTIONS');
            assert.equal(r.headers['access-control-allow-headers'],
                         'Authorization, Content-Type, Last-Event-ID');
            assert.equal(r.headers['access-control-max-age'], '7200');
            assert.match(r.headers.vary, /\bOrigin\b/);
            assert.equal(r.headers['www-authenticate'], undefined);
            assert.equal(r.headers['access-control-allow-credentials'],
                         undefined);
        }

        /* a DELETE preflight of a workflow URL, and one on /v1 */
        let r = await preflight(m, '/api/v1/workflows/wf_0', APP, 'DELETE');
        assert.equal(r.status, 204);
        r = await preflight(m, '/v1/chat/completions', APP);
        assert.equal(r.status, 204);
        assert.equal(r.headers['access-control-allow-origin'], APP);
    });

    test('preflight of another origin: 403 cors_forbidden, no CORS header',
         async () => {
        for (const origin of ['https://evil.example', 'http://app.example',
                              'https://app.example:8443',
                              'https://app.example.evil', 'null',
                              'https://app.example/']) {
            const r = await preflight(m, '/api/v1/workflows', origin);
            assert.equal(r.status, 403, origin);
            assert.equal(r.json.error.code, 'cors_forbidden');
            assert.match(r.json.error.message, /maestro_cors_origin/);
            assertNoCors(r);
            assert.match(r.headers.vary, /\bOrigin\b/);
        }

        /* in OpenAI's shape on /v1 */
        const r = await preflight(m, '/v1/chat/completions',
                                  'https://evil.example');
        assert.equal(r.status, 403);
        assert.equal(r.json.error.code, 'cors_forbidden');
        assert.equal(r.json.error.type, 'invalid_request_error');
        assertNoCors(r);
    });

    test('an OPTIONS that is no preflight is authenticated', async () => {
        const r = await req(m, 'OPTIONS', '/api/v1/workflows',
                            { Origin: APP });
        assert.equal(r.status, 401);
        assertAllowed(r, APP);
    });

    test('an allowed origin reads errors and answers', async () => {
        /* 401: no credential; the page learns why */
        let r = await req(m, 'GET', '/api/v1/workflows', { Origin: DEV });
        assert.equal(r.status, 401);
        assert.equal(r.json.error.code, 'unauthorized');
        assertAllowed(r, DEV);

        const auth = { Authorization: `Bearer ${ADMIN}`, Origin: APP };

        r = await req(m, 'GET', '/api/v1/workflows', auth);
        assert.equal(r.status, 200);
        assertAllowed(r, APP);

        /* 202 with a Location the page may read */
        r = await req(m, 'POST', '/api/v1/workflows', auth,
                      { prompt: 'hello' });
        assert.equal(r.status, 202);
        assert.ok(r.headers.location);
        assertAllowed(r, APP);

        /* 400 */
        r = await req(m, 'POST', '/api/v1/workflows', auth, { nope: 1 });
        assert.equal(r.status, 400);
        assert.equal(r.json.error.code, 'missing_field');
        assertAllowed(r, APP);

        /* 429 from the limit stage, with Retry-After and RateLimit */
        const body = { model: 'nope', messages: [{ role: 'user',
                                                   content: 'hi' }] };
        const got = [];
        for (let i = 0; i < 2; i++) {
            got.push(await req(m, 'POST', '/v1/chat/completions', auth,
                               body));
        }
        assert.notEqual(got[0].status, 429);
        assert.equal(got[1].status, 429);
        assert.ok(got[1].headers['retry-after']);
        assert.ok(got[1].headers.ratelimit);
        assertAllowed(got[1], APP);
    });

    test('another origin, or none: no CORS header, the answer as is',
         async () => {
        const auth = { Authorization: `Bearer ${ADMIN}` };

        let r = await req(m, 'GET', '/api/v1/workflows',
                          { ...auth, Origin: 'https://evil.example' });
        assert.equal(r.status, 200);
        assertNoCors(r);
        assert.match(r.headers.vary, /\bOrigin\b/);

        r = await req(m, 'GET', '/api/v1/workflows', auth);
        assert.equal(r.status, 200);
        assertNoCors(r);
        assert.match(r.headers.vary, /\bOrigin\b/);

        r = await req(m, 'GET', '/api/v1/workflows', { Origin: 'null' });
        assert.equal(r.status, 401);
        assertNoCors(r);
    });
});


describe('maestro_cors_origin * in a location; none elsewhere', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 1,
            locations: ['        location /api/ {',
                        '            maestro_api;',
                        '            maestro_cors_origin *;',
                        '        }',
                        '        location = /healthz {',
                        '            maestro_api;',
                        '        }'],
        });
    });
    after(() => stopClean(m));

    test('"*": any origin echoed, "null" and garbage not', async () => {
        for (const origin of ['https://any.example', 'http://127.0.0.1:9']) {
            let r = await preflight(m, '/api/v1/workflows', origin);
            assert.equal(r.status, 204);
            assert.equal(r.headers['access-control-allow-origin'], origin);

            r = await req(m, 'GET', '/api/v1/workflows', { Origin: origin });
            assert.equal(r.status, 200);
            assertAllowed(r, origin);
        }

        for (const origin of ['null', 'https://a.example/x', 'javascript:']) {
            const r = await preflight(m, '/api/v1/workflows', origin);
            assert.equal(r.status, 403, origin);
            assertNoCors(r);
        }
    });

    test('a location without the directive: no CORS at all', async () => {
        let r = await req(m, 'GET', '/healthz',
                          { Origin: 'https://any.example' });
        assert.equal(r.status, 200);
        assertNoCors(r);
        assert.equal(r.headers.vary, undefined);

        /* not answered as a preflight: the location's own answer */
        r = await preflight(m, '/healthz', 'https://any.example');
        assert.notEqual(r.status, 204);
        assertNoCors(r);
    });
});
