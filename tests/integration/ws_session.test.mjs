/*
 * Copyright (C) Maestro authors
 */

/*
 * WebSocket sessions on GET /api/v1/ws/{user_id} and
 * GET /api/v1/workflows/{id}/ws: prompt_submission, agent_action cancel,
 * subscribe and ?last_event_id= resuming as SSE does, a user's workflows
 * reaching every session of that user on both workers, the
 * GET /api/v1/events monitor, and the server's pings (maestro_ws_ping).
 * The protocol itself (handshake, frames, close codes, limits) is in
 * ws.test.mjs; the clients in lib/ws.mjs.
 *
 * One server, S: two workers with reuseport, maestro_ws_ping 1s.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
    startMaestro, api, submit, waitStatus, openSSE, chain,
    assertContiguous, strip, sleep, stopClean, SSE_NAMES, ID_RE,
} from './lib/harness.mjs';
import {
    NO_SUCH_ID, OP, frame, text, sized, rawOpen, wsOpen, wsUrl, replay,
} from './lib/ws.mjs';


const QUICK = chain(['a', 'echo'], ['s', 'sleep', { ms: 200 }],
                    ['b', 'echo']);


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

        /* at or past the end: the terminal event again, so the client
           knows the workflow is over (SSE does the same) */
        for (const k of [all.length, all.length + 50]) {
            const h = await wsOpen(wsUrl(m, `/api/v1/ws/resumer-end-${k}`));
            h.send({ type: 'subscribe', workflow_id: w.id,
                     last_event_id: k });
            await h.waitDone(w.id);
            assert.deepEqual(h.events(w.id), all.slice(-1),
                             `subscribe at ${k}`);
            await h.close();

            const q = await wsOpen(wsUrl(m, `/api/v1/workflows/${w.id}/ws`
                                          + `?last_event_id=${k}`));
            await q.waitDone(w.id);
            assert.deepEqual(q.events(w.id), all.slice(-1),
                             `?last_event_id=${k}`);
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
