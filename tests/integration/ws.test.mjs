/*
 * Copyright (C) Maestro authors
 */

/*
 * WebSocket (RFC 6455): GET /api/v1/workflows/{id}/ws and
 * GET /api/v1/ws/{user_id}.
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
 * Two servers: P (protocol: one worker, maestro_ws_max_message 64k) and S
 * (sessions: two workers with reuseport, maestro_ws_ping 1s).
 *
 * Where the server may legitimately drop what was queued before a Close
 * (RFC 6455 section 5.5.1: nothing is sent after a Close; wslay sends a
 * queued Close ahead of queued data messages), a test first waits for the
 * reply to its valid message and only then sends the violation, instead of
 * accepting Autobahn's "non-strict" outcome.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';
import {
    startMaestro, api, submit, waitStatus, openSSE, sse, chain,
    assertContiguous, strip, sleep, SSE_NAMES, ID_RE,
} from './lib/harness.mjs';


const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const NO_SUCH_ID = 'wf_ffffffffffffffffffff';
const QUICK = chain(['a', 'echo'], ['s', 'sleep', { ms: 200 }],
                    ['b', 'echo']);

const OP = { CONT: 0x0, TEXT: 0x1, BIN: 0x2, CLOSE: 0x8, PING: 0x9,
             PONG: 0xa };


/* ---- frames -------------------------------------------------------------- */

/*
 * One frame as a client sends it. payload: Buffer or string (UTF-8).
 * mask (default true: clients must mask, RFC 6455 5.3), rsv (3 bits, RSV1
 * is 4), len: force the 16- or 64-bit length form (16 / 64), declared:
 * announce a payload length different from the bytes given.
 */
function frame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0),
                 mask = true, len, declared } = {}) {
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const n = declared ?? data.length;
    let head;

    if ((n < 126 && !len) || len === 7) {
        head = Buffer.alloc(2);
        head[1] = n;
    } else if ((n < 65536 && !len) || len === 16) {
        head = Buffer.alloc(4);
        head[1] = 126;
        head.writeUInt16BE(n, 2);
    } else {
        head = Buffer.alloc(10);
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(n), 2);
    }
    head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf);

    if (!mask) {
        return Buffer.concat([head, data]);
    }

    head[1] |= 0x80;
    const key = crypto.randomBytes(4);
    const body = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) {
        body[i] = data[i] ^ key[i % 4];
    }
    return Buffer.concat([head, key, body]);
}

const text = (s, o = {}) => frame({ opcode: OP.TEXT, payload: s, ...o });
const ping = (p = '', o = {}) => frame({ opcode: OP.PING, payload: p, ...o });
const pong = (p = '', o = {}) => frame({ opcode: OP.PONG, payload: p, ...o });

function closeFrame(code, reason = Buffer.alloc(0), o = {}) {
    let payload = Buffer.alloc(0);
    if (code !== undefined && code !== null) {
        payload = Buffer.alloc(2);
        payload.writeUInt16BE(code);
        payload = Buffer.concat([payload, Buffer.isBuffer(reason) ? reason
                                          : Buffer.from(reason)]);
    }
    return frame({ opcode: OP.CLOSE, payload, ...o });
}

/* an exactly len-byte JSON message the server answers with an error naming
   tag: {"type":"<tag>","pad":"aaa..."} */
function sized(tag, len) {
    const base = `{"type":"${tag}","pad":""}`;
    assert.ok(len >= base.length, `${len} >= ${base.length}`);
    return `{"type":"${tag}","pad":"${'a'.repeat(len - base.length)}"}`;
}


/* ---- a raw client -------------------------------------------------------- */

let probeSeq = 0;

class RawWS {
    constructor(sock, rest) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.frames = [];       /* every frame, in order */
        this.msgs = [];         /* reassembled data messages */
        this.frag = null;
        this.ended = false;
        this.openedAt = Date.now();
        this.endedAt = 0;
        this.autoPong = false;
        this.kicks = new Set();

