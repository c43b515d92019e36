import { useEffect, useMemo, useState } from 'react';
import { analyzeLocal, analyzeServer,
         type ComplexityResult } from './complexity';

export const ANALYZE_DELAY_MS = 250;
const RETRY_MS = 400;

/*
 * The prompt's complexity, intent and route as the user types: the local
 * heuristic at once, the server's answer (POST /api/v1/analyze) once the
 * text has been still for delayMs and the server answered for this very
 * text. A newer keystroke aborts the request in flight. The intent and
 * route of the last answer stay shown while the next one is on its way.
 */
export function useAnalysis(text: string,
                            delayMs = ANALYZE_DELAY_MS): ComplexityResult {
  const local = useMemo(() => analyzeLocal(text), [text]);
  const [server, setServer] = useState<{ text: string;
                                         res: ComplexityResult } | null>(
    null);

  useEffect(() => {
    if (!text.trim()) {
      return undefined;
    }
    const ctrl = new AbortController();
    let retry: ReturnType<typeof setTimeout> | null = null;
    const ask = (again: boolean) => {
      analyzeServer(text, ctrl.signal)
        .then((res) => {
          if (!ctrl.signal.aborted) {
            setServer({ text, res });
          }
        })
        .catch((e: Error) => {
          /* a network error (e.g. a reset keep-alive connection) is
             tried once more; else the local answer stands */
          if (again && e instanceof TypeError && !ctrl.signal.aborted) {
            retry = setTimeout(() => ask(false), RETRY_MS);
          }
        });
    };
    const timer = setTimeout(() => ask(true), delayMs);
    return () => {
      clearTimeout(timer);
      if (retry !== null) {
        clearTimeout(retry);
      }
      ctrl.abort();
    };
  }, [text, delayMs]);

  if (server && server.text === text) {
    return server.res;
  }
  if (!text.trim() || !server) {
    return local;
  }
  return { ...local, intent: server.res.intent, route: server.res.route };
}
