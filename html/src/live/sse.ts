/*
 * Server-Sent Events read with fetch() instead of EventSource, so a
 * request can carry "Authorization: Bearer <key>" (EventSource cannot
 * send headers, and the server refuses a token in the URL: nginx logs
 * request lines).
 *
 * SseParser follows the HTML standard's event stream interpretation:
 * lines end in CRLF, LF or CR (a CR at the end of one chunk and an LF at
 * the start of the next are one line end); a leading BOM is dropped; a
 * line starting with ":" is a comment; "field: value" loses one leading
 * space of the value; a line without ":" is a field with an empty value;
 * "data" lines join with LF; "id" (without NUL) sets the last event id,
 * which outlives the event; "retry" (ASCII digits only) sets the
 * reconnection time; unknown fields are ignored; an empty line dispatches
 * the event (none when no data line came; its type is reset).
 *
 * connectSse() makes one connection: it sends Accept, Cache-Control,
 * Last-Event-ID and the caller's headers, checks the answer is a 200
 * text/event-stream, and feeds the body to a parser. It does not
 * reconnect: the live session (transport.ts) and the monitor feed own
 * the reconnect policy (the server's retry, backoff, resume by id).
 */

export interface SseEvent {
  type: string;               /* "message" when no event field came */
  data: string;
  lastEventId: string;        /* the stream's last event id at dispatch */
}

export class SseParser {
  lastEventId = '';
  /* the last valid retry field, in ms; null until the server sends one */
  retry: number | null = null;

  private buf = '';
  private type = '';
  private data: string[] = [];
  private hasData = false;
  private started = false;
  private skipLf = false;
  private readonly onEvent: (ev: SseEvent) => void;

  constructor(onEvent: (ev: SseEvent) => void) {
    this.onEvent = onEvent;
  }

  /* a decoded piece of the stream, split anywhere */
  feed(chunk: string): void {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) {
        text = text.slice(1);
      }
    }
    if (this.skipLf && text.length > 0) {
      this.skipLf = false;
      if (text[0] === '\n') {
        text = text.slice(1);
      }
    }
    this.buf += text;
    let start = 0;
    for (;;) {
      const cr = this.buf.indexOf('\r', start);
      const lf = this.buf.indexOf('\n', start);
      if (cr < 0 && lf < 0) {
        break;
      }
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      this.line(this.buf.slice(start, end));
      start = end + 1;
      if (end === cr) {
        if (start < this.buf.length) {
          if (this.buf[start] === '\n') {
            start++;
          }
        } else {
          this.skipLf = true;       /* its LF may come in the next chunk */
        }
      }
    }
    this.buf = this.buf.slice(start);
  }

  /* the stream ended: an event without its empty line is not dispatched */
  end(): void {
    this.buf = '';
    this.type = '';
    this.data = [];
    this.hasData = false;
    this.skipLf = false;
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line[0] === ':') {
      return;                       /* a comment, e.g. a heartbeat */
    }
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value[0] === ' ') {
        value = value.slice(1);
      }
    }
    switch (field) {
    case 'event':
      this.type = value;
      break;
    case 'data':
      this.data.push(value);
      this.hasData = true;
      break;
    case 'id':
      if (!value.includes('\0')) {
        this.lastEventId = value;
      }
      break;
    case 'retry':
      if (/^[0-9]+$/.test(value)) {
        this.retry = Number(value);
      }
      break;
    default:
      break;                        /* ignored, as the standard says */
    }
  }

  private dispatch(): void {
    const type = this.type || 'message';
    const hasData = this.hasData;
    const data = this.data.join('\n');
    this.type = '';
    this.data = [];
    this.hasData = false;
    if (!hasData) {
      return;
    }
    this.onEvent({ type, data, lastEventId: this.lastEventId });
  }
}

/* why a connection ended */
export type SseEnd =
  | { kind: 'eof' }                         /* the server closed the body */
  | { kind: 'network'; error: unknown }     /* refused, reset, aborted */
  | { kind: 'http'; status: number; response: Response };

export interface SseConnectOptions {
  headers?: Record<string, string>;
  lastEventId?: string;
  fetchImpl?: typeof fetch;
  onOpen?: (res: Response) => void;
  onEvent: (ev: SseEvent, parser: SseParser) => void;
  /* called once, unless close() came first */
  onEnd: (end: SseEnd, parser: SseParser) => void;
}

export interface SseConnection {
  close: () => void;
  parser: SseParser;
}

export function isEventStream(res: Response): boolean {
  const ct = res.headers.get('Content-Type') ?? '';
  return /^text\/event-stream\s*(;|$)/i.test(ct);
}

export function connectSse(url: string, o: SseConnectOptions):
  SseConnection {
  const ctrl = new AbortController();
  let closed = false;
  let ended = false;
  const parser = new SseParser((ev) => {
    if (!closed) {
      o.onEvent(ev, parser);
    }
  });
  if (o.lastEventId) {
    parser.lastEventId = o.lastEventId;
  }
  const end = (why: SseEnd) => {
    if (closed || ended) {
      return;
    }
    ended = true;
    parser.end();
    o.onEnd(why, parser);
  };
  const doFetch = o.fetchImpl ?? ((i, init) => fetch(i, init));
  const headers: Record<string, string> = {
    Accept: 'text/event-stream',
    'Cache-Control': 'no-cache',
    ...(o.headers ?? {}),
  };
  if (o.lastEventId) {
    headers['Last-Event-ID'] = o.lastEventId;
  }

  (async () => {
    let res: Response;
    try {
      res = await doFetch(url, { method: 'GET', headers, cache: 'no-store',
                                 credentials: 'same-origin',
                                 signal: ctrl.signal });
    } catch (error) {
      end({ kind: 'network', error });
      return;
    }
    if (closed) {
      res.body?.cancel().catch(() => {});
      return;
    }
    if (res.status !== 200 || !isEventStream(res) || !res.body) {
      end({ kind: 'http', status: res.status, response: res });
      return;
    }
    o.onOpen?.(res);
    const reader = res.body.getReader();
    const decoder = new TextDecoder('utf-8');
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (closed) {
          return;
        }
        if (done) {
          parser.feed(decoder.decode());
          break;
        }
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      end({ kind: 'network', error });
      return;
    }
    end({ kind: 'eof' });
  })();

  return {
    parser,
    close: () => {
      if (!closed) {
        closed = true;
        ctrl.abort();
      }
    },
  };
}