        sock.on('data', (d) => this.feed(d));
        sock.on('error', (e) => { this.error = e; });
        sock.on('close', () => {
            this.ended = true;
            this.endedAt = Date.now();
            this.kick();
        });
        if (rest && rest.length) {
            this.feed(rest);
        }
    }

    feed(d) {
        this.buf = Buffer.concat([this.buf, d]);
        this.parse();
        this.kick();
    }

    kick() {
        for (const k of [...this.kicks]) {
            k();
        }
    }

    parse() {
        for (;;) {
            const b = this.buf;
            if (b.length < 2) {
                return;
            }
            let n = b[1] & 0x7f;
            let off = 2;
            if (n === 126) {
                if (b.length < 4) {
                    return;
                }
                n = b.readUInt16BE(2);
                off = 4;
            } else if (n === 127) {
                if (b.length < 10) {
                    return;
                }
                n = Number(b.readBigUInt64BE(2));
                off = 10;
            }
            const masked = (b[1] & 0x80) !== 0;
            if (masked) {
                off += 4;
            }
            if (b.length < off + n) {
                return;
            }
            const payload = Buffer.from(b.subarray(off, off + n));
            if (masked) {
                for (let i = 0; i < n; i++) {
                    payload[i] ^= b[off - 4 + (i % 4)];
                }
            }
            const f = { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7,
                        opcode: b[0] & 0xf, masked, payload,
                        at: Date.now() };
            this.buf = b.subarray(off + n);
            this.frames.push(f);

            if (f.opcode === OP.PING && this.autoPong && !this.ended) {
                this.sock.write(pong(payload));
            }
            if (f.opcode === OP.TEXT || f.opcode === OP.BIN) {
                if (f.fin) {
                    this.msgs.push({ opcode: f.opcode, data: payload });
                } else {
                    this.frag = { opcode: f.opcode, parts: [payload] };
                }
            } else if (f.opcode === OP.CONT && this.frag) {
                this.frag.parts.push(payload);
                if (f.fin) {
                    this.msgs.push({ opcode: this.frag.opcode,
                                     data: Buffer.concat(this.frag.parts) });
                    this.frag = null;
                }
            }
        }
    }

    /* resolves with pred()'s first truthy value; rejects after timeoutMs */
    wait(pred, timeoutMs = 3000, what = 'condition') {
        return new Promise((resolve, reject) => {
            let timer;
            const check = () => {
                let v;
                try {
                    v = pred();
                } catch (e) {
                    this.kicks.delete(check);
                    clearTimeout(timer);
                    reject(e);
                    return;
                }
                if (v) {
                    this.kicks.delete(check);
                    clearTimeout(timer);
                    resolve(v);
                }
            };
            timer = setTimeout(() => {
                this.kicks.delete(check);
                reject(new Error(`timed out after ${timeoutMs} ms waiting `
                                 + `for ${what}; frames: ${this.summary()}`
                                 + `; ended: ${this.ended}`));
            }, timeoutMs);
            this.kicks.add(check);
            check();
        });
    }

    write(...bufs) {
        this.sock.write(Buffer.concat(bufs));
    }

    /* writes buf in pieces of size bytes, each its own TCP segment */
    async writeChopped(buf, size, delayMs = 1) {
        for (let off = 0; off < buf.length; off += size) {
            this.sock.write(buf.subarray(off, off + size));
            await sleep(delayMs);
        }
    }

    json() {
        return this.msgs.filter((m) => m.opcode === OP.TEXT)
            .map((m) => JSON.parse(m.data.toString('utf8')));
    }

    waitJson(pred, timeoutMs = 3000, what = 'a message') {
        return this.wait(() => this.json().find(pred), timeoutMs, what);
    }

    /*
     * The server's Close frame: {code (null for an empty body), reason,
     * at}, or {code: 'none'} when the TCP connection ended without one.
     */
    async waitClose(timeoutMs = 3000) {
        return this.wait(() => {
            const f = this.frames.find((x) => x.opcode === OP.CLOSE);
            if (f) {
                return {
                    code: f.payload.length >= 2 ? f.payload.readUInt16BE(0)
                        : null,
                    reason: f.payload.subarray(2).toString('utf8'),
                    length: f.payload.length,
                    at: f.at,
                };
            }
            return this.ended ? { code: 'none (no Close frame before the '
                                        + 'TCP connection ended)' }
                : null;
        }, timeoutMs, 'a Close frame');
    }

    waitEnd(timeoutMs = 3000) {
        return this.wait(() => this.ended, timeoutMs, 'the TCP close');
    }

    /* a round trip: an unknown type is answered with an error naming it */
    async probe(timeoutMs = 3000) {
        const tag = `probe-${++probeSeq}`;
        this.write(text(JSON.stringify({ type: tag })));
        return this.waitJson((m) => m.type === 'error'
                             && m.code === 'invalid_field'
                             && m.message.includes(`"${tag}"`),
                             timeoutMs, `the answer to ${tag}`);
    }

    summary() {
        return '[' + this.frames.map((f) => {
            let s = `op=${f.opcode}${f.fin ? '' : ' fin=0'}`
                + `${f.rsv ? ` rsv=${f.rsv}` : ''} len=${f.payload.length}`;
            if (f.opcode === OP.CLOSE && f.payload.length >= 2) {
                s += ` code=${f.payload.readUInt16BE(0)}`;
            } else if (f.opcode === OP.TEXT) {
                s += ` ${f.payload.toString('utf8').slice(0, 80)}`;
            }
            return s;
        }).join('; ') + ']';
    }

    destroy() {
        this.sock.destroy();
    }
}


