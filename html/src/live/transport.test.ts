import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeEventSource, asES } from '../test/fakeEventSource';
import { backoffDelay, openSse, withLastEventId } from './transport';
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
