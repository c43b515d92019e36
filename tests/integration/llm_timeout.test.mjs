/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_llm_provider's timeouts, against the fake OpenAI server, with
 * both clients (nginx's own and libcurl): timeout= bounds the wait for
 * the first byte, idle_timeout= the gap between two reads, total_timeout=
 * the whole call. A stream that goes on steadily for longer than timeout=
 * is not cut; one that stalls is cut at idle_timeout, not at the total.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, startFakeOpenAI, stopClean,
} from './lib/harness.mjs';


/* 12 words: 12 chunks 250 ms apart, about 3 s, three times timeout= */
const PROMPT = 'one two three four five six seven eight nine ten eleven '
    + 'twelve';

/* the fault goes into the fake's queue: the pass-through sends the
   provider's model and none of the client's headers */
async function stream(m, fake, fault) {
    await fake.control([fault]);
    const t0 = Date.now();
    const r = await fetch(`${m.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-model', stream: true,
                               messages: [{ role: 'user',
                                            content: PROMPT }] }),
    });
    const text = await r.text();
    const chunks = text.split('\n\n').filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6));
    const content = chunks.filter((c) => c !== '[DONE]')
        .map((c) => JSON.parse(c))
        .map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
    return { status: r.status, ms: Date.now() - t0, text, chunks, content };
}


for (const client of ['nginx', 'libcurl']) {
    describe(`provider timeouts (client=${client})`, () => {
        let fake;
        let m;
        /* cut within about 300 ms of idle_timeout (timers are lazy by
           that much), long before the 20 s total */
        const late = 2500;

        before(async () => {
            fake = await startFakeOpenAI();
            m = await startMaestro({
                workers: 1,
                server: ['location /v1/ { maestro_api; }'],
                http: `maestro_llm_provider ${fake.url} model=fake-model `
                    + `client=${client} timeout=1s idle_timeout=1s `
                    + 'total_timeout=20s retries=0;',
                /* the stalled stream's cut is logged as a warning */
                allowLog: [/timed out|stream/],
            });
        });

        after(() => stopClean(m, fake));

        test('a steady stream three times longer than timeout= is whole',
             async () => {
            const r = await stream(m, fake, 'slow_stream:250');
            assert.equal(r.status, 200, r.text.slice(0, 300));
            assert.ok(r.ms > 2500, `${r.ms} ms: the stream was slow`);
            assert.equal(r.chunks[r.chunks.length - 1], '[DONE]');
            assert.doesNotMatch(r.text, /upstream_stream_broken/);
            assert.equal(r.content, `Echo: ${PROMPT}`);
        });

        test('a stream that stalls is cut at idle_timeout', async () => {
            const r = await stream(m, fake, 'stall_mid_stream');
            assert.equal(r.status, 200);
            /* the error chunk, then [DONE]: never a silent 200 */
            assert.match(r.text, /upstream_stream_broken/);
            assert.equal(r.chunks[r.chunks.length - 1], '[DONE]');
            assert.ok(r.ms >= 900 && r.ms < late,
                      `cut after ${r.ms} ms (idle_timeout 1s, total 20s)`);
        });

        test('no first byte within timeout=: the call fails in time',
             async () => {
            await fake.control(['hang']);
            const t0 = Date.now();
            const r = await fetch(`${m.base}/v1/chat/completions`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ model: 'fake-model',
                                       messages: [{ role: 'user',
                                                    content: 'hi' }] }),
            });
            const ms = Date.now() - t0;
            assert.equal(r.status, 502, await r.text());
            assert.ok(ms >= 900 && ms < late, `failed after ${ms} ms`);
        });
    });
}