/* the Sec-WebSocket-Accept value for a key (RFC 6455 section 4.2.2) */
function acceptFor(key) {
    return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

/*
 * Sends raw HTTP request text on a new connection; resolves with the parsed
 * response {status, headers, body, json, sock, rest (bytes after the head
 * of a 101)}. extra: bytes written in the same write as the request.
 */
function rawHttp(port, reqText, extra = Buffer.alloc(0)) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = Buffer.alloc(0);
        let head = null;
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`no complete HTTP response within 5 s: `
                             + JSON.stringify(buf.toString('latin1'))));
        }, 5000);

        const finish = (r) => {
            clearTimeout(timer);
            sock.removeAllListeners('data');
            resolve(r);
        };

        const tryParse = (ended) => {
            if (!head) {
                const i = buf.indexOf('\r\n\r\n');
                if (i < 0) {
                    if (ended) {
                        finish({ status: 0, headers: {}, body: '', json: null,
                                 sock });
                    }
                    return;
                }
                const lines = buf.subarray(0, i).toString('latin1')
                    .split('\r\n');
                const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
                const headers = {};
                for (const l of lines.slice(1)) {
                    const c = l.indexOf(':');
                    const k = l.slice(0, c).trim().toLowerCase();
                    const v = l.slice(c + 1).trim();
                    headers[k] = headers[k] === undefined ? v
                        : `${headers[k]}, ${v}`;
                }
                head = { status: m ? Number(m[1]) : 0, headers,
                         statusLine: lines[0] };
                buf = buf.subarray(i + 4);
            }
            if (head.status === 101) {
                finish({ ...head, body: '', json: null, sock, rest: buf });
                return;
            }
            const cl = head.headers['content-length'];
            if ((cl !== undefined && buf.length >= Number(cl)) || ended) {
                const body = buf.toString('utf8');
                let json = null;
                try {
                    json = JSON.parse(body);
                } catch {
                    /* not JSON */
                }
                sock.destroy();
                finish({ ...head, body, json, sock: null });
            }
        };

        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            tryParse(false);
        });
        sock.on('end', () => tryParse(true));
        sock.on('error', () => tryParse(true));
        sock.on('connect', () => {
            sock.setNoDelay(true);
            sock.write(Buffer.concat([Buffer.from(reqText, 'latin1'),
                                      extra]));
        });
    });
}

function wsRequest(port, path, { method = 'GET', version = 'HTTP/1.1',
                                 key, headers } = {}) {
    const h = {
        Host: `127.0.0.1:${port}`,
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': key ?? crypto.randomBytes(16).toString('base64'),
        'Sec-WebSocket-Version': '13',
        ...(headers || {}),
    };
    let s = `${method} ${path} ${version}\r\n`;
    for (const [k, v] of Object.entries(h)) {
        if (v !== null && v !== undefined) {
            s += `${k}: ${v}\r\n`;
        }
    }
    return s + '\r\n';
}

/* a raw WebSocket client after a checked handshake */
async function rawOpen(port, path = '/api/v1/ws/raw-user', opts = {}) {
    const key = crypto.randomBytes(16).toString('base64');
    const r = await rawHttp(port, wsRequest(port, path, { key }),
                            opts.extra);
    assert.equal(r.status, 101, `handshake: ${r.status} ${r.body}`);
    assert.equal(r.headers['sec-websocket-accept'], acceptFor(key));
    r.sock.setNoDelay(true);
    return new RawWS(r.sock, r.rest);
}

/*
 * The server closes with code: its Close frame carries exactly that code
 * and it sends nothing after it (RFC 6455 5.5.1). Then, like a conforming
 * client (5.5.1), the client answers a Close the server started (unless it
 * sent its own: reply false, or the server already closed the TCP
 * connection, as it may when it fails the connection, 7.1.7), and the
 * server closes the TCP connection (7.1.1: the server closes first).
 */
