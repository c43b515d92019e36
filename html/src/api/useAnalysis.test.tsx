import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook } from '@testing-library/react';
import { jsonResponse } from '../test/render';
import { resetAnalyzeMemory } from './complexity';
import { useAnalysis } from './useAnalysis';

const answer = (prompt: string) => ({
  intent: prompt.includes('```') ? 'code' : 'general',
  complexity: prompt.includes('```') ? 'complex' : 'moderate',
  route: { workflow: prompt.includes('```') ? 'coder' : 'default' },
  signals: { words: 99, code_blocks: 0, steps: 0 } });

describe('useAnalysis', () => {
  let calls: string[];

  beforeEach(() => {
    vi.useFakeTimers();
    resetAnalyzeMemory();
    calls = [];
    vi.stubGlobal('fetch', vi.fn(async (_url: string, init: RequestInit) => {
      const { prompt } = JSON.parse(String(init.body));
      calls.push(prompt);
      return jsonResponse(answer(prompt));
    }));
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('is local at once, the server answer after the pause', async () => {
    const { result, rerender } = renderHook(({ text }) => useAnalysis(text),
                                            { initialProps: { text: 'hi' } });
    expect(result.current).toMatchObject({ level: 'simple', source: 'local',
                                           words: 1 });
    /* typing on: only the last text is asked */
    rerender({ text: 'hi there' });
    await act(async () => { await vi.advanceTimersByTimeAsync(100); });
    rerender({ text: 'hi there you' });
    expect(calls).toEqual([]);
    await act(async () => { await vi.advanceTimersByTimeAsync(250); });
    expect(calls).toEqual(['hi there you']);
    expect(result.current).toMatchObject({ level: 'moderate',
      source: 'server', intent: 'general', route: 'default', words: 99 });

    /* a new text: the local answer at once, the last route kept */
    rerender({ text: 'x\n```\ny\n```' });
    expect(result.current).toMatchObject({ level: 'complex',
      source: 'local', route: 'default' });
    await act(async () => { await vi.advanceTimersByTimeAsync(300); });
    expect(result.current).toMatchObject({ level: 'complex',
      source: 'server', intent: 'code', route: 'coder' });

    /* cleared: nothing asked, nothing stale shown */
    rerender({ text: '' });
    await act(async () => { await vi.advanceTimersByTimeAsync(300); });
    expect(calls).toHaveLength(2);
    expect(result.current.route).toBeUndefined();
    expect(result.current.source).toBe('local');
  });

  it('tries once more after a network error', async () => {
    let n = 0;
    vi.stubGlobal('fetch', vi.fn(async () => {
      if (++n === 1) {
        throw new TypeError('Failed to fetch');
      }
      return jsonResponse(answer('hello'));
    }));
    const { result } = renderHook(() => useAnalysis('hello'));
    await act(async () => { await vi.advanceTimersByTimeAsync(300); });
    expect(result.current.source).toBe('local');
    await act(async () => { await vi.advanceTimersByTimeAsync(500); });
    expect(n).toBe(2);
    expect(result.current).toMatchObject({ source: 'server',
                                           route: 'default' });
  });

  it('keeps the local answer when the server fails', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse(
      { error: { code: 'x', message: 'down' } }, 502)));
    const { result } = renderHook(() => useAnalysis('1. a\n2. b'));
    await act(async () => { await vi.advanceTimersByTimeAsync(300); });
    await act(async () => { await vi.advanceTimersByTimeAsync(1000); });
    expect(result.current).toMatchObject({ level: 'complex',
                                           source: 'local' });
    expect(result.current.intent).toBeUndefined();
    expect(fetch).toHaveBeenCalledTimes(1);     /* an HTTP error: once */
  });
});
