/*
 * Copyright (C) Maestro authors
 */

/*
 * The gateway's pass-through on /v1, driven by the official `openai` SDK
 * over two fault-injecting fake providers: provider models streamed and
 * not, unknown fields passed through, include_usage forced upstream,
 * retries with Retry-After, fallback to the next model of the chain
 * before the first byte, the explicit error chunk when a stream breaks
 * after it, the client's own 400 passed back, /v1/embeddings, "model":
 * "auto" by complexity tier, the prompt guard, and every client getting
 * a valid answer or a clean OpenAI-shaped error.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import {
    startMaestro, startFakeOpenAI, api, nginxT, stopClean,
} from './lib/harness.mjs';


// every test over both clients, over HTTP and over HTTPS
const CLIENTS = [{ via: 'nginx' }, { via: 'libcurl' },
                 { via: 'nginx', tls: true }, { via: 'libcurl', tls: true }];

for (const { via, tls } of CLIENTS) describe(
    `gateway pass-through (/v1 provider models), client=${via}`
    + (tls ? ', https' : ''), () => {
    let m, a, b, client;
    const opt = (fake) => `client=${via}${tls ? ` ca=${fake.ca}` : ''}`;

    before(async () => {
        a = await startFakeOpenAI([], { tls });
        b = await startFakeOpenAI([], { tls });
        m = await startMaestro({
            workers: 2,
            http: [
                `maestro_llm_provider ${a.url} ${opt(a)} name=primary `
                    + 'model=fake-model priority=0 retries=1 timeout=3s;',
                `maestro_llm_provider ${b.url} ${opt(b)} name=backup `
                    + 'model=fake-model-large priority=1 retries=0 '
                    + 'timeout=3s;',
                `maestro_llm_provider ${a.url} ${opt(a)} name=embedder `
                    + 'model=fake-embedding priority=2 retries=0;',
                'maestro_llm_breaker failures=50 recovery=60s;',
                'maestro_llm_fallback fake-model fake-model-large;',
                `maestro_llm_provider ${a.url} ${opt(a)} name=strict `
                    + 'model=fake-model-strict priority=3 retries=0 '
                    + 'timeout=1500ms;',
                'maestro_llm_fallback fake-model-strict fake-model-large '
                    + 'on=5xx,timeout;',
                'maestro_model_tier simple fake-model-large;',
                'maestro_model_tier complex fake-model;',
                'maestro_llm_price fake-model input=1000 output=2000;',
            ],
            server: ['location /v1/ { maestro_api; '
                     + 'maestro_guard_deny "\\bforbidden\\b"; }'],
        });
        client = new OpenAI({ apiKey: 'unused', baseURL: `${m.base}/v1`,
                              maxRetries: 0, timeout: 15000 });
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

    const ask = (text) => [{ role: 'user', content: text }];

    test('models.list has the providers\' models and auto', async () => {
        const ids = (await client.models.list()).data.map((x) => x.id);
        for (const id of ['fake-model', 'fake-model-large', 'fake-embedding',
                          'auto', 'maestro/default']) {
            assert.ok(ids.includes(id), `${id} in ${ids}`);
        }
    });

    test('a completion passes through, unknown fields included', async () => {
        const tools = [{ type: 'function', function: {
            name: 'lookup', parameters: { type: 'object', properties: {} } } }];
        const { data, response } = await client.chat.completions.create({
            model: 'fake-model', messages: ask('hello there'), tools,
            tool_choice: 'auto', response_format: { type: 'json_object' },
            x_vendor_field: { keep: [1, 2] },
        }).withResponse();

        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices[0].message.content, 'Echo: hello there');
        assert.equal(data.model, 'fake-model');
        assert.ok(data.usage.total_tokens > 0);
        assert.equal(response.headers.get('x-maestro-provider'), 'primary');

        const sent = (await a.stats()).last_request;
        assert.equal(sent.path, '/v1/chat/completions');
        assert.deepEqual(sent.body.tools, tools);
        assert.equal(sent.body.tool_choice, 'auto');
        assert.deepEqual(sent.body.response_format, { type: 'json_object' });
        assert.deepEqual(sent.body.x_vendor_field, { keep: [1, 2] });
        assert.equal(sent.body.stream, undefined);
    });

    test('a stream passes through; include_usage is forced upstream, and the '
         + 'usage chunk reaches only a client that asked', async () => {
        let text = '';
        let usage = null;
        const stream = await client.chat.completions.create({
            model: 'fake-model', messages: ask('one two three four'),
            stream: true });
        for await (const chunk of stream) {
            text += chunk.choices[0]?.delta?.content || '';
            usage = chunk.usage || usage;
        }
        assert.equal(text, 'Echo: one two three four');
        assert.equal(usage, null, 'not asked for');
        const sent = (await a.stats()).last_request;
        assert.equal(sent.body.stream, true);
        assert.equal(sent.body.stream_options.include_usage, true);

        const asked = await client.chat.completions.create({
            model: 'fake-model', messages: ask('five six'), stream: true,
            stream_options: { include_usage: true } });
        usage = null;
        for await (const chunk of asked) {
            usage = chunk.usage || usage;
        }
        assert.ok(usage && usage.completion_tokens > 0, 'usage chunk');
    });

    test('429 with Retry-After is retried on the same provider', async () => {
        const b0 = (await b.stats()).requests;
        await a.control(['429']);
        const t0 = Date.now();
        const { data, response } = await client.chat.completions.create({
            model: 'fake-model', messages: ask('patience') }).withResponse();
        assert.equal(data.choices[0].message.content, 'Echo: patience');
        assert.equal(response.headers.get('x-maestro-provider'), 'primary');
        assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After: 1');
        assert.equal((await b.stats()).requests, b0, 'no fallback');
    });

    test('before the first byte, a failing provider falls back to the next '
         + 'model of the chain', async () => {
        await a.control(['500', '503']);       /* both of its attempts */
        const { data, response } = await client.chat.completions.create({
            model: 'fake-model', messages: ask('fall back') }).withResponse();
        assert.equal(data.choices[0].message.content, 'Echo: fall back');
        assert.equal(data.model, 'fake-model-large');
        assert.equal(response.headers.get('x-maestro-provider'), 'backup');

        /* streamed too: a malformed answer, then not an event stream */
        await a.control(['malformed_json', 'wrong_content_type']);
        let text = '';
        const s = await client.chat.completions.create({
            model: 'fake-model', messages: ask('stream fall back'),
            stream: true });
        for await (const chunk of s) {
            text += chunk.choices[0]?.delta?.content || '';
        }
        assert.equal(text, 'Echo: stream fall back');
    });

    test('a stream broken after its first token ends with an OpenAI error '
         + 'chunk, never a silent 200', async () => {
        await a.control(['reset_mid_stream']);
        const b0 = (await b.stats()).requests;
        let text = '';
        const s = await client.chat.completions.create({
            model: 'fake-model', messages: ask('alpha beta gamma delta'),
            stream: true });
        await assert.rejects(async () => {
            for await (const chunk of s) {
                text += chunk.choices[0]?.delta?.content || '';
            }
        }, (e) => {
            assert.match(e.message, /broke the stream/);
            return true;
        });
        assert.ok(text.length > 0, 'part of the answer came first');
        assert.equal((await b.stats()).requests, b0, 'no silent switch');
    });

    test('a chain falls back only on the failures it names', async () => {
        await a.control(['500']);
        const ok = await client.chat.completions.create({
            model: 'fake-model-strict', messages: ask('5xx falls back') });
        assert.equal(ok.model, 'fake-model-large');

        const b0 = (await b.stats()).requests;
        await a.control(['429']);
        await assert.rejects(client.chat.completions.create({
            model: 'fake-model-strict', messages: ask('429 does not') }),
        (e) => {
            assert.equal(e.status, 502);
            assert.match(e.message, /HTTP 429/);
            return true;
        });
        assert.equal((await b.stats()).requests, b0, 'no fallback on 429');
    });

    test('a hanging provider times out into the chain; a slow first byte '
         + 'is only slow', async () => {
        await a.control(['hang']);
        const t0 = Date.now();
        const r = await client.chat.completions.create({
            model: 'fake-model-strict', messages: ask('hang then fall') });
        assert.equal(r.model, 'fake-model-large');
        const took = Date.now() - t0;
        assert.ok(took >= 1400 && took < 6000, `${took} ms`);

        await a.control(['slow_first_byte:400']);
        let text = '';
        const s = await client.chat.completions.create({
            model: 'fake-model', messages: ask('slowly now'), stream: true });
        for await (const chunk of s) {
            text += chunk.choices[0]?.delta?.content || '';
        }
        assert.equal(text, 'Echo: slowly now');
    });

    test('maestro_llm_fallback: nginx -t refuses what it cannot use',
         async () => {
        let r = await nginxT({ http: ['maestro_llm_fallback a b on=4xx;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /unknown failure "4xx"/);
        r = await nginxT({ http: ['maestro_llm_fallback a on=5xx;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /needs a model and at least one fallback/);
        r = await nginxT({ http: ['maestro_model_tier hard m;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /invalid tier "hard"/);
        r = await nginxT({ http: ['maestro_llm_fallback a b c on=429,5xx;',
                                  'maestro_model_tier simple m;'] });
        assert.equal(r.code, 0, r.output);
    });

    test('the client\'s own 400 comes back as the provider said', async () => {
        const b0 = (await b.stats()).requests;
        await a.control(['400']);
        await assert.rejects(client.chat.completions.create({
            model: 'fake-model', messages: ask('bad') }), (e) => {
            assert.equal(e.status, 400);
            assert.ok(e.error, 'an OpenAI error body');
            return true;
        });
        assert.equal((await b.stats()).requests, b0, 'not a provider failure');
    });

    test('a 401 goes to the next provider at once, without a retry',
        async () => {
        const path = '/v1/chat/completions';
        const a0 = (await a.stats()).by_path[path] ?? 0;
        await a.control(['401']);
        const { data, response } = await client.chat.completions.create({
            model: 'fake-model', messages: ask('unauthorised') })
            .withResponse();
        assert.equal(data.choices[0].message.content, 'Echo: unauthorised');
        assert.equal(response.headers.get('x-maestro-provider'), 'backup');
        assert.equal((await a.stats()).by_path[path], a0 + 1,
                     'retries=1 not spent on a 401');
    });

    test('all providers failing is a clean 502', async () => {
        await a.control(['500', '503']);
        await b.control(['502']);
        await assert.rejects(client.chat.completions.create({
            model: 'fake-model', messages: ask('doomed') }), (e) => {
            assert.equal(e.status, 502);
            assert.equal(e.code, 'upstream_error');
            assert.match(e.message, /all providers failed/);
            return true;
        });
        /* and the next one works again */
        const ok = await client.chat.completions.create({
            model: 'fake-model', messages: ask('recovered') });
        assert.equal(ok.choices[0].message.content, 'Echo: recovered');
    });

    test('embeddings pass through', async () => {
        const e = await client.embeddings.create({
            model: 'fake-embedding', input: ['one text', 'another'] });
        assert.equal(e.data.length, 2);
        assert.equal(e.data[0].embedding.length, 64);
        assert.equal((await a.stats()).last_request.path, '/v1/embeddings');
    });

    test('"auto" picks the model of the prompt\'s complexity tier',
         async () => {
        const { data, response } = await client.chat.completions.create({
            model: 'auto', messages: ask('short question') }).withResponse();
        assert.equal(data.model, 'fake-model-large');
        assert.equal(response.headers.get('x-maestro-route'),
                     'fake-model-large');
        assert.equal(response.headers.get('x-maestro-complexity'), 'simple');

        const long = Array.from({ length: 120 }, (_, i) => `w${i}`).join(' ');
        const r2 = await client.chat.completions.create({
            model: 'auto', messages: ask(long) });
        assert.equal(r2.model, 'fake-model');

        const an = await api(m.base, 'POST', '/api/v1/analyze',
                             { prompt: 'short question' });
        assert.deepEqual(an.json.route, { model: 'fake-model-large' });
    });

    test('the prompt guard and unknown models give OpenAI errors',
         async () => {
        const n0 = (await a.stats()).requests;
        await assert.rejects(client.chat.completions.create({
            model: 'fake-model', messages: ask('this is forbidden') }), (e) => {
            assert.equal(e.status, 400);
            assert.equal(e.code, 'prompt_blocked');
            return true;
        });
        assert.equal((await a.stats()).requests, n0, 'never left');

        await assert.rejects(client.chat.completions.create({
            model: 'no-such-model', messages: ask('x') }), (e) => {
            assert.equal(e.status, 404);
            assert.equal(e.code, 'model_not_found');
            return true;
        });
    });

    test('usage and cost are counted per user and for everyone',
         async () => {
        const before = (await api(m.base, 'GET', '/api/v1/usage')).json;
        const r1 = await client.chat.completions.create({
            model: 'fake-model', user: 'pt-user', messages: ask('count me') });
        let streamed = null;
        const s = await client.chat.completions.create({
            model: 'fake-model', user: 'pt-user', stream: true,
            stream_options: { include_usage: true },
            messages: ask('count me too') });
        for await (const chunk of s) {
            streamed = chunk.usage || streamed;
        }
        await client.embeddings.create({ model: 'fake-embedding',
                                         input: 'not a user' });

        /* written in batches, once a second */
        let u;
        const t0 = Date.now();
        for (;;) {
            u = (await api(m.base, 'GET', '/api/v1/users/pt-user/usage')).json;
            if (u.calls >= 2 || Date.now() - t0 > 5000) break;
            await new Promise((r) => setTimeout(r, 200));
        }
        const fm = u.by_model['fake-model'];
        assert.equal(u.calls, 2);
        assert.equal(fm.calls, 2);
        assert.equal(fm.prompt, r1.usage.prompt_tokens
                                + streamed.prompt_tokens);
        assert.equal(fm.completion, r1.usage.completion_tokens
                                    + streamed.completion_tokens);
        assert.equal(u.total, fm.prompt + fm.completion);
        const want = (fm.prompt * 1000 + fm.completion * 2000) / 1e6;
        assert.ok(Math.abs(u.cost_usd - want) < 1e-9, `${u.cost_usd} ${want}`);

        let all;
        for (;;) {
            all = (await api(m.base, 'GET', '/api/v1/usage')).json;
            if ((all.by_model['fake-embedding']?.calls || 0)
                > (before.by_model?.['fake-embedding']?.calls || 0)
                || Date.now() - t0 > 5000) break;
            await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(all.user_id, undefined);
        assert.ok(all.calls >= before.calls + 3);
        assert.ok(all.by_model['fake-embedding'].prompt > 0);
        assert.equal(all.by_model['fake-embedding'].cost_usd, undefined,
                     'unpriced');
    });

    test('many concurrent streams are served by the event loop', async () => {
        const n = 200;
        const texts = await Promise.all(Array.from({ length: n }, async (_, i) => {
            let t = '';
            const s = await client.chat.completions.create({
                model: 'fake-model', messages: ask(`stream ${i}`),
                stream: true });
            for await (const chunk of s) {
                t += chunk.choices[0]?.delta?.content || '';
            }
            return t;
        }));
        texts.forEach((t, i) => assert.equal(t, `Echo: stream ${i}`));
    });
});


/*
 * What only the gateway's own HTTP/1.1 client (client=nginx) has to get
 * right: keep-alive and the provider closing kept connections, every
 * body framing, a head too big, and a slow client pausing the provider.
 */
describe('the gateway\'s HTTP/1.1 client (client=nginx)', () => {
    let m, c, client;

    before(async () => {
        c = await startFakeOpenAI();
        m = await startMaestro({
            workers: 1,         /* one keep-alive cache: counts are exact */
            http: [`maestro_llm_provider ${c.url} name=solo model=fake-model `
                   + 'retries=0 timeout=5s;',
                   /* nothing listens there: refused at once */
                   'maestro_llm_provider http://127.0.0.1:1/v1 name=down '
                   + 'model=fake-down retries=1 timeout=5s;',
                   'maestro_llm_breaker failures=1000 recovery=60s;'],
            server: ['location /v1/ { maestro_api; }'],
        });
        client = new OpenAI({ apiKey: 'unused', baseURL: `${m.base}/v1`,
                              maxRetries: 0, timeout: 15000 });
    });

    after(() => stopClean(m, c));

    const ask = (text) => [{ role: 'user', content: text }];
    const chat = async (text) => (await client.chat.completions.create({
        model: 'fake-model', messages: ask(text) })).choices[0].message.content;
    const stream = async (text) => {
        let t = '';
        const s = await client.chat.completions.create({
            model: 'fake-model', messages: ask(text), stream: true });
        for await (const chunk of s) {
            t += chunk.choices[0]?.delta?.content || '';
        }
        return t;
    };

    test('one kept connection serves call after call', async () => {
        await c.reset();
        for (let i = 0; i < 5; i++) {
            assert.equal(await chat(`call ${i}`), `Echo: call ${i}`);
            assert.equal(await stream(`stream ${i}`), `Echo: stream ${i}`);
        }
        const st = await c.stats();
        assert.equal(st.requests, 10);
        assert.equal(st.connections, 1, 'kept alive');
    });

    test('a body that ends with the connection, streamed and not',
         async () => {
        await c.reset();
        await c.control(['close_delimited', 'close_delimited']);
        assert.equal(await chat('to the end'), 'Echo: to the end');
        assert.equal(await stream('to the end too'), 'Echo: to the end too');
        assert.equal(await chat('after'), 'Echo: after');
        assert.equal((await c.stats()).connections, 3, 'none kept after');
    });

    test('a kept connection the provider closed is not a failure',
         async () => {
        await c.reset();
        /* closed while idle: noticed, dropped, a new one opened */
        await c.control(['close_idle']);
        assert.equal(await chat('first'), 'Echo: first');
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(await chat('second'), 'Echo: second');
        assert.equal((await c.stats()).connections, 2);

        /* closed as the request came (nothing back): once more, anew,
           though the provider has retries=0 */
        await c.control(['reset']);
        assert.equal(await chat('third'), 'Echo: third');

        /* on a new connection a reset is the provider's failure */
        await c.control(['reset', 'reset']);
        await assert.rejects(chat('fourth'), (e) => {
            assert.equal(e.status, 502);
            return true;
        });
        assert.equal(await chat('fifth'), 'Echo: fifth');
        assert.match(m.errorLog(), /attempt 1 failed: solo: /);
    });

    test('a provider that refuses connections is a clean 502, retried '
         + 'first', async () => {
        await assert.rejects(client.chat.completions.create({
            model: 'fake-down', messages: ask('anyone?') }), (e) => {
            assert.equal(e.status, 502);
            assert.equal(e.error?.code, 'upstream_error');
            return true;
        });
        const log = m.errorLog();
        assert.match(log, /attempt 1 failed: down: Couldn't connect/);
        assert.match(log, /attempt 2 failed: down: Couldn't connect/);
        assert.equal(await chat('still here'), 'Echo: still here');
    });

    test('a head over 8 KB is refused as the provider\'s error', async () => {
        await c.control(['huge_header']);
        await assert.rejects(chat('big head'), (e) => {
            assert.equal(e.status, 502);
            return true;
        });
        assert.match(m.errorLog(), /sent a head or chunk line over 8192 bytes/);
        assert.equal(await chat('and on'), 'Echo: and on');
    });

    test('a slow client pauses the provider and loses nothing', async () => {
        const n = 6000;                 /* 6 MB: more than socket buffers */
        await c.control([`flood:${n}`]);
        const body = JSON.stringify({ model: 'fake-model', stream: true,
                                      messages: ask('flood') });
        const sock = net.connect(m.port, '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        /* HTTP/1.0: no chunked framing between the events */
        sock.write(`POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\n`
                   + 'Content-Type: application/json\r\n'
                   + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`
                   + body);
        const parts = [];
        sock.on('data', (d) => parts.push(d));
        sock.pause();                   /* a client that does not read */
        await new Promise((r) => setTimeout(r, 1500));
        sock.resume();
        await new Promise((r) => sock.once('end', r));

        const raw = Buffer.concat(parts).toString();
        const events = raw.split('\n').filter((l) => l.startsWith('data: {'))
            .map((l) => JSON.parse(l.slice(6)));
        const text = events.map((e) => e.choices[0]?.delta?.content || '')
            .join('');
        const seqs = text.trim().split(' ').map((w) => Number(w.slice(0, 7)));
        assert.equal(seqs.length, n, 'every chunk');
        seqs.forEach((v, i) => assert.equal(v, i, 'in order'));
        assert.ok(raw.includes('data: [DONE]'));

        /* the provider was held while the client did not read: the call
           lasted as long as the pause, its 6 MB never all in memory */
        const ms = Number(/1\+6000 tokens, [^\n]* (\d+) ms/
            .exec(m.errorLog())?.[1]);
        assert.ok(ms >= 1200, `call lasted ${ms} ms`);
    });
});


/* client=nginx over HTTPS: the certificate checked, connections kept */
describe('the gateway\'s HTTP/1.1 client over TLS', () => {
    let m, t, client;

    before(async () => {
        t = await startFakeOpenAI([], { tls: true });
        m = await startMaestro({
            workers: 1,
            http: [`maestro_llm_provider ${t.url} name=tls model=fake-model `
                   + `client=nginx ca=${t.ca} retries=0 timeout=5s;`,
                   /* the system's CAs do not know the test certificate */
                   `maestro_llm_provider ${t.url} name=untrusted `
                   + 'model=fake-untrusted client=nginx retries=0;',
                   'maestro_llm_breaker failures=1000 recovery=60s;'],
            server: ['location /v1/ { maestro_api; }'],
        });
        client = new OpenAI({ apiKey: 'unused', baseURL: `${m.base}/v1`,
                              maxRetries: 0, timeout: 15000 });
    });
    after(() => stopClean(m, t));

    test('nginx -t refuses a bad client= or an unreadable ca=', async () => {
        let r = await nginxT({ http: [`maestro_llm_provider ${t.url} `
                                      + 'client=openssl;'] });
        assert.notEqual(r.code, 0);
        assert.match(r.output, /invalid parameter "client=openssl"/);
        for (const via of ['nginx', 'libcurl']) {
            r = await nginxT({ http: [`maestro_llm_provider ${t.url} `
                                      + `client=${via} ca=/nonexistent.pem;`] });
            assert.notEqual(r.code, 0);
            assert.match(r.output, /cannot read ca file "\/nonexistent\.pem"/);
        }
        r = await nginxT({ http: [`maestro_llm_provider ${t.url} client=nginx `
                                  + `ca=${t.ca};`] });
        assert.equal(r.code, 0, r.output);
    });

    test('calls and streams over one verified, kept connection', async () => {
        await t.reset();
        for (let i = 0; i < 4; i++) {
            const r = await client.chat.completions.create({
                model: 'fake-model', messages: [{ role: 'user',
                                                  content: `tls ${i}` }] });
            assert.equal(r.choices[0].message.content, `Echo: tls ${i}`);
            let text = '';
            const s = await client.chat.completions.create({
                model: 'fake-model', stream: true,
                messages: [{ role: 'user', content: `tls stream ${i}` }] });
            for await (const chunk of s) {
                text += chunk.choices[0]?.delta?.content || '';
            }
            assert.equal(text, `Echo: tls stream ${i}`);
        }
        const st = await t.stats();
        assert.equal(st.requests, 8);
        assert.equal(st.connections, 1, 'kept alive');
    });

    test('a certificate the CAs do not vouch for is refused', async () => {
        const r0 = (await t.stats()).requests;
        await assert.rejects(client.chat.completions.create({
            model: 'fake-untrusted',
            messages: [{ role: 'user', content: 'trust me' }] }), (e) => {
            assert.equal(e.status, 502);
            return true;
        });
        assert.match(m.errorLog(), /provider 127\.0\.0\.1:\d+: certificate verify error/);
        assert.equal((await t.stats()).requests, r0, 'nothing was sent');
    });
});
