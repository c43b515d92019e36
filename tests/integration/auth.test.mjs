/*
 * Copyright (C) Maestro authors
 */

/*
 * Who gets in (maestro_auth on): 401 without a credential, the admin
 * credential from MAESTRO_ADMIN_KEY, virtual API keys (create, list,
 * get, revoke seen by both workers at once, rotate with and without
 * grace), two tenants who see only their own workflows over REST, SSE,
 * WebSocket, the monitor and usage, a key limited to some workflows, JWT
 * bearer tokens (HS256, RS256) and their refusals, and no secret in any
 * log.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import {
    startMaestro, api, stopClean, chain, sleep,
} from './lib/harness.mjs';


const ADMIN = 'admin-' + crypto.randomBytes(16).toString('hex');
const QUICK = { ...chain(['a', 'echo'], ['b', 'echo']), name: 'quick' };

const bearer = (t) => ({ Authorization: `Bearer ${t}` });


/* a new connection each time: nginx spreads them over the workers */
async function fresh(m, method, p, token, body) {
    return api(m.base, method, p, body,
               { ...(token ? bearer(token) : {}), Connection: 'close' });
}


function wsStatus(url, opts) {
    return new Promise((resolve) => {
        const ws = new WebSocket(url, opts.protocols || [],
                                 { headers: opts.headers || {} });
        ws.on('open', () => {
            const proto = ws.protocol;
            ws.close();
            resolve({ status: 101, proto });
        });
        ws.on('unexpected-response', (req, res) => {
            resolve({ status: res.statusCode });
            req.destroy();
        });
        ws.on('error', () => {});
    });
}