async function expectClose(c, code, what, { noPong = false,
                                           reply = true } = {}) {
    const cl = await c.waitClose(3000);
    assert.equal(cl.code, code, `${what}: expected Close ${code}, got `
                 + `${cl.code}; frames: ${c.summary()}`);
    const i = c.frames.findIndex((f) => f.opcode === OP.CLOSE);
    assert.equal(c.frames.length, i + 1,
                 `${what}: no frame after the Close; ${c.summary()}`);
    if (reply && !c.ended) {
        c.write(closeFrame(typeof code === 'number' ? code : null));
    }
    await c.waitEnd(3000);
    if (noPong) {
        assert.ok(!c.frames.some((f) => f.opcode === OP.PONG),
                  `${what}: no Pong once failing; ${c.summary()}`);
    }
    for (const f of c.frames) {
        assert.equal(f.masked, false, 'server frames are never masked (5.1)');
    }
    return cl;
}


/* ---- the "ws" package ---------------------------------------------------- */

/* a connected "ws" client that records every message (parsed JSON) */
async function wsOpen(url, opts = {}) {
    const ws = new WebSocket(url, opts);
    const msgs = [];
    const pings = [];
    let closed = null;
    const kicks = new Set();
    const kick = () => {
        for (const k of [...kicks]) {
            k();
        }
    };

    ws.on('message', (data, isBinary) => {
        msgs.push(isBinary ? { binary: data }
            : JSON.parse(data.toString('utf8')));
        kick();
    });
    ws.on('ping', (d) => {
        pings.push({ at: Date.now(), data: d.toString() });
        kick();
    });
    const closedP = new Promise((resolve) => {
        ws.on('close', (code, reason) => {
            closed = { code, reason: reason.toString() };
            kick();
            resolve(closed);
        });
    });
    ws.on('error', () => { /* reported through close */ });

    await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('unexpected-response', (req, res) => {
            reject(new Error(`handshake answered ${res.statusCode}`));
        });
        ws.once('error', reject);
    });

    const h = {
        ws, msgs, pings, closedP,
        get closed() { return closed; },
        localPort: ws._socket.localPort,
        send: (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o)),
        waitMsg(pred, timeoutMs = 5000, what = 'a message') {
            return new Promise((resolve, reject) => {
                let timer;
                const check = () => {
                    const v = msgs.find(pred);
                    if (v) {
                        kicks.delete(check);
                        clearTimeout(timer);
                        resolve(v);
                    } else if (closed) {
                        kicks.delete(check);
                        clearTimeout(timer);
                        reject(new Error(`closed ${JSON.stringify(closed)} `
                                         + `while waiting for ${what}`));
                    }
                };
                timer = setTimeout(() => {
                    kicks.delete(check);
                    reject(new Error(`timed out after ${timeoutMs} ms `
                                     + `waiting for ${what}; got `
                                     + JSON.stringify(msgs).slice(0, 2000)));
                }, timeoutMs);
                kicks.add(check);
                check();
            });
        },
        /* the workflow events of id received so far, as SSE events */
        events(id) {
            return msgs.filter((m) => m.workflow_id === id
                               && m.event_id !== undefined)
                .map((m) => ({ id: m.event_id, event: m.type,
                               data: m.data }));
        },
        waitDone(id, timeoutMs = 15000) {
            return h.waitMsg((m) => m.workflow_id === id
                             && m.event_id !== undefined
                             && (m.type === 'done' || m.type === 'error'),
                             timeoutMs, `the final event of ${id}`);
        },
        close() {
            if (!closed) {
                ws.close(1000);
            }
            return closedP;
        },
    };
    return h;
}

function wsUrl(m, path) {
    return `ws://127.0.0.1:${m.port}${path}`;
}

/* the SSE replay of a finished workflow, after lastEventId */
async function replay(m, id, lastEventId) {
    const r = await sse(`${m.base}/api/v1/workflows/${id}/events`,
                        { lastEventId, timeoutMs: 10000 });
    assert.equal(r.status, 200);
    assert.equal(r.ended, 'done');
    return strip(r.events);
}

/* which worker process holds the server side of each client port */
function socketOwners(m, clientPorts) {
    const inodes = new Map();
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
        let txt = '';
        try {
            txt = fs.readFileSync(file, 'utf8');
        } catch {
            continue;
        }
        for (const line of txt.split('\n').slice(1)) {
            const c = line.trim().split(/\s+/);
            if (c.length < 10) {
                continue;
            }
            const lport = parseInt(c[1].split(':').pop(), 16);
            const rport = parseInt(c[2].split(':').pop(), 16);
            if (lport === m.port && clientPorts.includes(rport)) {
                inodes.set(c[9], rport);
            }
        }
    }
    const owners = new Map();
    for (const pid of m.workerPids()) {
        let fds = [];
        try {
            fds = fs.readdirSync(`/proc/${pid}/fd`);
        } catch {
            continue;
        }
        for (const fd of fds) {
            let link;
            try {
                link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
            } catch {
                continue;
            }
            const mm = /^socket:\[(\d+)\]$/.exec(link);
            if (mm && inodes.has(mm[1])) {
                owners.set(inodes.get(mm[1]), pid);
            }
        }
    }
    return owners;
}

