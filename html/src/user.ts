import { useCallback, useState } from 'react';

const KEY = 'maestro.user';

export function useUserId(): [string, (v: string) => void] {
  const [id, setId] = useState<string>(() => {
    try {
      return localStorage.getItem(KEY) ?? '';
    } catch {
      return '';
    }
  });
  const set = useCallback((v: string) => {
    setId(v);
    try {
      localStorage.setItem(KEY, v);
    } catch {
      /* storage disabled */
    }
  }, []);
  return [id, set];
}
