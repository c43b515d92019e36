import { describe, expect, it } from 'vitest';
import { describeMe, formatUsd } from './me';

describe('describeMe', () => {
  it('a local caller: its kind and nothing else', () => {
    expect(describeMe({ kind: 'local' })).toEqual({
      kind: 'local', user: null, team: null, keyId: null, keyName: null,
      keyStatus: null, limits: [], usage: [], budget: null });
  });

  it('garbage is nothing, not a crash', () => {
    for (const v of [null, undefined, 'x', 3, [], {}, { kind: 7 }]) {
      expect(describeMe(v)).toBeNull();
    }
  });

  it('a key today: the record\'s limits and budget', () => {
    const v = describeMe({ kind: 'key', user_id: 'alice', team: 'red',
      key_id: 'key_0123', key: { id: 'key_0123', name: 'laptop',
        status: 'active', limits: { rpm: 60, tpm: null, tpd: 'x' },
        budget_usd: 5, budget_period: 'month' } });
    expect(v).toMatchObject({ user: 'alice', team: 'red',
                              keyId: 'key_0123', keyName: 'laptop',
                              limits: [{ key: 'rpm', value: 60,
                                         remaining: null,
                                         inFlight: null }],
                              budget: { usd: 5, period: 'month',
                                        spent: null, remaining: null,
                                        fraction: null } });
  });

  it('the limits stage\'s view wins: limits, usage, budget', () => {
    /* GET /api/v1/me with the limits stage: each limit's state */
    const v = describeMe({ kind: 'key', user_id: 'bob',
      key: { limits: { rpm: 1, tpm: 500, tpd: 9 }, budget_usd: 1 },
      limits: { rpm: { limit: 120, remaining: 118, reset_ms: 1000 },
                tpm: 10000,
                max_parallel: { limit: 2, in_flight: 1 },
                tpd: { remaining: 3 } },
      usage: { prompt: 1000, completion: 234, total: 1234, calls: 7,
               cost_usd: 0.0042, by_model: { m: { calls: 1 } },
               weird: 'x' },
      budget: { usd: 10, period: 'day', bucket: '2026-12-07',
                spent_usd: 2.5, remaining_usd: 7.5 } });
    expect(v?.limits).toEqual([
      { key: 'rpm', value: 120, remaining: 118, inFlight: null },
      { key: 'tpm', value: 10000, remaining: null, inFlight: null },
      /* no limit in the state: the key record's */
      { key: 'tpd', value: 9, remaining: 3, inFlight: null },
      { key: 'max_parallel', value: 2, remaining: null, inFlight: 1 }]);
    expect(v?.usage).toEqual([{ key: 'prompt', value: 1000 },
                              { key: 'completion', value: 234 },
                              { key: 'total', value: 1234 },
                              { key: 'calls', value: 7 },
                              { key: 'cost_usd', value: 0.0042 }]);
    expect(v?.budget).toEqual({ usd: 10, period: 'day', spent: 2.5,
                                remaining: 7.5, fraction: 0.25 });
  });

  it('remaining from total and spent when the server omits it', () => {
    expect(describeMe({ kind: 'key', budget: { usd: 2, spent_usd: 3 } })
      ?.budget).toMatchObject({ remaining: 0, fraction: 1 });
    expect(describeMe({ kind: 'key', budget: { remaining_usd: 4 } })
      ?.budget).toMatchObject({ usd: null, remaining: 4, fraction: null });
    expect(describeMe({ kind: 'key', budget: {} })?.budget).toBeNull();
    expect(describeMe({ kind: 'key', budget: null, usage: null,
                        limits: null })).toMatchObject({
      budget: null, usage: [], limits: [] });
  });

  it('formats dollars', () => {
    expect(formatUsd(7.5)).toBe('$7.50');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(0.0042)).toBe('$0.0042');
    expect(formatUsd(-1)).toBe('-$1.00');
  });
});