async function stopClean(m) {
    if (m) {
        try {
            m.assertCleanLog();
        } finally {
            await m.stop();
        }
    }
}


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


/* ========================================================================== */

describe('WebSocket sessions, events and the monitor (2 workers)', () => {
    let m;

    before(async () => {
        /* reuseport: the kernel spreads connections over both workers */
        m = await startMaestro({ workers: 2, listenParams: 'reuseport',
                                 http: 'maestro_ws_ping 1s;' });
    });

    after(() => stopClean(m));

    test('an idle connection gives its wslay context back, and a frame or '
         + 'a message cut across ping intervals still arrives whole',
         async () => {
        /* ping 1s: the context of an idle socket is freed between pings */
        const c = await rawOpen(m.port, '/api/v1/ws/idle-user');
        try {
            /* no data message yet: only the open fragment keeps it */
            c.write(text('{"type":"fr', { fin: false }));
            await sleep(1300);              /* a ping went meanwhile */
            c.write(frame({ opcode: OP.CONT, payload: 'agment"}' }));
            await c.waitJson((x) => x.message?.includes('"fragment"'),
                             3000, 'the message cut by a ping interval');

            /* a ping interval without data, then a frame cut in two */
            await sleep(1100);
            const whole = text('{"type":"half-frame"}');
            c.write(whole.subarray(0, 5));
            await sleep(1300);
            c.write(whole.subarray(5));
            await c.waitJson((x) => x.message?.includes('"half-frame"'),
                             3000, 'the frame cut by a ping interval');

            /* idle again: pings keep coming, messages are answered */
            await sleep(1500);
            c.write(text('{"type":"still-here"}'));
            await c.waitJson((x) => x.message?.includes('"still-here"'));
            assert.ok(c.frames.some((f) => f.opcode === OP.PING),
                      `pings: ${c.summary()}`);
        } finally {
            c.destroy();
        }
    });

    test('prompt_submission over a session: action_result, then the '
         + 'workflow\'s events in order ending with done', async () => {
        const h = await wsOpen(wsUrl(m, '/api/v1/ws/alice'));
        h.send({ type: 'prompt_submission', prompt: 'over a socket',
                 workflow: QUICK, context: 'some context' });
        const ack = await h.waitMsg((x) => x.type === 'action_result');
        assert.equal(ack.action, 'prompt_submission');
        assert.equal(ack.ok, true);
        assert.match(ack.workflow_id, ID_RE);
        assert.equal(ack.status, 'queued');
        const id = ack.workflow_id;

        const done = await h.waitDone(id);
        assert.equal(done.type, 'done');
        assert.equal(done.data.status, 'complete');
        assert.equal(done.data.id, id);

        const evs = h.events(id);
        assertContiguous(evs, 1);
        assert.equal(evs[0].event, 'workflow_update');
        assert.equal(evs[evs.length - 1].event, 'done');
        for (const e of evs) {
            assert.ok(SSE_NAMES.includes(e.event), e.event);
        }
        assert.deepEqual(evs, await replay(m, id), 'the same as SSE');

        const wf = (await api(m.base, 'GET', `/api/v1/workflows/${id}`)).json;
        assert.equal(wf.user_id, 'alice', 'the session\'s user owns it');
        assert.equal(wf.prompt, 'over a socket');
        assert.equal(wf.status, 'complete');

        /* a bad submission is an error message, not a workflow */
        h.send({ type: 'prompt_submission', prompt: 'x',
                 workflow: 'no-such-workflow' });
        const e = await h.waitMsg((x) => x.type === 'error');
        assert.equal(e.code, 'unknown_workflow');
        assert.equal(h.closed, null);
        await h.close();
    });

    test('agent_action cancel on a sleeping workflow: action_result, then '
         + 'done with status cancelled', async () => {
        const h = await wsOpen(wsUrl(m, '/api/v1/ws/canceller'));
        h.send({ type: 'prompt_submission', prompt: 'sleep long',
                 workflow: chain(['s', 'sleep', { ms: 20000 }]) });
        const ack = await h.waitMsg((x) => x.type === 'action_result'
                                    && x.action === 'prompt_submission');
        const id = ack.workflow_id;
        await h.waitMsg((x) => x.workflow_id === id
                        && x.type === 'agent_status'
                        && x.data.status === 'executing', 10000,
                        'the sleep step executing');

        const t0 = Date.now();
        h.send({ type: 'agent_action', workflow_id: id, action: 'cancel' });
        const res = await h.waitMsg((x) => x.type === 'action_result'
                                    && x.action === 'cancel');
        assert.equal(res.ok, true);
        assert.equal(res.workflow_id, id);
        assert.ok(['running', 'cancelled'].includes(res.status), res.status);

        const done = await h.waitDone(id, 5000);
        assert.equal(done.type, 'done');
        assert.equal(done.data.status, 'cancelled');
        assert.ok(Date.now() - t0 < 3000, 'cancelled promptly');
        assertContiguous(h.events(id), 1);
        assert.equal((await waitStatus(m.base, id)).status, 'cancelled');

        /* again: the workflow is finished, ok is false */
        h.send({ type: 'agent_action', workflow_id: id, action: 'cancel' });
        const again = await h.waitMsg((x) => x.type === 'action_result'
                                      && x.action === 'cancel'
                                      && x !== res);
        assert.equal(again.ok, false);
        assert.equal(again.status, 'cancelled');

        h.send({ type: 'agent_action', workflow_id: NO_SUCH_ID,
                 action: 'cancel' });
        const nf = await h.waitMsg((x) => x.type === 'error');
        assert.equal(nf.code, 'not_found');
        await h.close();
    });

    test('subscribe with last_event_id, and ?last_event_id= on the '
         + 'workflow endpoint, resume exactly after that id (as SSE)',
         async () => {
        const w = await submit(m.base, { prompt: 'resume me',
                                         workflow: QUICK });
        await waitStatus(m.base, w.id, 'complete');
        const all = await replay(m, w.id);
        assert.ok(all.length >= 6, `${all.length} events`);

        for (const k of [1, 3, all.length - 1]) {
            const want = await replay(m, w.id, k);
            assert.deepEqual(want, all.slice(k), `SSE after ${k}`);

            const h = await wsOpen(wsUrl(m, `/api/v1/ws/resumer-${k}`));
            h.send({ type: 'subscribe', workflow_id: w.id,
                     last_event_id: k });
            await h.waitDone(w.id);
            assert.deepEqual(h.events(w.id), want, `subscribe after ${k}`);
            const ack = h.msgs.find((x) => x.type === 'action_result');
            assert.equal(ack?.ok, true);
            await h.close();

            const q = await wsOpen(wsUrl(m, `/api/v1/workflows/${w.id}/ws`
                                          + `?last_event_id=${k}`));
            await q.waitDone(w.id);
            assert.deepEqual(q.events(w.id), want, `?last_event_id=${k}`);
            await q.close();
        }

        /* the workflow endpoint without an id: everything */
        const h = await wsOpen(wsUrl(m, `/api/v1/workflows/${w.id}/ws`));
        await h.waitDone(w.id);
        assert.deepEqual(h.events(w.id), all);
        await h.close();
    });

    test('a live workflow over /workflows/{id}/ws matches its SSE replay',
         async () => {
        const w = await submit(m.base, { prompt: 'live',
                                         workflow: QUICK });
        const h = await wsOpen(wsUrl(m, `/api/v1/workflows/${w.id}/ws`));
        await h.waitDone(w.id);
        assert.deepEqual(h.events(w.id), await replay(m, w.id));
        await h.close();
    });

    test('a REST workflow with user_id reaches every session of that user '
         + 'on both workers, and no other user\'s', async () => {
        const bobs = [];
        const others = [];
        try {
            for (let i = 0; i < 6; i++) {
                bobs.push(await wsOpen(wsUrl(m, '/api/v1/ws/bob')));
            }
            for (let i = 0; i < 2; i++) {
                others.push(await wsOpen(wsUrl(m, '/api/v1/ws/carol')));
            }
            const pids = m.workerPids();
            assert.equal(pids.length, 2);
            let owners = socketOwners(m, bobs.map((b) => b.localPort));
            /* the kernel's hash decides: open more until both hold some */
            while (new Set(owners.values()).size < 2 && bobs.length < 24) {
                bobs.push(await wsOpen(wsUrl(m, '/api/v1/ws/bob')));
                owners = socketOwners(m, bobs.map((b) => b.localPort));
            }
            assert.equal(owners.size, bobs.length,
                         'every connection\'s worker is known');
            assert.equal(new Set(owners.values()).size, 2,
                         'both workers hold sessions of bob');

            const wb = await submit(m.base, { prompt: 'for bob',
                                              workflow: QUICK,
                                              user_id: 'bob' });
            const wc = await submit(m.base, { prompt: 'for carol',
                                              workflow: QUICK,
                                              user_id: 'carol' });
            await Promise.all([...bobs.map((b) => b.waitDone(wb.id)),
                               ...others.map((o) => o.waitDone(wc.id))]);
            const want = await replay(m, wb.id);
            const wantC = await replay(m, wc.id);
            for (const [i, b] of bobs.entries()) {
                assert.deepEqual(b.events(wb.id), want,
                                 `bob #${i} (worker ${owners.get(
                                     b.localPort)})`);
            }
            for (const o of others) {
                assert.deepEqual(o.events(wc.id), wantC);
            }

            /* nothing crossed over */
            await sleep(200);
            for (const b of bobs) {
                assert.equal(b.msgs.filter((x) => x.workflow_id === wc.id)
                             .length, 0, 'bob gets nothing of carol\'s');
            }
            for (const o of others) {
                assert.equal(o.msgs.filter((x) => x.workflow_id === wb.id)
                             .length, 0, 'carol gets nothing of bob\'s');
            }
        } finally {
            await Promise.all([...bobs, ...others].map((h) => h.close()));
        }
    });

    test('a session opened while its user\'s workflow runs gets it from '
         + 'event 1', async () => {
        const w = await submit(m.base, {
            prompt: 'already running', user_id: 'dave',
            workflow: chain(['a', 'echo'], ['s', 'sleep', { ms: 800 }]) });
        await waitStatus(m.base, w.id, 'running');
        const h = await wsOpen(wsUrl(m, '/api/v1/ws/dave'));
        await h.waitDone(w.id);
        assert.deepEqual(h.events(w.id), await replay(m, w.id));
        await h.close();
    });

    test('GET /api/v1/events?user_id= sees only that user\'s '
         + 'workflow_update events; Last-Event-ID resumes by feed id',
         async () => {
        const mine = openSSE(`${m.base}/api/v1/events?user_id=erin`,
                             { timeoutMs: 15000 });
        const everyone = openSSE(`${m.base}/api/v1/events`,
                                 { timeoutMs: 15000 });
        const r0 = await mine.ready;
        await everyone.ready;
        assert.equal(r0.status, 200);
        assert.match(r0.headers['content-type'], /^text\/event-stream/);

        /* frank's first, finished before erin's starts: were the filter
           broken, his updates would come first */
        const wf = await submit(m.base, { prompt: 'frank\'s',
                                          workflow: QUICK,
                                          user_id: 'frank' });
        await waitStatus(m.base, wf.id, 'complete');
        const we = await submit(m.base, { prompt: 'erin\'s', workflow: QUICK,
                                          user_id: 'erin' });
        await waitStatus(m.base, we.id, 'complete');

        const isEnd = (e) => e.data?.id === we.id
            && e.data?.status === 'complete';
        await mine.waitEvents((evs) => evs.some(isEnd), 10000);
        await everyone.waitEvents((evs) => evs.some(isEnd), 10000);
        mine.close();
        everyone.close();
        const got = mine.events.slice(0, mine.events.findIndex(isEnd) + 1);

        assert.ok(got.length >= 2, `${got.length} events`);
        for (const e of got) {
            assert.equal(e.event, 'workflow_update');
            assert.equal(e.data.user_id, 'erin', JSON.stringify(e));
            assert.equal(e.data.id, we.id);
            assert.equal(typeof e.id, 'number');
        }
        for (let i = 1; i < got.length; i++) {
            assert.ok(got[i].id > got[i - 1].id, 'feed ids increase');
        }
        assert.deepEqual(got.map((e) => e.data.status).slice(-1),
                         ['complete']);

        /* the unfiltered monitor saw frank's too, and every update of
           erin's that the filtered one saw, with the same feed ids */
        const all = everyone.events;
        assert.ok(all.some((e) => e.data?.user_id === 'frank'
                           && e.data?.id === wf.id
                           && e.data?.status === 'complete'),
                  'frank\'s updates are in the unfiltered feed');
        assert.deepEqual(all.filter((e) => e.data?.user_id === 'erin'
                                    && e.id <= got[got.length - 1].id)
                            .map((e) => ({ id: e.id, data: e.data })),
                         got.map((e) => ({ id: e.id, data: e.data })));
        for (const e of all) {
            assert.equal(e.event, 'workflow_update');
        }

        /* resume after the first of erin's: the rest, exactly */
        const res = openSSE(`${m.base}/api/v1/events?user_id=erin`,
                            { lastEventId: got[0].id, timeoutMs: 10000,
                              stopWhen: (e) => isEnd(e) });
        const rr = await res.done;
        assert.equal(rr.ended, 'stop', `ended: ${rr.ended}`);
        assert.deepEqual(strip(rr.events), strip(got.slice(1)));
    });

    test('the server pings an idle peer; a raw client that never answers '
         + 'gets Close 1001 after two silent intervals', async () => {
        const c = await rawOpen(m.port, '/api/v1/ws/idler');
        try {
            const cl = await c.waitClose(3500);
            assert.equal(cl.code, 1001, `close: ${JSON.stringify(cl)}; `
                         + c.summary());
            assert.equal(cl.reason, 'idle timeout');
            const waited = cl.at - c.openedAt;
            assert.ok(waited >= 1500 && waited <= 3500,
                      `closed after ${waited} ms (ping 1s, two intervals)`);
            const pings = c.frames.filter((f) => f.opcode === OP.PING);
            assert.ok(pings.length >= 1, `pinged first: ${c.summary()}`);
            assert.equal(pings[0].payload.toString(), 'maestro');
            assert.ok(pings[0].at - c.openedAt >= 800,
                      'the first ping comes after one interval');
            assert.ok(pings.every((f) => f.at < cl.at), 'no ping after it');
        } finally {
            c.destroy();
        }
    });

    test('a peer that never answers the server\'s Close (idle 1001, '
         + 'binary 1003) loses its TCP connection', async () => {
        /*
         * RFC 6455 7.1.1: the server closes the TCP connection. A peer
         * that answers neither the pings nor the Close is gone (that is
         * why the idle timeout closes it); keeping its connection until
         * the kernel notices holds a worker connection for nothing.
         * Allowed: two more ping intervals after the Close.
         */
        const idle = await rawOpen(m.port, '/api/v1/ws/idler-2');
        const bin = await rawOpen(m.port, '/api/v1/ws/binary-sender');
        try {
            bin.write(frame({ opcode: OP.BIN, payload: 'ab' }));
            const [ci, cb] = await Promise.all([idle.waitClose(3500),
                                                bin.waitClose(3000)]);
            assert.equal(ci.code, 1001);
            assert.equal(cb.code, 1003);
            const ends = await Promise.allSettled([idle.waitEnd(2500),
                                                   bin.waitEnd(2500)]);
            assert.deepEqual(ends.map((e) => e.status),
                             ['fulfilled', 'fulfilled'],
                             'TCP closed by the server within 2.5 s of its '
                             + `Close: idle ${idle.ended}, binary `
                             + `${bin.ended}`);
        } finally {
            idle.destroy();
            bin.destroy();
        }
    });

    test('a "ws" client answers the pings and stays connected', async () => {
        const h = await wsOpen(wsUrl(m, '/api/v1/ws/pinged'));
        await sleep(3500);
        assert.equal(h.closed, null, `still open: ${JSON.stringify(
            h.closed)}`);
        assert.ok(h.pings.length >= 2, `${h.pings.length} pings`);
        assert.equal(h.pings[0].data, 'maestro');
        h.send({ type: 'still-here' });
        const e = await h.waitMsg((x) => x.message?.includes('still-here'));
        assert.equal(e.type, 'error');
        const cl = await h.close();
        assert.equal(cl.code, 1000);
    });

    test('a raw client that answers the pings stays connected', async () => {
        const c = await rawOpen(m.port, '/api/v1/ws/raw-ponger');
        c.autoPong = true;
        try {
            await sleep(3300);
            assert.equal(c.ended, false, c.summary());
            assert.ok(!c.frames.some((f) => f.opcode === OP.CLOSE),
                      c.summary());
            assert.ok(c.frames.filter((f) => f.opcode === OP.PING).length
                      >= 2);
            await c.probe();
        } finally {
            c.destroy();
        }
    });

    test('the default maestro_ws_max_message (1m) takes 200 kB',
         async () => {
        const h = await wsOpen(wsUrl(m, '/api/v1/ws/big'));
        h.send(sized('big-200k', 200 * 1024));
        const e = await h.waitMsg((x) => x.message?.includes('"big-200k"'));
        assert.equal(e.code, 'invalid_field');
        await h.close();
    });
});
