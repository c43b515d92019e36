import type { AgentInfo, AgentLogEntry, AnalyzeResult, SubmitBody,
              WorkflowGraphResponse, WorkflowList,
              WorkflowRecord, MeResponse } from './types';
import { authFetch } from './auth';

export const API = '/api/v1';

export class ApiError extends Error {
  status: number;
  code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request<T>(method: string, path: string, body?: unknown,
                          signal?: AbortSignal): Promise<T> {
  const init: RequestInit = { method, signal,
                              headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, 'Content-Type': 'application/json' };
  }
  /* the bearer key, and a key prompt on a 401 challenge (auth.ts) */
  const res = await authFetch(API + path, init);
  let json: unknown = null;
  try {
    json = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } })
      ?.error;
    throw new ApiError(res.status, err?.code ?? 'http_error',
                       err?.message ?? `HTTP ${res.status}`);
  }
  return json as T;
}

export function submitWorkflow(body: SubmitBody): Promise<{ id: string;
                                                          status: string }> {
  return request('POST', '/workflows', body);
}

export function getWorkflow(id: string, signal?: AbortSignal):
  Promise<WorkflowRecord> {
  return request('GET', `/workflows/${encodeURIComponent(id)}`, undefined,
                 signal);
}

export function listWorkflows(limit = 50, signal?: AbortSignal):
  Promise<WorkflowList> {
  return request('GET', `/workflows?limit=${limit}`, undefined, signal);
}

export function cancelWorkflow(id: string): Promise<unknown> {
  return request('POST', `/workflows/${encodeURIComponent(id)}/cancel`, {});
}

export function listAgents(signal?: AbortSignal):
  Promise<{ items: AgentInfo[] }> {
  return request('GET', '/agents', undefined, signal);
}

export function agentLogs(name: string, limit = 100, signal?: AbortSignal):
  Promise<{ agent: string; items: AgentLogEntry[] }> {
  return request('GET', `/agents/${encodeURIComponent(name)}/logs`
                 + `?limit=${limit}`, undefined, signal);
}

export function eventsUrl(id: string): string {
  return `${API}/workflows/${encodeURIComponent(id)}/events`;
}

/* the definition of the graph a workflow runs (nodes and edges) */
export function getWorkflowGraph(id: string, signal?: AbortSignal):
  Promise<WorkflowGraphResponse> {
  return request('GET', `/workflows/${encodeURIComponent(id)}/graph`,
                 undefined, signal);
}

/* the server's intent, complexity and route for a prompt */
export function analyzePrompt(prompt: string, signal?: AbortSignal):
  Promise<AnalyzeResult> {
  return request('POST', '/analyze', { prompt }, signal);
}

/* who the caller is: kind, user, team, key; limits, usage and budget
   when the server reports them */
export function getMe(signal?: AbortSignal): Promise<MeResponse> {
  return request('GET', '/me', undefined, signal);
}

/* the monitor feed of every workflow's workflow_update events (SSE) */
export const FEED_URL = `${API}/events`;
