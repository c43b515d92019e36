/*
 * Copyright (C) Maestro authors
 */

/*
 * The LLM gateway in the module: two providers by priority, fallback
 * when the first fails, its circuit breaker opening (shared by the
 * workers) and shown by GET /api/v1/providers, and maestro_llm_breaker.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, startFakeOpenAI, api, submit, waitStatus, chain, nginxT,
} from './lib/harness.mjs';


describe('LLM gateway', () => {
    let m, a, b;

    before(async () => {
        a = await startFakeOpenAI();
        b = await startFakeOpenAI();
        m = await startMaestro({
            workers: 2,
            http: [
                `maestro_llm_provider ${a.url} name=primary priority=0 `
                    + 'model=fake-a retries=0 timeout=5s;',
                `maestro_llm_provider ${b.url} name=backup priority=1 `
                    + 'model=fake-b retries=0 timeout=5s;',
                'maestro_llm_breaker failures=2 recovery=60s;',
                'maestro_llm_price fake-a input=1000 output=2000;',
            ],
        });
    });

    after(async () => {
        try {
            m?.assertCleanLog();
        } finally {
            await m?.stop();
            await a?.stop();
            await b?.stop();
        }
    });

    async function runLlm(prompt, user) {
        const w = await submit(m.base, {
            prompt, workflow: chain(['l', 'llm']), user_id: user });
        return waitStatus(m.base, w.id, ['complete', 'failed'], 15000);
    }

    test('providers are listed with closed breakers', async () => {
        const r = await api(m.base, 'GET', '/api/v1/providers');
        assert.equal(r.status, 200);
        assert.equal(r.json.offline, false);
        assert.deepEqual(r.json.items.map((p) => [p.name, p.priority,
                                                  p.breaker.state]),
                         [['primary', 0, 'closed'], ['backup', 1, 'closed']]);

        const h = await api(m.base, 'GET', '/healthz');
        assert.equal(h.json.llm, 'online');
    });

    test('the primary answers; when it fails the backup does', async () => {
        const a0 = (await a.stats()).requests;
        const b0 = (await b.stats()).requests;
        let wf = await runLlm('first question');
        assert.equal(wf.status, 'complete');
        assert.equal((await a.stats()).requests, a0 + 1, 'primary answered');
        assert.equal((await b.stats()).requests, b0, 'backup not asked');

        const aBefore = (await a.stats()).requests;
        const bBefore = (await b.stats()).requests;

        await a.control(['500']);
        wf = await runLlm('second question');
        assert.equal(wf.status, 'complete');
        assert.equal((await b.stats()).requests, bBefore + 1,
                     'the backup answered');
        assert.equal((await a.stats()).requests, aBefore + 1,
                     'the primary was tried once');
    });

    test('tokens and cost per model, from maestro_llm_price', async () => {
        const wf = await runLlm('what does it cost');
        assert.equal(wf.status, 'complete');
        const m = wf.tokens.by_model['fake-a'];
        assert.ok(m && m.prompt > 0 && m.completion > 0, JSON.stringify(wf));
        /* USD per million tokens: 1000 in, 2000 out */
        const cost = (m.prompt * 1000 + m.completion * 2000) / 1e6;
        assert.ok(Math.abs(m.cost_usd - cost) < 1e-9, `${m.cost_usd}`);
        assert.ok(Math.abs(wf.tokens.cost_usd - cost) < 1e-9);
        assert.equal(wf.tokens.total, m.prompt + m.completion);
    });

    test('usage and cost per user add up over their workflows', async () => {
        const user = `u-${process.pid}-é`;
        const w1 = await runLlm('first question of the user', user);
        const w2 = await runLlm('a second, longer question of the user',
                                user);
        await runLlm('someone else entirely', 'another-user');
        assert.equal(w1.status, 'complete');
        assert.equal(w2.status, 'complete');

        const r = await api(m.base, 'GET',
                            `/api/v1/users/${encodeURIComponent(user)}/usage`);
        assert.equal(r.status, 200);
        const u = r.json;
        assert.equal(u.user_id, user);
        assert.equal(u.total, w1.tokens.total + w2.tokens.total);
        assert.equal(u.by_model['fake-a'].prompt,
                     w1.tokens.by_model['fake-a'].prompt
                     + w2.tokens.by_model['fake-a'].prompt);
        assert.ok(Math.abs(u.cost_usd
                           - (w1.tokens.cost_usd + w2.tokens.cost_usd)) < 1e-9,
                  JSON.stringify(u));

        const none = await api(m.base, 'GET', '/api/v1/users/nobody/usage');
        assert.equal(none.status, 200);
        assert.equal(none.json.total, 0);
        assert.equal(none.json.cost_usd, null);

        const bad = await api(m.base, 'GET', '/api/v1/users/%FF/usage');
        assert.equal(bad.status, 400);
        assert.equal(bad.json.error.code, 'invalid_field');
    });

    test('two failures open the primary\'s breaker for every worker',
         async () => {
        await a.control(['500', '500']);
        await runLlm('third');
        await runLlm('fourth');

        const r = await api(m.base, 'GET', '/api/v1/providers');
        const primary = r.json.items.find((p) => p.name === 'primary');
        assert.equal(primary.breaker.state, 'open');
        assert.ok(primary.errors >= 2);

        /* open: not asked at all, whichever worker runs the step */
        const aBefore = (await a.stats()).requests;
        for (let i = 0; i < 4; i++) {
            const wf = await runLlm(`open ${i}`);
            assert.equal(wf.status, 'complete');
        }
        assert.equal((await a.stats()).requests, aBefore);
    });
});


