export type WorkflowStatus = 'queued' | 'running' | 'complete' | 'failed'
  | 'cancelled';
export type AgentStatusName = 'idle' | 'planning' | 'executing' | 'waiting'
  | 'complete' | 'error';

export interface AgentMetrics {
  tokens: number;
  execution_ms: number;
  memory_bytes: number;
}

export interface AgentState {
  name: string;
  agent: string;
  status: AgentStatusName;
  progress: number;
  current_task: string | null;
  metrics: AgentMetrics;
  attempts: number;
}

export interface WorkflowRecord {
  id: string;
  workflow: string;
  status: WorkflowStatus;
  progress: number;
  user_id: string | null;
  prompt?: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  agents: Record<string, AgentState>;
  result?: string | null;
  error?: string | null;
  tokens?: { prompt: number; completion: number; total: number };
  timings?: { queued_ms: number; run_ms: number; total_ms: number };
  last_event_id?: number;
}

export interface WorkflowList {
  items: WorkflowRecord[];
  next_cursor: string | null;
}

export interface ContextFile {
  name: string;
  content: string;
}

export interface SubmitBody {
  prompt: string;
  workflow?: string;
  user_id?: string;
  context?: ContextFile[];
}

export interface AgentInfo {
  name: string;
  plugin: string;
  version: string;
  description: string;
  capabilities: string[];
}

export interface AgentLogEntry {
  timestamp: number;
  level: string;
  agent: string;
  node?: string;
  workflow_id?: string;
  message: string;
}

export interface AnalyzeResult {
  intent: string;
  complexity: 'simple' | 'moderate' | 'complex';
  route: { workflow: string };
  matched?: string | null;
  signals: { words: number; code_blocks: number; steps: number };
}

export interface GraphNodeDef {
  agent: string;
  foreach?: string;
  [key: string]: unknown;
}

export interface GraphEdgeDef {
  from: string;
  to: string;
  when?: unknown;
  else?: boolean;
}

export interface GraphDef {
  name?: string;
  entry?: string;
  nodes: Record<string, GraphNodeDef>;
  edges: GraphEdgeDef[];
}

export interface WorkflowGraphResponse {
  id: string;
  workflow: string;
  graph: GraphDef;
}

/* SSE payloads */
export interface WorkflowUpdateData {
  id: string;
  name: string;
  status: WorkflowStatus;
  progress: number;
  started_at: number | null;
  user_id?: string | null;
}

export interface AgentStatusData extends AgentState {
  id: string;
}

export interface LogEntryData {
  timestamp: number;
  level: string;
  agent: string;
  node?: string;
  message: string;
}

export interface TokenData {
  agent: string;
  node?: string;
  text: string;
}

export interface DoneData {
  id: string;
  status: 'complete' | 'cancelled';
  result: string | null;
}

export interface ErrorData {
  id: string;
  status: 'failed';
  error: string;
}

export type LiveEvent =
  | { id: number; type: 'workflow_update'; data: WorkflowUpdateData }
  | { id: number; type: 'agent_status'; data: AgentStatusData }
  | { id: number; type: 'log_entry'; data: LogEntryData }
  | { id: number; type: 'token'; data: TokenData }
  | { id: number; type: 'done'; data: DoneData }
  | { id: number; type: 'error'; data: ErrorData };

export type LiveEventType = LiveEvent['type'];
export const LIVE_EVENT_TYPES: LiveEventType[] = [
  'workflow_update', 'agent_status', 'log_entry', 'token', 'done', 'error',
];

/*
 * GET /api/v1/me. Everything but kind may be missing or null (a local
 * caller has no key; limits, usage and budget come from the limits
 * stage when the server has it): render what is there, nothing else.
 */
/* a limit as a number (the key record), or the limits stage's state */
export type MeLimit = number | {
  limit?: number | null;
  remaining?: number | null;   /* rpm, tpm, tpd: what is left now */
  reset_ms?: number | null;
  in_flight?: number | null;   /* max_parallel: running now */
} | null;

export interface MeLimits {
  rpm?: MeLimit;
  tpm?: MeLimit;
  tpd?: MeLimit;
  max_parallel?: MeLimit;
}

export interface MeBudget {
  usd?: number | null;
  period?: string | null;
  bucket?: string | null;      /* e.g. "2026-12" for a monthly budget */
  spent_usd?: number | null;
  remaining_usd?: number | null;
}

export interface MeKey {
  id?: string;
  name?: string | null;
  user_id?: string;
  team?: string | null;
  status?: string;
  workflows?: string[] | null;
  models?: string[] | null;
  limits?: MeLimits | null;
  budget_usd?: number | null;
  budget_period?: string | null;
  expires_at?: number | null;
  created_at?: number;
  last_used_at?: number | null;
}

export interface MeResponse {
  kind: 'local' | 'key' | 'jwt' | 'admin' | string;
  user_id?: string | null;
  team?: string | null;
  key_id?: string | null;
  key?: MeKey | null;
  limits?: MeLimits | null;
  usage?: Record<string, unknown> | null;
  budget?: MeBudget | null;
}
