import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import { FakeEventSource, asES } from '../test/fakeEventSource';
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

describe('useWorkflowStream', () => {
  beforeEach(() => {
    FakeEventSource.reset();
    vi.stubGlobal('fetch', vi.fn(async () => new Response(
      JSON.stringify(record), { status: 200,
                                headers: { 'Content-Type':
                                           'application/json' } })));
  });
  afterEach(() => vi.unstubAllGlobals());

  it('does nothing without an id', () => {
    const { result } = renderHook(() => useWorkflowStream(null,
      { EventSourceImpl: asES }));
    expect(result.current.id).toBeNull();
    expect(FakeEventSource.instances).toHaveLength(0);
  });

  it('loads the record, follows the events, closes on unmount', async () => {
    const { result, unmount } = renderHook(() => useWorkflowStream(
      record.id, { EventSourceImpl: asES }));
    await waitFor(() => expect(result.current.nodes).toEqual(['planner']));
    expect(fetch).toHaveBeenCalledWith(`/api/v1/workflows/${record.id}`,
                                       expect.anything());
    const es = FakeEventSource.last();
    expect(es.url).toBe(`/api/v1/workflows/${record.id}/events`);
    act(() => {
      es.open();
      es.emit('agent_status', 1, { id: 'planner', name: 'planner',
        agent: 'planner', status: 'planning', progress: 50,
        current_task: 'thinking',
        metrics: { tokens: 3, execution_ms: 1, memory_bytes: 0 },
        attempts: 1 });
      es.emit('token', 2, { agent: 'llm', text: 'Hi' });
    });
    expect(result.current.connection).toBe('open');
    expect(result.current.agents.planner.status).toBe('planning');
    expect(result.current.answer).toBe('Hi');
    unmount();
    expect(es.closed).toBe(true);
  });
});
