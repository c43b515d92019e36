/*
 * The caller's API key, for a server with `maestro_auth on`.
 *
 * The key lives in sessionStorage only: it stays across reloads of this
 * tab and is gone when the tab closes; never localStorage (it would
 * outlive the session and be shared by every tab), never a URL (nginx
 * logs request lines). Every API request sends it as
 * "Authorization: Bearer <key>"; a WebSocket offers it as the subprotocol
 * "maestro.bearer.<key>" next to "maestro", which the server selects.
 *
 * A 401 with "WWW-Authenticate: Bearer" asks for a key: needKey() tells
 * the subscribers (the key dialog) and waits; every request refused at
 * that moment waits on the same prompt, then is sent again with the new
 * key. The dialog checks a key with GET /api/v1/me before keeping it, so
 * a wrong key is an error in the dialog, not a second round of 401s.
 * Dismissing the dialog lets the waiting requests fail with their 401.
 *
 * A 403 is reported to the subscribers with the server's message (the
 * key may not do this), and answered to the caller as it is.
 */

export const KEY_STORAGE = 'maestro.apikey';
export const WS_PROTOCOL = 'maestro';
export const WS_BEARER_PREFIX = 'maestro.bearer.';
const ME_URL = '/api/v1/me';

export type PromptReason = 'missing' | 'rejected';

export interface AuthState {
  /* the key dialog is wanted, and why */
  prompt: PromptReason | null;
  /* a key is stored for this tab */
  hasKey: boolean;
  /* the last 403's message, until dismissed */
  forbidden: string | null;
  /* bumps whenever the stored key changes */
  version: number;
}

let state: AuthState = { prompt: null, hasKey: false, forbidden: null,
                         version: 0 };
const listeners = new Set<(s: AuthState) => void>();
let waiters: ((got: boolean) => void)[] = [];

function emit(next: Partial<AuthState>): void {
  state = { ...state, ...next, hasKey: getKey() !== null };
  for (const fn of listeners) {
    fn(state);
  }
}

export function authState(): AuthState {
  return { ...state, hasKey: getKey() !== null };
}

export function subscribeAuth(fn: (s: AuthState) => void): () => void {
  listeners.add(fn);
  return () => {
    listeners.delete(fn);
  };
}

export function getKey(): string | null {
  try {
    const k = sessionStorage.getItem(KEY_STORAGE);
    return k ? k : null;
  } catch {
    return null;
  }
}

function storeKey(key: string | null): void {
  try {
    if (key) {
      sessionStorage.setItem(KEY_STORAGE, key);
    } else {
      sessionStorage.removeItem(KEY_STORAGE);
    }
  } catch {
    /* storage disabled: the key cannot be kept */
  }
}

/*
 * What a key may hold: it travels in a header and in a WebSocket
 * subprotocol, so visible ASCII without separators (RFC 7230 tchar).
 */
export function validKeySyntax(key: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key) && key.length <= 4096;
}

export function setKey(key: string): void {
  storeKey(key);
  emit({ version: state.version + 1 });
}

/*
 * Sign out: the key is forgotten, with what this tab remembered under it
 * (the workflow it was following).
 */
export function signOut(): void {
  storeKey(null);
  try {
    sessionStorage.removeItem('maestro.current');
  } catch {
    /* storage disabled */
  }
  emit({ version: state.version + 1, forbidden: null });
}

