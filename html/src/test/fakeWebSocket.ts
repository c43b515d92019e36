/* A controllable WebSocket for tests. */
export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  url: string;
  protocols: string | string[] | undefined;
  protocol = '';
  readyState = 0;
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  closedWith: number | null = null;
  sent: string[] = [];

  constructor(url: string, protocols?: string | string[]) {
    this.url = url;
    this.protocols = protocols;
    FakeWebSocket.instances.push(this);
  }

  static reset() {
    FakeWebSocket.instances = [];
  }

  static last(): FakeWebSocket {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }

  send(text: string) {
    this.sent.push(text);
  }

  close(code = 1000) {
    this.closedWith = code;
    this.readyState = 3;
  }

  open() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }

  /* a message as the server sends it */
  emit(type: string, eventId: number, data: unknown,
       workflowId = 'wf') {
    this.raw(JSON.stringify({ type, workflow_id: workflowId,
                              event_id: eventId, data }));
  }

  raw(text: string) {
    this.onmessage?.(new MessageEvent('message', { data: text }));
  }

  /* the server or the network ends it (1001: going away; 1006: never
     connected or dropped) */
  drop(code = 1006) {
    this.readyState = 3;
    if (code === 1006) {
      this.onerror?.(new Event('error'));
    }
    this.onclose?.(new CloseEvent('close', { code }));
  }
}

export const asWS = FakeWebSocket as unknown as typeof WebSocket;
