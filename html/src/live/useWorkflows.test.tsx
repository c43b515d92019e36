import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import { FakeEventSource, asES } from '../test/fakeEventSource';
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

  beforeEach(() => {
    FakeEventSource.reset();
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
      feed: true, feedIntervalMs: 60000, EventSourceImpl: asES }));
    await waitFor(() => expect(result.current.items).toHaveLength(1));
    const es = FakeEventSource.last();
    expect(es.url).toBe('/api/v1/events');
    expect(result.current.live).toBe(false);
    act(() => es.open());
    expect(result.current.live).toBe(true);
    act(() => es.emit('workflow_update', 7, { id: 'a', name: 'default',
      status: 'running', progress: 55, started_at: 1, user_id: 'u' }));
    expect(result.current.items[0].progress).toBe(55);
    expect(lists).toBe(1);
    act(() => es.emit('workflow_update', 8, { id: 'n', status: 'queued',
                                              progress: 0 }));
    await waitFor(() => expect(result.current.items.map((w) => w.id))
      .toEqual(['n', 'a']));
    expect(lists).toBe(2);
    unmount();
    expect(es.closed).toBe(true);
  });

  it('reconnects after an error and reloads what it missed', async () => {
    vi.useFakeTimers();
    const { result } = renderHook(() => useWorkflows(50, 0, {
      feed: true, EventSourceImpl: asES }));
    await act(async () => { await vi.advanceTimersByTimeAsync(10); });
    const es1 = FakeEventSource.last();
    act(() => es1.open());
    act(() => es1.fail());
    expect(es1.closed).toBe(true);
    expect(result.current.live).toBe(false);
    await act(async () => { await vi.advanceTimersByTimeAsync(1100); });
    const es2 = FakeEventSource.last();
    expect(es2).not.toBe(es1);
    const before = lists;
    act(() => es2.open());
    await act(async () => { await vi.advanceTimersByTimeAsync(10); });
    expect(lists).toBe(before + 1);
    expect(result.current.live).toBe(true);
  });

  it('no feed: no EventSource', () => {
    renderHook(() => useWorkflows(50, 0, { EventSourceImpl: asES }));
    expect(FakeEventSource.instances).toHaveLength(0);
  });
});
