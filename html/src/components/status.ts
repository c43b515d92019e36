import type { AgentStatusName, WorkflowStatus } from '../api/types';

export const STATUS_COLORS: Record<AgentStatusName, string> = {
  planning: '#0f62fe',
  executing: '#42be65',
  waiting: '#f1c21b',
  error: '#da1e28',
  complete: '#24a148',
  idle: '#525252',
};

export const WORKFLOW_STATUS_COLORS: Record<WorkflowStatus, string> = {
  queued: '#525252',
  running: '#0f62fe',
  complete: '#24a148',
  failed: '#da1e28',
  cancelled: '#f1c21b',
};

function channel(c: number): number {
  const s = c / 255;
  return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
}

export function luminance(hex: string): number {
  const h = hex.replace('#', '');
  const r = parseInt(h.slice(0, 2), 16);
  const g = parseInt(h.slice(2, 4), 16);
  const b = parseInt(h.slice(4, 6), 16);
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

export function contrast(a: string, b: string): number {
  const la = luminance(a);
  const lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/* black or white text, whichever contrasts more on this background */
export function textOn(bg: string): string {
  return contrast(bg, '#000000') >= contrast(bg, '#ffffff')
    ? '#161616' : '#ffffff';
}

export function statusColor(s: string): string {
  return (STATUS_COLORS as Record<string, string>)[s]
    ?? (WORKFLOW_STATUS_COLORS as Record<string, string>)[s] ?? '#525252';
}
