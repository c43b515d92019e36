import type { AgentState, WorkflowRecord } from '../api/types';
import type { Activation } from '../live/workflowState';
import type { GraphModel } from '../live/graphModel';

export interface TrendPoint { t: number; label: string; ms: number;
                              id: string }

/* finished workflows, oldest first: total time (or run time) */
export function responseTrend(items: WorkflowRecord[]): TrendPoint[] {
  return items
    .filter((w) => w.finished_at && w.status !== 'queued')
    .map((w) => ({
      t: w.created_at,
      id: w.id,
      label: '',
      ms: w.timings?.total_ms
        ?? Math.max(0, (w.finished_at ?? 0) - w.created_at),
    }))
    .sort((a, b) => a.t - b.t);
}

export interface Bucket { t: number; count: number }

/* workflows created per minute, from the first to the last minute seen */
export function throughput(items: WorkflowRecord[], bucketMs = 60000):
  Bucket[] {
  if (!items.length) {
    return [];
  }
  const counts = new Map<number, number>();
  for (const w of items) {
    const b = Math.floor(w.created_at / bucketMs) * bucketMs;
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  const keys = [...counts.keys()].sort((a, b) => a - b);
  const out: Bucket[] = [];
  const first = keys[0];
  const last = keys[keys.length - 1];
  const n = Math.min(120, (last - first) / bucketMs + 1);
  for (let i = 0; i < n; i++) {
    const t = last - (n - 1 - i) * bucketMs;
    out.push({ t, count: counts.get(t) ?? 0 });
  }
  return out;
}

/* tokens per agent (plugin name), summed over workflows */
export function tokensByAgent(items: WorkflowRecord[]):
  { agent: string; tokens: number }[] {
  const m = new Map<string, number>();
  for (const w of items) {
    for (const [node, a] of Object.entries(w.agents ?? {})) {
      const k = a.agent || node;
      m.set(k, (m.get(k) ?? 0) + (a.metrics?.tokens ?? 0));
    }
  }
  return [...m.entries()].map(([agent, tokens]) => ({ agent, tokens }))
    .sort((a, b) => b.tokens - a.tokens);
}

export function tokenSplit(items: WorkflowRecord[]):
  { prompt: number; completion: number; total: number } {
  let prompt = 0;
  let completion = 0;
  let total = 0;
  for (const w of items) {
    prompt += w.tokens?.prompt ?? 0;
    completion += w.tokens?.completion ?? 0;
    total += w.tokens?.total ?? 0;
  }
  return { prompt, completion, total };
}

export type HeatMetric = 'tokens' | 'time' | 'attempts';

export interface Heatmap {
  agents: string[];
  workflows: string[];
  values: number[][];       /* [agent][workflow], NaN: did not take part */
  max: number;
}

export function heatmap(items: WorkflowRecord[], metric: HeatMetric,
                        columns = 12): Heatmap {
  const wfs = items.slice(0, columns).reverse();
  const agents: string[] = [];
  for (const w of wfs) {
    for (const node of Object.keys(w.agents ?? {})) {
      if (!agents.includes(node)) {
        agents.push(node);
      }
    }
  }
  let max = 0;
  const values = agents.map((node) => wfs.map((w) => {
    const a = w.agents?.[node];
    if (!a) {
      return NaN;
    }
    const v = metric === 'tokens' ? a.metrics?.tokens ?? 0
      : metric === 'time' ? a.metrics?.execution_ms ?? 0 : a.attempts ?? 0;
    max = Math.max(max, v);
    return v;
  }));
  return { agents, workflows: wfs.map((w) => w.id), values, max };
}

export interface FlowGraph {
  nodes: { key: string; label: string }[];
  links: { source: number; target: number; value: number }[];
}

/*
 * Agent-to-agent flow of one workflow for a Sankey diagram (which must be
 * acyclic): each activation is a node ("llm", "llm (2)" for the second
 * visit), each consecutive pair a link whose value is the tokens of the
 * target activation, at least 1.
 */
export function flowGraph(acts: Activation[]): FlowGraph {
  const visits = new Map<string, number>();
  const nodes: FlowGraph['nodes'] = [];
  const keys: number[] = [];
  for (const a of acts) {
    const n = (visits.get(a.node) ?? 0) + 1;
    visits.set(a.node, n);
    const key = `${a.node}#${n}`;
    nodes.push({ key, label: n > 1 ? `${a.node} (${n})` : a.node });
    keys.push(nodes.length - 1);
  }
  const links: FlowGraph['links'] = [];
  for (let i = 1; i < acts.length; i++) {
    links.push({ source: keys[i - 1], target: keys[i],
                 value: Math.max(1, acts[i].tokens) });
  }
  return { nodes: links.length ? nodes : [], links };
}

/*
 * The same flow along the workflow graph's real edges: one Sankey node per
 * graph node that has a forward edge, one link per forward edge (loops are
 * left out: a Sankey is acyclic), its value the tokens of the target node,
 * at least 1. A fan-out is one node feeding several links.
 */
export function flowFromModel(model: GraphModel,
                              agents: Record<string, AgentState>):
  FlowGraph {
  const fwd = model.edges.filter((e) => !e.back && e.from !== e.to);
  const used = model.nodes.filter((n) => fwd.some((e) => e.from === n
                                                  || e.to === n));
  const index = new Map(used.map((n, i) => [n, i]));
  return {
    nodes: used.map((n) => ({ key: n, label: n })),
    links: fwd.map((e) => ({
      source: index.get(e.from) as number,
      target: index.get(e.to) as number,
      value: Math.max(1, agents[e.to]?.metrics?.tokens ?? 0),
    })),
  };
}
