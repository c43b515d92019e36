/*
 * The state of one workflow as its live events arrive (a pure reducer, so
 * it is unit-tested without a server). Seeded from the workflow record
 * (GET /api/v1/workflows/{id}) for the node list; events then move it.
 */

import type { AgentState, AgentStatusName, GraphDef, LiveEvent,
              LogEntryData, WorkflowRecord,
              WorkflowStatus } from '../api/types';
import type { ConnectionState, TransportKind } from './transport';

export const LOG_LIMIT = 100;
export const AGENT_LOG_LIMIT = 5;
export const ACTIVE: AgentStatusName[] = ['planning', 'executing', 'waiting'];

export interface Activation {
  node: string;
  startTokens: number;
  tokens: number;
}

export interface LiveWorkflow {
  id: string | null;
  workflow: string | null;
  status: WorkflowStatus | null;
  progress: number;
  startedAt: number | null;
  agents: Record<string, AgentState>;
  nodes: string[];              /* record order, then first-seen */
  firstActive: string[];        /* order of first activity */
  activations: Activation[];    /* every entry into an active status */
  logs: (LogEntryData & { id: number })[];
  agentLogs: Record<string, (LogEntryData & { id: number })[]>;
  answer: string;
  result: string | null;
  error: string | null;
  lastEventId: number;
  connection: ConnectionState;
  transport: TransportKind | null;
  graph: GraphDef | null;       /* the definition, when it loaded */
  /* why the server refused the live view for good (state "failed") */
  failure: string | null;
}

export type Action =
  | { type: 'reset'; id: string | null }
  | { type: 'record'; record: WorkflowRecord }
  | { type: 'event'; event: LiveEvent }
  | { type: 'connection'; state: ConnectionState }
  | { type: 'transport'; kind: TransportKind }
  | { type: 'failure'; message: string }
  | { type: 'graph'; id: string; graph: GraphDef };

export function initialState(id: string | null = null): LiveWorkflow {
  return {
    id, workflow: null, status: null, progress: 0, startedAt: null,
    agents: {}, nodes: [], firstActive: [], activations: [], logs: [],
    agentLogs: {}, answer: '', result: null, error: null, lastEventId: 0,
    connection: 'idle', transport: null, graph: null, failure: null,
  };
}

const FINAL: WorkflowStatus[] = ['complete', 'failed', 'cancelled'];

export function isFinal(s: WorkflowStatus | null): boolean {
  return s !== null && FINAL.includes(s);
}

function clampPct(n: unknown): number {
  const v = Number(n);
  return Number.isFinite(v) ? Math.max(0, Math.min(100, v)) : 0;
}

function applyAgent(state: LiveWorkflow, node: string, a: AgentState):
  LiveWorkflow {
  const prev = state.agents[node];
  const agent: AgentState = {
    name: a.name ?? node,
    agent: a.agent ?? prev?.agent ?? a.name ?? node,
    status: a.status ?? prev?.status ?? 'idle',
    progress: clampPct(a.progress),
    current_task: a.current_task ?? null,
    metrics: {
      tokens: a.metrics?.tokens ?? 0,
      execution_ms: a.metrics?.execution_ms ?? 0,
      memory_bytes: a.metrics?.memory_bytes ?? 0,
    },
    attempts: a.attempts ?? prev?.attempts ?? 0,
  };
  const nodes = state.nodes.includes(node) ? state.nodes
    : [...state.nodes, node];
  const nowActive = ACTIVE.includes(agent.status);
  const wasActive = prev ? ACTIVE.includes(prev.status) : false;
  let { firstActive, activations } = state;
  if (nowActive && !firstActive.includes(node)) {
    firstActive = [...firstActive, node];
  }
  if (nowActive && !wasActive) {
    activations = [...activations, { node, startTokens: agent.metrics.tokens,
                                      tokens: 0 }];
  } else if (activations.length) {
    /* tokens of this node's latest activation */
    for (let i = activations.length - 1; i >= 0; i--) {
      if (activations[i].node === node) {
        const act = activations[i];
        const tokens = Math.max(0, agent.metrics.tokens - act.startTokens);
        if (tokens !== act.tokens) {
          activations = activations.slice();
          activations[i] = { ...act, tokens };
        }
        break;
      }
    }
  }
  return { ...state, agents: { ...state.agents, [node]: agent }, nodes,
           firstActive, activations };
}

