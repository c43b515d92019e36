import { describe, expect, it } from 'vitest';
import { SseParser, connectSse, isEventStream, type SseEnd,
         type SseEvent } from './sse';
import { FakeSseServer, flush } from '../test/fakeSseFetch';

function parse(chunks: string[]): { events: SseEvent[]; p: SseParser } {
  const events: SseEvent[] = [];
  const p = new SseParser((e) => events.push(e));
  for (const c of chunks) {
    p.feed(c);
  }
  return { events, p };
}

describe('SseParser', () => {
  it('reads event, data and id; the type defaults to message', () => {
    const { events } = parse(['id: 1\nevent: token\ndata: {"a":1}\n\n',
                              'data: plain\n\n']);
    expect(events).toEqual([
      { type: 'token', data: '{"a":1}', lastEventId: '1' },
      /* the id outlives its event; the type does not */
      { type: 'message', data: 'plain', lastEventId: '1' }]);
  });

  it('joins data lines with LF and drops the last LF only', () => {
    const { events } = parse(['data: one\ndata:two\ndata\ndata:  sp\n\n']);
    expect(events[0].data).toBe('one\ntwo\n\n sp');
  });

  it('takes CRLF, LF and CR line ends, split across chunks', () => {
    const { events } = parse(['data: a\r', '\ndata: b\r\n\r', '\n',
                              'data: c\r\rdata: d\n', '\n']);
    expect(events.map((e) => e.data)).toEqual(['a\nb', 'c', 'd']);
  });

  it('a CR at a chunk end is one line end with the next LF', () => {
    /* if the CR and LF were two line ends, "x" would be dispatched
       before "y" joined it */
    const { events } = parse(['data: x\r', '\ndata: y\r', '\n\r', '\n']);
    expect(events).toHaveLength(1);
    expect(events[0].data).toBe('x\ny');
  });

  it('splits anywhere, even inside a field name or a UTF-8 text', () => {
    const text = 'id: 7\nevent: log_entry\ndata: {"m":"한국어 ✓"}\n\n';
    for (let i = 1; i < text.length; i++) {
      const { events } = parse([text.slice(0, i), text.slice(i)]);
      expect(events, `split at ${i}`).toEqual([
        { type: 'log_entry', data: '{"m":"한국어 ✓"}', lastEventId: '7' }]);
    }
  });

  it('ignores comments, unknown fields and a leading BOM', () => {
    const { events } = parse(['\ufeff: heartbeat\n', ':\n', 'foo: bar\n',
                              'data: x\n', ': mid-event comment\n', '\n']);
    expect(events).toEqual([{ type: 'message', data: 'x',
                              lastEventId: '' }]);
  });

  it('a line without a colon is a field with an empty value', () => {
    const { events } = parse(['event\ndata\n\n']);
    expect(events).toEqual([{ type: 'message', data: '',
                              lastEventId: '' }]);
  });

  it('no data: nothing dispatched, the type is reset, the id kept', () => {
    const { events, p } = parse(['event: token\nid: 5\n\n',
                                 'data: after\n\n']);
    expect(events).toEqual([{ type: 'message', data: 'after',
                              lastEventId: '5' }]);
    expect(p.lastEventId).toBe('5');
  });

  it('retry: digits only; id: not with NUL; an empty id resets', () => {
    const { p } = parse(['retry: 2000\n\n', 'retry: 3s\n\n',
                         'retry: -1\n\n']);
    expect(p.retry).toBe(2000);
    const q = parse(['id: 3\n\n', 'id: 4\0\n\n']).p;
    expect(q.lastEventId).toBe('3');
    const r = parse(['id: 3\n\n', 'id\n\n']).p;
    expect(r.lastEventId).toBe('');
  });

  it('an event cut off by the end of the stream is not dispatched', () => {
    const { events, p } = parse(['data: whole\n\n', 'data: cut']);
    p.end();
    expect(events.map((e) => e.data)).toEqual(['whole']);
  });

  it('many events in one chunk', () => {
    const text = Array.from({ length: 50 }, (_, i) =>
      `id: ${i + 1}\nevent: token\ndata: ${i}\n\n`).join('');
    const { events } = parse([text]);
    expect(events.map((e) => e.lastEventId))
      .toEqual(Array.from({ length: 50 }, (_, i) => String(i + 1)));
  });
});

describe('connectSse', () => {
  it('sends the headers and Last-Event-ID; reads the body', async () => {
    const srv = new FakeSseServer();
    const got: SseEvent[] = [];
    const ends: SseEnd[] = [];
    let opened = 0;
    connectSse('/e', { fetchImpl: srv.fetch, lastEventId: '12',
                       headers: { Authorization: 'Bearer k1' },
                       onOpen: () => { opened++; },
                       onEvent: (e) => got.push(e),
                       onEnd: (e) => ends.push(e) });
    const c = srv.last();
    expect(c.url).toBe('/e');
    expect(c.headers).toMatchObject({ authorization: 'Bearer k1',
                                      'last-event-id': '12',
                                      accept: 'text/event-stream' });
    c.open();
    await flush();
    expect(opened).toBe(1);
    c.send('retry: 2000\n\nid: 13\nevent: tok');
    c.send('en\ndata: {"x":1}\n\n');
    await flush();
    expect(got).toEqual([{ type: 'token', data: '{"x":1}',
                           lastEventId: '13' }]);
    c.end();
    await flush();
    expect(ends.map((e) => e.kind)).toEqual(['eof']);
  });

  it('an HTTP error or another content type is no stream', async () => {
    const srv = new FakeSseServer();
    const ends: SseEnd[] = [];
    const on = { fetchImpl: srv.fetch, onEvent: () => {},
                 onEnd: (e: SseEnd) => { ends.push(e); } };
    connectSse('/e', on);
    srv.last().respond(401, { error: { code: 'unauthorized' } },
                       { 'WWW-Authenticate': 'Bearer realm="maestro"' });
    connectSse('/e', on);
    srv.last().respond(200, { not: 'sse' });
    connectSse('/e', on);
    srv.last().refuse();
    await flush();
    expect(ends.map((e) => (e.kind === 'http' ? e.status : e.kind)))
      .toEqual([401, 200, 'network']);
  });

  it('a broken body is a network end; close() ends quietly', async () => {
    const srv = new FakeSseServer();
    const ends: SseEnd[] = [];
    connectSse('/e', { fetchImpl: srv.fetch, onEvent: () => {},
                       onEnd: (e) => { ends.push(e); } });
    srv.last().open();
    await flush();
    srv.last().drop();
    await flush();
    expect(ends.map((e) => e.kind)).toEqual(['network']);

    const got: SseEvent[] = [];
    const conn = connectSse('/e', { fetchImpl: srv.fetch,
                                    onEvent: (e) => got.push(e),
                                    onEnd: (e) => { ends.push(e); } });
    srv.last().open();
    await flush();
    conn.close();
    expect(srv.last().aborted()).toBe(true);
    srv.last().send('data: late\n\n');
    await flush();
    expect(got).toEqual([]);
    expect(ends).toHaveLength(1);
  });

  it('knows an event stream by its content type', () => {
    const r = (ct: string) => new Response('', {
      headers: { 'Content-Type': ct } });
    expect(isEventStream(r('text/event-stream'))).toBe(true);
    expect(isEventStream(r('text/event-stream; charset=utf-8'))).toBe(true);
    expect(isEventStream(r('text/event-streamx'))).toBe(false);
    expect(isEventStream(r('application/json'))).toBe(false);
  });
});
