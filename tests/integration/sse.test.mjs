/*
 * Copyright (C) Maestro authors
 */

/*
 * SSE: live streams, replay, Last-Event-ID resume on any worker, headers,
 * heartbeats, a real EventSource client, POST /api/v1/stream/workflow, and
 * a stream across `nginx -s reload`.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
    startMaestro, api, submit, waitStatus, waitFor, openSSE, sse,
    eventSource, chain,
    assertContiguous, strip, ID_RE, SSE_NAMES, stopClean,
} from './lib/harness.mjs';


const SLOWISH = chain(['a', 'echo'], ['s', 'sleep', { ms: 800 }],
                      ['b', 'echo']);
const AGENT_STATUSES = ['idle', 'planning', 'executing', 'waiting', 'complete',
                        'error'];


/* the invariants of one complete stream of a workflow */
function assertWholeStream(events, id, nodes) {
    assert.ok(events.length >= 3, `${events.length} events`);
    assertContiguous(events, 1);

    assert.equal(events[0].event, 'workflow_update');
    assert.equal(events[0].data.id, id);

    for (const ev of events) {
        assert.ok(SSE_NAMES.includes(ev.event), `event name ${ev.event}`);
        assert.equal(typeof ev.data, 'object', `data of ${ev.id} is JSON`);
        if (ev.event === 'agent_status') {
            assert.equal(typeof ev.data.id, 'string');
            assert.equal(typeof ev.data.name, 'string');
            assert.ok(AGENT_STATUSES.includes(ev.data.status),
                      `agent status ${ev.data.status}`);
            assert.equal(typeof ev.data.progress, 'number');
            assert.equal(typeof ev.data.metrics, 'object');
        } else if (ev.event === 'workflow_update') {
            assert.equal(ev.data.id, id);
            assert.ok(['queued', 'running', 'complete', 'failed', 'cancelled']
                      .includes(ev.data.status), ev.data.status);
            assert.equal(typeof ev.data.progress, 'number');
        } else if (ev.event === 'log_entry') {
            assert.equal(typeof ev.data.message, 'string');
            assert.equal(typeof ev.data.level, 'string');
        }
    }

    for (const n of nodes) {
        const st = events.filter((e) => e.event === 'agent_status'
                                 && e.data.id === n);
        assert.ok(st.length >= 1, `agent_status for ${n}`);
        assert.equal(st[st.length - 1].data.status, 'complete',
                     `last agent_status of ${n} is complete`);
    }

    /* node order: a completes before s starts working, s before b */
    const first = (n, pred) => events.findIndex((e) =>
        e.event === 'agent_status' && e.data.id === n && pred(e.data.status));
    for (let i = 1; i < nodes.length; i++) {
        const done = first(nodes[i - 1], (s) => s === 'complete');
        const start = first(nodes[i], (s) => s !== 'idle' && s !== 'waiting');
        assert.ok(done >= 0 && start >= 0 && done < start,
                  `${nodes[i - 1]} completes (#${done}) before ${nodes[i]} `
                  + `starts (#${start})`);
    }

    const finals = events.filter((e) => e.event === 'done'
                                 || e.event === 'error');
    assert.equal(finals.length, 1, 'exactly one final event');
    const last = events[events.length - 1];
    assert.equal(last.event, 'done', 'the final event is last');
    assert.equal(last.data.id, id);
    assert.equal(last.data.status, 'complete');
    assert.ok(typeof last.data.result === 'string' && last.data.result.length);
}

function assertSseHeaders(h) {
    assert.match(h['content-type'], /^text\/event-stream/);
    assert.equal(h['x-accel-buffering'], 'no');
    assert.match(h['cache-control'], /no-cache/);
}