describe('API keys and tenants (maestro_auth on, 2 workers)', () => {
    let m;
    const secrets = [ADMIN];
    let alice, bob, narrow, audit;

    before(async () => {
        process.env.MAESTRO_ADMIN_KEY = ADMIN;
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            workflows: { quick: QUICK },
            http: ['maestro_auth on;', 'maestro_audit_log logs/audit.log;'],
        });
        audit = path.join(m.prefix, 'logs/audit.log');
        delete process.env.MAESTRO_ADMIN_KEY;
    });
    after(() => stopClean(m));

    test('no credential: 401 with WWW-Authenticate; /healthz is open', async () => {
        let r = await api(m.base, 'GET', '/api/v1/workflows');
        assert.equal(r.status, 401);
        assert.equal(r.json.error.code, 'unauthorized');
        assert.equal(r.headers['www-authenticate'], 'Bearer realm="maestro"');

        r = await api(m.base, 'GET', '/api/v1/workflows', null,
                      { Authorization: 'Basic eDp5' });
        assert.equal(r.status, 401);

        r = await api(m.base, 'GET', '/api/v1/workflows', null,
                      bearer('mk_0123456789abcdef_' + 'A'.repeat(43)));
        assert.equal(r.status, 401);
        assert.equal(r.json.error.message, 'invalid API key');

        r = await api(m.base, 'GET', '/healthz');
        assert.equal(r.status, 200);
    });

    test('the admin creates keys; the secret is shown once', async () => {
        let r = await fresh(m, 'POST', '/api/v1/keys', ADMIN,
                            { user_id: 'alice', name: 'a', team: 'red' });
        assert.equal(r.status, 201);
        assert.match(r.json.key, /^mk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
        assert.equal(r.headers.location, `/api/v1/keys/${r.json.id}`);
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.equal(r.json.status, 'active');
        assert.equal(r.json.hash, undefined);
        alice = r.json;
        secrets.push(alice.key);

        r = await fresh(m, 'POST', '/api/v1/keys', ADMIN, { user_id: 'bob' });
        bob = r.json;
        secrets.push(bob.key);

        r = await fresh(m, 'POST', '/api/v1/keys', ADMIN,
                        { user_id: 'carol', workflows: ['quick'] });
        narrow = r.json;
        secrets.push(narrow.key);

        r = await fresh(m, 'POST', '/api/v1/keys', ADMIN,
                        { user_id: 'x', scope: 'all' });
        assert.equal(r.status, 400);
        assert.equal(r.json.error.message, 'scope: not a field of a key');

        r = await fresh(m, 'GET', '/api/v1/keys', ADMIN);
        assert.equal(r.status, 200);
        assert.equal(r.json.items.length, 3);
        assert.ok(!r.text.includes(alice.key.slice(20)), 'no secret listed');
        assert.ok(!r.text.includes('hash'), 'no hash listed');

        r = await fresh(m, 'GET', `/api/v1/keys?user_id=bob`, ADMIN);
        assert.deepEqual(r.json.items.map((k) => k.id), [bob.id]);

        r = await fresh(m, 'GET', `/api/v1/keys/${alice.id}`, ADMIN);
        assert.equal(r.json.user_id, 'alice');
        assert.equal(r.json.key, undefined);

        /* a tenant is not the admin */
        r = await fresh(m, 'POST', '/api/v1/keys', alice.key, { user_id: 'z' });
        assert.equal(r.status, 403);
        assert.equal(r.json.error.code, 'forbidden');
        r = await fresh(m, 'GET', '/api/v1/keys/key_0000000000000000', ADMIN);
        assert.equal(r.status, 404);
    });

    test('/me tells who the caller is', async () => {
        const r = await fresh(m, 'GET', '/api/v1/me', alice.key);
        assert.equal(r.status, 200);
        assert.equal(r.json.kind, 'key');
        assert.equal(r.json.user_id, 'alice');
        assert.equal(r.json.team, 'red');
        assert.equal(r.json.key_id, alice.id);
        assert.equal(r.json.key.status, 'active');
    });

    test('two tenants see only their own data', async () => {
        /* the body's user_id does not change a key's user */
        let r = await fresh(m, 'POST', '/api/v1/workflows', alice.key,
                            { prompt: 'mine', workflow: 'quick',
                              user_id: 'bob' });
        assert.equal(r.status, 202);
        const id = r.json.id;
        let wf;
        for (let i = 0; i < 300; i++) {
            wf = (await api(m.base, 'GET', `/api/v1/workflows/${id}`, null,
                            bearer(alice.key))).json;
            if (wf.status === 'complete') {
                break;
            }
            await sleep(50);
        }
        assert.equal(wf.status, 'complete');
        assert.equal(wf.user_id, 'alice');

        for (const p of [`/api/v1/workflows/${id}`,
                         `/api/v1/workflows/${id}/checkpoints`,
                         `/api/v1/workflows/${id}/graph`,
                         `/api/v1/workflows/${id}/events`,
                         '/api/v1/users/alice/usage']) {
            r = await fresh(m, 'GET', p, bob.key);
            assert.equal(r.status, 404, `bob: GET ${p}`);
            r = await fresh(m, 'GET', p, alice.key);
            assert.equal(r.status, 200, `alice: GET ${p}`);
        }

        r = await fresh(m, 'POST', `/api/v1/workflows/${id}/cancel`, bob.key);
        assert.equal(r.status, 404);

        r = await fresh(m, 'GET', '/api/v1/workflows?user_id=alice', bob.key);
        assert.equal(r.status, 200);
        assert.equal(r.json.items.length, 0, 'bob lists none of alice\'s');
        r = await fresh(m, 'GET', '/api/v1/workflows', alice.key);
        assert.ok(r.json.items.some((w) => w.id === id));

        for (const p of ['/api/v1/usage', '/api/v1/agents/echo/logs']) {
            r = await fresh(m, 'GET', p, bob.key);
            assert.equal(r.status, 403, `bob: GET ${p}`);
        }

        /* the admin sees everything */
        r = await fresh(m, 'GET', `/api/v1/workflows/${id}`, ADMIN);
        assert.equal(r.status, 200);
        r = await fresh(m, 'GET', '/api/v1/usage', ADMIN);
        assert.equal(r.status, 200);

        /* a token in the URL is not a credential (it would reach logs) */
        r = await api(m.base, 'GET', `/api/v1/workflows/${id}`
                      + `?access_token=${alice.key}`);
        assert.equal(r.status, 401);

        /* WebSocket: header or subprotocol; another user's session is 404 */
        const wsBase = m.base.replace('http', 'ws');
        let w = await wsStatus(`${wsBase}/api/v1/ws/alice`,
                               { headers: bearer(bob.key) });
        assert.equal(w.status, 404);
        w = await wsStatus(`${wsBase}/api/v1/workflows/${id}/ws`,
                           { headers: bearer(bob.key) });
        assert.equal(w.status, 404);
        w = await wsStatus(`${wsBase}/api/v1/ws/alice`, {});
        assert.equal(w.status, 401);
        w = await wsStatus(`${wsBase}/api/v1/ws/alice`,
                           { protocols: ['maestro',
                                         `maestro.bearer.${alice.key}`] });
        assert.equal(w.status, 101);
        assert.equal(w.proto, 'maestro');
    });

    test('a key limited to some workflows is refused others', async () => {
        let r = await fresh(m, 'POST', '/api/v1/workflows', narrow.key,
                            { prompt: 'x', workflow: 'default' });
        assert.equal(r.status, 403);
        assert.equal(r.json.error.message,
                     'this API key may not use the workflow "default"');
        r = await fresh(m, 'POST', '/api/v1/workflows', narrow.key,
                        { prompt: 'x', workflow: QUICK });
        assert.equal(r.status, 403);
        r = await fresh(m, 'POST', '/api/v1/workflows', narrow.key,
                        { prompt: 'x', workflow: 'quick' });
        assert.equal(r.status, 202);
    });

    test('rotation: with grace both secrets work, without only the new', async () => {
        let r = await fresh(m, 'POST', `/api/v1/keys/${bob.id}/rotate`, ADMIN,
                            { grace_seconds: 60 });
        assert.equal(r.status, 200);
        const second = r.json.key;
        secrets.push(second);
        assert.notEqual(second, bob.key);
        assert.equal(second.slice(0, 20), bob.key.slice(0, 20), 'same id');

        for (const k of [bob.key, second]) {
            r = await fresh(m, 'GET', '/api/v1/me', k);
            assert.equal(r.status, 200);
        }

        r = await fresh(m, 'POST', `/api/v1/keys/${bob.id}/rotate`, ADMIN,
                        { grace_seconds: 0 });
        const third = r.json.key;
        secrets.push(third);
        for (const k of [bob.key, second]) {
            r = await fresh(m, 'GET', '/api/v1/me', k);
            assert.equal(r.status, 401);
        }
        r = await fresh(m, 'GET', '/api/v1/me', third);
        assert.equal(r.status, 200);

        r = await fresh(m, 'POST', `/api/v1/keys/${bob.id}/rotate`, ADMIN,
                        { grace: 1 });
        assert.equal(r.status, 400);
    });

    test('revocation is seen by every worker at once', async () => {
        let r = await fresh(m, 'DELETE', `/api/v1/keys/${alice.id}`, ADMIN);
        assert.equal(r.status, 200);
        assert.equal(r.json.status, 'revoked');

        /* 20 new connections spread over both workers: all refused */
        const all = await Promise.all(Array.from({ length: 20 }, () =>
            fresh(m, 'GET', '/api/v1/me', alice.key)));
        assert.deepEqual([...new Set(all.map((x) => x.status))], [401]);
        assert.equal(all[0].json.error.message, 'the API key was revoked');

        r = await fresh(m, 'DELETE', `/api/v1/keys/${alice.id}`, ADMIN);
        assert.equal(r.status, 409);
        r = await fresh(m, 'GET', `/api/v1/keys/${alice.id}`, ADMIN);
        assert.equal(r.json.status, 'revoked');
        assert.equal(typeof r.json.revoked_at, 'number');
    });

    test('the audit log has one JSON line per event, no secret', async () => {
        const lines = fs.readFileSync(audit, 'utf8').trim().split('\n')
            .map((l) => JSON.parse(l));
        const count = (e) => lines.filter((l) => l.event === e).length;
        assert.equal(count('key_created'), 3);
        assert.equal(count('key_rotated'), 2);
        assert.equal(count('key_revoked'), 1);
        assert.ok(count('auth_failed') >= 20, 'refusals are audited');
        assert.ok(count('admin_read') >= 1, 'the admin read alice\'s');
        const created = lines.find((l) => l.event === 'key_created');
        assert.equal(created.caller, 'admin');
        assert.equal(created.for_user, 'alice');
        assert.equal(created.key, alice.id);
        assert.equal(created.ip, '127.0.0.1');
        assert.equal(created.method, 'POST');
        const failed = lines.find((l) => l.event === 'auth_failed');
        assert.equal(typeof failed.reason, 'string');
        assert.match(failed.time, /^\d{4}-\d\d-\d\dT/);
    });

    test('no secret reaches a log or the store in clear', async () => {
        const files = [m.errorLogPath, path.join(m.prefix, 'logs/access.log'),
                       audit];
        const store = path.join(m.prefix, 'store');
        for (const f of fs.readdirSync(store)) {
            files.push(path.join(store, f));
        }
        for (const f of files) {
            const text = fs.readFileSync(f).toString('latin1');
            for (const s of secrets) {
                /* the ?access_token= test's request line: not honoured */
                if (f.endsWith('.log') && s === alice.key) {
                    continue;
                }
                assert.ok(!text.includes(s.slice(21)),
                          `${path.basename(f)} holds a secret`);
            }
        }
    });
});


