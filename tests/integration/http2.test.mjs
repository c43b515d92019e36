/*
 * Copyright (C) Maestro authors
 */

/*
 * SSE over HTTP/2 (a real node:http2 client, prior knowledge), and the
 * WebSocket endpoints refusing HTTP/2 cleanly (no RFC 8441 yet).
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import {
    startMaestro, chain, waitStatus, freePort,
} from './lib/harness.mjs';


function h2get(base, path, headers = {}) {
    return new Promise((resolve, reject) => {
        const client = http2.connect(base);
        client.on('error', reject);

        const req = client.request({ ':path': path, ...headers });
        let status, hdrs, body = '';

        req.setEncoding('utf8');
        req.on('response', (h) => { hdrs = h; status = h[':status']; });
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            client.close();
            resolve({ status, headers: hdrs, body });
        });
        req.on('error', (e) => { client.close(); reject(e); });
        req.setTimeout(10000, () => {
            req.close();
            reject(new Error('timeout'));
        });
    });
}


function parseSSE(text) {
    return text.split('\n\n').filter((b) => /^id: /m.test(b)).map((b) => {
        const ev = {};
        for (const line of b.split('\n')) {
            const i = line.indexOf(': ');
            if (i > 0) ev[line.slice(0, i)] = line.slice(i + 2);
        }
        return { id: Number(ev.id), event: ev.event,
                 data: JSON.parse(ev.data) };
    });
}


describe('HTTP/2', () => {
    let m, h2;

    before(async () => {
        /* a second listener speaks HTTP/2 (prior knowledge) */
        const port = await freePort();
        h2 = `http://127.0.0.1:${port}`;
        m = await startMaestro({
            workers: 2, server: [`listen 127.0.0.1:${port} http2;`] });
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

    test('SSE streams over HTTP/2: every event, in order, then the end',
         async () => {
        /* submitted over HTTP/2 too */
        {
            const r = await new Promise((resolve, reject) => {
                const client = http2.connect(h2);
                const req = client.request({
                    ':method': 'POST', ':path': '/api/v1/workflows',
                    'content-type': 'application/json' });
                let body = '';
                req.setEncoding('utf8');
                req.on('data', (d) => { body += d; });
                req.on('end', () => { client.close(); resolve(body); });
                req.on('error', reject);
                req.end(JSON.stringify({
                    prompt: 'over h2',
                    workflow: chain(['a', 'echo'],
                                    ['s', 'sleep', { ms: 300 }],
                                    ['b', 'echo']) }));
            });
            var id = JSON.parse(r).id;
        }

        const s = await h2get(h2, `/api/v1/workflows/${id}/events`);
        assert.equal(s.status, 200);
        assert.equal(s.headers['content-type'], 'text/event-stream');
        assert.equal(s.headers['x-accel-buffering'], 'no');

        const evs = parseSSE(s.body);
        assert.ok(evs.length > 5);
        evs.forEach((e, i) => assert.equal(e.id, i + 1));
        assert.equal(evs[evs.length - 1].event, 'done');

        const wf = await waitStatus(m.base, id, 'complete', 5000);
        assert.equal(wf.last_event_id, evs.length);
    });

    test('a WebSocket upgrade over HTTP/2 is a clean 400', async () => {
        /* HTTP/2 has no Upgrade header (clients may not even send it) */
        const r = await h2get(h2, '/api/v1/ws/alice');
        assert.equal(r.status, 400);
        assert.equal(r.headers['sec-websocket-version'], '13');
        assert.equal(JSON.parse(r.body).error.code, 'bad_handshake');
        assert.match(JSON.parse(r.body).error.message, /HTTP\/1\.1/);
    });
});
