import { afterEach, describe, expect, it, vi } from 'vitest';
import { authFetch, authState, dismissPrompt, getKey, KEY_STORAGE,
         needKey, setKey, signOut, submitKey, subscribeAuth,
         validKeySyntax, withAuth, wsProtocols } from './auth';
import { agentLogs, getMe, listWorkflows, ApiError } from './client';
import { jsonResponse } from '../test/render';
import { flush } from '../test/fakeSseFetch';

const challenge = () => new Response(JSON.stringify({ error: {
  code: 'unauthorized', message: 'no credential' } }), { status: 401,
  headers: { 'WWW-Authenticate': 'Bearer realm="maestro"',
             'Content-Type': 'application/json' } });

/* a server that takes one key */
function server(good: string) {
  const seen: (string | null)[] = [];
  const fn = vi.fn(async (url: string, init?: RequestInit) => {
    const h = new Headers(init?.headers);
    const a = h.get('Authorization');
    seen.push(a);
    if (a !== `Bearer ${good}`) {
      return challenge();
    }
    if (url === '/api/v1/me') {
      return jsonResponse({ kind: 'key', user_id: 'alice' });
    }
    if (url.startsWith('/api/v1/agents/')) {
      return jsonResponse({ error: { code: 'forbidden',
        message: 'agent logs span every user' } }, 403);
    }
    return jsonResponse({ items: [], next_cursor: null });
  });
  return { fn, seen };
}

describe('the API key', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('lives in sessionStorage only and goes in the headers', () => {
    expect(getKey()).toBeNull();
    expect(withAuth({ A: '1' })).toEqual({ A: '1' });
    expect(wsProtocols()).toBeUndefined();
    setKey('mk_abc');
    expect(sessionStorage.getItem(KEY_STORAGE)).toBe('mk_abc');
    expect(localStorage.length).toBe(0);
    expect(withAuth({ A: '1' })).toEqual({ A: '1',
                                          Authorization: 'Bearer mk_abc' });
    expect(wsProtocols()).toEqual(['maestro', 'maestro.bearer.mk_abc']);
    sessionStorage.setItem('maestro.current', 'wf_1');
    signOut();
    expect(getKey()).toBeNull();
    expect(sessionStorage.getItem('maestro.current')).toBeNull();
  });

  it('a key is header- and subprotocol-safe or refused', async () => {
    expect(validKeySyntax('mk_0123456789abcdef_AZaz09-_')).toBe(true);
    expect(validKeySyntax('two words')).toBe(false);
    expect(validKeySyntax('a,b')).toBe(false);
    expect(validKeySyntax('k\r\nX-Evil: 1')).toBe(false);
    const f = vi.fn();
    expect(await submitKey('has space', f)).toEqual({ ok: false,
                                                      reason: 'syntax' });
    expect(f).not.toHaveBeenCalled();
  });

  it('a 401 challenge prompts once for every request; a wrong key is '
     + 'refused in the dialog; the right one resends them', async () => {
    const { fn, seen } = server('mk_right');
    vi.stubGlobal('fetch', fn);
    const states: (string | null)[] = [];
    subscribeAuth((s) => states.push(s.prompt));
    const a = listWorkflows(5);
    const b = getMe();
    await flush();
    expect(authState().prompt).toBe('missing');
    expect(states.filter((s) => s === 'missing')).toHaveLength(1);
    expect(seen).toEqual([null, null]);

    const wrong = await submitKey('mk_wrong');
    expect(wrong).toMatchObject({ ok: false, reason: 'rejected',
                                  message: 'no credential' });
    expect(getKey()).toBeNull();
    expect(authState().prompt).toBe('missing');     /* still open */

    const right = await submitKey(' mk_right ');
    expect(right).toMatchObject({ ok: true, me: { kind: 'key' } });
    expect(getKey()).toBe('mk_right');
    expect(authState().prompt).toBeNull();
    expect(await a).toEqual({ items: [], next_cursor: null });
    expect(await b).toMatchObject({ user_id: 'alice' });
    expect(seen.slice(2)).toEqual(['Bearer mk_wrong', 'Bearer mk_right',
                                   'Bearer mk_right', 'Bearer mk_right']);
  });

  it('a stored key that stops working asks again (rejected)',
     async () => {
    const { fn } = server('mk_new');
    vi.stubGlobal('fetch', fn);
    setKey('mk_revoked');
    const p = listWorkflows(5);
    await flush();
    expect(authState().prompt).toBe('rejected');
    expect(getKey()).toBeNull();
    await submitKey('mk_new');
    await expect(p).resolves.toMatchObject({ items: [] });
  });

  it('dismissing the dialog fails the waiting requests with the 401',
     async () => {
    vi.stubGlobal('fetch', server('x').fn);
    const p = listWorkflows(5);
    await flush();
    dismissPrompt();
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('unauthorized');
  });

  it('a request aborted while the dialog is open ends as an abort',
     async () => {
    vi.stubGlobal('fetch', server('mk_k').fn);
    const ctrl = new AbortController();
    const p = listWorkflows(5, ctrl.signal).catch((e) => e);
    await flush();
    expect(authState().prompt).toBe('missing');
    ctrl.abort();
    await submitKey('mk_k');
    const e = await p;
    expect(e.name).toBe('AbortError');
  });

  it('a 401 without a Bearer challenge is a plain error', async () => {
    const fn = vi.fn(async () => jsonResponse({ error: {
      code: 'unauthorized', message: 'x' } }, 401));
    const res = await authFetch('/api/v1/x', {}, fn);
    expect(res.status).toBe(401);
    expect(authState().prompt).toBeNull();
  });

  it('a 403 is reported with the server\'s message',
     async () => {
    vi.stubGlobal('fetch', server('mk_k').fn);
    setKey('mk_k');
    expect(authState().forbidden).toBeNull();
    const e = await agentLogs('llm').catch((x) => x);
    expect(e.status).toBe(403);
    expect(e.message).toBe('agent logs span every user');
    expect(authState().forbidden).toBe('agent logs span every user');
  });

  it('a newer key stored meanwhile is used without a prompt', async () => {
    setKey('mk_b');
    await expect(needKey('mk_a')).resolves.toBe(true);
    expect(authState().prompt).toBeNull();
  });
});
