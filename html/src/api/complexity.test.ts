import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jsonResponse } from '../test/render';
import { analyzeLocal, countWords, getComplexity, hasMultiStep,
         resetAnalyzeMemory } from './complexity';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`)
  .join(' ');

describe('complexity heuristic', () => {
  it('counts words', () => {
    expect(countWords('')).toBe(0);
    expect(countWords('  one two\nthree ')).toBe(3);
  });

  it('is simple up to 50 words, moderate above, complex above 100', () => {
    expect(analyzeLocal('What is nginx?').level).toBe('simple');
    expect(analyzeLocal(words(50)).level).toBe('simple');
    expect(analyzeLocal(words(51)).level).toBe('moderate');
    expect(analyzeLocal(words(100)).level).toBe('moderate');
    expect(analyzeLocal(words(101)).level).toBe('complex');
  });

  it('a code block makes it complex', () => {
    const r = analyzeLocal('Fix this:\n```js\nlet a = 1\n```');
    expect(r.codeBlock).toBe(true);
    expect(r.level).toBe('complex');
  });

  it('multi-step markers make it complex', () => {
    expect(hasMultiStep('1. read the file\n2. summarise it')).toBe(true);
    expect(hasMultiStep('First plan it, then build it.')).toBe(true);
    expect(hasMultiStep('먼저 요약하고 마지막으로 정리하세요')).toBe(true);
    expect(hasMultiStep('Then again, why?')).toBe(false);
    expect(analyzeLocal('- a thing\n- another thing').level).toBe('complex');
  });

});

describe('getComplexity: the server, else local', () => {
  beforeEach(() => resetAnalyzeMemory());
  afterEach(() => vi.unstubAllGlobals());

  const ANSWER = { intent: 'code', complexity: 'complex',
                   route: { workflow: 'coder' }, matched: 'fix',
                   signals: { words: 6, code_blocks: 1, steps: 0 } };

  it('takes the server answer', async () => {
    const f = vi.fn(async () => jsonResponse(ANSWER));
    vi.stubGlobal('fetch', f);
    await expect(getComplexity('Fix this:\n```\nx\n```')).resolves
      .toEqual({ level: 'complex', words: 6, codeBlock: true,
                 multiStep: false, source: 'server', intent: 'code',
                 route: 'coder' });
    expect(f).toHaveBeenCalledWith('/api/v1/analyze', expect.objectContaining({
      method: 'POST', body: JSON.stringify({
        prompt: 'Fix this:\n```\nx\n```' }) }));
  });

  it('falls back on failure or nonsense; an empty prompt stays local',
     async () => {
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('net'); }));
    await expect(getComplexity('hello')).resolves.toMatchObject({
      level: 'simple', words: 1, source: 'local' });
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ complexity: 'x' })));
    await expect(getComplexity('hello')).resolves.toMatchObject({
      source: 'local' });
    const f = vi.fn(async () => jsonResponse(ANSWER));
    vi.stubGlobal('fetch', f);
    await expect(getComplexity('  ')).resolves.toMatchObject({
      source: 'local', words: 0 });
    expect(f).not.toHaveBeenCalled();
  });

  it('a server without the endpoint is not asked again', async () => {
    const f = vi.fn(async () => jsonResponse({ error: {
      code: 'not_found', message: 'no' } }, 404));
    vi.stubGlobal('fetch', f);
    await expect(getComplexity('a')).resolves.toMatchObject({
      source: 'local' });
    await expect(getComplexity('b')).resolves.toMatchObject({
      source: 'local' });
    expect(f).toHaveBeenCalledTimes(1);
  });
});
