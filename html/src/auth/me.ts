import type { MeBudget, MeLimits, MeResponse } from '../api/types';

/*
 * What the caller panel shows of GET /api/v1/me. The server may send
 * more or less than the UI knows: anything missing, null or not a finite
 * number is left out (never "undefined" on screen, never a crash).
 * Limits and budget are the top-level ones (the limits stage's view)
 * when present, else the key record's.
 */

export const LIMIT_KEYS = ['rpm', 'tpm', 'tpd', 'max_parallel'] as const;
export type LimitKey = typeof LIMIT_KEYS[number];

export const USAGE_KEYS = ['requests', 'tokens', 'prompt', 'completion',
                           'total', 'calls', 'parallel', 'cost_usd'] as const;
export type UsageKey = typeof USAGE_KEYS[number];

export interface LimitView {
  key: LimitKey;
  value: number;                /* the limit */
  remaining: number | null;     /* left in the window now */
  inFlight: number | null;      /* max_parallel: running now */
}

export interface BudgetView {
  usd: number | null;
  period: string | null;
  spent: number | null;
  remaining: number | null;
  /* spent / usd, 0..1, when both are known */
  fraction: number | null;
}

export interface MeView {
  kind: string;
  user: string | null;
  team: string | null;
  keyId: string | null;
  keyName: string | null;
  keyStatus: string | null;
  limits: LimitView[];
  usage: { key: UsageKey; value: number }[];
  budget: BudgetView | null;
}

const num = (v: unknown): number | null =>
  (typeof v === 'number' && Number.isFinite(v) ? v : null);

const str = (v: unknown): string | null =>
  (typeof v === 'string' && v !== '' ? v : null);

const obj = <T>(v: unknown): T | null =>
  (v !== null && typeof v === 'object' && !Array.isArray(v) ? v as T
                                                            : null);

function budgetOf(me: MeResponse): BudgetView | null {
  const b = obj<MeBudget>(me.budget);
  const key = obj<NonNullable<MeResponse['key']>>(me.key);
  const usd = num(b?.usd) ?? num(key?.budget_usd);
  const spent = num(b?.spent_usd);
  let remaining = num(b?.remaining_usd);
  if (remaining === null && usd !== null && spent !== null) {
    remaining = Math.max(0, usd - spent);
  }
  if (usd === null && spent === null && remaining === null) {
    return null;
  }
  const period = str(b?.period) ?? str(key?.budget_period);
  const fraction = usd !== null && usd > 0 && spent !== null
    ? Math.min(1, Math.max(0, spent / usd)) : null;
  return { usd, period, spent, remaining, fraction };
}

export function describeMe(raw: unknown): MeView | null {
  const me = obj<MeResponse>(raw);
  if (!me || typeof me.kind !== 'string') {
    return null;
  }
  const key = obj<NonNullable<MeResponse['key']>>(me.key);
  const top = obj<MeLimits>(me.limits);
  const own = obj<MeLimits>(key?.limits);
  const limits: LimitView[] = [];
  for (const k of LIMIT_KEYS) {
    /* the stage's view is a number or {limit, remaining | in_flight} */
    const t = top?.[k];
    const state = obj<{ limit?: unknown; remaining?: unknown;
                        in_flight?: unknown }>(t);
    const value = num(t) ?? num(state?.limit) ?? num(own?.[k]);
    if (value !== null) {
      limits.push({ key: k, value, remaining: num(state?.remaining),
                    inFlight: num(state?.in_flight) });
    }
  }
  const usageSrc = obj<Record<string, unknown>>(me.usage);
  const usage = USAGE_KEYS
    .map((k) => ({ key: k, value: num(usageSrc?.[k]) }))
    .filter((u): u is { key: UsageKey; value: number } => u.value !== null);
  return {
    kind: me.kind,
    user: str(me.user_id) ?? str(key?.user_id),
    team: str(me.team) ?? str(key?.team),
    keyId: str(me.key_id) ?? str(key?.id),
    keyName: str(key?.name),
    keyStatus: str(key?.status),
    limits,
    usage,
    budget: budgetOf(me),
  };
}

/* US dollars: cents, or four decimals below a cent */
export function formatUsd(v: number): string {
  const a = Math.abs(v);
  const digits = a > 0 && a < 0.01 ? 4 : 2;
  return `${v < 0 ? '-' : ''}$${a.toFixed(digits)}`;
}
