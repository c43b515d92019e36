/*
 * Copyright (C) Maestro authors
 */

/*
 * permessage-deflate (RFC 7692) on the WebSocket endpoints: negotiated
 * without context takeover, large messages compressed both ways, small
 * ones sent as they are, an offer limiting the server window declined,
 * and compressed input that is broken (1007) or inflates past
 * maestro_ws_max_message (1009).
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { startMaestro, submit, chain, waitStatus } from './lib/harness.mjs';


const ANSWER = 'permessage-deflate; server_no_context_takeover; '
               + 'client_no_context_takeover';


/* a raw client: the handshake with an extension offer, then frames */
function raw(port, path, ext) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let buf = Buffer.alloc(0), head = null;
        const frames = [];

        s.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            if (head === null) {
                const i = buf.indexOf('\r\n\r\n');
                if (i < 0) return;
                head = buf.subarray(0, i).toString();
                buf = buf.subarray(i + 4);
                resolve({ s, head, frames, send, waitFrame });
            }
            for (;;) {
                if (buf.length < 2) return;
                let n = buf[1] & 0x7f, off = 2;
                if (n === 126) { n = buf.readUInt16BE(2); off = 4; }
                else if (n === 127) { n = Number(buf.readBigUInt64BE(2));
                                      off = 10; }
                if (buf.length < off + n) return;
                frames.push({ rsv1: !!(buf[0] & 0x40), opcode: buf[0] & 0xf,
                              payload: buf.subarray(off, off + n) });
                buf = buf.subarray(off + n);
            }
        });
        s.on('error', reject);

        s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n`
                + 'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
                + `Sec-WebSocket-Key: ${crypto.randomBytes(16)
                    .toString('base64')}\r\n`
                + (ext ? `Sec-WebSocket-Extensions: ${ext}\r\n` : '')
                + '\r\n');

        function send(payload, rsv1) {
            const key = crypto.randomBytes(4);
            const n = payload.length;
            const hd = n < 126 ? Buffer.from([0, 0x80 | n])
                : n < 65536 ? Buffer.from([0, 0x80 | 126, n >> 8, n & 255])
                    : (() => { const b = Buffer.alloc(10); b[1] = 0x80 | 127;
                               b.writeBigUInt64BE(BigInt(n), 2); return b; })();
            hd[0] = 0x80 | (rsv1 ? 0x40 : 0) | 0x1;
            const body = Buffer.alloc(n);
            for (let i = 0; i < n; i++) body[i] = payload[i] ^ key[i % 4];
            s.write(Buffer.concat([hd, key, body]));
        }

        async function waitFrame(pred, ms = 5000) {
            const t0 = Date.now();
            for (;;) {
                const f = frames.find(pred);
                if (f) return f;
                if (Date.now() - t0 > ms) throw new Error('no such frame');
                await new Promise((r) => setTimeout(r, 20));
            }
        }
    });
}


function deflate(text) {
    const z = zlib.deflateRawSync(Buffer.from(text),
                                  { flush: zlib.constants.Z_SYNC_FLUSH });
    return z.subarray(0, z.length - 4);     /* without 00 00 ff ff */
}


describe('WebSocket permessage-deflate', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 1,
            http: ['maestro_ws_max_message 64k;'],
        });
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

    test('negotiated; large server messages compressed, small ones not',
         async () => {
        const w = await submit(m.base, {
            prompt: 'x'.repeat(2000),
            workflow: chain(['a', 'echo']),
        });
        await waitStatus(m.base, w.id, 'complete', 10000);

        const c = await raw(m.port, `/api/v1/workflows/${w.id}/ws`,
                            'permessage-deflate; client_max_window_bits');
        assert.match(c.head, new RegExp(`Sec-WebSocket-Extensions: ${ANSWER}`));

        const done = await c.waitFrame((f) => {
            const t = f.rsv1 ? zlib.inflateRawSync(Buffer.concat([
                f.payload, Buffer.from([0, 0, 0xff, 0xff])]),
                { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : f.payload;
            return JSON.parse(t).type === 'done';
        });
        /* the done event carries the 2000-byte result: worth compressing */
        assert.equal(done.rsv1, true);

        /* small messages (the first workflow_update) go as they are */
        const first = c.frames[0];
        assert.equal(first.rsv1, false);
        assert.equal(JSON.parse(first.payload).type, 'workflow_update');
        c.s.destroy();
    });

    test('the ws client (deflate on both ways) gets everything intact',
         async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${m.port}/api/v1/ws/dz`,
                                 { perMessageDeflate: { threshold: 0 } });
        await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
        assert.match(ws.extensions, /permessage-deflate/);

        const got = [];
        ws.on('message', (d) => got.push(JSON.parse(d)));

        /* a compressed 3 kB message from the client */
        ws.send(JSON.stringify({ type: 'prompt_submission',
                                 prompt: 'y'.repeat(3000),
                                 workflow: chain(['a', 'echo']) }));

        const t0 = Date.now();
        while (!got.some((x) => x.type === 'done')) {
            if (Date.now() - t0 > 5000) throw new Error('no done');
            await new Promise((r) => setTimeout(r, 20));
        }
        const done = got.find((x) => x.type === 'done');
        assert.match(done.data.result, /y{3000}/);
        ws.close(1000);
    });

    test('an offer that limits the server window is declined', async () => {
        const c = await raw(m.port, '/api/v1/ws/dz2',
                            'permessage-deflate; server_max_window_bits=10');
        assert.doesNotMatch(c.head, /Sec-WebSocket-Extensions/);
        c.s.destroy();
    });

    test('broken compressed data closes with 1007', async () => {
        const c = await raw(m.port, '/api/v1/ws/dz3', 'permessage-deflate');
        c.send(Buffer.from([0xff, 0xfe, 0xfd, 0x01, 0x02]), true);
        const cl = await c.waitFrame((f) => f.opcode === 0x8);
        assert.equal(cl.payload.readUInt16BE(0), 1007);
        c.s.destroy();
    });

    test('compressed input that inflates past the limit closes with 1009',
         async () => {
        const c = await raw(m.port, '/api/v1/ws/dz4', 'permessage-deflate');
        const big = JSON.stringify({ type: 'subscribe',
                                     pad: 'z'.repeat(200 * 1024) });
        const z = deflate(big);
        assert.ok(z.length < 64 * 1024, 'small on the wire');
        c.send(z, true);
        const cl = await c.waitFrame((f) => f.opcode === 0x8);
        assert.equal(cl.payload.readUInt16BE(0), 1009);
        c.s.destroy();
    });
});
