import { useCallback, useEffect, useRef, useState } from 'react';
import { listWorkflows } from '../api/client';
import type { WorkflowRecord } from '../api/types';

export interface WorkflowsState {
  items: WorkflowRecord[];
  loading: boolean;
  error: string | null;
  refresh: () => void;
}

/* GET /api/v1/workflows?limit=N, on demand and every intervalMs (0: off) */
export function useWorkflows(limit: number, intervalMs = 0): WorkflowsState {
  const [items, setItems] = useState<WorkflowRecord[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const ctrl = useRef<AbortController | null>(null);

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

  useEffect(() => {
    if (!intervalMs) {
      return undefined;
    }
    const timer = setInterval(refresh, intervalMs);
    return () => clearInterval(timer);
  }, [refresh, intervalMs]);

  return { items, loading, error, refresh };
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
