/*
 * Copyright (C) Maestro authors
 */

/*
 * WebSocket clients for the tests of GET /api/v1/workflows/{id}/ws and
 * GET /api/v1/ws/{user_id} (ws.test.mjs, ws_session.test.mjs).
 *
 * A raw client over node:net with its own frame encoder (frame, RawWS,
 * rawOpen, rawHttp), so that a test can send what a well-behaved client
 * library never would (unmasked frames, bad lengths, reserved bits), and
 * read the server's Close frame and its exact status code (expectClose).
 * Normal use goes through the "ws" package (wsOpen).
 */

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';
import { sse, strip, sleep } from './harness.mjs';


const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const NO_SUCH_ID = 'wf_ffffffffffffffffffff';

export const OP = { CONT: 0x0, TEXT: 0x1, BIN: 0x2, CLOSE: 0x8, PING: 0x9,
             PONG: 0xa };


/* ---- frames -------------------------------------------------------------- */

/*
 * One frame as a client sends it. payload: Buffer or string (UTF-8).
 * mask (default true: clients must mask, RFC 6455 5.3), rsv (3 bits, RSV1
 * is 4), len: force the 16- or 64-bit length form (16 / 64), declared:
 * announce a payload length different from the bytes given.
 */
export function frame({ fin = true, rsv = 0, opcode,
                        payload = Buffer.alloc(0), mask = true, len,
                        declared } = {}) {
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

export const text = (s, o = {}) =>
    frame({ opcode: OP.TEXT, payload: s, ...o });
export const ping = (p = '', o = {}) =>
    frame({ opcode: OP.PING, payload: p, ...o });
export const pong = (p = '', o = {}) =>
    frame({ opcode: OP.PONG, payload: p, ...o });

export function closeFrame(code, reason = Buffer.alloc(0), o = {}) {
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
export function sized(tag, len) {
    const base = `{"type":"${tag}","pad":""}`;
    assert.ok(len >= base.length, `${len} >= ${base.length}`);
    return `{"type":"${tag}","pad":"${'a'.repeat(len - base.length)}"}`;
}


/* ---- a raw client -------------------------------------------------------- */

let probeSeq = 0;

export class RawWS {
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
export function rawHttp(port, reqText, extra = Buffer.alloc(0)) {
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

export function wsRequest(port, path, { method = 'GET',
                                        version = 'HTTP/1.1', key,
                                        headers } = {}) {
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
export async function rawOpen(port, path = '/api/v1/ws/raw-user',
                              opts = {}) {
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
export async function expectClose(c, code, what, { noPong = false,
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
export async function wsOpen(url, opts = {}) {
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

export function wsUrl(m, path) {
    return `ws://127.0.0.1:${m.port}${path}`;
}

/* the SSE replay of a finished workflow, after lastEventId */
export async function replay(m, id, lastEventId) {
    const r = await sse(`${m.base}/api/v1/workflows/${id}/events`,
                        { lastEventId, timeoutMs: 10000 });
    assert.equal(r.status, 200);
    assert.equal(r.ended, 'done');
    return strip(r.events);
}
