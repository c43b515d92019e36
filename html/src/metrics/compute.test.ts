import { describe, expect, it } from 'vitest';
import { flowGraph, heatmap, responseTrend, throughput, tokenSplit,
         tokensByAgent } from './compute';
import type { WorkflowRecord } from '../api/types';

const a = (agent: string, tokens: number, ms = 0, attempts = 1) => ({
  name: agent, agent, status: 'complete' as const, progress: 100,
  current_task: null, metrics: { tokens, execution_ms: ms, memory_bytes: 0 },
  attempts,
});

const wf = (id: string, created: number, total: number,
            agents: Record<string, ReturnType<typeof a>>): WorkflowRecord => ({
  id, workflow: 'default', status: 'complete', progress: 100, user_id: null,
  created_at: created, started_at: created, finished_at: created + total,
  updated_at: created + total, agents,
  tokens: { prompt: 10, completion: 5, total: 15 },
  timings: { queued_ms: 0, run_ms: total, total_ms: total },
});

const items = [
  wf('w3', 180000, 30, { planner: a('planner', 0), llm: a('llm', 300, 20) }),
  wf('w2', 61000, 20, { planner: a('planner', 0), llm: a('llm', 200, 10) }),
  wf('w1', 60000, 10, { planner: a('planner', 0), llm: a('llm', 100, 5, 2) }),
];

describe('metrics from workflow records', () => {
  it('response time trend is oldest first', () => {
    expect(responseTrend(items).map((p) => p.ms)).toEqual([10, 20, 30]);
  });

  it('throughput buckets per minute, gaps included', () => {
    expect(throughput(items)).toEqual([
      { t: 60000, count: 2 }, { t: 120000, count: 0 },
      { t: 180000, count: 1 }]);
    expect(throughput([])).toEqual([]);
  });

  it('sums tokens by agent and splits prompt/completion', () => {
    expect(tokensByAgent(items)).toEqual([
      { agent: 'llm', tokens: 600 }, { agent: 'planner', tokens: 0 }]);
    expect(tokenSplit(items)).toEqual({ prompt: 30, completion: 15,
                                        total: 45 });
  });

  it('builds a heatmap agent x workflow', () => {
    const h = heatmap(items, 'attempts');
    expect(h.workflows).toEqual(['w1', 'w2', 'w3']);
    expect(h.agents).toEqual(['planner', 'llm']);
    expect(h.values[1]).toEqual([2, 1, 1]);
    expect(h.max).toBe(2);
    expect(heatmap(items, 'time').values[1]).toEqual([5, 10, 20]);
  });

  it('unrolls loops into an acyclic flow', () => {
    const f = flowGraph([
      { node: 'planner', startTokens: 0, tokens: 0 },
      { node: 'llm', startTokens: 0, tokens: 40 },
      { node: 'reviewer', startTokens: 0, tokens: 0 },
      { node: 'llm', startTokens: 40, tokens: 20 },
    ]);
    expect(f.nodes.map((n) => n.label)).toEqual(['planner', 'llm',
                                                 'reviewer', 'llm (2)']);
    expect(f.links).toEqual([
      { source: 0, target: 1, value: 40 },
      { source: 1, target: 2, value: 1 },
      { source: 2, target: 3, value: 20 }]);
    expect(flowGraph([{ node: 'x', startTokens: 0, tokens: 0 }]).nodes)
      .toEqual([]);
  });
});