/* headers with the bearer credential, when there is one */
export function withAuth(headers: Record<string, string> = {},
                         key: string | null = getKey()):
  Record<string, string> {
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

/* the WebSocket subprotocols to offer: none without a key */
export function wsProtocols(key: string | null = getKey()):
  string[] | undefined {
  return key && validKeySyntax(key)
    ? [WS_PROTOCOL, WS_BEARER_PREFIX + key] : undefined;
}

export function isBearerChallenge(res: Response): boolean {
  return res.status === 401
    && /^\s*Bearer\b/i.test(res.headers.get('WWW-Authenticate') ?? '');
}

/*
 * A request was refused for want of a key (rejected: the one it sent).
 * Resolves true once a new key is stored, false when the dialog is
 * dismissed. One prompt for every request waiting at once.
 */
export function needKey(rejected: string | null): Promise<boolean> {
  const current = getKey();
  if (current !== null && current !== rejected) {
    return Promise.resolve(true);   /* a newer key came meanwhile */
  }
  if (current !== null) {
    storeKey(null);                 /* it does not work any more */
  }
  return new Promise((resolve) => {
    waiters.push(resolve);
    if (state.prompt === null) {
      emit({ prompt: rejected ? 'rejected' : 'missing' });
    }
  });
}

/* open the dialog without a refused request (the header's sign-in) */
export function askForKey(): void {
  if (state.prompt === null) {
    emit({ prompt: 'missing' });
  }
}

function settle(got: boolean): void {
  const w = waiters;
  waiters = [];
  emit({ prompt: null });
  for (const fn of w) {
    fn(got);
  }
}

export function dismissPrompt(): void {
  settle(false);
}

export type KeyCheck =
  | { ok: true; me: unknown }
  | { ok: false; reason: 'rejected' | 'syntax' | 'unavailable';
      message?: string };

/*
 * The dialog's submit: GET /api/v1/me with the candidate key; kept (and
 * the waiting requests sent again) only when the server accepts it.
 */
export async function submitKey(key: string,
                                fetchImpl: typeof fetch = fetch):
  Promise<KeyCheck> {
  const k = key.trim();
  if (!k || !validKeySyntax(k)) {
    return { ok: false, reason: 'syntax' };
  }
  let res: Response;
  try {
    res = await fetchImpl(ME_URL, { headers: withAuth(
      { Accept: 'application/json' }, k), cache: 'no-store' });
  } catch {
    return { ok: false, reason: 'unavailable' };
  }
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  if (res.status === 401) {
    return { ok: false, reason: 'rejected', message: errorMessage(body) };
  }
  if (!res.ok) {
    return { ok: false, reason: 'unavailable',
             message: errorMessage(body) ?? `HTTP ${res.status}` };
  }
  storeKey(k);
  state = { ...state, version: state.version + 1, forbidden: null };
  settle(true);
  return { ok: true, me: body };
}

function errorMessage(body: unknown): string | undefined {
  const m = (body as { error?: { message?: unknown } } | null)?.error
    ?.message;
  return typeof m === 'string' ? m : undefined;
}

export function reportForbidden(message: string): void {
  emit({ forbidden: message });
}

export function dismissForbidden(): void {
  emit({ forbidden: null });
}

/*
 * fetch() with the bearer credential; a 401 challenge waits for a key
 * and sends the request again (its body must be reusable: a string). A
 * 403 is reported (its body stays readable by the caller).
 */
export async function authFetch(input: string, init: RequestInit = {},
                                fetchImpl: typeof fetch = fetch):
  Promise<Response> {
  for (;;) {
    const key = getKey();
    const headers = withAuth(
      { ...(init.headers as Record<string, string> | undefined) }, key);
    const res = await fetchImpl(input, { ...init, headers });
    if (isBearerChallenge(res)) {
      /* a caller that gave up while the dialog was open sees its abort,
         not the 401 */
      const aborted = () => new DOMException('aborted', 'AbortError');
      if (init.signal?.aborted) {
        throw aborted();
      }
      const got = await needKey(key);
      if (init.signal?.aborted) {
        throw aborted();
      }
      if (!got) {
        return res;
      }
      res.body?.cancel().catch(() => {});
      continue;
    }
    if (res.status === 403) {
      let msg: string | undefined;
      try {
        msg = errorMessage(await res.clone().json());
      } catch {
        /* not JSON */
      }
      reportForbidden(msg ?? 'forbidden');
    }
    return res;
  }
}

/* for tests: forget every listener, waiter and state */
export function resetAuthForTests(): void {
  listeners.clear();
  waiters = [];
  state = { prompt: null, hasKey: false, forbidden: null, version: 0 };
}
