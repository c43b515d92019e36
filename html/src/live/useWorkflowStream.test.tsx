import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import { FakeSseServer, flush, sseEvent } from '../test/fakeSseFetch';
import { FakeWebSocket, asWS } from '../test/fakeWebSocket';
import { jsonResponse } from '../test/render';
import { resetTransportMemory } from './transport';
import { useWorkflowStream } from './useWorkflowStream';

const record = {
  id: 'wf_00000000000000000001', workflow: 'default', status: 'running',
  progress: 10, user_id: null, created_at: 1, started_at: 1,
  finished_at: null, updated_at: 1, last_event_id: 0,
  agents: { planner: { name: 'planner', agent: 'planner', status: 'idle',
                       progress: 0, current_task: null,
                       metrics: { tokens: 0, execution_ms: 0,
                                  memory_bytes: 0 }, attempts: 0 } },
};
const graph = { id: record.id, workflow: 'default', graph: {
  name: 'default', entry: 'planner', nodes: { planner: { agent: 'planner' } },
  edges: [{ from: 'planner', to: '$end' }] } };


describe('useWorkflowStream', () => {
  let graphOk: boolean;
  let srv: FakeSseServer;
  let opts: { fetchImpl: typeof fetch; WebSocketImpl: typeof WebSocket };

  beforeEach(() => {
    srv = new FakeSseServer();
    opts = { fetchImpl: srv.fetch, WebSocketImpl: asWS };
    FakeWebSocket.reset();
    resetTransportMemory();
    graphOk = true;
    vi.stubGlobal('fetch', vi.fn(async (url: string) => {
      if (url.endsWith('/graph')) {
        return graphOk ? jsonResponse(graph)
          : jsonResponse({ error: { code: 'x', message: 'x' } }, 500);
      }
      return jsonResponse(record);
    }));
  });
  afterEach(() => vi.unstubAllGlobals());

  it('does nothing without an id', () => {
    const { result } = renderHook(() => useWorkflowStream(null, opts));
    expect(result.current.id).toBeNull();
    expect(srv.calls).toHaveLength(0);
    expect(FakeWebSocket.instances).toHaveLength(0);
  });

  it('loads record and graph, follows the WebSocket, closes on unmount',
     async () => {
    const { result, unmount } = renderHook(() => useWorkflowStream(
      record.id, opts));
    await waitFor(() => expect(result.current.nodes).toEqual(['planner']));
    await waitFor(() => expect(result.current.graph).toEqual(graph.graph));
    expect(fetch).toHaveBeenCalledWith(`/api/v1/workflows/${record.id}`,
                                       expect.anything());
    expect(fetch).toHaveBeenCalledWith(
      `/api/v1/workflows/${record.id}/graph`, expect.anything());
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe(`ws://localhost:3000/api/v1/workflows/${record.id}`
                        + '/ws');
    expect(result.current.transport).toBe('websocket');
    act(() => {
      ws.open();
      ws.emit('agent_status', 1, { id: 'planner', name: 'planner',
        agent: 'planner', status: 'planning', progress: 50,
        current_task: 'thinking',
        metrics: { tokens: 3, execution_ms: 1, memory_bytes: 0 },
        attempts: 1 }, record.id);
      ws.emit('token', 2, { agent: 'llm', text: 'Hi' }, record.id);
    });
    expect(result.current.connection).toBe('open');
    expect(result.current.agents.planner.status).toBe('planning');
    expect(result.current.answer).toBe('Hi');
    unmount();
    expect(ws.closedWith).toBe(1000);
  });

  it('a failed graph request leaves the graph to inference; SSE fallback',
     async () => {
    graphOk = false;
    const { result } = renderHook(() => useWorkflowStream(record.id, opts));
    await waitFor(() => expect(result.current.nodes).toEqual(['planner']));
    expect(result.current.graph).toBeNull();
    act(() => FakeWebSocket.last().drop(1006));
    expect(result.current.transport).toBe('sse');
    const c = srv.last();
    expect(c.url).toBe(`/api/v1/workflows/${record.id}/events`);
    await act(async () => {
      c.open();
      c.send(sseEvent('token', 1, { agent: 'llm', text: 'Yo' }));
      await flush();
    });
    expect(result.current.answer).toBe('Yo');
  });

  it('a refused stream stops with the server\'s message', async () => {
    const { result } = renderHook(() => useWorkflowStream(record.id,
      { ...opts, prefer: 'sse' }));
    await act(async () => {
      srv.last().respond(404, { error: { code: 'not_found',
                                         message: 'no such workflow' } });
      await flush();
    });
    expect(result.current.connection).toBe('failed');
    expect(result.current.failure).toBe('no such workflow');
  });
});
