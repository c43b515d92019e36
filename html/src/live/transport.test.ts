import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeSseServer, flush, sseEvent } from '../test/fakeSseFetch';
import { FakeWebSocket, asWS } from '../test/fakeWebSocket';
import { authState, dismissPrompt, resetAuthForTests,
         setKey, submitKey } from '../api/auth';
import { backoffDelay, openLive, openSse, parseWsMessage,
         resetTransportMemory, transportMemory, withLastEventId,
         wsUrl } from './transport';
import type { LiveEvent } from '../api/types';

function timers() {
  const pending: { fn: () => void; ms: number }[] = [];
  return {
    pending,
    setTimer: (fn: () => void, ms: number) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clearTimer: (t: unknown) => {
      const i = pending.indexOf(t as { fn: () => void; ms: number });
      if (i >= 0) pending.splice(i, 1);
    },
    runNext() {
      const t = pending.shift();
      t?.fn();
      return t;
    },
  };
}

const WS_URL = 'ws://localhost:3000/api/v1/workflows/wf/ws';
const SSE_URL = '/api/v1/workflows/wf/events';

describe('SSE transport (fetch)', () => {
  let srv: FakeSseServer;
  beforeEach(() => {
    srv = new FakeSseServer();
    resetAuthForTests();
  });

  it('backoff doubles, is capped and jittered', () => {
    expect(backoffDelay(0, 500, 10000, () => 1)).toBe(500);
    expect(backoffDelay(1, 500, 10000, () => 1)).toBe(1000);
    expect(backoffDelay(3, 500, 10000, () => 1)).toBe(4000);
    expect(backoffDelay(10, 500, 10000, () => 1)).toBe(10000);
    expect(backoffDelay(1, 500, 10000, () => 0)).toBe(750);
  });

  it('adds last_event_id to the URL (WebSocket)', () => {
    expect(withLastEventId('/e', 0)).toBe('/e');
    expect(withLastEventId('/e', 7)).toBe('/e?last_event_id=7');
    expect(withLastEventId('/e?a=1', 7)).toBe('/e?a=1&last_event_id=7');
  });

  it('delivers events in order, drops duplicates, ends on done',
     async () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const tr = openSse('/ev', { onEvent: (e) => got.push(e),
                                onState: (s) => states.push(s) },
                       { fetchImpl: srv.fetch });
    const c = srv.last();
    expect(c.url).toBe('/ev');
    expect(c.headers['last-event-id']).toBeUndefined();
    expect(c.headers.authorization).toBeUndefined();
    c.open();
    c.send(': heartbeat\n\nretry: 2000\n\n');
    c.send(sseEvent('workflow_update', 1, { status: 'running',
                                            progress: 0 }));
    c.send(sseEvent('token', 2, { agent: 'llm', text: 'Hi' }));
    c.send(sseEvent('token', 2, { agent: 'llm', text: 'Hi' }));
    c.send(sseEvent('done', 3, { id: 'wf', status: 'complete',
                                 result: 'Hi' }));
    c.send(sseEvent('token', 4, { agent: 'llm', text: 'late' }));
    await flush();
    expect(got.map((e) => [e.id, e.type])).toEqual([
      [1, 'workflow_update'], [2, 'token'], [3, 'done']]);
    expect(c.aborted()).toBe(true);
    expect(states).toEqual(['connecting', 'open', 'closed']);
    expect(tr.lastEventId()).toBe(3);
    expect(tr.kind()).toBe('sse');
  });

  it('sends the stored key as a Bearer header', async () => {
    setKey('mk_k1');
    openSse('/ev', { onEvent: () => {} }, { fetchImpl: srv.fetch });
    expect(srv.last().headers.authorization).toBe('Bearer mk_k1');
  });

  it('a server "error" event ends the stream', async () => {
    const got: LiveEvent[] = [];
    const tm = timers();
    openSse('/ev', { onEvent: (e) => got.push(e) },
            { fetchImpl: srv.fetch, setTimer: tm.setTimer,
              clearTimer: tm.clearTimer });
    const c = srv.last();
    c.open();
    c.send(sseEvent('error', 5, { id: 'wf', status: 'failed',
                                  error: 'boom' }));
    await flush();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 'error', data: { error: 'boom' } });
    expect(c.aborted()).toBe(true);
    expect(tm.pending).toHaveLength(0);
  });

  it('reconnects after the server\'s retry with backoff and resumes with '
     + 'Last-Event-ID', async () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const tm = timers();
    const tr = openSse('/ev', { onEvent: (e) => got.push(e),
                                onState: (s) => states.push(s) },
                       { fetchImpl: srv.fetch, setTimer: tm.setTimer,
                         clearTimer: tm.clearTimer, random: () => 1 });
    const c1 = srv.last();
    c1.open();
    c1.send('retry: 2000\n\n' + sseEvent('log_entry', 1, { message: 'a' })
            + sseEvent('log_entry', 2, { message: 'b' }));
    await flush();
    c1.end();                           /* server went away */
    await flush();
    expect(states.at(-1)).toBe('reconnecting');
    /* the backoff starts from the server's retry: 2000 */
    expect(tm.pending.map((t) => t.ms)).toEqual([2000]);
    tm.runNext();
    const c2 = srv.last();
    expect(c2).not.toBe(c1);
    expect(c2.url).toBe('/ev');           /* the id goes in a header */
    expect(c2.headers['last-event-id']).toBe('2');
    c2.refuse();                        /* still down: longer wait */
    await flush();
    expect(tm.pending.map((t) => t.ms)).toEqual([1000]);
    tm.runNext();
    const c3 = srv.last();
    expect(c3.headers['last-event-id']).toBe('2');
    c3.respond(503, { error: { code: 'queue_full' } });   /* busy */
    await flush();
    expect(tm.pending.map((t) => t.ms)).toEqual([2000]);
    tm.runNext();
    const c4 = srv.last();
    c4.open();
    await flush();
    expect(states.at(-1)).toBe('open');
    c4.send(sseEvent('log_entry', 2, { message: 'b again' }));  /* replay */
    c4.send(sseEvent('log_entry', 3, { message: 'c' }));
    await flush();
    expect(got.map((e) => e.id)).toEqual([1, 2, 3]);
    c4.drop();                           /* backoff was reset by open */
    await flush();
    expect(tm.pending.map((t) => t.ms)).toEqual([500]);
    tr.close();
    expect(tm.pending).toHaveLength(0);
  });

  it('403 and 404 end the live view with the server\'s message',
     async () => {
    const fails: unknown[] = [];
    const states: string[] = [];
    const tm = timers();
    openSse('/ev', { onEvent: () => {}, onState: (s) => states.push(s),
                     onFailure: (f) => fails.push(f) },
            { fetchImpl: srv.fetch, setTimer: tm.setTimer,
              clearTimer: tm.clearTimer });
    srv.last().respond(403, { error: { code: 'forbidden',
                                       message: 'not your workflow' } });
    await flush();
    expect(fails).toEqual([{ status: 403, code: 'forbidden',
                             message: 'not your workflow' }]);
    expect(states.at(-1)).toBe('failed');
    expect(tm.pending).toHaveLength(0);
    expect(authState().forbidden).toBe('not your workflow');

    openSse('/ev', { onEvent: () => {}, onFailure: (f) => fails.push(f) },
            { fetchImpl: srv.fetch, setTimer: tm.setTimer,
              clearTimer: tm.clearTimer });
    srv.last().respond(404, { error: { code: 'not_found',
                                       message: 'no such workflow' } });
    await flush();
    expect(fails).toHaveLength(2);
    expect(srv.calls).toHaveLength(2);
  });

  it('401: waits for the key dialog, then reconnects with the key',
     async () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const tm = timers();
    openSse('/ev', { onEvent: (e) => got.push(e),
                     onState: (s) => states.push(s) },
            { fetchImpl: srv.fetch, setTimer: tm.setTimer,
              clearTimer: tm.clearTimer, lastEventId: 4 });
    srv.last().respond(401, { error: { code: 'unauthorized' } },
                       { 'WWW-Authenticate': 'Bearer realm="maestro"' });
    await flush();
    expect(authState().prompt).toBe('missing');
    expect(states.at(-1)).toBe('reconnecting');
    expect(srv.calls).toHaveLength(1);
    const me = vi.fn(async () => new Response('{"kind":"key"}',
                                              { status: 200 }));
    expect(await submitKey('mk_good', me)).toMatchObject({ ok: true });
    await flush();
    expect(srv.calls).toHaveLength(2);
    const c = srv.last();
    expect(c.headers.authorization).toBe('Bearer mk_good');
    expect(c.headers['last-event-id']).toBe('4');
    c.open();
    c.send(sseEvent('token', 5, { text: 'x' }));
    await flush();
    expect(got.map((e) => e.id)).toEqual([5]);
  });

  it('401 and a dismissed dialog: the live view stops', async () => {
    const fails: { status: number }[] = [];
    openSse('/ev', { onEvent: () => {}, onFailure: (f) => fails.push(f) },
            { fetchImpl: srv.fetch });
    srv.last().respond(401, {}, { 'WWW-Authenticate': 'Bearer' });
    await flush();
    dismissPrompt();
    await flush();
    expect(fails.map((f) => f.status)).toEqual([401]);
    expect(srv.calls).toHaveLength(1);
  });

  it('close() stops everything', async () => {
    const onEvent = vi.fn();
    const tr = openSse('/ev', { onEvent }, { fetchImpl: srv.fetch,
                                             lastEventId: 9 });
    const c = srv.last();
    expect(c.headers['last-event-id']).toBe('9');
    c.open();
    await flush();
    tr.close();
    expect(c.aborted()).toBe(true);
    c.send(sseEvent('token', 10, { text: 'x' }));
    await flush();
    expect(onEvent).not.toHaveBeenCalled();
  });
});

