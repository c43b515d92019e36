/*
 * Copyright (C) Maestro authors
 */

/*
 * How much (maestro_auth on, 2 workers): an API key's own limits from its
 * record (rpm exact across workers and kept over a reload; max_parallel
 * holding a slot to a stream's last byte; tpm reserved before the
 * provider and settled to the real usage, with 50 concurrent streams),
 * its budget (insufficient_quota), a workflow's model calls counted
 * against the key that submitted it, and GET /api/v1/me showing it all.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import {
    startMaestro, startFakeOpenAI, api, openStream, stopClean, chain, sleep,
} from './lib/harness.mjs';


const ADMIN = 'admin-' + crypto.randomBytes(16).toString('hex');

const bearer = (t) => ({ Authorization: `Bearer ${t}` });


/* a new connection each time: nginx spreads them over the workers */
function fresh(m, method, p, token, body) {
    return api(m.base, method, p, body,
               { ...(token ? bearer(token) : {}), Connection: 'close' });
}


/* a streamed /v1 chat completion: its status and the usage it reports */
async function streamChat(m, token, content, extra = {}) {
    const r = await fetch(`${m.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...bearer(token), 'Content-Type': 'application/json' },
        body: JSON.stringify({
            model: 'fake-a', stream: true, max_tokens: 20,
            stream_options: { include_usage: true },
            messages: [{ role: 'user', content }], ...extra,
        }),
    });
    const text = await r.text();
    if (r.status !== 200) {
        return { status: r.status, json: JSON.parse(text), headers: r.headers };
    }
    let usage = null;
    for (const line of text.split('\n')) {
        if (line.startsWith('data: {')) {
            const c = JSON.parse(line.slice(6));
            if (c.usage) {
                usage = c.usage;
            }
        }
    }
    return { status: 200, usage };
}


async function newKey(m, body) {
    const r = await fresh(m, 'POST', '/api/v1/keys', ADMIN, body);
    assert.equal(r.status, 201, r.text);
    return r.json;
}


describe('a key\'s own limits and budget (2 workers)', () => {
    let m, llm;

    before(async () => {
        llm = await startFakeOpenAI();
        process.env.MAESTRO_ADMIN_KEY = ADMIN;
        m = await startMaestro({
            workers: 2, listenParams: 'reuseport',
            server: ['location /v1/ { maestro_api; }'],
            http: [
                'maestro_auth on;',
                `maestro_llm_provider ${llm.url} name=fake model=fake-a `
                    + 'retries=0 timeout=5s;',
                /* 1 USD a token: a budget is spent in a few calls */
                'maestro_llm_price fake-a input=1000000 output=1000000;',
                'maestro_team_budget team=red usd=3 period=day;',
                'maestro_team_budget team=* usd=1000;',
            ],
        });
        delete process.env.MAESTRO_ADMIN_KEY;
    });

    after(async () => {
        await stopClean(m);
        await llm?.stop();
    });

    test('rpm=5: exactly 5 a minute over both workers, kept over a reload',
         async () => {
        const k = await newKey(m, { user_id: 'r', limits: { rpm: 5 } });
        const got = [];
        for (let i = 0; i < 8; i++) {
            got.push(await fresh(m, 'GET', '/api/v1/workflows', k.key));
        }
        assert.deepEqual(got.map((r) => r.status),
                         [200, 200, 200, 200, 200, 429, 429, 429]);
        assert.equal(got[0].headers['ratelimit-policy'], '"default";q=5;w=60');
        assert.equal(got[5].json.error.code, 'rate_limited');
        assert.match(got[5].json.error.message, /too many requests/);
        assert.equal(got[5].headers['retry-after'], '12');

        /* another key of the same user and address is not touched */
        const other = await newKey(m, { user_id: 'r' });
        assert.equal((await fresh(m, 'GET', '/api/v1/workflows',
                                  other.key)).status, 200);

        /* drained: the next test's streams must not land on a worker
           that is on its way out */
        await m.reload({ drained: true });
        assert.equal((await fresh(m, 'GET', '/api/v1/workflows',
                                  k.key)).status, 429);
    });

    test('max_parallel=2: a third request waits for a stream\'s last byte',
         async () => {
        const k = await newKey(m, { user_id: 'p',
                                    limits: { max_parallel: 2 } });
        const a = await openStream(m.base, '/api/v1/events', bearer(k.key));
        const b = await openStream(m.base, '/api/v1/events', bearer(k.key));
        assert.equal(a.status, 200);
        assert.equal(b.status, 200);

        /* a third stream, or any third request */
        const c = await openStream(m.base, '/api/v1/events', bearer(k.key));
        assert.equal(c.status, 429);
        assert.match(c.text(), /max_parallel: 2 requests in flight/);
        c.close();

        let r = await fresh(m, 'GET', '/api/v1/workflows', k.key);
        assert.equal(r.status, 429);
        assert.match(r.json.error.message, /max_parallel: 2 requests in flight/);
        assert.equal(r.headers['retry-after'], '1');

        const me = await fresh(m, 'GET', '/api/v1/me', k.key);
        assert.equal(me.status, 429);

        a.close();
        for (let i = 0; i < 50; i++) {
            r = await fresh(m, 'GET', '/api/v1/me', k.key);
            if (r.status === 200) {
                break;
            }
            await sleep(20);
        }
        assert.equal(r.status, 200, r.text);
        /* stream b and this /me are in flight */
        assert.equal(r.json.limits.max_parallel.limit, 2);
        assert.equal(r.json.limits.max_parallel.in_flight, 2);
        b.close();
    });

    test('tpm=100: 50 concurrent streams use at most the limit plus one '
         + 'reservation, then the settled rest is there again', async () => {
        const k = await newKey(m, { user_id: 't', limits: { tpm: 100 } });
        const runs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
            streamChat(m, k.key, `hello number ${i}`)));

        const ok = runs.filter((r) => r.status === 200);
        const no = runs.filter((r) => r.status !== 200);
        assert.ok(ok.length >= 1, 'the first gets in');
        assert.ok(no.length >= 1, 'not all 50 get in');
        for (const r of no) {
            assert.equal(r.status, 429);
            assert.equal(r.json.error.code, 'rate_limit_exceeded');
            assert.equal(r.json.error.type, 'requests');
            assert.ok(Number(r.headers.get('retry-after')) >= 1);
        }

        /* each reserved 4 input tokens (16 bytes) + max_tokens 20 */
        const used = ok.reduce((n, r) => n + r.usage.total_tokens, 0);
        assert.ok(ok.every((r) => r.usage && r.usage.total_tokens > 0));
        assert.ok(used <= 100 + 24, `used ${used} by ${ok.length}`);

        /* settled: what the admitted did not use is back */
        const me = await fresh(m, 'GET', '/api/v1/me', k.key);
        assert.equal(me.json.limits.tpm.limit, 100);
        assert.ok(me.json.limits.tpm.remaining >= 100 - used - 2,
                  JSON.stringify(me.json.limits));
    });

    test('a cap under the estimate does not refuse the first request',
         async () => {
        const k = await newKey(m, { user_id: 'c', limits: { tpm: 10 } });
        const r = await streamChat(m, k.key, 'hi', { max_tokens: 4096 });
        assert.equal(r.status, 200);

        /* the tokens past the cap are owed: the next one waits */
        const n = await streamChat(m, k.key, 'hi', { max_tokens: 4096 });
        assert.equal(n.status, 429);
    });

    test('budget: spent is refused with insufficient_quota; reads go on',
         async () => {
        const k = await newKey(m, { user_id: 'b', budget_usd: 3,
                                    budget_period: 'day' });
        const first = await streamChat(m, k.key, 'spend some money');
        assert.equal(first.status, 200);
        assert.ok(first.usage.total_tokens > 3);

        /* usage is written in batches, once a second */
        let r;
        for (let i = 0; i < 40; i++) {
            r = await streamChat(m, k.key, 'more');
            if (r.status !== 200) {
                break;
            }
            await sleep(100);
        }
        assert.equal(r.status, 429);
        assert.equal(r.json.error.code, 'insufficient_quota');
        assert.equal(r.json.error.type, 'insufficient_quota');
        assert.match(r.json.error.message, /budget exhausted: .* of 3\.0+ USD/);

        /* what the official SDK makes of it */
        const client = new OpenAI({ apiKey: k.key, baseURL: `${m.base}/v1`,
                                    maxRetries: 0 });
        await assert.rejects(client.chat.completions.create({
            model: 'fake-a', messages: [{ role: 'user', content: 'x' }],
        }), (err) => {
            assert.ok(err instanceof OpenAI.RateLimitError, String(err));
            assert.equal(err.status, 429);
            assert.equal(err.code, 'insufficient_quota');
            return true;
        });

        const rest = await fresh(m, 'POST', '/api/v1/workflows', k.key,
                                 { prompt: 'hi' });
        assert.equal(rest.status, 429);
        assert.equal(rest.json.error.code, 'insufficient_quota');
        assert.ok(Number(rest.headers['retry-after']) > 0);

        const me = await fresh(m, 'GET', '/api/v1/me', k.key);
        assert.equal(me.status, 200);
        assert.equal(me.json.budget.usd, 3);
        assert.equal(me.json.budget.period, 'day');
        assert.match(me.json.budget.bucket, /^day:\d{4}-\d\d-\d\d$/);
        assert.ok(me.json.budget.spent_usd >= 3);
        assert.equal(me.json.budget.remaining_usd, 0);
        assert.ok(me.json.usage.total > 3);
    });

    test('a team\'s budget: one member spends it, every member is refused',
         async () => {
        const a = await newKey(m, { user_id: 'ra', team: 'red' });
        const b = await newKey(m, { user_id: 'rb', team: 'red' });
        const c = await newKey(m, { user_id: 'gc', team: 'green' });

        assert.equal((await streamChat(m, a.key, 'spend for the team')).status,
                     200);

        let r;
        for (let i = 0; i < 40; i++) {
            r = await streamChat(m, b.key, 'more');
            if (r.status !== 200) {
                break;
            }
            await sleep(100);
        }
        assert.equal(r.status, 429);
        assert.equal(r.json.error.code, 'insufficient_quota');
        assert.match(r.json.error.message, /the team's budget exhausted: .* of 3\.0+ USD spent this day/);

        /* another team has the budget of team=* */
        assert.equal((await streamChat(m, c.key, 'green')).status, 200);

        const me = await fresh(m, 'GET', '/api/v1/me', a.key);
        assert.equal(me.status, 200);
        assert.equal(me.json.team_budget.usd, 3);
        assert.equal(me.json.team_budget.period, 'day');
        assert.ok(me.json.team_budget.spent_usd >= 3);
        assert.equal(me.json.team_budget.remaining_usd, 0);

        const green = await fresh(m, 'GET', '/api/v1/me', c.key);
        assert.equal(green.json.team_budget.usd, 1000);
        assert.equal(green.json.team_budget.period, 'month');
    });

    test('a workflow\'s model calls count against the key that submitted it',
         async () => {
        const k = await newKey(m, { user_id: 'w', limits: { tpm: 1000 } });
        const t0 = Date.now();
        const s = await fresh(m, 'POST', '/api/v1/workflows', k.key,
                              { prompt: 'tell me about limits',
                                workflow: chain(['l', 'llm']) });
        assert.equal(s.status, 202, s.text);
        let done;
        for (let i = 0; i < 150; i++) {
            done = (await fresh(m, 'GET', `/api/v1/workflows/${s.json.id}`,
                                k.key)).json;
            if (done.status === 'complete') {
                break;
            }
            await sleep(100);
        }
        assert.equal(done.status, 'complete', JSON.stringify(done));
        assert.ok(done.tokens.total > 0);

        let me;
        for (let i = 0; i < 40; i++) {
            me = await fresh(m, 'GET', '/api/v1/me', k.key);
            if (me.json.usage.total >= done.tokens.total) {
                break;
            }
            await sleep(100);
        }
        assert.equal(me.json.usage.total, done.tokens.total);
        assert.ok(me.json.budget.spent_usd > 0);
        /* charged: what came back since is 1000 a minute at most */
        const back = Math.ceil((Date.now() - t0) * 1000 / 60000) + 1;
        assert.ok(me.json.limits.tpm.remaining
                  <= 1000 - done.tokens.total + back,
                  `${JSON.stringify(me.json.limits)}, ${back} back`);
    });
});
