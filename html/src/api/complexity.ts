/*
 * Prompt complexity. The server's POST /api/v1/analyze does not exist yet,
 * so getComplexity() applies the same heuristic locally; when the endpoint
 * lands, only getComplexity() changes (fetch it, fall back to local).
 */

export type Complexity = 'simple' | 'moderate' | 'complex';

export interface ComplexityResult {
  level: Complexity;
  words: number;
  codeBlock: boolean;
  multiStep: boolean;
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
  return { level, words, codeBlock, multiStep };
}

/* The one function to switch to POST /api/v1/analyze later. */
export async function getComplexity(text: string): Promise<ComplexityResult> {
  return analyzeLocal(text);
}
