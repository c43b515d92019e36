/*
 * A controllable fetch() for SSE tests: every call is recorded with its
 * URL and headers; the test answers it with a stream it writes to
 * (open/send/end/drop) or with an HTTP error (respond).
 */
export interface FakeCall {
  url: string;
  headers: Record<string, string>;
  aborted: () => boolean;
  /* 200 text/event-stream; then send() chunks */
  open: (headers?: Record<string, string>) => void;
  send: (text: string) => void;
  /* the server closes the body */
  end: () => void;
  /* the connection breaks mid-body */
  drop: () => void;
  /* an answer that is no stream, e.g. 401 with WWW-Authenticate */
  respond: (status: number, body?: unknown,
            headers?: Record<string, string>) => void;
  /* the request never got an answer (connection refused) */
  refuse: () => void;
}

/* let the stream reader and the promise chains run */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setTimeout(r, 0));
  }
}

function quiet(fn: () => void): void {
  try {
    fn();
  } catch {
    /* the stream is closed */
  }
}

export class FakeSseServer {
  calls: FakeCall[] = [];

  last(): FakeCall {
    return this.calls[this.calls.length - 1];
  }

  readonly fetch = ((input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
    let resolve!: (r: Response) => void;
    let reject!: (e: unknown) => void;
    const answer = new Promise<Response>((ok, no) => {
      resolve = ok;
      reject = no;
    });
    let ctrl: ReadableStreamDefaultController<Uint8Array> | null = null;
    const enc = new TextEncoder();
    const signal = init.signal;
    const abortErr = () => new DOMException('aborted', 'AbortError');
    signal?.addEventListener('abort', () => {
      reject(abortErr());
      try {
        ctrl?.error(abortErr());
      } catch {
        /* already closed */
      }
    });
    const call: FakeCall = {
      url: String(input),
      headers,
      aborted: () => Boolean(signal?.aborted),
      open: (h = {}) => {
        const body = new ReadableStream<Uint8Array>({
          start(c) { ctrl = c; },
        });
        resolve(new Response(body, { status: 200, headers: {
          'Content-Type': 'text/event-stream', ...h } }));
      },
      /* writes to a connection the client closed go nowhere */
      send: (text) => quiet(() => ctrl?.enqueue(enc.encode(text))),
      end: () => quiet(() => ctrl?.close()),
      drop: () => quiet(() => ctrl?.error(new TypeError('network error'))),
      respond: (status, body, h = {}) => resolve(new Response(
        body === undefined ? null : JSON.stringify(body),
        { status, headers: { 'Content-Type': 'application/json', ...h } })),
      refuse: () => reject(new TypeError('Failed to fetch')),
    };
    this.calls.push(call);
    return answer;
  }) as typeof fetch;
}

/* an SSE event as the server writes it */
export function sseEvent(type: string, id: number, data: unknown): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}
