/*
 * Copyright (C) Maestro authors
 */

/*
 * Submissions during reloads: a request that reaches a worker in graceful
 * exit (a kept-alive connection of an old worker) is accepted, stored
 * queued and claimed by a live worker, never refused with queue_full,
 * and runs to the end.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
    startMaestro, stopClean, chain, waitStatus, sleep, waitFor,
} from './lib/harness.mjs';


const QUICK = chain(['a', 'noop']);

/* a POST on a kept-alive connection of agent */
function post(base, agent, body) {
    return new Promise((resolve) => {
        const data = JSON.stringify(body);
        const req = http.request(`${base}/api/v1/workflows`, {
            method: 'POST', agent,
            headers: { 'content-type': 'application/json',
                       'content-length': Buffer.byteLength(data) },
        }, (res) => {
            let text = '';
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, text }));
        });
        /* a connection the old worker closed under us: not an answer */
        req.on('error', (e) => resolve({ status: 0, text: String(e) }));
        req.end(data);
    });
}


/* a request whose body is half sent; the rest when told */
function halfSent(port, body) {
    const data = Buffer.from(JSON.stringify(body));
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => { got += d; });
    const closed = new Promise((resolve) => sock.on('close', resolve));
    sock.write('POST /api/v1/workflows HTTP/1.1\r\nHost: t\r\n'
               + 'Content-Type: application/json\r\n'
               + `Content-Length: ${data.length}\r\n\r\n`);
    sock.write(data.subarray(0, 5));
    return {
        async finish() {
            sock.write(data.subarray(5));
            const t0 = Date.now();
            while (!/\r\n\r\n[\s\S]*\}/.test(got) && Date.now() - t0 < 10000) {
                await sleep(20);
            }
            sock.end();
            await closed;
            const status = Number((/^HTTP\/1\.1 (\d+)/.exec(got) || [])[1]);
            return { status, text: got.slice(got.indexOf('\r\n\r\n') + 4) };
        },
    };
}


describe('submissions during reloads', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 2, errorLogLevel: 'notice',
                                 http: 'maestro_queue_size 4096;' });
    });

    after(() => stopClean(m));

    test('a request that an exiting worker reads is accepted and runs',
         async () => {
        /* the old workers hold these requests while they exit */
        const held = [];
        for (let i = 0; i < 4; i++) {
            held.push(halfSent(m.port, { prompt: `held ${i}`,
                                         workflow: QUICK }));
        }
        await sleep(200);
        const { oldPids } = await m.reload();
        /* the old workers know they are exiting */
        await waitFor(() => oldPids.every((p) => new RegExp(
            ` ${p}#\\d+: gracefully shutting down`).test(m.errorLog())),
                      5000, 20, 'the old workers to begin their exit');

        for (const h of held) {
            const r = await h.finish();
            assert.equal(r.status, 202, r.text);
            const id = JSON.parse(r.text).id;
            /* claimed by a live worker at once, not at a lease's end */
            const t0 = Date.now();
            await waitStatus(m.base, id, 'complete', 10000);
            assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
        }
    });

    test('none is refused with queue_full; every accepted one completes',
         async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
        const counts = {};
        const accepted = [];
        let stop = false;

        const loop = async (k) => {
            for (let i = 0; !stop; i++) {
                const r = await post(m.base, agent,
                                     { prompt: `r ${k} ${i}`,
                                       workflow: QUICK });
                const key = r.status === 202 ? '202'
                    : `${r.status} ${r.text.slice(0, 120)}`;
                counts[key] = (counts[key] || 0) + 1;
                if (r.status === 202) {
                    accepted.push(JSON.parse(r.text).id);
                }
            }
        };

        const loops = Array.from({ length: 16 }, (_, k) => loop(k));
        for (let i = 0; i < 10; i++) {
            await sleep(300);
            await m.reload();
        }
        await sleep(300);
        stop = true;
        await Promise.all(loops);
        agent.destroy();

        process.stderr.write(`# submissions during 10 reloads: `
                             + `${JSON.stringify(counts)}\n`);
        const refused = Object.keys(counts)
            .filter((k) => /^503/.test(k));
        assert.deepEqual(refused, [], JSON.stringify(counts));
        assert.ok(accepted.length > 1000, JSON.stringify(counts));

        /* the handed-over ones too (the last thousand include them) */
        for (const id of accepted.slice(-1000)) {
            await waitStatus(m.base, id, 'complete', 20000);
        }
    });
});
