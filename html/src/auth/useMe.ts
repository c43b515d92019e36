import { useCallback, useEffect, useRef, useState } from 'react';
import { getMe } from '../api/client';
import { useAuth } from './useAuth';

export interface MeState {
  me: unknown;
  error: { status: number; message: string } | null;
  refresh: () => void;
}

/*
 * GET /api/v1/me: on mount, whenever the stored key changes (sign-in,
 * sign-out), and on refresh() (the panel opening: spent budget moves).
 */
export function useMe(): MeState {
  const { version } = useAuth();
  const [me, setMe] = useState<unknown>(null);
  const [error, setError] = useState<MeState['error']>(null);
  const ctrl = useRef<AbortController | null>(null);

  const refresh = useCallback(() => {
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    getMe(c.signal).then((r) => {
      setMe(r);
      setError(null);
    }).catch((e: Error & { status?: number }) => {
      if (e.name === 'AbortError' || c.signal.aborted) {
        return;
      }
      setMe(null);
      setError({ status: e.status ?? 0, message: e.message });
    });
  }, []);

  useEffect(() => {
    refresh();
    return () => ctrl.current?.abort();
  }, [refresh, version]);

  return { me, error, refresh };
}
