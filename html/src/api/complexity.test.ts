import { describe, expect, it } from 'vitest';
import { analyzeLocal, countWords, getComplexity,
         hasMultiStep } from './complexity';

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

  it('getComplexity is the async switch point', async () => {
    await expect(getComplexity('hello')).resolves.toMatchObject({
      level: 'simple', words: 1 });
  });
});
