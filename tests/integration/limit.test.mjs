/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_limit: a burst across 2 workers is exact, a steady rate within
 * 1 %, a refusal is 429 with Retry-After and the RateLimit fields, a
 * reload keeps the counts; tokens= reserves before the provider and
 * settles after; streams= holds a slot to the last byte; per-user and
 * per-address rules count apart, and a refusal by one gives back what
 * the others took; a full zone forgets its oldest keys.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import {
    startMaestro, startFakeOpenAI, api, openStream, stopClean, sleep,
} from './lib/harness.mjs';

/* $maestro_limit_status in an access log of its own */
const LIMIT_LOG = '    log_format lim "$request_method $uri $status '
    + '$maestro_limit_status";\n    access_log logs/limit.log lim;';

async function statusLog(m) {
    const file = path.join(m.prefix, 'logs/limit.log');
    await new Promise((r) => setTimeout(r, 200));
    return fs.readFileSync(file, 'utf8').split('\n')
        .filter((l) => l.startsWith('POST /api/v1/workflows '))
        .map((l) => l.slice('POST /api/v1/workflows '.length));
}


describe('maestro_limit', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2,
            http: 'maestro_limit_zone name=rl size=1m;\n'
                + '    maestro_limit zone=rl key=ip+endpoint rate=1r/m '
                + 'burst=4;\n' + LIMIT_LOG,
            server: ['location /v1/ { maestro_api; }'],
        });
    });

    after(async () => { await m?.stop(); });

    test('burst=4: exactly 5 admitted, then 429 with the fields', async () => {
        const got = [];
        for (let i = 0; i < 8; i++) {
            got.push(await api(m.base, 'POST', '/api/v1/workflows',
                               { prompt: 'hi' }));
        }
        assert.deepEqual(got.map((r) => r.status),
                         [202, 202, 202, 202, 202, 429, 429, 429]);

        assert.equal(got[0].headers['ratelimit-policy'], '"default";q=5;w=60');
        assert.equal(got[0].headers.ratelimit, '"default";r=4;t=60');
        assert.equal(got[4].headers.ratelimit, '"default";r=0;t=300');

        const no = got[5];
        assert.equal(no.json.error.code, 'rate_limited');
        assert.equal(no.headers['retry-after'], '60');
        assert.equal(no.headers.ratelimit, '"default";r=0;t=300');

        assert.deepEqual(await statusLog(m), [
            ...Array(5).fill('202 PASSED'), ...Array(3).fill('429 REJECTED'),
        ]);
    });

    test('another endpoint class has its own bucket', async () => {
        const r = await api(m.base, 'GET', '/api/v1/workflows');
        assert.equal(r.status, 200);
    });

    test('/v1: 429 in OpenAI\'s shape', async () => {
        const body = { model: 'nope', messages: [{ role: 'user',
                                                   content: 'hi' }] };
        const got = [];
        for (let i = 0; i < 6; i++) {
            got.push(await api(m.base, 'POST', '/v1/chat/completions', body));
        }
        assert.notEqual(got[4].status, 429);
        const no = got[5];
        assert.equal(no.status, 429);
        assert.equal(no.json.error.code, 'rate_limit_exceeded');
        assert.equal(no.json.error.type, 'requests');
        assert.equal(no.json.error.param, null);
        assert.equal(no.headers['retry-after'], '60');
    });

    test('a reload keeps the counts', async () => {
        await m.reload();
        const r = await api(m.base, 'POST', '/api/v1/workflows',
                            { prompt: 'hi' });
        assert.equal(r.status, 429);
    });
});


describe('maestro_limit_dry_run on', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2,
            http: 'maestro_limit_zone name=rl size=1m;\n'
                + '    maestro_limit zone=rl key=user+endpoint rate=1r/m;\n'
                + '    maestro_limit_dry_run on;\n'
                + '    maestro_limit_log_level warn;\n' + LIMIT_LOG,
        });
    });

    after(async () => { await m?.stop(); });

    test('a refusal is logged, not made', async () => {
        const got = [];
        for (let i = 0; i < 3; i++) {
            got.push(await api(m.base, 'POST', '/api/v1/workflows',
                               { prompt: 'hi' }));
        }
        assert.deepEqual(got.map((r) => r.status), [202, 202, 202]);
        assert.equal(got[2].headers['retry-after'], undefined);
        assert.equal(got[2].headers.ratelimit, '"default";r=0;t=60');

        const log = fs.readFileSync(m.errorLogPath, 'utf8');
        const lines = log.split('\n').filter((l) => l.includes('dry run'));
        assert.equal(lines.length, 2, log);
        assert.match(lines[0], /\[warn\].*local caller would be refused/);

        assert.deepEqual(await statusLog(m), ['202 PASSED',
            '202 REJECTED_DRY_RUN', '202 REJECTED_DRY_RUN']);
    });
});


