import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import { FakeSseServer, flush, sseEvent } from '../test/fakeSseFetch';
import { jsonResponse } from '../test/render';
import type { WorkflowRecord } from '../api/types';
import { applyUpdate, useWorkflows } from './useWorkflows';

const wf = (id: string, status = 'running', progress = 10) => ({
  id, workflow: 'default', status, progress, user_id: null, created_at: 1,
  started_at: 1, finished_at: null, updated_at: 1, agents: {},
}) as WorkflowRecord;

describe('applyUpdate', () => {
  it('moves a known row, flags an unknown one, ignores garbage', () => {
    const items = [wf('a'), wf('b')];
    const r = applyUpdate(items, { id: 'b', status: 'complete',
                                   progress: 100 });
    expect(r.unknown).toBe(false);
    expect(r.items[1]).toMatchObject({ status: 'complete', progress: 100 });
    expect(r.items[0]).toBe(items[0]);
    expect(items[1].status).toBe('running');          /* not mutated */
    expect(applyUpdate(items, { id: 'a', status: 'running',
                                progress: 10 }).items).toBe(items);
    expect(applyUpdate(items, { id: 'new', status: 'queued' }))
      .toEqual({ items, unknown: true });
    expect(applyUpdate(items, {} as never)).toEqual({ items,
                                                     unknown: false });
  });
});

describe('useWorkflows with the monitor feed', () => {
  let lists: number;
  let srv: FakeSseServer;

  beforeEach(() => {
    srv = new FakeSseServer();
    lists = 0;
    vi.stubGlobal('fetch', vi.fn(async () => {
      lists++;
      return jsonResponse({ items: lists === 1 ? [wf('a')]
        : [wf('n', 'queued', 0), wf('a', 'complete', 100)],
                            next_cursor: null });
    }));
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('updates rows live and reloads for a new workflow', async () => {
    const { result, unmount } = renderHook(() => useWorkflows(50, 3000, {
      feed: true, feedIntervalMs: 60000, fetchImpl: srv.fetch }));
    await waitFor(() => expect(result.current.items).toHaveLength(1));
    const c = srv.last();
    expect(c.url).toBe('/api/v1/events');
    expect(result.current.live).toBe(false);
    await act(async () => { c.open(); await flush(); });
    expect(result.current.live).toBe(true);
    await act(async () => {
      c.send(sseEvent('workflow_update', 7, { id: 'a', name: 'default',
        status: 'running', progress: 55, started_at: 1, user_id: 'u' }));
      await flush();
    });
    expect(result.current.items[0].progress).toBe(55);
    expect(lists).toBe(1);
    await act(async () => {
      c.send(sseEvent('workflow_update', 8, { id: 'n', status: 'queued',
                                              progress: 0 }));
      await flush();
    });
    await waitFor(() => expect(result.current.items.map((w) => w.id))
      .toEqual(['n', 'a']));
    expect(lists).toBe(2);
    unmount();
    expect(c.aborted()).toBe(true);
  });

  it('sends the key; reconnects after a loss and reloads what it missed',
     async () => {
    sessionStorage.setItem('maestro.apikey', 'mk_feed');
    vi.useFakeTimers();
    const tick = (ms = 10) => act(async () => {
      await vi.advanceTimersByTimeAsync(ms);
    });
    const { result } = renderHook(() => useWorkflows(50, 0, {
      feed: true, fetchImpl: srv.fetch }));
    await tick();
    const c1 = srv.last();
    expect(c1.headers.authorization).toBe('Bearer mk_feed');
    c1.open();
    await tick();
    expect(result.current.live).toBe(true);
    c1.send('retry: 3000\n\n');
    await tick();
    c1.drop();
    await tick();
    expect(result.current.live).toBe(false);
    /* the server's retry (3000 ms, jittered down to 75 %) is the floor */
    await tick(2000);
    expect(srv.calls).toHaveLength(1);
    await tick(1100);
    const c2 = srv.last();
    expect(c2).not.toBe(c1);
    const before = lists;
    c2.open();
    await tick();
    expect(lists).toBe(before + 1);
    expect(result.current.live).toBe(true);
  });

  it('a 403 feed stops; the list is still there', async () => {
    const { result } = renderHook(() => useWorkflows(50, 0, {
      feed: true, fetchImpl: srv.fetch }));
    await waitFor(() => expect(result.current.items).toHaveLength(1));
    await act(async () => {
      srv.last().respond(403, { error: { code: 'forbidden',
                                         message: 'no' } });
      await flush();
    });
    await act(async () => { await new Promise((r) => setTimeout(r, 1200)); });
    expect(srv.calls).toHaveLength(1);
    expect(result.current.live).toBe(false);
  });

  it('no feed: no stream', () => {
    renderHook(() => useWorkflows(50, 0, { fetchImpl: srv.fetch }));
    expect(srv.calls).toHaveLength(0);
  });
});
