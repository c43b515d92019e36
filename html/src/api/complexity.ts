/*
 * Prompt complexity. The server's POST /api/v1/analyze is the answer
 * (complexity, intent, route); analyzeLocal() applies the same rules in the
 * browser, as the instant value while the request is in flight or when it
 * fails. getComplexity() asks the server and falls back to local.
 */

import { analyzePrompt, ApiError } from './client';

export type Complexity = 'simple' | 'moderate' | 'complex';

export interface ComplexityResult {
  level: Complexity;
  words: number;
  codeBlock: boolean;
  multiStep: boolean;
  source: 'server' | 'local';
  intent?: string;
  route?: string;
}

const LIST_LINE = /^\s*(?:\d+[.)]|[-*•]|step\s+\d+[:.)]?)\s+\S/gim;
const SEQUENCE = /\b(?:first(?:ly)?|then|next|after\s+that|afterwards|finally|step\s+\d+)\b|먼저|그\s*다음|다음으로|그런\s*다음|마지막으로/gi;

export function countWords(text: string): number {
  const t = text.trim();
  return t ? t.split(/\s+/).length : 0;
}

export function hasCodeBlock(text: string): boolean {
  return /```[\s\S]*?```/.test(text) || /(^|\n)(?: {4}|\t)\S/.test(text);
}

/* two or more list items, or two or more sequencing words */
export function hasMultiStep(text: string): boolean {
  const list = text.match(LIST_LINE)?.length ?? 0;
  const seq = text.match(SEQUENCE)?.length ?? 0;
  return list >= 2 || seq >= 2;
}

export function analyzeLocal(text: string): ComplexityResult {
  const words = countWords(text);
  const codeBlock = hasCodeBlock(text);
  const multiStep = hasMultiStep(text);
  let level: Complexity = 'simple';
  if (words > 100 || codeBlock || multiStep) {
    level = 'complex';
  } else if (words > 50) {
    level = 'moderate';
  }
  return { level, words, codeBlock, multiStep, source: 'local' };
}

const LEVELS: Complexity[] = ['simple', 'moderate', 'complex'];

/* a server without the endpoint (404/405) is not asked again */
let analyzeMissing = false;

export function resetAnalyzeMemory(): void {
  analyzeMissing = false;
}

/* POST /api/v1/analyze; throws when it fails or answers nonsense */
export async function analyzeServer(text: string, signal?: AbortSignal):
  Promise<ComplexityResult> {
  if (analyzeMissing) {
    throw new Error('analyze unavailable');
  }
  let r;
  try {
    r = await analyzePrompt(text, signal);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
      analyzeMissing = true;
    }
    throw e;
  }
  if (!r || !LEVELS.includes(r.complexity)) {
    throw new Error('bad analyze answer');
  }
  return {
    level: r.complexity,
    words: Number(r.signals?.words ?? countWords(text)),
    codeBlock: Number(r.signals?.code_blocks ?? 0) > 0,
    multiStep: Number(r.signals?.steps ?? 0) >= 2,
    source: 'server',
    intent: typeof r.intent === 'string' ? r.intent : undefined,
    route: typeof r.route?.workflow === 'string' ? r.route.workflow
      : undefined,
  };
}

/* the server's answer, else the local one */
export async function getComplexity(text: string, signal?: AbortSignal):
  Promise<ComplexityResult> {
  if (!text.trim()) {
    return analyzeLocal(text);
  }
  try {
    return await analyzeServer(text, signal);
  } catch {
    return analyzeLocal(text);
  }
}
