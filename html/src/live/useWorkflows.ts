import { useCallback, useEffect, useRef, useState } from 'react';
import { FEED_URL, listWorkflows } from '../api/client';
import type { WorkflowRecord, WorkflowUpdateData } from '../api/types';
import { getKey, needKey, withAuth } from '../api/auth';
import { backoffDelay, transientStatus } from './transport';
import { connectSse, type SseConnection } from './sse';

export interface WorkflowsState {
  items: WorkflowRecord[];
  loading: boolean;
  error: string | null;
  refresh: () => void;
  live: boolean;              /* the monitor feed is open */
}

export interface WorkflowsOptions {
  /* follow GET /api/v1/events (SSE) for live updates */
  feed?: boolean;
  /* the poll interval while the feed is open (a safety net) */
  feedIntervalMs?: number;
  /* the fetch() that reads the feed (tests pass a fake) */
  fetchImpl?: typeof fetch;
}

/*
 * A workflow_update of the monitor feed applied to the list: the row's
 * status, progress and start move; unknown: the id is not in the list
 * (a new workflow: the caller reloads the list).
 */
export function applyUpdate(items: WorkflowRecord[],
                            d: Partial<WorkflowUpdateData>):
  { items: WorkflowRecord[]; unknown: boolean } {
  const i = d && typeof d.id === 'string'
    ? items.findIndex((w) => w.id === d.id) : -1;
  if (i < 0) {
    return { items, unknown: Boolean(d && typeof d.id === 'string') };
  }
  const w = items[i];
  const next: WorkflowRecord = {
    ...w,
    status: d.status ?? w.status,
    progress: typeof d.progress === 'number' ? d.progress : w.progress,
    started_at: d.started_at ?? w.started_at,
    workflow: d.name ?? w.workflow,
  };
  if (next.status === w.status && next.progress === w.progress
      && next.started_at === w.started_at && next.workflow === w.workflow) {
    return { items, unknown: false };
  }
  const out = items.slice();
  out[i] = next;
  return { items: out, unknown: false };
}

/*
 * GET /api/v1/workflows?limit=N, on demand and every intervalMs (0: off);
 * with opts.feed, also the live monitor feed GET /api/v1/events, and then
 * the poll slows down to opts.feedIntervalMs while the feed is open.
 */
export function useWorkflows(limit: number, intervalMs = 0,
                             opts: WorkflowsOptions = {}): WorkflowsState {
  const [items, setItems] = useState<WorkflowRecord[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const ctrl = useRef<AbortController | null>(null);
  const itemsRef = useRef<WorkflowRecord[]>([]);
  itemsRef.current = items;

  const refresh = useCallback(() => {
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    setLoading(true);
    listWorkflows(limit, c.signal)
      .then((r) => {
        setItems(r.items ?? []);
        setError(null);
      })
      .catch((e: Error) => {
        if (e.name !== 'AbortError') {
          setError(e.message);
        }
      })
      .finally(() => {
        if (ctrl.current === c) {
          setLoading(false);
        }
      });
  }, [limit]);

  useEffect(() => {
    refresh();
    return () => ctrl.current?.abort();
  }, [refresh]);

  const feed = Boolean(opts.feed);
  const fetchImpl = opts.fetchImpl;

  /*
   * The feed is SSE read with fetch() (sse.ts), so it carries the bearer
   * key. A lost feed reconnects after the server's retry with backoff
   * and reloads the list (what happened meanwhile); a 401 waits for the
   * key dialog; another refusal (403) ends it, the poll carries on.
   */
  useEffect(() => {
    if (!feed) {
      return undefined;
    }
    let conn: SseConnection | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let reload: ReturnType<typeof setTimeout> | null = null;
    let attempt = 0;
    let lost = false;
    let stopped = false;
    /* a new workflow: reload the list once the burst is over */
    const reloadSoon = () => {
      if (reload === null) {
        reload = setTimeout(() => {
          reload = null;
          refresh();
        }, 300);
      }
    };
    const again = (retryMs: number | null) => {
      conn = null;
      lost = true;
      setLive(false);
      if (!stopped && retry === null) {
        retry = setTimeout(() => {
          retry = null;
          connect();
        }, backoffDelay(attempt++, retryMs && retryMs > 0
          ? Math.min(retryMs, 15000) : 1000, 15000));
      }
    };
    const connect = () => {
      if (stopped) {
        return;
      }
      const key = getKey();
      conn = connectSse(FEED_URL, {
        fetchImpl,
        headers: withAuth({}, key),
        onOpen: () => {
          attempt = 0;
          setLive(true);
          if (lost) {
            lost = false;
            refresh();          /* what happened while it was down */
          }
        },
        onEvent: (ev) => {
          if (ev.type !== 'workflow_update') {
            return;
          }
          let d: Partial<WorkflowUpdateData>;
          try {
            d = JSON.parse(ev.data);
          } catch {
            return;
          }
          const r = applyUpdate(itemsRef.current, d);
          if (r.unknown) {
            reloadSoon();
          } else if (r.items !== itemsRef.current) {
            itemsRef.current = r.items;
            setItems(r.items);
          }
        },
        onEnd: (end, parser) => {
          if (stopped) {
            return;
          }
          if (end.kind !== 'http' || transientStatus(end.status)) {
            again(parser.retry);
            return;
          }
          conn = null;
          setLive(false);
          if (end.status === 401) {
            needKey(key).then((got) => {
              if (got && !stopped) {
                lost = true;
                connect();
              }
            });
          }
        },
      });
    };
    connect();
    return () => {
      stopped = true;
      conn?.close();
      if (retry !== null) {
        clearTimeout(retry);
      }
      if (reload !== null) {
        clearTimeout(reload);
      }
      setLive(false);
    };
  }, [feed, fetchImpl, refresh]);

  const every = live && opts.feedIntervalMs ? opts.feedIntervalMs
    : intervalMs;

  useEffect(() => {
    if (!every) {
      return undefined;
    }
    const timer = setInterval(refresh, every);
    return () => clearInterval(timer);
  }, [refresh, every]);

  return { items, loading, error, refresh, live };
}

export function countByState(items: WorkflowRecord[]):
  { active: number; completed: number; failed: number } {
  let active = 0;
  let completed = 0;
  let failed = 0;
  for (const w of items) {
    if (w.status === 'queued' || w.status === 'running') {
      active++;
    } else if (w.status === 'complete') {
      completed++;
    } else if (w.status === 'failed') {
      failed++;
    }
  }
  return { active, completed, failed };
}