describe('WebSocket messages', () => {
  it('builds ws:// and wss:// URLs on this origin', () => {
    expect(wsUrl('/a/ws', { protocol: 'http:', host: 'h:8' }))
      .toBe('ws://h:8/a/ws');
    expect(wsUrl('/a/ws', { protocol: 'https:', host: 'h' }))
      .toBe('wss://h/a/ws');
    expect(wsUrl('ws://x/y')).toBe('ws://x/y');
  });

  it('parses workflow events and ignores everything else', () => {
    expect(parseWsMessage(JSON.stringify({ type: 'token', workflow_id: 'wf',
      event_id: 4, data: { text: 'a' } }), 'wf'))
      .toEqual({ id: 4, type: 'token', data: { text: 'a' } });
    /* the server's final error event has data */
    expect(parseWsMessage(JSON.stringify({ type: 'error', event_id: 9,
      data: { status: 'failed', error: 'x' } }), 'wf'))
      .toMatchObject({ id: 9, type: 'error' });
    /* a protocol error about a client message has none */
    expect(parseWsMessage(JSON.stringify({ type: 'error',
      code: 'invalid_json', message: 'no' }), 'wf')).toBeNull();
    expect(parseWsMessage(JSON.stringify({ type: 'action_result',
      ok: true, workflow_id: 'wf' }), 'wf')).toBeNull();
    expect(parseWsMessage(JSON.stringify({ type: 'token',
      workflow_id: 'other', event_id: 1, data: {} }), 'wf')).toBeNull();
    expect(parseWsMessage('{nope', 'wf')).toBeNull();
    expect(parseWsMessage(new ArrayBuffer(2), 'wf')).toBeNull();
  });
});