describe('maestro_limit: a steady rate across 2 workers', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            http: 'maestro_limit_zone name=rl size=1m;\n'
                + '    maestro_limit zone=rl key=endpoint rate=100r/s '
                + 'burst=100;',
        });
    });

    after(() => stopClean(m));

    /* burst=100 keeps the cells that fall between two clients' requests
       or in a stall of a busy machine (without one a cell nobody asks
       for at once is lost, as with limit_req), so what is admitted is
       the rate, not the arrivals */
    test('100r/s for 5 s: admitted within 1 % of the rate', async () => {
        let admitted = 0;
        let total = 0;
        let first = 0;
        let last = 0;
        const end = Date.now() + 5000;

        /* 8 clients as fast as they go, new connections: both workers */
        await Promise.all(Array.from({ length: 8 }, async () => {
            while (Date.now() < end) {
                const t = Date.now();
                const r = await api(m.base, 'GET', '/healthz', null,
                                    { Connection: 'close' });
                total++;
                if (r.status === 200) {
                    admitted++;
                    first = first || t;
                }
                last = t;
            }
        }));

        /* GCRA: the burst and the first at once, then one every 10 ms */
        const expected = 101 + (last - first) / 10;
        const off = Math.abs(admitted - expected) / expected;
        assert.ok(off <= 0.01, `${admitted} of ${total} admitted, `
                  + `${expected} expected (${(off * 100).toFixed(2)} %)`);
    });
});


describe('maestro_limit tokens= and streams=', () => {
    let m, llm;

    before(async () => {
        llm = await startFakeOpenAI();
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            server: ['location /v1/ { maestro_api; }'],
            http: [
                'maestro_limit_zone name=q size=1m;',
                'maestro_limit zone=q key=ip tokens=60/m;',
                'maestro_limit zone=q key=ip streams=2;',
                `maestro_llm_provider ${llm.url} name=fake model=fake-a `
                    + 'retries=0 timeout=5s;',
            ],
        });
    });

    after(async () => {
        await stopClean(m);
        await llm?.stop();
    });

    const chat = (maxTokens) => api(m.base, 'POST', '/v1/chat/completions', {
        model: 'fake-a', max_tokens: maxTokens,
        messages: [{ role: 'user', content: 'hi there' }],
    }, { Connection: 'close' });

    test('tokens: the estimate is reserved before, the usage settled after',
         async () => {
        /* 8 bytes: 2 input tokens + 40 reserved; it uses far fewer */
        let r = await chat(40);
        assert.equal(r.status, 200, r.text);
        const used = r.json.usage.total_tokens;
        assert.ok(used < 20, `used ${used}`);

        /* 60 - used left: an estimate over it is refused before the
           provider is asked, though its real usage would have fitted */
        const before = (await llm.stats()).requests;
        r = await chat(60 - used);
        assert.equal(r.status, 429, r.text);
        assert.equal(r.json.error.code, 'rate_limit_exceeded');
        assert.match(r.json.error.message, /too many tokens/);
        assert.equal((await llm.stats()).requests, before);

        /* one that fits */
        r = await chat(60 - used - 2 - 2);
        assert.equal(r.status, 200, r.text);
    });

    test('streams=2: a third subscription waits for one to close; other '
         + 'requests go on', async () => {
        const a = await openStream(m.base, '/api/v1/events');
        const b = await openStream(m.base, '/api/v1/events');
        assert.equal(a.status, 200);
        assert.equal(b.status, 200);

        const c = await openStream(m.base, '/api/v1/events');
        assert.equal(c.status, 429);
        c.close();

        assert.equal((await api(m.base, 'GET', '/api/v1/workflows')).status,
                     200);

        a.close();
        let d;
        for (let i = 0; i < 50; i++) {
            d = await openStream(m.base, '/api/v1/events');
            if (d.status === 200) {
                break;
            }
            d.close();
            await sleep(20);
        }
        assert.equal(d.status, 200);
        d.close();
        b.close();
    });
});


