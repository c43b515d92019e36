/*
 * Live event transport for one workflow. openLive() prefers a WebSocket
 * (/api/v1/workflows/{id}/ws) and falls back to Server-Sent Events
 * (/api/v1/workflows/{id}/events, read with fetch(): sse.ts); both carry
 * the same events with the same ids, so one session object owns the last
 * seen id, the dedup and the reconnect backoff, and a "connector" per
 * kind only opens the connection.
 *
 * Credentials (maestro_auth on): SSE requests carry "Authorization:
 * Bearer <key>" (EventSource cannot send headers, which is why SSE is
 * read with fetch()); a WebSocket offers the subprotocols "maestro" and
 * "maestro.bearer.<key>" (auth.ts). A 401 on SSE waits for the key
 * dialog, then reconnects (on the WebSocket again, if that was the
 * first choice); a refused WebSocket upgrade is not visible to a page
 * (the close looks like a refused upgrade), so it is the SSE request of
 * the fallback that finds out.
 *
 * Reconnect: on any connection loss (a WebSocket close, e.g. 1001 when a
 * worker shuts down; an SSE body that ends or breaks, a 5xx) the session
 * waits an exponential backoff with jitter, from the server's "retry:"
 * for SSE (the standard's reconnection time) else minDelayMs, and
 * reconnects after the last seen id: "Last-Event-ID: <id>" on SSE,
 * ?last_event_id=<id> on the WebSocket (no headers there). The server
 * resumes strictly after it. Events at or below the last seen id are
 * dropped, so a replay never delivers one twice. The stream is over
 * after the final "done" or "error" event, or when the server refuses it
 * for good (403, 404, 410, another 4xx; a dismissed key dialog): state
 * "failed", with onFailure.
 *
 * Fallback: a WebSocket that closes before it ever opened, in a page where
 * no WebSocket has opened yet, is taken for a proxy that refuses upgrades:
 * the session switches to SSE at once. If SSE then opens, the page
 * remembers it and later sessions start on SSE. Once a WebSocket has opened
 * in the page, a failed reconnect (server down) retries the WebSocket.
 *
 * Note: the server's final event is named "error", like the WebSocket's
 * {"type": "error", "code"} message for an unusable client message; only
 * the final one has data.
 */

import { LIVE_EVENT_TYPES, type LiveEvent, type LiveEventType }
  from '../api/types';
import { getKey, needKey, reportForbidden, withAuth,
         wsProtocols } from '../api/auth';
import { connectSse, type SseEnd } from './sse';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting'
  | 'closed' | 'failed';
export type TransportKind = 'websocket' | 'sse';

export interface LiveHandlers {
  onEvent: (ev: LiveEvent) => void;
  onState?: (state: ConnectionState) => void;
  onTransport?: (kind: TransportKind) => void;
  /* the server refused the stream for good (state "failed") */
  onFailure?: (f: LiveFailure) => void;
}

export interface LiveFailure {
  status: number;             /* 401 after a dismissed key dialog */
  code: string;
  message: string;
}

export interface LiveTransport {
  close: () => void;
  lastEventId: () => number;
  kind: () => TransportKind;
}

