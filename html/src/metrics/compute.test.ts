import { describe, expect, it } from 'vitest';
import { graphModel } from '../live/graphModel';
import { flowFromModel, flowGraph, heatmap, responseTrend, throughput, tokenSplit,
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

  it('flows along the real edges: fan-out, fan-in, loops left out', () => {
    const fan = graphModel({ entry: 'a',
      nodes: { a: { agent: 'echo' }, b: { agent: 'sleep' },
               c: { agent: 'sleep' }, d: { agent: 'echo' } },
      edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'c' },
              { from: 'b', to: 'd' }, { from: 'c', to: 'd' },
              { from: 'd', to: '$end' }] });
    const f = flowFromModel(fan, { b: a('sleep', 30), d: a('echo', 5) });
    expect(f.nodes.map((n) => n.key)).toEqual(['a', 'b', 'c', 'd']);
    expect(f.links).toEqual([
      { source: 0, target: 1, value: 30 },
      { source: 0, target: 2, value: 1 },
      { source: 1, target: 3, value: 5 },
      { source: 2, target: 3, value: 5 }]);

    const loop = graphModel({ entry: 'p',
      nodes: { p: { agent: 'planner' }, l: { agent: 'llm' },
               r: { agent: 'reviewer' } },
      edges: [{ from: 'p', to: 'l' }, { from: 'l', to: 'r' },
              { from: 'r', to: 'l', when: {} },
              { from: 'r', to: '$end', else: true }] });
    const g = flowFromModel(loop, {});
    expect(g.links.map((l) => [l.source, l.target])).toEqual([[0, 1],
                                                              [1, 2]]);
    expect(flowFromModel(graphModel({ nodes: { x: { agent: 'x' } },
                                      edges: [] }), {}))
      .toEqual({ nodes: [], links: [] });
  });
});
