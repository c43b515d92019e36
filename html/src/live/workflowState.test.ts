import { describe, expect, it } from 'vitest';
import { graphEdges, graphOrder, initialState, LOG_LIMIT,
         reduce } from './workflowState';
import type { AgentStatusName, LiveEvent,
              WorkflowRecord } from '../api/types';

const agent = (id: string, status: string, tokens = 0, progress = 0) => ({
  status: status as AgentStatusName,
  id, name: id, agent: id, progress, current_task: status,
  metrics: { tokens, execution_ms: 5, memory_bytes: 0 }, attempts: 1,
});

function run(events: LiveEvent[]) {
  return events.reduce((s, event) => reduce(s, { type: 'event', event }),
                       initialState('wf_1'));
}

describe('workflow state reducer', () => {
  it('tracks status, progress, agents and the order of first activity', () => {
    const s = run([
      { id: 1, type: 'workflow_update', data: { id: 'wf_1', name: 'default',
        status: 'running', progress: 0, started_at: 10 } },
      { id: 2, type: 'agent_status', data: agent('planner', 'planning') },
      { id: 3, type: 'agent_status', data: agent('planner', 'complete') },
      { id: 4, type: 'agent_status', data: agent('llm', 'executing', 10) },
      { id: 5, type: 'agent_status', data: agent('llm', 'executing', 50) },
      { id: 6, type: 'agent_status', data: agent('llm', 'complete', 60) },
      { id: 7, type: 'agent_status', data: agent('reviewer', 'executing') },
      { id: 8, type: 'agent_status', data: agent('reviewer', 'complete') },
      { id: 9, type: 'agent_status', data: agent('llm', 'executing', 60) },
      { id: 10, type: 'agent_status', data: agent('llm', 'complete', 90) },
      { id: 11, type: 'workflow_update', data: { id: 'wf_1', name: 'default',
        status: 'running', progress: 80, started_at: 10 } },
    ]);
    expect(s.status).toBe('running');
    expect(s.progress).toBe(80);
    expect(s.workflow).toBe('default');
    expect(s.agents.llm.status).toBe('complete');
    expect(s.agents.llm.metrics.tokens).toBe(90);
    expect(s.firstActive).toEqual(['planner', 'llm', 'reviewer']);
    expect(s.activations.map((a) => [a.node, a.tokens])).toEqual([
      ['planner', 0], ['llm', 50], ['reviewer', 0], ['llm', 30]]);
    expect(graphEdges(s)).toEqual([['planner', 'llm'], ['llm', 'reviewer'],
                                   ['reviewer', 'llm']]);
    expect(s.lastEventId).toBe(11);
  });

  it('ignores events at or below the last id', () => {
    let s = run([{ id: 1, type: 'token', data: { agent: 'llm', text: 'a' } }]);
    s = reduce(s, { type: 'event', event: { id: 1, type: 'token',
                                            data: { agent: 'llm',
                                                    text: 'a' } } });
    expect(s.answer).toBe('a');
  });

  it('streams tokens into the answer, then takes the final result', () => {
    const s = run([
      { id: 1, type: 'token', data: { agent: 'llm', text: 'Hel' } },
      { id: 2, type: 'token', data: { agent: 'llm', text: 'lo' } },
    ]);
    expect(s.answer).toBe('Hello');
    const d = reduce(s, { type: 'event', event: { id: 3, type: 'done',
      data: { id: 'wf_1', status: 'complete', result: 'Hello!' } } });
    expect(d.result).toBe('Hello!');
    expect(d.status).toBe('complete');
    expect(d.progress).toBe(100);
  });

  it('records a failure', () => {
    const s = run([{ id: 1, type: 'error', data: { id: 'wf_1',
                                                   status: 'failed',
                                                   error: 'boom' } }]);
    expect(s.status).toBe('failed');
    expect(s.error).toBe('boom');
  });

  it('keeps the last 100 log entries and 5 per agent', () => {
    const events: LiveEvent[] = [];
    for (let i = 1; i <= 130; i++) {
      events.push({ id: i, type: 'log_entry', data: { timestamp: i,
        level: 'info', agent: 'llm', node: 'llm', message: `m${i}` } });
    }
    const s = run(events);
    expect(s.logs).toHaveLength(LOG_LIMIT);
    expect(s.logs[0].message).toBe('m31');
    expect(s.agentLogs.llm.map((l) => l.message)).toEqual(
      ['m126', 'm127', 'm128', 'm129', 'm130']);
  });

  it('seeds nodes from the record, keeping newer event state', () => {
    const record = {
      id: 'wf_1', workflow: 'default', status: 'queued', progress: 0,
      user_id: null, created_at: 1, started_at: null, finished_at: null,
      updated_at: 1, last_event_id: 1,
      agents: { planner: agent('planner', 'idle'), llm: agent('llm', 'idle'),
                reviewer: agent('reviewer', 'idle') },
    } as unknown as WorkflowRecord;
    const fresh = reduce(initialState('wf_1'), { type: 'record', record });
    expect(fresh.nodes).toEqual(['planner', 'llm', 'reviewer']);
    expect(graphOrder(fresh)).toEqual(['planner', 'llm', 'reviewer']);
    expect(graphEdges(fresh)).toEqual([['planner', 'llm'],
                                       ['llm', 'reviewer']]);

    const ahead = run([
      { id: 1, type: 'agent_status', data: agent('planner', 'planning') },
      { id: 2, type: 'agent_status', data: agent('planner', 'complete') },
    ]);
    const merged = reduce(ahead, { type: 'record', record });
    expect(merged.agents.planner.status).toBe('complete');
    expect(merged.nodes).toEqual(['planner', 'llm', 'reviewer']);

    const other = reduce(initialState('wf_2'), { type: 'record', record });
    expect(other.nodes).toEqual([]);
  });
});
