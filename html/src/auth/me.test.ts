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
                              limits: [{ key: 'rpm', value: 60 }],
                              budget: { usd: 5, period: 'month',
                                        spent: null, remaining: null,
                                        fraction: null } });
  });

  it('the limits stage\'s view wins: limits, usage, budget', () => {
    const v = describeMe({ kind: 'key', user_id: 'bob',
      key: { limits: { rpm: 1 }, budget_usd: 1 },
      limits: { rpm: 120, tpm: 10000, tpd: 200000, max_parallel: 2 },
      usage: { requests: 7, tokens: 1234, cost_usd: 0.0042,
               by_model: { m: { calls: 1 } }, weird: 'x' },
      budget: { usd: 10, period: 'day', spent_usd: 2.5,
                remaining_usd: 7.5 } });
    expect(v?.limits).toEqual([{ key: 'rpm', value: 120 },
                               { key: 'tpm', value: 10000 },
                               { key: 'tpd', value: 200000 },
                               { key: 'max_parallel', value: 2 }]);
    expect(v?.usage).toEqual([{ key: 'requests', value: 7 },
                              { key: 'tokens', value: 1234 },
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