describe('LLM gateway: active health checks', () => {
    let a, b, m;

    before(async () => {
        a = await startFakeOpenAI();
        b = await startFakeOpenAI();
        m = await startMaestro({
            healthCheck: 'interval=200ms timeout=1s',
            http: [
                `maestro_llm_provider ${a.url} name=primary priority=0 `
                    + 'model=fake-a retries=0 timeout=5s;',
                `maestro_llm_provider ${b.url} name=backup priority=1 `
                    + 'model=fake-b retries=0 timeout=5s;',
            ],
        });
    });

    after(async () => {
        try {
            m?.assertCleanLog();
        } finally {
            await m?.stop();
            await a?.stop();
            await b?.stop();
        }
    });

    async function providers() {
        const r = await fetch(`${m.base}/api/v1/providers`);
        assert.equal(r.status, 200);
        const body = await r.json();
        return Object.fromEntries(body.items.map(
            (p) => [p.name, p]));
    }

    async function until(pred, what) {
        const deadline = Date.now() + 5000;
        for (;;) {
            const p = await providers();
            if (pred(p)) {
                return p;
            }
            if (Date.now() > deadline) {
                assert.fail(`${what}: ${JSON.stringify(p)}`);
            }
            await new Promise((r) => setTimeout(r, 100));
        }
    }

    test('a dead provider is found without traffic and skipped', async () => {
        await until((p) => p.primary.health === 'up'
                           && p.backup.health === 'up', 'both up');
        assert.ok((await a.stats()).by_path['/v1/models'] >= 1);

        await a.stop();
        a = null;

        const p = await until((p) => p.primary.health === 'down',
                              'primary down');
        assert.equal(p.primary.breaker.state, 'open');
        assert.equal(p.primary.requests, 0, 'no workflow traffic sent');
        assert.match(m.errorLog(),
            /provider "primary" failed its health check, its breaker is open/);

        const before = (await b.stats()).by_path['/v1/chat/completions'] ?? 0;
        const w = await submit(m.base, { prompt: 'hello',
                                         workflow: chain(['l', 'llm']) });
        const wf = await waitStatus(m.base, w.id, ['complete', 'failed'],
                                    15000);
        assert.equal(wf.status, 'complete');
        assert.equal((await b.stats()).by_path['/v1/chat/completions'],
                     before + 1);
    });
});


describe('LLM gateway: nginx -t', () => {
    test('a bad breaker parameter', async () => {
        const r = await nginxT({ http: ['maestro_llm_breaker failures=0 '
                                        + 'recovery=1s;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /invalid parameter "failures=0"/);
    });

    test('maestro_llm_balance: latency passes, an unknown mode fails',
        async () => {
        const ok = await nginxT({ http: ['maestro_llm_balance latency;'] });
        assert.equal(ok.code, 0, ok.output);

        const r = await nginxT({ http: ['maestro_llm_balance fastest;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /invalid value "fastest"/);
    });

    test('maestro_llm_health_check: a bad interval fails', async () => {
        const r = await nginxT({ healthCheck: 'interval=10ms' });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /invalid parameter "interval=10ms"/);
    });
});