/* ---- JWT ------------------------------------------------------------------ */

function b64u(buf) {
    return Buffer.from(buf).toString('base64url');
}

function jwt(header, claims, sign) {
    const input = `${b64u(JSON.stringify(header))}.`
                  + `${b64u(JSON.stringify(claims))}`;
    return `${input}.${b64u(sign(Buffer.from(input)))}`;
}


describe('JWT bearer tokens', () => {
    let m, rsa, pem;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maestro-jwt-'));
    const secret = crypto.randomBytes(32);
    const now = Math.floor(Date.now() / 1000);
    const good = { sub: 'dora', grp: 'blue', iss: 'idp', aud: 'maestro',
                   iat: now, exp: now + 600 };
    const hs = (c, h = {}) => jwt({ alg: 'HS256', ...h }, c,
        (d) => crypto.createHmac('sha256', secret).update(d).digest());
    const rs = (c, h = {}) => jwt({ alg: 'RS256', kid: 'r1', ...h }, c,
        (d) => crypto.sign('sha256', d, rsa.privateKey));

    before(async () => {
        rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
        pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
        fs.writeFileSync(path.join(dir, 'rsa.pem'), pem);
        fs.writeFileSync(path.join(dir, 'hs.key'), secret);
        m = await startMaestro({
            http: ['maestro_auth on;',
                   `maestro_jwt_key file=${dir}/rsa.pem kid=r1;`,
                   `maestro_jwt_secret file=${dir}/hs.key;`,
                   'maestro_jwt_issuer idp;', 'maestro_jwt_audience maestro;',
                   'maestro_jwt_team_claim grp;', 'maestro_jwt_leeway 5s;'],
            server: 'location /v1/ { maestro_api; }',
        });
    });
    after(async () => {
        await stopClean(m);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test('HS256 and RS256 tokens name the user and team', async () => {
        for (const t of [hs(good), rs(good)]) {
            const r = await api(m.base, 'GET', '/api/v1/me', null, bearer(t));
            assert.equal(r.status, 200, r.text);
            assert.deepEqual([r.json.kind, r.json.user_id, r.json.team],
                             ['jwt', 'dora', 'blue']);
        }
    });

    test('refusals', async () => {
        const cases = [
            ['expired', rs({ ...good, exp: now - 10 }), 'the token has expired'],
            ['not yet valid', rs({ ...good, nbf: now + 60 }),
             'the token is not valid yet'],
            ['wrong aud', rs({ ...good, aud: 'other' }), 'wrong audience'],
            ['wrong iss', hs({ ...good, iss: 'evil' }), 'wrong issuer'],
            ['unknown kid', rs(good, { kid: 'r2' }),
             'no RS256 key with this kid'],
            ['alg none', `${b64u('{"alg":"none"}')}.${b64u(JSON.stringify(good))}.`,
             'invalid credential'],
            ['HS/RS confusion', jwt({ alg: 'HS256', kid: 'r1' }, good,
                (d) => crypto.createHmac('sha256', pem).update(d).digest()),
             'no HS256 key with this kid'],
            ['bad signature', rs(good).slice(0, -4) + 'AAAA', 'bad signature'],
        ];
        for (const [name, tok, why] of cases) {
            const r = await api(m.base, 'GET', '/api/v1/me', null, bearer(tok));
            assert.equal(r.status, 401, name);
            assert.equal(r.json.error.message, why, name);
        }

        /* /v1 answers in OpenAI's shape */
        const r = await api(m.base, 'GET', '/v1/models', null,
                            bearer(rs({ ...good, exp: now - 10 })));
        assert.equal(r.status, 401);
        assert.equal(r.json.error.code, 'invalid_api_key');
    });
});
