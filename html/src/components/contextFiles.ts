import type { ContextFile } from '../api/types';

export const ACCEPT = ['.txt', '.md', '.json', '.yaml', '.yml', '.py', '.js',
                       '.ts'];
export const MAX_FILE = 256 * 1024;
export const MAX_TOTAL = 900 * 1024;

export type FileProblem = { kind: 'badType' | 'tooBig' | 'total';
                            name: string };

export function accepted(name: string): boolean {
  const lower = name.toLowerCase();
  return ACCEPT.some((ext) => lower.endsWith(ext));
}

/* reads the acceptable files, adding to (and replacing by name in) current */
export async function addFiles(current: ContextFile[], files: File[]):
  Promise<{ files: ContextFile[]; problems: FileProblem[] }> {
  const problems: FileProblem[] = [];
  let out = [...current];
  for (const f of files) {
    if (!accepted(f.name)) {
      problems.push({ kind: 'badType', name: f.name });
      continue;
    }
    if (f.size > MAX_FILE) {
      problems.push({ kind: 'tooBig', name: f.name });
      continue;
    }
    const content = await f.text();
    const next = [...out.filter((c) => c.name !== f.name),
                  { name: f.name, content }];
    const total = next.reduce((n, c) => n + new Blob([c.content]).size, 0);
    if (total > MAX_TOTAL) {
      problems.push({ kind: 'total', name: f.name });
      continue;
    }
    out = next;
  }
  return { files: out, problems };
}
