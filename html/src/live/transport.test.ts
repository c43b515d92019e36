import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeEventSource, asES } from '../test/fakeEventSource';
import { FakeWebSocket, asWS } from '../test/fakeWebSocket';
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

describe('SSE transport', () => {
  beforeEach(() => FakeEventSource.reset());

  it('backoff doubles, is capped and jittered', () => {
    expect(backoffDelay(0, 500, 10000, () => 1)).toBe(500);
    expect(backoffDelay(1, 500, 10000, () => 1)).toBe(1000);
    expect(backoffDelay(3, 500, 10000, () => 1)).toBe(4000);
    expect(backoffDelay(10, 500, 10000, () => 1)).toBe(10000);
    expect(backoffDelay(1, 500, 10000, () => 0)).toBe(750);
  });

  it('adds last_event_id to the URL', () => {
    expect(withLastEventId('/e', 0)).toBe('/e');
    expect(withLastEventId('/e', 7)).toBe('/e?last_event_id=7');
    expect(withLastEventId('/e?a=1', 7)).toBe('/e?a=1&last_event_id=7');
  });

  it('delivers events in order, drops duplicates, ends on done', () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const tr = openSse('/ev', { onEvent: (e) => got.push(e),
                                onState: (s) => states.push(s) },
                       { EventSourceImpl: asES });
    const es = FakeEventSource.last();
    expect(es.url).toBe('/ev');
    es.open();
    es.emit('workflow_update', 1, { status: 'running', progress: 0 });
    es.emit('token', 2, { agent: 'llm', text: 'Hi' });
    es.emit('token', 2, { agent: 'llm', text: 'Hi' });
    es.emit('done', 3, { id: 'wf', status: 'complete', result: 'Hi' });
    expect(got.map((e) => [e.id, e.type])).toEqual([
      [1, 'workflow_update'], [2, 'token'], [3, 'done']]);
    expect(es.closed).toBe(true);
    expect(states).toEqual(['connecting', 'open', 'closed']);
    expect(tr.lastEventId()).toBe(3);
    expect(tr.kind()).toBe('sse');
  });

  it('tells a server "error" event from a connection error', () => {
    const got: LiveEvent[] = [];
    const tm = timers();
    openSse('/ev', { onEvent: (e) => got.push(e) },
            { EventSourceImpl: asES, setTimer: tm.setTimer,
              clearTimer: tm.clearTimer });
    const es = FakeEventSource.last();
    es.emit('error', 5, { id: 'wf', status: 'failed', error: 'boom' });
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 'error', data: { error: 'boom' } });
    expect(es.closed).toBe(true);
    expect(tm.pending).toHaveLength(0);
  });

  it('reconnects with backoff and resumes after the last id', () => {
    const got: LiveEvent[] = [];
    const states: string[] = [];
    const tm = timers();
    const tr = openSse('/ev', { onEvent: (e) => got.push(e),
                                onState: (s) => states.push(s) },
                       { EventSourceImpl: asES, setTimer: tm.setTimer,
                         clearTimer: tm.clearTimer, random: () => 1 });
    const es1 = FakeEventSource.last();
    es1.open();
    es1.emit('log_entry', 1, { message: 'a' });
    es1.emit('log_entry', 2, { message: 'b' });
    es1.fail();                         /* server went away */
    expect(es1.closed).toBe(true);
    expect(states.at(-1)).toBe('reconnecting');
    expect(tm.pending.map((t) => t.ms)).toEqual([500]);
    tm.runNext();
    const es2 = FakeEventSource.last();
    expect(es2).not.toBe(es1);
    expect(es2.url).toBe('/ev?last_event_id=2');
    es2.fail();                         /* still down: longer wait */
    expect(tm.pending.map((t) => t.ms)).toEqual([1000]);
    tm.runNext();
    const es3 = FakeEventSource.last();
    expect(es3.url).toBe('/ev?last_event_id=2');
    es3.open();
    expect(states.at(-1)).toBe('open');
    es3.emit('log_entry', 2, { message: 'b again' });   /* replayed */
    es3.emit('log_entry', 3, { message: 'c' });
    expect(got.map((e) => e.id)).toEqual([1, 2, 3]);
    es3.fail();                          /* backoff was reset by open */
    expect(tm.pending.map((t) => t.ms)).toEqual([500]);
    tr.close();
    expect(tm.pending).toHaveLength(0);
  });

  it('close() stops everything', () => {
    const onEvent = vi.fn();
    const tr = openSse('/ev', { onEvent }, { EventSourceImpl: asES,
                                             lastEventId: 9 });
    const es = FakeEventSource.last();
    expect(es.url).toBe('/ev?last_event_id=9');
    tr.close();
    expect(es.closed).toBe(true);
    es.emit('token', 10, { text: 'x' });
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
  beforeEach(() => {
    FakeEventSource.reset();
    FakeWebSocket.reset();
    resetTransportMemory();
  });

  const opts = (tm: ReturnType<typeof timers>) => ({
    EventSourceImpl: asES, WebSocketImpl: asWS, setTimer: tm.setTimer,
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
    expect(FakeEventSource.instances).toHaveLength(0);
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
    expect(FakeEventSource.instances).toHaveLength(0);
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

  it('falls back to SSE when no WebSocket gets through', () => {
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
    const es = FakeEventSource.last();
    expect(es.url).toBe(SSE_URL);
    expect(kinds).toEqual(['websocket', 'sse']);
    expect(tr.kind()).toBe('sse');
    es.open();
    es.emit('token', 1, { text: 'x' });
    expect(got.map((e) => e.id)).toEqual([1]);
    expect(states).toEqual(['connecting', 'connecting', 'open']);
    expect(transportMemory()).toBe('refused');

    /* the page remembers: the next stream starts on SSE */
    const before = FakeWebSocket.instances.length;
    const tr2 = openLive('wf2', { onEvent: () => {} }, opts(tm));
    expect(FakeWebSocket.instances).toHaveLength(before);
    expect(FakeEventSource.last().url)
      .toBe('/api/v1/workflows/wf2/events');
    expect(tr2.kind()).toBe('sse');
    tr.close();
    tr2.close();
  });

  it('prefer sse, or no WebSocket at all, uses SSE', () => {
    openLive('wf', { onEvent: () => {} },
             { EventSourceImpl: asES, WebSocketImpl: asWS, prefer: 'sse' });
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(FakeEventSource.last().url).toBe(SSE_URL);
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
