/* A controllable EventSource for tests. */
type Listener = (e: Event) => void;

export class FakeEventSource {
  static instances: FakeEventSource[] = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  url: string;
  readyState = 0;
  onopen: ((e: Event) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  closed = false;
  private listeners = new Map<string, Listener[]>();

  constructor(url: string) {
    this.url = url;
    FakeEventSource.instances.push(this);
  }

  static reset() {
    FakeEventSource.instances = [];
  }

  static last(): FakeEventSource {
    return FakeEventSource.instances[FakeEventSource.instances.length - 1];
  }

  addEventListener(type: string, fn: Listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }

  removeEventListener(type: string, fn: Listener) {
    this.listeners.set(type, (this.listeners.get(type) ?? [])
      .filter((f) => f !== fn));
  }

  close() {
    this.closed = true;
    this.readyState = 2;
  }

  open() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }

  emit(type: string, id: number, data: unknown) {
    const e = new MessageEvent(type, { data: JSON.stringify(data),
                                       lastEventId: String(id) });
    for (const fn of this.listeners.get(type) ?? []) {
      fn(e);
    }
  }

  /* a connection error (not a server "error" event) */
  fail() {
    this.readyState = 0;
    const e = new Event('error');
    this.onerror?.(e);
    for (const fn of this.listeners.get('error') ?? []) {
      fn(e);
    }
  }
}

export const asES = FakeEventSource as unknown as typeof EventSource;
