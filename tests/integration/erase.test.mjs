/*
 * Copyright (C) Maestro authors
 */

/*
 * Erasure on request (maestro_auth on, 2 workers): DELETE
 * /api/v1/users/{id} takes a user's workflows, usage and keys and leaves
 * the others'; DELETE /api/v1/keys/{id}?purge=true takes what a key
 * made; a running workflow refuses the erasure (409) until it is
 * cancelled; only the admin may; the audit log says who erased what.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
    startMaestro, api, stopClean, chain, sleep,
} from './lib/harness.mjs';


const ADMIN = 'admin-' + crypto.randomBytes(16).toString('hex');
const ECHO = chain(['a', 'echo'], ['b', 'echo']);

const as = (t) => ({ Authorization: `Bearer ${t}`, Connection: 'close' });


describe('erasure of a user\'s or a key\'s data', () => {
    let m, audit;
    const key = {};

    const call = (who, method, p, body) =>
        api(m.base, method, p, body, as(who === 'admin' ? ADMIN : key[who]));

    async function finished(who, body) {
        const r = await call(who, 'POST', '/api/v1/workflows', body);
        assert.equal(r.status, 202, r.text);
        for (let i = 0; i < 200; i++) {
            const w = await call(who, 'GET', `/api/v1/workflows/${r.json.id}`);
            if (['complete', 'failed', 'cancelled'].includes(w.json.status)) {
                return w.json;
            }
            await sleep(50);
        }
        throw new Error(`${r.json.id} did not finish`);
    }

    before(async () => {
        process.env.MAESTRO_ADMIN_KEY = ADMIN;
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            http: ['maestro_auth on;', 'maestro_audit_log logs/audit.log;'],
        });
        delete process.env.MAESTRO_ADMIN_KEY;
        audit = path.join(m.prefix, 'logs/audit.log');

        for (const u of ['alice', 'bob', 'carol']) {
            const r = await call('admin', 'POST', '/api/v1/keys',
                                 { user_id: u });
            key[u] = r.json.key;
            key[`${u}_id`] = r.json.id;
        }
    });

    after(() => stopClean(m));

    test('only the admin may erase', async () => {
        const r = await call('bob', 'DELETE', '/api/v1/users/alice');
        assert.equal(r.status, 403);
        assert.equal(r.json.error.code, 'forbidden');
    });

    test('a user: their workflows, usage and keys go; others\' stay',
         async () => {
        const a1 = await finished('alice', { prompt: 'one', workflow: ECHO });
        const a2 = await finished('alice', { prompt: 'two', workflow: ECHO });
        const b1 = await finished('bob', { prompt: 'three', workflow: ECHO });

        let r = await call('admin', 'DELETE', '/api/v1/users/alice');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { erased: { workflows: 2, keys: 1 } });

        for (const w of [a1, a2]) {
            r = await call('admin', 'GET', `/api/v1/workflows/${w.id}`);
            assert.equal(r.status, 404);
        }
        r = await call('admin', 'GET', `/api/v1/workflows/${b1.id}`);
        assert.equal(r.status, 200);

        /* alice's key is gone on every worker, bob's works */
        for (let i = 0; i < 4; i++) {
            assert.equal((await call('alice', 'GET', '/api/v1/me')).status,
                         401);
            assert.equal((await call('bob', 'GET', '/api/v1/me')).status, 200);
        }

        r = await call('admin', 'GET', `/api/v1/keys/${key.alice_id}`);
        assert.equal(r.status, 404);

        r = await call('admin', 'GET', '/api/v1/workflows?user_id=alice');
        assert.deepEqual(r.json.items, []);

        r = await call('admin', 'GET', '/api/v1/users/alice/usage');
        assert.equal(r.json.total, 0);

        const lines = fs.readFileSync(audit, 'utf8').trim().split('\n')
            .map((l) => JSON.parse(l)).filter((l) => l.event === 'data_erased');
        assert.equal(lines.length, 1);
        assert.equal(lines[0].user_id, 'alice');
        assert.equal(lines[0].workflows, 2);
        assert.equal(lines[0].caller, 'admin');

        /* nothing of alice's prompts is left in a record */
        r = await call('admin', 'DELETE', '/api/v1/users/alice');
        assert.deepEqual(r.json, { erased: { workflows: 0, keys: 0 } });
    });

    test('a running workflow refuses the erasure until it is cancelled',
         async () => {
        const s = await call('carol', 'POST', '/api/v1/workflows',
                             { prompt: 'slow',
                               workflow: chain(['s', 'sleep', { ms: 20000 }]) });
        assert.equal(s.status, 202);
        const done = await finished('carol', { prompt: 'quick',
                                               workflow: ECHO });

        let r = await call('admin', 'DELETE', '/api/v1/users/carol');
        assert.equal(r.status, 409);
        assert.equal(r.json.error.code, 'conflict');
        assert.match(r.json.error.message, new RegExp(s.json.id));
        /* a count, then the words: "1 workflow is", not "1z workflow" */
        assert.match(r.json.error.message, /^1 workflow is still queued/);

        /* nothing was erased */
        r = await call('admin', 'GET', `/api/v1/workflows/${done.id}`);
        assert.equal(r.status, 200);

        r = await call('carol', 'POST',
                       `/api/v1/workflows/${s.json.id}/cancel`, {});
        assert.ok([200, 202].includes(r.status), r.text);
        for (let i = 0; i < 100; i++) {
            r = await call('admin', 'DELETE', '/api/v1/users/carol');
            if (r.status !== 409) {
                break;
            }
            await sleep(50);
        }
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { erased: { workflows: 2, keys: 1 } });
    });

    test('a key: what it submitted goes, its user\'s other data stays',
         async () => {
        const other = (await call('admin', 'POST', '/api/v1/keys',
                                  { user_id: 'bob' })).json;
        const w = await finished('bob', { prompt: 'by the first key',
                                          workflow: ECHO });

        let r = await api(m.base, 'DELETE',
                          `/api/v1/keys/${key.bob_id}?purge=true`, null,
                          as(ADMIN));
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { erased: { workflows: 2, keys: 1 } });

        r = await call('admin', 'GET', `/api/v1/workflows/${w.id}`);
        assert.equal(r.status, 404);
        assert.equal((await call('bob', 'GET', '/api/v1/me')).status, 401);

        r = await api(m.base, 'GET', '/api/v1/me', null, as(other.key));
        assert.equal(r.status, 200);

        r = await api(m.base, 'DELETE',
                      `/api/v1/keys/${key.bob_id}?purge=true`, null,
                      as(ADMIN));
        assert.equal(r.status, 404);
        assert.equal(r.json.error.code, 'not_found');
    });
});
