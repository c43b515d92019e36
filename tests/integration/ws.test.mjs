/*
 * Copyright (C) Maestro authors
 */

/*
 * WebSocket (RFC 6455) protocol: GET /api/v1/workflows/{id}/ws and
 * GET /api/v1/ws/{user_id}. The sessions (prompt_submission, subscribe,
 * cancel, user fan-out, the monitor feed, server pings) are in
 * ws_session.test.mjs; the clients in lib/ws.mjs.
 *
 * The protocol cases follow the Autobahn TestSuite case groups (cited as
 * "Autobahn 2.4" etc.): 1.x framing, 2.x ping/pong, 3.x reserved bits, 4.x
 * reserved opcodes, 5.x fragmentation, 6.x UTF-8, 7.x close handling, 9.x
 * big messages (around maestro_ws_max_message). They are driven by a raw
 * client over node:net with its own frame encoder, so that a test can send
 * what a well-behaved client library never would (unmasked frames, bad
 * lengths, reserved bits), and read the server's Close frame and its exact
 * status code. Normal use goes through the "ws" package.
 *
 * One server, P: one worker, maestro_ws_max_message 64k.
 *
 * Where the server may legitimately drop what was queued before a Close
 * (RFC 6455 section 5.5.1: nothing is sent after a Close; wslay sends a
 * queued Close ahead of queued data messages), a test first waits for the
 * reply to its valid message and only then sends the violation, instead of
 * accepting Autobahn's "non-strict" outcome.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, submit, waitStatus, chain, sleep, stopClean,
} from './lib/harness.mjs';
import {
    NO_SUCH_ID, OP, frame, text, ping, pong, closeFrame, sized, RawWS,
    rawHttp, wsRequest, rawOpen, expectClose, wsOpen, wsUrl, replay,
} from './lib/ws.mjs';


let probeSeq = 0;       /* numbers the tags of the 6.5-6.12 messages */


/* ========================================================================== */