describe('maestro_limit key=model', () => {
    let m, llm;

    before(async () => {
        llm = await startFakeOpenAI();
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            server: ['location /v1/ { maestro_api; }'],
            http: [
                'maestro_limit_zone name=mo size=1m;',
                'maestro_limit zone=mo key=model rate=1r/m burst=1;',
                `maestro_llm_provider ${llm.url} name=a model=fake-a `
                    + 'retries=0 timeout=5s;',
                `maestro_llm_provider ${llm.url} name=b model=fake-b `
                    + 'retries=0 timeout=5s;',
            ],
        });
    });

    after(async () => {
        await stopClean(m);
        await llm?.stop();
    });

    const chat = (model) => api(m.base, 'POST', '/v1/chat/completions', {
        model, messages: [{ role: 'user', content: 'hi' }],
    }, { Connection: 'close' });

    test('each model its own count, known after the body; the rest is '
         + 'not counted', async () => {
        const a = [];
        for (let i = 0; i < 3; i++) {
            a.push((await chat('fake-a')).status);
        }
        assert.deepEqual(a, [200, 200, 429]);
        assert.equal((await chat('fake-b')).status, 200);

        for (let i = 0; i < 5; i++) {
            assert.equal((await api(m.base, 'GET', '/api/v1/workflows'))
                .status, 200);
        }
    });
});


describe('maestro_limit per user and per address (auth on)', () => {
    const ADMIN = 'admin-' + crypto.randomBytes(16).toString('hex');
    let m;
    const keys = {};

    before(async () => {
        process.env.MAESTRO_ADMIN_KEY = ADMIN;
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            http: ['maestro_auth on;', 'maestro_limit_zone name=u size=1m;'],
            /* the submissions only: the key creations are not limited */
            server: ['location = /api/v1/workflows { maestro_api; '
                     + 'maestro_limit zone=u key=user rate=1r/m burst=1; '
                     + 'maestro_limit zone=u key=ip rate=1r/m burst=4; }'],
        });
        delete process.env.MAESTRO_ADMIN_KEY;
        for (const u of ['alice', 'bob', 'carol']) {
            const r = await api(m.base, 'POST', '/api/v1/keys',
                                { user_id: u },
                                { Authorization: `Bearer ${ADMIN}` });
            keys[u] = r.json.key;
        }
    });

    after(() => stopClean(m));

    const get = (u) => api(m.base, 'POST', '/api/v1/workflows',
                           { prompt: 'hi' },
                           { Authorization: `Bearer ${keys[u]}`,
                             Connection: 'close' });

    test('each user has 2, the address 5 for all; a refusal takes nothing',
         async () => {
        const seq = [];
        for (const u of ['alice', 'alice', 'alice', 'bob', 'bob', 'carol',
                         'carol']) {
            seq.push((await get(u)).status);
        }
        /* alice's third is her own limit (the address is not charged);
           carol's second is the address's */
        assert.deepEqual(seq, [202, 202, 429, 202, 202, 202, 429]);
    });
});


describe('maestro_limit: the realip address, a full zone', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2,
            http: 'maestro_limit_zone name=tiny size=32k;\n'
                + '    maestro_limit zone=tiny key=ip rate=1r/m;\n'
                + '    set_real_ip_from 127.0.0.1;\n'
                + '    real_ip_header X-Forwarded-For;',
        });
    });

    after(() => stopClean(m));

    const from = (ip) => api(m.base, 'GET', '/healthz', null,
                             { 'X-Forwarded-For': ip });

    test('each client address as realip sets it; 2000 of them in 32k: the '
         + 'oldest are forgotten, the newest kept, no error', async () => {
        const ip = (i) => `10.0.${i >> 8}.${i & 255}`;
        for (let i = 0; i < 2000; i++) {
            assert.equal((await from(ip(i))).status, 200, ip(i));
        }
        assert.equal((await from(ip(1999))).status, 429);
        assert.equal((await from(ip(0))).status, 200);
        m.assertCleanLog();
    });
});
