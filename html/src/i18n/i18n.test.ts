import { describe, expect, it } from 'vitest';
import en from './en.json';
import ko from './ko.json';
import { translate } from './index';

describe('message catalogues', () => {
  it('have the same keys in English and Korean', () => {
    expect(Object.keys(ko).sort()).toEqual(Object.keys(en).sort());
  });

  it('have no empty messages and the same placeholders', () => {
    const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
    for (const [k, v] of Object.entries(en)) {
      expect(v, k).not.toBe('');
      expect(ph((ko as Record<string, string>)[k]), k).toEqual(ph(v));
    }
  });

  it('interpolates and falls back', () => {
    expect(translate('en', 'prompt.words', { count: 3 })).toBe('3 words');
    expect(translate('ko', 'prompt.words', { count: 3 })).toBe('3단어');
    expect(translate('en', 'monitor.select', {})).toBe('Show agents of {id}');
  });
});