describe('WebSocket protocol (Autobahn TestSuite groups)', () => {
    let m;
    let wfId;       /* a finished workflow */
    const opened = [];

    async function open(path, opts) {
        const c = await rawOpen(m.port, path, opts);
        opened.push(c);
        return c;
    }

    before(async () => {
        m = await startMaestro({ workers: 1,
                                 http: 'maestro_ws_max_message 64k;' });
        const w = await submit(m.base, { prompt: 'for the ws tests',
                                         workflow: chain(['a', 'echo']) });
        await waitStatus(m.base, w.id, 'complete');
        wfId = w.id;
    });

    after(async () => {
        for (const c of opened) {
            c.destroy();
        }
        await stopClean(m);
    });


    /* ---- the opening handshake (RFC 6455 section 4.2) -------------------- */

    describe('handshake', () => {
        test('a valid handshake: 101, Upgrade, Connection, the RFC\'s '
             + 'example Sec-WebSocket-Accept', async () => {
            /* RFC 6455 section 1.3: this key gives this accept value */
            const key = 'dGhlIHNhbXBsZSBub25jZQ==';
            const r = await rawHttp(m.port, wsRequest(
                m.port, '/api/v1/ws/hs-user', {
                    key,
                    /* tokens in a list, any case (4.2.1 items 3 and 4) */
                    headers: { Upgrade: 'WebSocket',
                               Connection: 'keep-alive, Upgrade' },
                }));
            try {
                assert.equal(r.status, 101, r.statusLine);
                assert.equal(r.headers['sec-websocket-accept'],
                             's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
                assert.equal(r.headers.upgrade.toLowerCase(), 'websocket');
                assert.match(r.headers.connection, /upgrade/i);
                const c = new RawWS(r.sock, r.rest);
                opened.push(c);
                await c.probe();
            } finally {
                if (r.sock) {
                    r.sock.destroy();
                }
            }
        });

        const bad = [
            ['no Upgrade header', { headers: { Upgrade: null } }],
            ['Upgrade: h2c', { headers: { Upgrade: 'h2c' } }],
            ['no Connection: upgrade', { headers: { Connection:
                                                    'keep-alive' } }],
            ['Sec-WebSocket-Version: 8', { headers: {
                'Sec-WebSocket-Version': '8' } }],
            ['no Sec-WebSocket-Version', { headers: {
                'Sec-WebSocket-Version': null } }],
            ['no Sec-WebSocket-Key', { headers: {
                'Sec-WebSocket-Key': null } }],
            ['a short Sec-WebSocket-Key', { key: 'abc' }],
            ['a 24-character key that is not 16 bytes of base64',
             { key: 'AAAAAAAAAAAAAAAAAAAAAAAA' }],
            ['a key that is not base64', { key: '!!!!!!!!!!!!!!!!!!!!!!==' }],
            ['HTTP/1.0', { version: 'HTTP/1.0' }],
        ];

        for (const [what, o] of bad) {
            test(`${what} -> 400 bad_handshake with `
                 + 'Sec-WebSocket-Version: 13', async () => {
                for (const path of ['/api/v1/ws/hs-user',
                                    `/api/v1/workflows/${wfId}/ws`]) {
                    const r = await rawHttp(m.port,
                                            wsRequest(m.port, path, o));
                    assert.equal(r.status, 400, `${path}: ${r.statusLine} `
                                 + r.body);
                    assert.equal(r.headers['sec-websocket-version'], '13',
                                 `${path}: ${JSON.stringify(r.headers)}`);
                    assert.equal(r.json?.error?.code, 'bad_handshake',
                                 r.body);
                    assert.ok(!r.headers['sec-websocket-accept']);
                }
            });
        }

        test('POST -> 405 method_not_allowed, Allow: GET', async () => {
            for (const path of ['/api/v1/ws/hs-user',
                                `/api/v1/workflows/${wfId}/ws`]) {
                const r = await rawHttp(m.port, wsRequest(m.port, path, {
                    method: 'POST', headers: { 'Content-Length': '0' } }));
                assert.equal(r.status, 405, `${path}: ${r.body}`);
                assert.equal(r.json?.error?.code, 'method_not_allowed');
                assert.match(r.headers.allow || '', /GET/);
            }
        });

        test('an unknown or malformed workflow id -> 404 before the upgrade',
             async () => {
            for (const id of [NO_SUCH_ID, 'nope', 'wf_0123']) {
                const r = await rawHttp(m.port, wsRequest(
                    m.port, `/api/v1/workflows/${id}/ws`));
                assert.equal(r.status, 404, `${id}: ${r.body}`);
                assert.equal(r.json?.error?.code, 'not_found');
                assert.ok(!r.headers['sec-websocket-accept']);
            }
        });

        test('?last_event_id that is not a number -> 400', async () => {
            const r = await rawHttp(m.port, wsRequest(
                m.port, `/api/v1/workflows/${wfId}/ws?last_event_id=x`));
            assert.equal(r.status, 400, r.body);
            assert.equal(r.json?.error?.code, 'invalid_field');
        });

        test('the "ws" package connects and round-trips; Close 1000 is '
             + 'echoed', async () => {
            const h = await wsOpen(wsUrl(m, '/api/v1/ws/ws-pkg-user'));
            h.send({ type: 'hello' });
            const e = await h.waitMsg((x) => x.type === 'error');
            assert.equal(e.code, 'invalid_field');
            assert.match(e.message, /"hello"/);
            const cl = await h.close();
            assert.equal(cl.code, 1000, 'the server echoes 1000');
        });
    });


    /* ---- 1.x framing --------------------------------------------------- */

    describe('1.x framing', () => {
        /* Autobahn 1.1.1-1.1.6: text messages of 0, 125, 126, 127, 65535
           and (here) 65536 = maestro_ws_max_message bytes: each length
           form (7-bit, 16-bit, 64-bit) */
        test('Autobahn 1.1.x: text messages of every length form are '
             + 'read whole', async () => {
            const c = await open();
            c.write(text(''));
            const e = await c.waitJson((x) => x.code === 'invalid_json');
            assert.equal(e.type, 'error');

            for (const len of [125, 126, 127, 65535, 65536]) {
                const tag = `len-${len}`;
                const payload = sized(tag, len);
                assert.equal(Buffer.byteLength(payload), len);
                c.write(text(payload));
                await c.waitJson((x) => x.type === 'error'
                                 && x.message.includes(`"${tag}"`),
                                 3000, `the answer to ${len} bytes`);
            }
            await c.probe();
        });

        test('Autobahn 1.1.7/1.1.8: a 65535-byte message in 997-byte '
             + 'chops', async () => {
            const c = await open();
            await c.writeChopped(text(sized('chopped', 65535)), 997, 0);
            await c.waitJson((x) => x.message?.includes('"chopped"'), 5000);
        });

        test('a frame in the same TCP segment as the handshake is read',
             async () => {
            const c = await open('/api/v1/ws/raw-user', {
                extra: text(JSON.stringify({ type: 'early-bird' })) });
            await c.waitJson((x) => x.message?.includes('"early-bird"'));
        });

        test('several frames in one write, and a frame byte by byte',
             async () => {
            const c = await open();
            c.write(text('{"type":"one"}'), text('{"type":"two"}'),
                    text('{"type":"three"}'));
            await c.waitJson((x) => x.message?.includes('"three"'));
            const order = c.json().map((x) => /"(\w+)"/
                .exec(x.message)[1]);
            assert.deepEqual(order, ['one', 'two', 'three']);
            await c.writeChopped(text('{"type":"bytewise"}'), 1, 1);
            await c.waitJson((x) => x.message?.includes('"bytewise"'));
        });

        test('Autobahn 1.2.x: a binary message -> 1003 (this server takes '
             + 'text messages only)', async () => {
            /* Autobahn expects an echo; Maestro's protocol is JSON text,
               and 1003 is RFC 6455 7.4.1's "cannot accept this type" */
            for (const len of [0, 125, 126, 65535]) {
                const c = await open();
                c.write(frame({ opcode: OP.BIN, payload: Buffer.alloc(len,
                                                                    0xfe) }));
                await expectClose(c, 1003, `binary ${len} bytes`);
            }
        });

        test('RFC 6455 5.1: an unmasked client frame -> 1002', async () => {
            const c = await open();
            await c.probe();
            c.write(text('{"type":"unmasked"}', { mask: false }),
                    ping('after'));
            await expectClose(c, 1002, 'unmasked text', { noPong: true });
            assert.ok(!c.json().some((x) => x.message?.includes('unmasked')),
                      'the unmasked message is not processed');
        });
    });


    /* ---- 2.x ping/pong ------------------------------------------------- */

    describe('2.x ping/pong', () => {
        test('Autobahn 2.1-2.4: a Ping gets a Pong with the same payload '
             + '(empty, text, binary, 125 bytes)', async () => {
            const c = await open();
            const payloads = [Buffer.alloc(0), Buffer.from('Hello, world!'),
                              Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc,
                                           0xfb, 0x00, 0xff]),
                              Buffer.alloc(125, 0xfe)];
            for (const p of payloads) {
                const before = c.frames.length;
                c.write(ping(p));
                const f = await c.wait(() => c.frames.slice(before)
                                       .find((x) => x.opcode === OP.PONG));
                assert.equal(f.fin, true);
                assert.deepEqual(f.payload, p);
            }
            await c.probe();
        });

        test('Autobahn 2.5: a Ping with a 126-byte payload -> 1002 '
             + '(RFC 6455 5.5: control frames carry at most 125 bytes)',
             async () => {
            const c = await open();
            await c.probe();
            c.write(ping(Buffer.alloc(126, 0xfe)));
            await expectClose(c, 1002, 'ping of 126 bytes', { noPong: true });
        });

        test('Autobahn 2.6: a 125-byte Ping sent byte by byte', async () => {
            const c = await open();
            const p = Buffer.alloc(125, 0x61);
            await c.writeChopped(ping(p), 1, 1);
            const f = await c.wait(() => c.frames.find((x) => x.opcode
                                                       === OP.PONG), 5000);
            assert.deepEqual(f.payload, p);
        });

        test('Autobahn 2.7-2.9: unsolicited Pongs are ignored; a Ping after '
             + 'one gets its own Pong', async () => {
            const c = await open();
            c.write(pong(), pong('unsolicited'), ping('pong-me'));
            const f = await c.wait(() => c.frames.find((x) => x.opcode
                                                       === OP.PONG));
            assert.equal(f.payload.toString(), 'pong-me');
            await c.probe();
            assert.equal(c.frames.filter((x) => x.opcode === OP.PONG).length,
                         1);
        });

        test('Autobahn 2.10/2.11: ten Pings (in one write, then spread) get '
             + 'Pongs, in order, ending with the last', async () => {
            const c = await open();
            const all = [];
            for (let i = 0; i < 10; i++) {
                all.push(ping(`payload-${i}`));
            }
            c.write(...all);
            await c.probe();
            for (let i = 10; i < 20; i++) {
                c.write(ping(`payload-${i}`));
                await sleep(5);
            }
            await c.wait(() => c.frames.some((x) => x.opcode === OP.PONG
                         && x.payload.toString() === 'payload-19'));
            const got = c.frames.filter((x) => x.opcode === OP.PONG)
                .map((x) => Number(x.payload.toString().split('-')[1]));
            /* RFC 6455 5.5.3 allows answering only the latest Ping */
            for (let i = 1; i < got.length; i++) {
                assert.ok(got[i] > got[i - 1], `pongs in order: ${got}`);
            }
            assert.equal(got[got.length - 1], 19);
            assert.ok(got.includes(9), `the last of the burst: ${got}`);
        });
    });


    /* ---- 3.x reserved bits --------------------------------------------- */

    describe('3.x reserved bits (no extension negotiated)', () => {
        const cases = [
            ['3.1', 'text RSV=1', () => text('{"type":"rsv"}', { rsv: 1 })],
            ['3.2', 'text RSV=2 after a valid message',
             () => text('{"type":"rsv"}', { rsv: 2 })],
            ['3.3', 'text RSV=3', () => text('{"type":"rsv"}', { rsv: 3 })],
            ['3.4', 'text RSV=4 (RSV1, per-message compression)',
             () => text('{"type":"rsv"}', { rsv: 4 })],
            ['3.5', 'binary RSV=5',
             () => frame({ opcode: OP.BIN, payload: 'ab', rsv: 5 })],
            ['3.6', 'Ping RSV=6', () => ping('rsv', { rsv: 6 })],
            ['3.7', 'Close RSV=7', () => closeFrame(1000, '', { rsv: 7 })],
        ];
        for (const [id, what, make] of cases) {
            test(`Autobahn ${id}: ${what} -> 1002, and no Pong to a Ping `
                 + 'behind it', async () => {
                const c = await open();
                await c.probe();
                c.write(make(), ping('behind'));
                await expectClose(c, 1002, what, { noPong: true });
                assert.ok(!c.json().some((x) => x.message?.includes('rsv')));
            });
        }
    });


    /* ---- 4.x reserved opcodes ------------------------------------------ */

    describe('4.x reserved opcodes', () => {
        for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
            const group = op < 8 ? `4.1.${op - 2}` : `4.2.${op - 10}`;
            test(`Autobahn ${group}: opcode ${op} -> 1002`, async () => {
                const c = await open();
                await c.probe();
                c.write(frame({ opcode: op, payload: op % 2 ? 'reserved'
                                : '' }), ping('behind'));
                await expectClose(c, 1002, `opcode ${op}`, { noPong: true });
            });
        }

        test('a reserved opcode between two fragments -> 1002', async () => {
            const c = await open();
            await c.probe();
            c.write(text('{"type":', { fin: false }),
                    frame({ opcode: 5, payload: 'x' }),
                    frame({ opcode: OP.CONT, payload: '"frag"}' }));
            await expectClose(c, 1002, 'opcode 5 mid-message');
        });
    });


    /* ---- 5.x fragmentation --------------------------------------------- */

    describe('5.x fragmentation', () => {
        test('Autobahn 5.1: a fragmented Ping -> 1002 (RFC 6455 5.5: '
             + 'control frames must not be fragmented)', async () => {
            const c = await open();
            await c.probe();
            c.write(ping('frag', { fin: false }),
                    frame({ opcode: OP.CONT, payload: 'ment' }));
            await expectClose(c, 1002, 'fragmented ping', { noPong: true });
        });

        test('Autobahn 5.2: a fragmented Pong -> 1002', async () => {
            const c = await open();
            await c.probe();
            c.write(pong('frag', { fin: false }),
                    frame({ opcode: OP.CONT, payload: 'ment' }));
            await expectClose(c, 1002, 'fragmented pong');
        });

        test('Autobahn 5.3-5.5: a text message in 2 fragments (one write, '
             + 'one frame per write) and in 1-byte fragments', async () => {
            const c = await open();
            c.write(text('{"type":"fr', { fin: false }),
                    frame({ opcode: OP.CONT, payload: 'ag1"}' }));
            await c.waitJson((x) => x.message?.includes('"frag1"'));

            c.write(text('{"type":"fr', { fin: false }));
            await sleep(50);
            c.write(frame({ opcode: OP.CONT, payload: 'ag2"}' }));
            await c.waitJson((x) => x.message?.includes('"frag2"'));

            const s = Buffer.from('{"type":"frag3"}');
            const parts = [];
            for (let i = 0; i < s.length; i++) {
                parts.push(frame({ opcode: i ? OP.CONT : OP.TEXT,
                                   fin: i === s.length - 1,
                                   payload: s.subarray(i, i + 1) }));
            }
            c.write(...parts);
            await c.waitJson((x) => x.message?.includes('"frag3"'));
        });

        test('Autobahn 5.6-5.8: a Ping between fragments is answered '
             + 'at once; the message completes', async () => {
            const c = await open();
            c.write(text('{"type":"inter', { fin: false }),
                    ping('between'));
            const f = await c.wait(() => c.frames.find((x) => x.opcode
                                                       === OP.PONG));
            assert.equal(f.payload.toString(), 'between');
            assert.equal(c.msgs.length, 0, 'no message yet');
            c.write(frame({ opcode: OP.CONT, payload: 'leaved"}' }));
            await c.waitJson((x) => x.message?.includes('"interleaved"'));
        });

        test('Autobahn 5.19/5.20: 5 fragments with Pings and a Pong in '
             + 'between, spread over time', async () => {
            const c = await open();
            const s = ['{"type"', ':"fi', 've-fr', 'ags', '"}'];
            for (let i = 0; i < s.length; i++) {
                c.write(frame({ opcode: i ? OP.CONT : OP.TEXT,
                                fin: i === s.length - 1, payload: s[i] }));
                if (i === 1 || i === 3) {
                    c.write(ping(`p${i}`), pong('unsolicited'));
                }
                await sleep(20);
            }
            await c.waitJson((x) => x.message?.includes('"five-frags"'));
            const pongs = c.frames.filter((x) => x.opcode === OP.PONG)
                .map((x) => x.payload.toString());
            assert.deepEqual(pongs, ['p1', 'p3']);
        });

        test('Autobahn 5.9/5.10: a continuation with no message started '
             + '(fin=1 and fin=0) -> 1002', async () => {
            for (const fin of [true, false]) {
                const c = await open();
                await c.probe();
                c.write(frame({ opcode: OP.CONT, fin, payload: 'orphan' }),
                        ping('behind'));
                await expectClose(c, 1002, `orphan continuation fin=${fin}`,
                                  { noPong: true });
            }
        });

        test('Autobahn 5.15: a text frame starts while a message is '
             + 'unfinished -> 1002', async () => {
            const c = await open();
            c.write(text('{"type":', { fin: false }),
                    frame({ opcode: OP.CONT, payload: '"ok-one"}' }));
            await c.waitJson((x) => x.message?.includes('"ok-one"'));
            c.write(text('{"type":', { fin: false }),
                    text('"second"}', { fin: true }));
            await expectClose(c, 1002, 'a new text frame mid-message');
        });

        test('Autobahn 5.17/5.18: two text frames with fin=0 in a row '
             + '-> 1002', async () => {
            const c = await open();
            await c.probe();
            c.write(text('{"type":', { fin: false }),
                    text('"x"}', { fin: false }));
            await expectClose(c, 1002, 'text fin=0 after text fin=0');
        });
    });


    /* ---- 6.x UTF-8 ----------------------------------------------------- */

    describe('6.x UTF-8 handling', () => {
        test('Autobahn 6.1: three empty fragments make an empty message',
             async () => {
            const c = await open();
            c.write(text('', { fin: false }),
                    frame({ opcode: OP.CONT, fin: false }),
                    frame({ opcode: OP.CONT }));
            const e = await c.waitJson((x) => x.type === 'error');
            assert.equal(e.code, 'invalid_json');
            await c.probe();
        });

        test('Autobahn 6.2.2-6.2.4: a character split across fragments is '
             + 'valid (2-byte κ split 1|1, 4-byte 𝄞 split 1|1|1|1)',
             async () => {
            const c = await open();
            const s = Buffer.from('{"type":"κόσμε"}');
            const cut = s.indexOf(0xce) + 1;    /* inside κ (ce ba) */
            c.write(text(s.subarray(0, cut), { fin: false }),
                    frame({ opcode: OP.CONT, payload: s.subarray(cut) }));
            const e = await c.waitJson((x) => x.type === 'error');
            assert.match(e.message, /"κόσμε"/);

            const g = Buffer.from('{"type":"clef-𝄞"}');
            const at = g.indexOf(0xf0);
            const frs = [text(g.subarray(0, at + 1), { fin: false })];
            for (let i = at + 1; i < at + 4; i++) {
                frs.push(frame({ opcode: OP.CONT, fin: false,
                                 payload: g.subarray(i, i + 1) }));
            }
            frs.push(frame({ opcode: OP.CONT, payload: g.subarray(at + 4) }));
            c.write(...frs);
            const e2 = await c.waitJson((x) => x.message?.includes('clef'));
            assert.match(e2.message, /"clef-𝄞"/);
        });

        /* Autobahn 6.5-6.7, 6.9-6.12 valid edges: each one's text is a
           JSON object whose "type" holds the characters */
        const valid = [
            ['6.7.1 U+0000 (alone, not JSON)', Buffer.from([0x00])],
            ['6.7.2 U+0080', Buffer.from([0xc2, 0x80])],
            ['6.7.3 U+07FF / U+0800', Buffer.from([0xdf, 0xbf, 0xe0, 0xa0,
                                                   0x80])],
            ['6.7.4 U+FFFF', Buffer.from([0xef, 0xbf, 0xbf])],
            ['6.9.x U+D7FF / U+E000 / U+FFFD', Buffer.from([
                0xed, 0x9f, 0xbf, 0xee, 0x80, 0x80, 0xef, 0xbf, 0xbd])],
            ['6.10.x U+10000 / U+10FFFF', Buffer.from([
                0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf])],
        ];
        test('Autobahn 6.5-6.12: valid edge characters are accepted '
             + '(U+0000, U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFD, '
             + 'U+FFFF, U+10000, U+10FFFF)', async () => {
            const c = await open();
            for (const [what, chars] of valid) {
                if (chars.length === 1 && chars[0] === 0) {
                    c.write(text(chars));
                    const e = await c.waitJson((x) => x.code
                                               === 'invalid_json');
                    assert.equal(e.type, 'error', what);
                    continue;
                }
                const tag = `edge-${++probeSeq}-`;
                c.write(text(Buffer.concat([Buffer.from(`{"type":"${tag}`),
                                            chars, Buffer.from('"}')])));
                const e = await c.waitJson((x) => x.type === 'error'
                                           && x.message.includes(tag),
                                           3000, what);
                assert.ok(e.message.includes(tag + chars.toString('utf8')),
                          `${what}: ${e.message}`);
            }
            await c.probe();
        });

        const invalid = [
            ['6.3.1', 'a lone continuation byte 0x80', [0x80]],
            ['6.8.1', 'byte 0xfe', [0xfe]],
            ['6.8.2', 'byte 0xff', [0xff]],
            ['6.18.1', 'overlong "/" (c0 af)', [0xc0, 0xaf]],
            ['6.18.2', 'overlong "/" (e0 80 af)', [0xe0, 0x80, 0xaf]],
            ['6.19.1', 'overlong NUL (f0 80 80 80)', [0xf0, 0x80, 0x80,
                                                      0x80]],
            ['6.20.1', 'a lone high surrogate (ed a0 80)', [0xed, 0xa0,
                                                            0x80]],
            ['6.21.1', 'a surrogate pair (ed a0 80 ed b0 80)',
             [0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80]],
            ['6.11.5', 'beyond U+10FFFF (f4 90 80 80)', [0xf4, 0x90, 0x80,
                                                         0x80]],
            ['6.14.x', 'a 2-byte lead followed by ASCII (ce 41)', [0xce,
                                                                   0x41]],
            ['6.3.2', 'a 2-byte lead at the very end (ce)', [0xce]],
        ];
        for (const [id, what, bytes] of invalid) {
            test(`Autobahn ${id}: ${what} -> 1007`, async () => {
                const c = await open();
                await c.probe();
                const body = bytes.length === 1 && bytes[0] === 0xce
                    ? Buffer.concat([Buffer.from('{"type":"bad"}'),
                                     Buffer.from(bytes)])
                    : Buffer.concat([Buffer.from('{"type":"bad-'),
                                     Buffer.from(bytes), Buffer.from('"}')]);
                c.write(text(body), ping('behind'));
                await expectClose(c, 1007, what, { noPong: true });
            });
        }

        test('Autobahn 6.4.1/6.4.2: fail fast: invalid UTF-8 in the first '
             + 'fragment closes with 1007 before the message ends',
             async () => {
            const c = await open();
            await c.probe();
            c.write(text(Buffer.from([0x7b, 0xf4, 0x90, 0x80, 0x80]),
                         { fin: false }));
            /* no further fragment is sent */
            await expectClose(c, 1007, 'invalid first fragment');
        });

        test('Autobahn 6.4.3/6.4.4: invalid UTF-8 in the second fragment '
             + '-> 1007', async () => {
            const c = await open();
            await c.probe();
            c.write(text('{"type":"', { fin: false }),
                    frame({ opcode: OP.CONT,
                            payload: Buffer.from([0xed, 0xa0, 0x80, 0x22,
                                                  0x7d]) }));
            await expectClose(c, 1007, 'invalid second fragment');
        });

        test('a character cut by the end of the message (valid fragments, '
             + 'invalid whole) -> 1007', async () => {
            const c = await open();
            await c.probe();
            c.write(text('{"type":"x"}', { fin: false }),
                    frame({ opcode: OP.CONT, payload: Buffer.from([0xe2,
                                                                  0x82]) }));
            await expectClose(c, 1007, 'truncated 3-byte character');
        });
    });


    /* ---- 7.x close handling -------------------------------------------- */

    describe('7.x close handling', () => {
        test('Autobahn 7.1.1: Close 1000 is echoed, then the server closes '
             + 'the TCP connection', async () => {
            const c = await open();
            await c.probe();
            c.write(closeFrame(1000, 'bye'));
            const cl = await expectClose(c, 1000, 'echo 1000',
                                           { reply: false });
            assert.equal(cl.reason, 'bye', 'the reason is echoed');
        });

        test('Autobahn 7.1.2-7.1.4: after its Close the client\'s Close, '
             + 'Ping and text are ignored', async () => {
            const c = await open();
            await c.probe();
            c.write(closeFrame(1000), closeFrame(1001), ping('late'),
                    text('{"type":"late"}'));
            await expectClose(c, 1000, 'frames behind a Close',
                              { noPong: true, reply: false });
            assert.equal(c.frames.filter((f) => f.opcode === OP.CLOSE)
                         .length, 1);
            assert.ok(!c.json().some((x) => x.message?.includes('"late"')));
        });

        test('Autobahn 7.1.6: a Close while the server is sending many '
             + 'messages is still answered', async () => {
            const c = await open();
            for (let i = 0; i < 200; i++) {
                c.write(text(JSON.stringify({ type: `burst-${i}` })));
            }
            c.write(closeFrame(1000));
            const cl = await c.waitClose(5000);
            assert.equal(cl.code, 1000);
            await c.waitEnd(3000);
        });

        test('Autobahn 7.3.1: an empty Close is answered with an empty '
             + 'Close', async () => {
            const c = await open();
            await c.probe();
            c.write(closeFrame(null));
            const cl = await expectClose(c, null, 'empty close',
                                         { reply: false });
            assert.equal(cl.length, 0);
        });

        test('Autobahn 7.3.2: a Close with a 1-byte body -> 1002 (RFC 6455 '
             + '5.5.1: a body starts with a 2-byte code)', async () => {
            const c = await open();
            await c.probe();
            c.write(frame({ opcode: OP.CLOSE, payload: Buffer.from([0x03])
                          }));
            await expectClose(c, 1002, 'close with a 1-byte body',
                              { reply: false });
        });

        test('Autobahn 7.3.3-7.3.5: a code alone, a code with a reason, a '
             + '123-byte reason are echoed', async () => {
            for (const reason of ['', 'Hello World!', 'r'.repeat(123)]) {
                const c = await open();
                await c.probe();
                c.write(closeFrame(1000, reason));
                const cl = await expectClose(c, 1000,
                                             `reason ${reason.length}`,
                                             { reply: false });
                assert.equal(cl.reason, reason);
            }
        });

        test('Autobahn 7.3.6: a Close with a 124-byte reason (body 126 '
             + 'bytes) -> 1002', async () => {
            const c = await open();
            await c.probe();
            c.write(closeFrame(1000, 'r'.repeat(124)));
            await expectClose(c, 1002, 'close body of 126 bytes',
                              { reply: false });
        });

        test('Autobahn 7.5.1: a Close whose reason is invalid UTF-8 -> 1007',
             async () => {
            /* wslay checks the reason's UTF-8 like a text payload and
               answers 1007 (Autobahn also accepts 1002) */
            const c = await open();
            await c.probe();
            c.write(closeFrame(1000, Buffer.from([0xce, 0xba, 0xe1, 0xbd,
                                                  0xb9, 0xcf, 0x83, 0xce,
                                                  0xbc, 0xce, 0xb5, 0xed,
                                                  0xa0, 0x80, 0x65, 0x64,
                                                  0x69, 0x74, 0x65, 0x64])));
            await expectClose(c, 1007, 'invalid UTF-8 close reason',
                              { reply: false });
        });

        /* Autobahn 7.7.1-7.7.13: the valid codes are echoed */
        test('Autobahn 7.7.x: valid codes 1000-1003, 1007-1011, 3000, 3999, '
             + '4000, 4999 are echoed', async () => {
            const codes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                           1011, 3000, 3999, 4000, 4999];
            await Promise.all(codes.map(async (code) => {
                const c = await open();
                await c.probe();
                c.write(closeFrame(code));
                await expectClose(c, code, `echo ${code}`,
                                  { reply: false });
            }));
        });

        /* Autobahn 7.9.x (and 7.13.x): codes a peer must not send */
        test('Autobahn 7.9.x/7.13.x: invalid codes 0, 999, 1004, 1005, '
             + '1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535 -> 1002',
             async () => {
            const codes = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000,
                           2999, 5000, 65535];
            await Promise.all(codes.map(async (code) => {
                const c = await open();
                await c.probe();
                c.write(closeFrame(code), ping('behind'));
                await expectClose(c, 1002, `invalid code ${code}`,
                                  { noPong: true, reply: false });
            }));
        });
    });


    /* ---- 9.x big messages, around maestro_ws_max_message 64k ---------- */

    describe('9.x big messages (maestro_ws_max_message 64k)', () => {
        test('Autobahn 9.1.x: exactly 65536 bytes in one frame and in 4 '
             + 'fragments are read', async () => {
            const c = await open();
            c.write(text(sized('max-one', 65536)));
            await c.waitJson((x) => x.message?.includes('"max-one"'), 5000);

            const s = Buffer.from(sized('max-frag', 65536));
            const q = 16384;
            c.write(text(s.subarray(0, q), { fin: false }),
                    frame({ opcode: OP.CONT, fin: false,
                            payload: s.subarray(q, 2 * q) }),
                    frame({ opcode: OP.CONT, fin: false,
                            payload: s.subarray(2 * q, 3 * q) }),
                    frame({ opcode: OP.CONT, payload: s.subarray(3 * q) }));
            await c.waitJson((x) => x.message?.includes('"max-frag"'), 5000);
        });

        test('one byte over in one frame -> 1009, as soon as the header '
             + 'says so', async () => {
            const c = await open();
            await c.probe();
            /* the header announces 65537 bytes; only 10 follow */
            const f = text(Buffer.alloc(10, 0x61), { declared: 65537 });
            c.write(f);
            await expectClose(c, 1009, '65537-byte frame');
        });

        test('a 1 GB frame header -> 1009 at once', async () => {
            const c = await open();
            await c.probe();
            c.write(text(Buffer.alloc(10, 0x61), { declared: 1 << 30 }));
            await expectClose(c, 1009, '1 GB frame');
        });

        test('a whole 2 MB frame from the "ws" client: it reads the 1009 '
             + 'close, not a reset', async () => {
            /* the unread rest of the frame must not turn the close into
               an RST that drops the close frame before the client reads
               it (1006 for the client, 20 times in 20) */
            const big = 'x'.repeat(2 * 1024 * 1024);
            for (let i = 0; i < 20; i++) {
                /* not compressed: 2 MB on the wire */
                const h = await wsOpen(wsUrl(m, `/api/v1/ws/big-${i}`),
                                       { perMessageDeflate: false });
                h.ws.send(big);
                const closed = await h.closedP;
                assert.equal(closed.code, 1009, `try ${i}: `
                             + JSON.stringify(closed));
            }
        });

        test('one byte over across fragments -> 1009', async () => {
            const c = await open();
            await c.probe();
            const q = 16384;
            const a = Buffer.alloc(q, 0x61);
            c.write(text(a, { fin: false }),
                    frame({ opcode: OP.CONT, fin: false, payload: a }),
                    frame({ opcode: OP.CONT, fin: false, payload: a }),
                    /* 16385 announced, 10 sent */
                    frame({ opcode: OP.CONT, payload: Buffer.alloc(10, 0x61),
                            declared: q + 1 }));
            await expectClose(c, 1009, '4 fragments, 65537 bytes');
        });
    });


    /* ---- messages ------------------------------------------------------ */

    describe('messages', () => {
        test('malformed messages get an error message; the connection '
             + 'stays usable; then a subscribe works', async () => {
            const h = await wsOpen(wsUrl(m, '/api/v1/ws/msg-user'));
            const sent = [
                ['{not json', 'invalid_json'],
                ['[1, 2]', 'invalid_json'],
                ['"a string"', 'invalid_json'],
                ['{}', 'missing_field'],
                ['{"type": 7}', 'missing_field'],
                ['{"type": "dance"}', 'invalid_field'],
                ['{"type": "subscribe"}', 'invalid_field'],
                [`{"type": "subscribe", "workflow_id": "${wfId}", `
                 + '"last_event_id": "3"}', 'invalid_field'],
                [`{"type": "subscribe", "workflow_id": "${NO_SUCH_ID}"}`,
                 'not_found'],
                ['{"type": "agent_action", "action": "cancel"}',
                 'invalid_field'],
                [`{"type": "agent_action", "workflow_id": "${wfId}"}`,
                 'missing_field'],
                [`{"type": "agent_action", "workflow_id": "${wfId}", `
                 + '"action": "explode"}', 'invalid_field'],
                ['{"type": "prompt_submission"}', 'missing_field'],
            ];
            for (const [msg, code] of sent) {
                const n = h.msgs.length;
                h.send(msg);
                await h.waitMsg((x) => h.msgs.indexOf(x) >= n
                                && x.type === 'error', 3000, msg);
                const e = h.msgs[n];
                assert.equal(e.type, 'error', msg);
                assert.equal(e.code, code, `${msg}: ${JSON.stringify(e)}`);
                assert.equal(typeof e.message, 'string');
                assert.ok(e.message.length > 0);
                assert.equal(h.closed, null, 'still open');
            }

            h.send({ type: 'subscribe', workflow_id: wfId });
            const ack = await h.waitMsg((x) => x.type === 'action_result');
            assert.deepEqual({ ...ack },
                             { type: 'action_result', action: 'subscribe',
                               ok: true, workflow_id: wfId });
            await h.waitDone(wfId);
            assert.deepEqual(h.events(wfId), await replay(m, wfId));
            await h.close();
        });

        test('approve, resume and feedback -> unsupported_action; the '
             + 'connection stays', async () => {
            const h = await wsOpen(wsUrl(m, '/api/v1/ws/hitl-user'));
            for (const action of ['approve', 'resume', 'feedback']) {
                const n = h.msgs.length;
                h.send({ type: 'agent_action', workflow_id: wfId, action });
                await h.waitMsg((x) => h.msgs.indexOf(x) >= n);
                assert.equal(h.msgs[n].type, 'error');
                assert.equal(h.msgs[n].code, 'unsupported_action', action);
                assert.match(h.msgs[n].message, new RegExp(action));
            }
            h.send({ type: 'ping-me' });
            await h.waitMsg((x) => x.message?.includes('ping-me'));
            assert.equal(h.closed, null);
            await h.close();
        });
    });
});
