import { describe, expect, it } from 'vitest';
import { accepted, addFiles, MAX_FILE } from './contextFiles';

describe('context files', () => {
  it('accepts the listed extensions only', () => {
    for (const n of ['a.txt', 'b.MD', 'c.json', 'd.yaml', 'e.py', 'f.js',
                     'g.ts']) {
      expect(accepted(n), n).toBe(true);
    }
    expect(accepted('x.exe')).toBe(false);
    expect(accepted('x.tsx.png')).toBe(false);
  });

  it('reads files, replaces by name, reports problems', async () => {
    const one = new File(['hello'], 'notes.md');
    const bad = new File(['x'], 'evil.exe');
    const big = new File(['x'.repeat(MAX_FILE + 1)], 'big.txt');
    const r = await addFiles([], [one, bad, big]);
    expect(r.files).toEqual([{ name: 'notes.md', content: 'hello' }]);
    expect(r.problems).toEqual([{ kind: 'badType', name: 'evil.exe' },
                                { kind: 'tooBig', name: 'big.txt' }]);
    const r2 = await addFiles(r.files, [new File(['bye'], 'notes.md')]);
    expect(r2.files).toEqual([{ name: 'notes.md', content: 'bye' }]);
  });
});
