/*
 * Live event transport. Today: Server-Sent Events on
 * /api/v1/workflows/{id}/events. A WebSocket transport can be added behind
 * the same LiveTransport interface (openLive() picks one).
 *
 * Reconnect: the browser's EventSource reconnects by itself with
 * Last-Event-ID, but gives up for good on an HTTP error (e.g. 502 while
 * nginx restarts) and keeps no backoff. So on any connection error this
 * module closes the EventSource and opens a new one itself, after an
 * exponential backoff with jitter, with ?last_event_id=<last seen id>: the
 * server resumes strictly after it. Events at or below the last seen id are
 * dropped, so a replay never delivers one twice. The stream is over after
 * the final "done" or "error" event.
 *
 * Note: the server's final event is named "error", like EventSource's own
 * connection error; the server's one is a MessageEvent with data.
 */

import { LIVE_EVENT_TYPES, type LiveEvent } from '../api/types';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting'
  | 'closed';

export interface LiveHandlers {
  onEvent: (ev: LiveEvent) => void;
  onState?: (state: ConnectionState) => void;
}

export interface LiveTransport {
  close: () => void;
  lastEventId: () => number;
}

export interface SseOptions {
  lastEventId?: number;
  EventSourceImpl?: typeof EventSource;
  minDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

/* the wait before reconnect attempt n (0-based): min * 2^n, capped,
   with up to 25 % jitter */
export function backoffDelay(attempt: number, minMs: number, maxMs: number,
                             random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20));
  return Math.round(base * (0.75 + 0.25 * random()));
}

export function withLastEventId(url: string, id: number): string {
  if (!id) {
    return url;
  }
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}last_event_id=${id}`;
}

export function openSse(url: string, handlers: LiveHandlers,
                        opts: SseOptions = {}): LiveTransport {
  const ES = opts.EventSourceImpl ?? EventSource;
  const minDelay = opts.minDelayMs ?? 500;
  const maxDelay = opts.maxDelayMs ?? 10000;
  const setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = opts.clearTimer
    ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  let lastId = opts.lastEventId ?? 0;
  let es: EventSource | null = null;
  let timer: unknown = null;
  let attempt = 0;
  let closed = false;

  const setState = (s: ConnectionState) => handlers.onState?.(s);

  const finish = () => {
    closed = true;
    es?.close();
    es = null;
    if (timer !== null) {
      clearTimer(timer);
      timer = null;
    }
  };

  const scheduleReconnect = () => {
    es?.close();
    es = null;
    if (closed || timer !== null) {
      return;
    }
    setState('reconnecting');
    const delay = backoffDelay(attempt++, minDelay, maxDelay, opts.random);
    timer = setTimer(() => {
      timer = null;
      connect();
    }, delay);
  };

  const onMessage = (type: LiveEvent['type']) => (e: Event) => {
    const me = e as MessageEvent<string>;
    if (closed) {
      return;
    }
    if (type === 'error' && (typeof me.data !== 'string' || me.data === '')) {
      scheduleReconnect();
      return;
    }
    const id = Number(me.lastEventId);
    if (Number.isFinite(id) && id > 0) {
      if (id <= lastId) {
        return;              /* already delivered */
      }
      lastId = id;
    }
    let data: unknown;
    try {
      data = JSON.parse(me.data);
    } catch {
      return;
    }
    handlers.onEvent({ id, type, data } as LiveEvent);
    if (type === 'done' || type === 'error') {
      finish();
      setState('closed');
    }
  };

  function connect() {
    if (closed) {
      return;
    }
    setState(attempt === 0 && lastId === (opts.lastEventId ?? 0)
      ? 'connecting' : 'reconnecting');
    const source = new ES(withLastEventId(url, lastId));
    es = source;
    source.onopen = () => {
      attempt = 0;
      setState('open');
    };
    for (const type of LIVE_EVENT_TYPES) {
      source.addEventListener(type, onMessage(type));
    }
  }

  connect();

  return {
    close: () => {
      if (!closed) {
        finish();
      }
    },
    lastEventId: () => lastId,
  };
}

/* The transport in use; a WebSocket one would be chosen here. */
export function openLive(url: string, handlers: LiveHandlers,
                         opts: SseOptions = {}): LiveTransport {
  return openSse(url, handlers, opts);
}