describe('live transport: WebSocket first', () => {
  let srv: FakeSseServer;
  beforeEach(() => {
    srv = new FakeSseServer();
    FakeWebSocket.reset();
    resetTransportMemory();
    resetAuthForTests();
  });

  const opts = (tm: ReturnType<typeof timers>) => ({
    fetchImpl: srv.fetch, WebSocketImpl: asWS, setTimer: tm.setTimer,
    clearTimer: tm.clearTimer, random: () => 1 });

  it('streams over a WebSocket, dedups, ends on done', () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const kinds: string[] = [];
    const tm = timers();
    const tr = openLive('wf', { onEvent: (e) => got.push(e),
                                onState: (s) => states.push(s),
                                onTransport: (k) => kinds.push(k) },
                        opts(tm));
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe(WS_URL);
    expect(ws.protocols).toBeUndefined();     /* no key: none offered */
    expect(srv.calls).toHaveLength(0);
    ws.open();
    ws.emit('workflow_update', 1, { status: 'running', progress: 0 });
    ws.raw(JSON.stringify({ type: 'error', code: 'invalid_json',
                            message: 'bad' }));      /* not final */
    ws.emit('token', 2, { text: 'Hi' });
    ws.emit('token', 2, { text: 'Hi' });
    ws.emit('done', 3, { id: 'wf', status: 'complete', result: 'Hi' });
    ws.emit('token', 4, { text: 'late' });
    expect(got.map((e) => [e.id, e.type])).toEqual([
      [1, 'workflow_update'], [2, 'token'], [3, 'done']]);
    expect(states).toEqual(['connecting', 'open', 'closed']);
    expect(kinds).toEqual(['websocket']);
    expect(ws.closedWith).toBe(1000);
    expect(tr.kind()).toBe('websocket');
    expect(transportMemory()).toBe('works');
    expect(tm.pending).toHaveLength(0);
  });

  it('the final error event over a WebSocket ends the stream', () => {
    const got: LiveEvent[] = [];
    openLive('wf', { onEvent: (e) => got.push(e) }, opts(timers()));
    const ws = FakeWebSocket.last();
    ws.open();
    ws.emit('error', 7, { id: 'wf', status: 'failed', error: 'boom' });
    expect(got).toEqual([{ id: 7, type: 'error',
      data: { id: 'wf', status: 'failed', error: 'boom' } }]);
    expect(ws.closedWith).toBe(1000);
  });

  it('1001 going away: reconnects over WebSocket and resumes', () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const tm = timers();
    openLive('wf', { onEvent: (e) => got.push(e),
                     onState: (s) => states.push(s) }, opts(tm));
    const ws1 = FakeWebSocket.last();
    ws1.open();
    ws1.emit('log_entry', 1, { message: 'a' });
    ws1.emit('log_entry', 2, { message: 'b' });
    ws1.drop(1001);
    expect(states.at(-1)).toBe('reconnecting');
    expect(tm.pending.map((t) => t.ms)).toEqual([500]);
    tm.runNext();
    const ws2 = FakeWebSocket.last();
    expect(ws2).not.toBe(ws1);
    expect(ws2.url).toBe(`${WS_URL}?last_event_id=2`);
    ws2.drop(1006);                  /* server still down: no SSE */
    expect(srv.calls).toHaveLength(0);
    expect(tm.pending.map((t) => t.ms)).toEqual([1000]);
    tm.runNext();
    const ws3 = FakeWebSocket.last();
    expect(ws3.url).toBe(`${WS_URL}?last_event_id=2`);
    ws3.open();
    expect(states.at(-1)).toBe('open');
    ws3.emit('log_entry', 2, { message: 'b again' });
    ws3.emit('log_entry', 3, { message: 'c' });
    expect(got.map((e) => e.id)).toEqual([1, 2, 3]);
  });

  it('falls back to SSE when no WebSocket gets through', async () => {
    const got: LiveEvent[] = [];
    const kinds: string[] = [];
    const states: string[] = [];
    const tm = timers();
    const tr = openLive('wf', { onEvent: (e) => got.push(e),
                                onState: (s) => states.push(s),
                                onTransport: (k) => kinds.push(k) },
                        opts(tm));
    FakeWebSocket.last().drop(1006);          /* upgrade refused */
    expect(tm.pending).toHaveLength(0);      /* at once */
    const c = srv.last();
    expect(c.url).toBe(SSE_URL);
    expect(kinds).toEqual(['websocket', 'sse']);
    expect(tr.kind()).toBe('sse');
    c.open();
    c.send(sseEvent('token', 1, { text: 'x' }));
    await flush();
    expect(got.map((e) => e.id)).toEqual([1]);
    expect(states).toEqual(['connecting', 'connecting', 'open']);
    expect(transportMemory()).toBe('refused');

    /* the page remembers: the next stream starts on SSE */
    const before = FakeWebSocket.instances.length;
    const tr2 = openLive('wf2', { onEvent: () => {} }, opts(tm));
    expect(FakeWebSocket.instances).toHaveLength(before);
    expect(srv.last().url).toBe('/api/v1/workflows/wf2/events');
    expect(tr2.kind()).toBe('sse');
    tr.close();
    tr2.close();
  });

  it('offers the key as a subprotocol next to "maestro"', () => {
    setKey('mk_abc_DEF-1');
    openLive('wf', { onEvent: () => {} }, opts(timers()));
    expect(FakeWebSocket.last().protocols)
      .toEqual(['maestro', 'maestro.bearer.mk_abc_DEF-1']);
  });

  it('a WebSocket refused for want of a key: the SSE 401 asks for one, '
     + 'then the WebSocket is tried again', async () => {
    const tm = timers();
    const kinds: string[] = [];
    openLive('wf', { onEvent: () => {}, onTransport: (k) => kinds.push(k) },
             opts(tm));
    FakeWebSocket.last().drop(1006);          /* the upgrade got a 401 */
    srv.last().respond(401, {}, { 'WWW-Authenticate': 'Bearer' });
    await flush();
    expect(authState().prompt).toBe('missing');
    await submitKey('mk_k2', async () => new Response('{"kind":"key"}'));
    await flush();
    expect(kinds).toEqual(['websocket', 'sse', 'websocket']);
    const ws = FakeWebSocket.last();
    expect(ws.protocols).toEqual(['maestro', 'maestro.bearer.mk_k2']);
    ws.open();
    expect(transportMemory()).toBe('works');
  });

  it('prefer sse, or no WebSocket at all, uses SSE', () => {
    openLive('wf', { onEvent: () => {} },
             { fetchImpl: srv.fetch, WebSocketImpl: asWS, prefer: 'sse' });
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(srv.last().url).toBe(SSE_URL);
  });

  it('close() stops a WebSocket and its reconnect', () => {
    const onEvent = vi.fn();
    const tm = timers();
    const tr = openLive('wf', { onEvent }, { ...opts(tm), lastEventId: 5 });
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe(`${WS_URL}?last_event_id=5`);
    ws.open();
    ws.drop(1001);
    expect(tm.pending).toHaveLength(1);
    tr.close();
    expect(tm.pending).toHaveLength(0);
    expect(tr.lastEventId()).toBe(5);
  });
});