export interface SseOptions {
  lastEventId?: number;
  /* the fetch() that reads SSE (tests pass a fake) */
  fetchImpl?: typeof fetch;
  WebSocketImpl?: typeof WebSocket;
  /* 'sse': never try a WebSocket */
  prefer?: TransportKind;
  minDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export type LiveOptions = SseOptions;

/* what this page learnt about WebSockets */
let wsMemory: 'unknown' | 'works' | 'refused' = 'unknown';

export function resetTransportMemory(): void {
  wsMemory = 'unknown';
}

export function transportMemory(): typeof wsMemory {
  return wsMemory;
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

/* an absolute ws:// or wss:// URL for a path on this origin */
export function wsUrl(path: string, loc: { protocol: string; host: string }
                        = window.location): string {
  if (/^wss?:/.test(path)) {
    return path;
  }
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${path}`;
}

const TYPES = new Set<string>(LIVE_EVENT_TYPES);

/*
 * A WebSocket text message as a live event, or null for anything else
 * (action_result, a protocol {"type": "error", "code"} message, another
 * workflow's event, bad JSON).
 */
export function parseWsMessage(text: unknown, workflowId?: string):
  LiveEvent | null {
  if (typeof text !== 'string') {
    return null;
  }
  let m: { type?: unknown; event_id?: unknown; data?: unknown;
           workflow_id?: unknown };
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (!m || typeof m !== 'object' || typeof m.type !== 'string'
      || !TYPES.has(m.type) || m.data === null
      || typeof m.data !== 'object') {
    return null;
  }
  if (workflowId && m.workflow_id !== undefined
      && m.workflow_id !== workflowId) {
    return null;
  }
  const id = Number(m.event_id);
  return { id: Number.isFinite(id) && id > 0 ? id : 0,
           type: m.type as LiveEventType, data: m.data } as LiveEvent;
}

interface Session {
  /* an event arrived; false once the session is over */
  deliver: (type: LiveEventType, id: number, data: unknown) => void;
  opened: () => void;
  /* the connection is gone (before it opened: neverOpened); retryMs: the
     server's reconnection time */
  lost: (neverOpened: boolean, retryMs?: number | null) => void;
  /* a 401 challenge to the credential the connection sent */
  unauthorized: (sentKey: string | null) => void;
  /* refused for good */
  failed: (f: LiveFailure) => void;
  isClosed: () => boolean;
}

type Connector = (lastId: number, s: Session) => { close: () => void };

/* a refusal's {"error": {code, message}}, or what the status says */
async function failureOf(res: Response): Promise<LiveFailure> {
  let code = 'http_error';
  let message = `HTTP ${res.status}`;
  try {
    const j = await res.json() as { error?: { code?: unknown;
                                              message?: unknown } };
    if (typeof j?.error?.code === 'string') {
      code = j.error.code;
    }
    if (typeof j?.error?.message === 'string') {
      message = j.error.message;
    }
  } catch {
    /* not JSON */
  }
  return { status: res.status, code, message };
}

/* worth trying again later: the server is down or busy */
export function transientStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

function sseConnector(url: string, fetchImpl?: typeof fetch): Connector {
  return (lastId, s) => {
    let opened = false;
    const key = getKey();
    const conn = connectSse(url, {
      fetchImpl,
      headers: withAuth({}, key),
      lastEventId: lastId > 0 ? String(lastId) : undefined,
      onOpen: () => {
        opened = true;
        s.opened();
      },
      onEvent: (ev) => {
        if (s.isClosed() || !TYPES.has(ev.type)) {
          return;
        }
        let data: unknown;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (data === null || typeof data !== 'object') {
          return;
        }
        s.deliver(ev.type as LiveEventType, Number(ev.lastEventId), data);
      },
      onEnd: (end: SseEnd, parser) => {
        if (s.isClosed()) {
          return;
        }
        if (end.kind !== 'http' || transientStatus(end.status)) {
          if (end.kind === 'http') {
            end.response.body?.cancel().catch(() => {});
          }
          s.lost(!opened, parser.retry);
          return;
        }
        const res = end.response;
        if (res.status === 401) {
          res.body?.cancel().catch(() => {});
          s.unauthorized(key);
          return;
        }
        failureOf(res).then((f) => {
          if (f.status === 403) {
            reportForbidden(f.message);
          }
          s.failed(f);
        });
      },
    });
    return { close: () => conn.close() };
  };
}

function wsConnector(url: string, WS: typeof WebSocket,
                     workflowId?: string): Connector {
  return (lastId, s) => {
    let ws: WebSocket;
    let opened = false;
    let done = false;
    try {
      /* the key as a subprotocol (a page cannot set headers here) */
      const protocols = wsProtocols();
      ws = protocols ? new WS(withLastEventId(url, lastId), protocols)
        : new WS(withLastEventId(url, lastId));
    } catch {
      /* e.g. a bad URL or a CSP refusing ws: */
      queueMicrotask(() => s.lost(true));
      return { close: () => {} };
    }
    ws.onopen = () => {
      opened = true;
      s.opened();
    };
    ws.onmessage = (e: MessageEvent) => {
      if (s.isClosed()) {
        return;
      }
      const ev = parseWsMessage(e.data, workflowId);
      if (ev) {
        s.deliver(ev.type, ev.id, ev.data);
      }
    };
    /* an error is always followed by a close */
    ws.onclose = () => {
      if (!done) {
        done = true;
        s.lost(!opened);
      }
    };
    return {
      close: () => {
        done = true;
        ws.onopen = null;
        ws.onmessage = null;
        ws.onclose = null;
        try {
          ws.close(1000);
        } catch {
          /* already closing */
        }
      },
    };
  };
}

interface Endpoints {
  sse: string;
  ws?: string;
  workflowId?: string;
}

function openSession(ep: Endpoints, handlers: LiveHandlers,
                     opts: LiveOptions): LiveTransport {
  const WS = opts.WebSocketImpl
    ?? (typeof WebSocket !== 'undefined' ? WebSocket : undefined);
  const minDelay = opts.minDelayMs ?? 500;
  const maxDelay = opts.maxDelayMs ?? 10000;
  const setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = opts.clearTimer
    ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  const initialId = opts.lastEventId ?? 0;
  const firstKind = (): TransportKind => (ep.ws && WS
    && opts.prefer !== 'sse' && wsMemory !== 'refused' ? 'websocket'
    : 'sse');
  let kind: TransportKind = firstKind();
  let lastId = initialId;
  let conn: { close: () => void } | null = null;
  let timer: unknown = null;
  let attempt = 0;
  let closed = false;
  let fellBack = false;

  const setState = (s: ConnectionState) => handlers.onState?.(s);

  const drop = () => {
    conn?.close();
    conn = null;
  };

  const finish = () => {
    closed = true;
    drop();
    if (timer !== null) {
      clearTimer(timer);
      timer = null;
    }
  };

  const scheduleReconnect = (retryMs?: number | null) => {
    drop();
    if (closed || timer !== null) {
      return;
    }
    setState('reconnecting');
    /* the server's reconnection time is where the backoff starts */
    const from = retryMs && retryMs > 0 ? Math.min(retryMs, maxDelay)
      : minDelay;
    const delay = backoffDelay(attempt++, from, maxDelay, opts.random);
    timer = setTimer(() => {
      timer = null;
      connect();
    }, delay);
  };

  const session: Session = {
    isClosed: () => closed,
    opened: () => {
      if (closed) {
        return;
      }
      attempt = 0;
      if (kind === 'websocket') {
        wsMemory = 'works';
      } else if (fellBack && wsMemory === 'unknown') {
        wsMemory = 'refused';
      }
      setState('open');
    },
    lost: (neverOpened, retryMs) => {
      if (closed) {
        return;
      }
      if (kind === 'websocket' && neverOpened && wsMemory !== 'works') {
        /* no WebSocket got through yet: try SSE at once */
        drop();
        kind = 'sse';
        fellBack = true;
        connect();
        return;
      }
      scheduleReconnect(retryMs);
    },
    unauthorized: (sentKey) => {
      if (closed) {
        return;
      }
      drop();
      setState('reconnecting');
      needKey(sentKey).then((got) => {
        if (closed) {
          return;
        }
        if (!got) {
          session.failed({ status: 401, code: 'unauthorized',
                           message: 'an API key is needed' });
          return;
        }
        /* a WebSocket refused for want of a key was no proxy's doing */
        if (fellBack && wsMemory === 'unknown') {
          kind = firstKind();
          fellBack = false;
        }
        attempt = 0;
        connect();
      });
    },
    failed: (f) => {
      if (closed) {
        return;
      }
      finish();
      setState('failed');
      handlers.onFailure?.(f);
    },
    deliver: (type, id, data) => {
      if (closed) {
        return;
      }
      if (Number.isFinite(id) && id > 0) {
        if (id <= lastId) {
          return;              /* already delivered */
        }
        lastId = id;
      }
      handlers.onEvent({ id: Number.isFinite(id) ? id : 0, type,
                         data } as LiveEvent);
      if (type === 'done' || type === 'error') {
        finish();
        setState('closed');
      }
    },
  };

  function connect() {
    if (closed) {
      return;
    }
    setState(attempt === 0 && lastId === initialId
      ? 'connecting' : 'reconnecting');
    handlers.onTransport?.(kind);
    const connector = kind === 'websocket'
      ? wsConnector(wsUrl(ep.ws as string), WS as typeof WebSocket,
                    ep.workflowId)
      : sseConnector(ep.sse, opts.fetchImpl);
    conn = connector(lastId, session);
  }

  connect();

  return {
    close: () => {
      if (!closed) {
        finish();
      }
    },
    lastEventId: () => lastId,
    kind: () => kind,
  };
}

/* Server-Sent Events only, on any URL. */
export function openSse(url: string, handlers: LiveHandlers,
                        opts: SseOptions = {}): LiveTransport {
  return openSession({ sse: url }, handlers, { ...opts, prefer: 'sse' });
}

export function workflowEndpoints(id: string): Endpoints {
  const base = `/api/v1/workflows/${encodeURIComponent(id)}`;
  return { sse: `${base}/events`, ws: `${base}/ws`, workflowId: id };
}

/* One workflow's events: WebSocket first, SSE as the fallback. */
export function openLive(id: string, handlers: LiveHandlers,
                         opts: LiveOptions = {}): LiveTransport {
  return openSession(workflowEndpoints(id), handlers, opts);
}