describe('SSE', () => {
    let m;
    let live;       /* {id, events} of one workflow streamed live */

    before(async () => {
        /* reuseport: the kernel spreads connections over both workers */
        m = await startMaestro({ workers: 2, listenParams: 'reuseport',
                                 http: 'maestro_sse_heartbeat 1s;' });
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

    test('a live stream: ids 1..N, workflow_update first, done last, '
         + 'server closes', async () => {
        const w = await submit(m.base, { prompt: 'stream me',
                                         workflow: SLOWISH });
        const r = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { untilClose: true, timeoutMs: 20000 });
        assert.equal(r.status, 200);
        assertSseHeaders(r.headers);
        assert.equal(r.ended, 'done', `ended: ${r.ended}`);
        assert.equal(r.closed, true, 'the server closes after done');
        assertWholeStream(r.events, w.id, ['a', 's', 'b']);

        const wf = await waitStatus(m.base, w.id, 'complete', 5000);
        assert.equal(wf.last_event_id, r.events.length);
        assert.equal(r.events[r.events.length - 1].data.result, wf.result);
        live = { id: w.id, events: r.events };
    });

    test('the replay of a finished workflow equals the live stream',
         async () => {
        assert.ok(live, 'needs the live stream test');
        const r = await sse(`${m.base}/api/v1/workflows/${live.id}/events`,
                            { untilClose: true, timeoutMs: 10000 });
        assert.equal(r.status, 200);
        assertSseHeaders(r.headers);
        assert.equal(r.closed, true);
        assert.deepEqual(strip(r.events), strip(live.events));
    });

    test('Last-Event-ID resume (header and query) gets exactly the rest',
         async () => {
        assert.ok(live, 'needs the live stream test');
        const url = `${m.base}/api/v1/workflows/${live.id}/events`;
        const n = 3;

        let r = await sse(url, { lastEventId: n, untilClose: true,
                                 timeoutMs: 10000 });
        assert.equal(r.status, 200);
        assert.deepEqual(strip(r.events), strip(live.events.slice(n)));

        r = await sse(`${url}?last_event_id=${n}`,
                      { untilClose: true, timeoutMs: 10000 });
        assert.equal(r.status, 200);
        assert.deepEqual(strip(r.events), strip(live.events.slice(n)));

        /* resuming at or past the last event: the terminal event again
           (an EventSource client stops there, it would reconnect after a
           bare close), then the end */
        const end = live.events[live.events.length - 1];
        for (const at of [live.events.length, live.events.length + 100]) {
            r = await sse(url, { lastEventId: at, untilClose: true,
                                 timeoutMs: 3000 });
            assert.equal(r.status, 200);
            assert.deepEqual(strip(r.events), strip([end]), `at ${at}`);
            assert.equal(r.events[0].id, end.id);
            assert.equal(r.ended, 'done');
            assert.equal(r.closed, true);
        }

        r = await sse(url, { lastEventId: 0, untilClose: true,
                             timeoutMs: 10000 });
        assert.deepEqual(strip(r.events), strip(live.events));
    });

    test('resume on any worker: many parallel connections agree',
         async () => {
        assert.ok(live, 'needs the live stream test');
        assert.equal(m.workerPids().length, 2);
        const url = `${m.base}/api/v1/workflows/${live.id}/events`;
        const n = 5;
        const rs = await Promise.all(Array.from({ length: 8 }, () =>
            sse(url, { lastEventId: n, untilClose: true, timeoutMs: 10000 })));
        for (const r of rs) {
            assert.equal(r.status, 200);
            assert.deepEqual(strip(r.events), strip(live.events.slice(n)));
        }
    });

    test('live streams on every worker see the same events', async () => {
        const w = await submit(m.base, { prompt: 'watched by many',
                                         workflow: SLOWISH });
        const url = `${m.base}/api/v1/workflows/${w.id}/events`;
        const handles = Array.from({ length: 6 }, (_, i) =>
            openSSE(url, { timeoutMs: 20000,
                           /* half of them resume from event 2 */
                           lastEventId: i % 2 ? 2 : undefined }));
        const rs = await Promise.all(handles.map((h) => h.done));
        const full = rs[0].events;
        assertWholeStream(full, w.id, ['a', 's', 'b']);
        rs.forEach((r, i) => {
            assert.equal(r.ended, 'done', `stream ${i}: ${r.ended}`);
            assert.deepEqual(strip(r.events),
                             strip(i % 2 ? full.slice(2) : full),
                             `stream ${i}`);
        });
    });

    test('heartbeat comments while the workflow is quiet', async () => {
        /*
         * The sleep fixture reports progress every 10 ms, so a stream of a
         * sleeping step is never idle; a retry backoff is: the fail
         * fixture fails once, then waits 2.5 s before its second attempt.
         */
        const w = await submit(m.base, {
            prompt: 'slow',
            workflow: chain(['f', 'fail', { fail_times: 1 },
                             { retry: { max: 1, backoff_ms: 2500 } }]),
        });
        const r = await sse(`${m.base}/api/v1/workflows/${w.id}/events`,
                            { timeoutMs: 15000 });
        assert.equal(r.ended, 'done');
        const hb = r.comments.filter((c) => c === 'hb');
        assert.ok(hb.length >= 1 && hb.length <= 4,
                  `heartbeat comments: ${JSON.stringify(r.comments)}`);
        assertContiguous(r.events, 1);
        assert.equal(r.events[r.events.length - 1].data.status, 'complete');
    });

    test('a real EventSource client gets every event with lastEventId',
         async () => {
        const w = await submit(m.base, { prompt: 'for EventSource',
                                         workflow: SLOWISH });
        const url = `${m.base}/api/v1/workflows/${w.id}/events`;
        const es = await eventSource(url, { timeoutMs: 20000 });
        assert.equal(es.ended, 'done', `ended ${es.ended} ${es.errors}`);
        assert.deepEqual(es.errors, []);
        assertWholeStream(es.events, w.id, ['a', 's', 'b']);
        es.events.forEach((e, i) => assert.equal(e.lastEventId,
                                                 String(i + 1)));

        const replay = await sse(url, { timeoutMs: 10000 });
        assert.deepEqual(strip(es.events), strip(replay.events));

        const resumed = await eventSource(url, { lastEventId: 4,
                                                 timeoutMs: 10000 });
        assert.equal(resumed.ended, 'done');
        assert.deepEqual(strip(resumed.events), strip(replay.events.slice(4)));
    });

    test('unknown workflow events -> 404 JSON', async () => {
        const r = await sse(`${m.base}/api/v1/workflows/`
                            + 'wf_00000000000000000000/events');
        assert.equal(r.status, 404);
        assert.equal(r.json.error.code, 'not_found');
    });

    test('POST /api/v1/stream/workflow streams a new workflow from 1',
         async () => {
        const r = await sse(`${m.base}/api/v1/stream/workflow`, {
            method: 'POST',
            body: { prompt: 'stream a new one', workflow: SLOWISH },
            untilClose: true, timeoutMs: 20000,
        });
        assert.equal(r.status, 200, r.text);
        assertSseHeaders(r.headers);
        const id = r.headers['x-maestro-workflow-id'];
        assert.match(id, ID_RE);
        assert.equal(r.closed, true);
        assertWholeStream(r.events, id, ['a', 's', 'b']);
        const wf = await waitStatus(m.base, id, 'complete', 5000);
        assert.equal(wf.last_event_id, r.events.length);

        /* its errors are the submit errors, as JSON */
        const bad = await api(m.base, 'POST', '/api/v1/stream/workflow',
                              { prompt: '' });
        assert.equal(bad.status, 400);
        assert.equal(bad.json.error.code, 'invalid_field');
    });

    /* last: it replaces the workers */
    test('streams survive nginx -s reload (resume with the last id)',
         async () => {
        const w = await submit(m.base, {
            prompt: 'across a reload',
            workflow: chain(['a', 'echo'], ['s', 'sleep', { ms: 3000 }],
                            ['b', 'echo']),
        });
        const url = `${m.base}/api/v1/workflows/${w.id}/events`;

        /* several connections, so that every old worker holds one */
        const hs = Array.from({ length: 8 }, () =>
            openSSE(url, { timeoutMs: 25000 }));
        await Promise.all(hs.map((h) => h.waitEvents((evs) => evs.some(
            (e) => e.event === 'agent_status' && e.data.id === 's'), 10000)));

        const { oldPids, newPids } = await m.reload();
        assert.equal(newPids.filter((p) => oldPids.includes(p)).length, 0);

        const all = [];
        for (const h of hs) {
            const first = await h.done;
            const got = [...first.events];
            if (first.ended !== 'done') {
                /* closed by the old worker: reconnect after the last id */
                assert.ok(['close', 'error'].includes(first.ended),
                          `first stream ended: ${first.ended}`);
                const lastId = got.length ? got[got.length - 1].id : 0;
                /* as EventSource does: retry while the new workers'
                   sockets take over (reuseport queues are reset) */
                let rest;
                for (let i = 0; i < 10; i++) {
                    rest = await sse(url, { lastEventId: lastId,
                                            timeoutMs: 25000 });
                    if (rest.status !== 0) break;
                    await new Promise((r) => setTimeout(r, 200));
                }
                assert.equal(rest.status, 200);
                assert.equal(rest.ended, 'done',
                             `resumed ended: ${rest.ended}`);
                got.push(...rest.events);
            }
            assertWholeStream(got, w.id, ['a', 's', 'b']);
            all.push(got);
        }

        const wf = await waitStatus(m.base, w.id, 'complete', 15000);
        const replay = await sse(url, { timeoutMs: 10000 });
        assert.equal(wf.last_event_id, replay.events.length);
        for (const got of all) {
            assert.deepEqual(strip(got), strip(replay.events));
        }

        /* old workers closed their streams cleanly, not by aborting */
        await waitFor(() => oldPids.every((p) => !m.workerPids().includes(p)),
                      10000, 50, 'old workers to exit');
        const aborted = m.errorLog().split('\n')
            .filter((l) => /open socket .* left in connection|aborting/
                .test(l));
        assert.deepEqual(aborted, [], 'a worker left SSE sockets open');
    });
});


/*
 * A client that stops reading: the stream waits (the events stay in the
 * store, not in memory), and goes on by itself once the client reads
 * again, with nothing new to wake it. A small send buffer on the listener
 * makes "behind" come after a few hundred KB.
 */
describe('SSE: a slow client catches up', () => {
    let m;

    before(async () => {
        m = await startMaestro({ workers: 1, listenParams: 'sndbuf=4096' });
    });
    after(() => stopClean(m));

    test('the monitor stream resumes when the client reads again',
         async () => {
        const sock = net.connect(m.port, '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        sock.write('GET /api/v1/events HTTP/1.0\r\nHost: x\r\n\r\n');
        const parts = [];
        sock.on('data', (d) => parts.push(d));
        await new Promise((r) => setTimeout(r, 200));
        sock.pause();                   /* a client that does not read */

        const ids = [];
        for (let i = 0; i < 10; i++) {
            const batch = await Promise.all(Array.from({ length: 40 },
                (_, j) => submit(m.base, { prompt: `catch up ${i} ${j}`,
                                           workflow: 'default' })));
            ids.push(...batch.map((w) => w.id));
        }
        for (const id of ids) {
            await waitStatus(m.base, id);
        }
        await new Promise((r) => setTimeout(r, 500));

        sock.resume();
        const text = () => Buffer.concat(parts).toString();
        await waitFor(() => ids.every((id) => text().includes(
            `"id":"${id}","name"`) && new RegExp(`"id":"${id}"[^\\n]*`
            + '"status":"complete"').test(text())), 10000, 50,
                      'every workflow complete on the stream');
        /* more than the socket buffers hold: the server was behind */
        const total = Buffer.concat(parts).length;
        assert.ok(total > 300000, `${total} bytes`);
        sock.destroy();
    });
});
