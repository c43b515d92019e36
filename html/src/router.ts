import { useCallback, useEffect, useState } from 'react';

export type Route = 'prompt' | 'monitor' | 'metrics' | 'agents';
export const ROUTES: Route[] = ['prompt', 'monitor', 'metrics', 'agents'];

export function routeOf(pathname: string): Route {
  const seg = pathname.replace(/^\/+/, '').split('/')[0];
  return (ROUTES as string[]).includes(seg) ? seg as Route : 'prompt';
}

export function pathOf(r: Route): string {
  return `/${r}`;
}

/* History-API routing (nginx serves index.html for unknown paths). */
export function useRoute(): [Route, (r: Route) => void] {
  const [route, setRoute] = useState<Route>(() =>
    routeOf(window.location.pathname));

  useEffect(() => {
    const onPop = () => setRoute(routeOf(window.location.pathname));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const go = useCallback((r: Route) => {
    if (window.location.pathname !== pathOf(r)) {
      window.history.pushState(null, '', pathOf(r));
    }
    setRoute(r);
  }, []);

  return [route, go];
}