export function reduce(state: LiveWorkflow, action: Action): LiveWorkflow {
  switch (action.type) {
  case 'reset':
    return initialState(action.id);

  case 'connection':
    return { ...state, connection: action.state };

  case 'transport':
    return { ...state, transport: action.kind };

  case 'failure':
    return { ...state, failure: action.message };

  case 'graph':
    if (state.id !== action.id || !action.graph
        || typeof action.graph.nodes !== 'object') {
      return state;
    }
    return { ...state, graph: action.graph };

  case 'record': {
    const r = action.record;
    if (state.id && r.id !== state.id) {
      return state;
    }
    /* events already applied are newer than the record */
    if (state.lastEventId > (r.last_event_id ?? 0)) {
      const nodes = [...state.nodes];
      const agents = { ...state.agents };
      for (const [node, a] of Object.entries(r.agents ?? {})) {
        if (!nodes.includes(node)) {
          nodes.push(node);
          agents[node] = a;
        }
      }
      return { ...state, workflow: state.workflow ?? r.workflow, nodes,
               agents };
    }
    let s: LiveWorkflow = {
      ...state, id: r.id, workflow: r.workflow, status: r.status,
      progress: clampPct(r.progress), startedAt: r.started_at,
      result: r.result ?? state.result, error: r.error ?? state.error,
    };
    for (const [node, a] of Object.entries(r.agents ?? {})) {
      if (!s.nodes.includes(node)) {
        s = { ...s, nodes: [...s.nodes, node] };
      }
      s = { ...s, agents: { ...s.agents, [node]: { ...a } } };
    }
    return s;
  }

  case 'event': {
    const ev = action.event;
    if (ev.id && ev.id <= state.lastEventId) {
      return state;
    }
    const s = { ...state, lastEventId: ev.id || state.lastEventId };
    switch (ev.type) {
    case 'workflow_update':
      return { ...s, workflow: ev.data.name ?? s.workflow,
               status: ev.data.status, progress: clampPct(ev.data.progress),
               startedAt: ev.data.started_at ?? s.startedAt };
    case 'agent_status':
      return applyAgent(s, ev.data.id ?? ev.data.name, ev.data);
    case 'log_entry': {
      const entry = { ...ev.data, id: ev.id };
      const node = ev.data.node ?? ev.data.agent;
      const logs = [...s.logs, entry].slice(-LOG_LIMIT);
      const mine = [...(s.agentLogs[node] ?? []), entry]
        .slice(-AGENT_LOG_LIMIT);
      return { ...s, logs, agentLogs: { ...s.agentLogs, [node]: mine } };
    }
    case 'token':
      return { ...s, answer: s.answer + (ev.data.text ?? '') };
    case 'done':
      return { ...s, status: ev.data.status,
               progress: ev.data.status === 'complete' ? 100 : s.progress,
               result: ev.data.result ?? null };
    case 'error':
      return { ...s, status: 'failed', error: ev.data.error ?? 'failed' };
    default:
      return s;
    }
  }

  default:
    return state;
  }
}

/* the graph's edges: every consecutive pair of activations, deduplicated;
   without any, the order of first activity, then the rest of the nodes */
export function graphEdges(st: LiveWorkflow): [string, string][] {
  const out: [string, string][] = [];
  const seen = new Set<string>();
  const add = (a: string, b: string) => {
    const k = `${a}\u0000${b}`;
    if (a !== b && !seen.has(k)) {
      seen.add(k);
      out.push([a, b]);
    }
  };
  const acts = st.activations.map((a) => a.node);
  for (let i = 1; i < acts.length; i++) {
    add(acts[i - 1], acts[i]);
  }
  const order = graphOrder(st);
  for (let i = 1; i < order.length; i++) {
    if (!st.firstActive.includes(order[i])) {
      add(order[i - 1], order[i]);
    }
  }
  return out;
}

/* nodes in order of first activity, then those not run yet */
export function graphOrder(st: LiveWorkflow): string[] {
  return [...st.firstActive,
          ...st.nodes.filter((n) => !st.firstActive.includes(n))];
}
