import { Button, ProgressBar } from '@carbon/react';
import { Login, Logout } from '@carbon/icons-react';
import { askForKey, signOut } from '../api/auth';
import { useI18n, type MessageKey } from '../i18n';
import { describeMe, formatUsd } from './me';
import type { MeState } from './useMe';

/* sign out: forget the key, and start the page again without it */
export function signOutAndReload(): void {
  signOut();
  window.location.reload();
}

/*
 * Who the caller is (GET /api/v1/me): kind, user, team, key; the budget
 * left and the limits when the server reports them; sign in / sign out.
 */
export function CallerSummary({ state, hasKey }:
  { state: MeState; hasKey: boolean }) {
  const { t, formatNumber } = useI18n();
  const view = describeMe(state.me);

  const signIn = <Button kind="primary" size="sm" renderIcon={Login}
                         data-action="sign-in" onClick={askForKey}>
    {t('auth.signIn')}</Button>;
  const out = hasKey && <Button kind="secondary" size="sm"
                                renderIcon={Logout} data-action="sign-out"
                                onClick={signOutAndReload}>
    {t('auth.signOut')}</Button>;

  if (!view) {
    return <section className="mst-me" aria-labelledby="me-heading"
                    data-me-kind="unknown">
      <h3 className="mst-h4" id="me-heading">{t('me.title')}</h3>
      {state.error && <p className="mst-small" role="status">
        {t('me.error', { message: state.error.message })}</p>}
      {state.error?.status === 401 && signIn}
      {out}
    </section>;
  }

  const kindKey = (['local', 'key', 'jwt', 'admin'].includes(view.kind)
    ? `me.kind.${view.kind}` : 'me.kind.key') as MessageKey;
  const b = view.budget;
  const period = b?.period && ['day', 'month', 'total'].includes(b.period)
    ? t(`me.budget.period.${b.period}` as MessageKey) : b?.period ?? null;

  return <section className="mst-me" aria-labelledby="me-heading"
                  data-me-kind={view.kind}>
    <h3 className="mst-h4" id="me-heading">{t('me.title')}</h3>
    <p className="mst-small" data-me="kind">{t(kindKey)}</p>
    <dl className="mst-me__list">
      {view.user && <><dt>{t('me.user')}</dt>
        <dd data-me="user">{view.user}</dd></>}
      {view.team && <><dt>{t('me.team')}</dt>
        <dd data-me="team">{view.team}</dd></>}
      {view.keyId && <><dt>{t('me.key')}</dt>
        <dd data-me="key" className="mst-mono">{view.keyId}
          {view.keyName ? ` (${view.keyName})` : ''}</dd></>}
    </dl>
    {b && <div className="mst-me__budget" data-me="budget">
      {b.fraction !== null && b.usd !== null
        ? <ProgressBar label={`${t('me.budget')}${period ? ` · ${period}`
                                                            : ''}`}
                       value={b.spent ?? 0} max={b.usd}
                       status={b.fraction >= 1 ? 'error' : 'active'}
                       helperText={b.remaining !== null
                         ? t('me.budget.remaining', {
                           remaining: formatUsd(b.remaining),
                           total: formatUsd(b.usd) })
                         : undefined} />
        : <dl className="mst-me__list">
          <dt>{t('me.budget')}{period ? ` · ${period}` : ''}</dt>
          <dd data-me="budget-total">{b.usd !== null ? formatUsd(b.usd)
            : b.remaining !== null ? formatUsd(b.remaining) : ''}</dd>
        </dl>}
      {b.spent !== null && <p className="mst-small" data-me="spent">
        {t('me.budget.spent')}: {formatUsd(b.spent)}</p>}
    </div>}
    {view.limits.length > 0 && <>
      <h4 className="mst-h5">{t('me.limits')}</h4>
      <dl className="mst-me__list" data-me="limits">
        {view.limits.map((l) => <div key={l.key} className="mst-me__row">
          <dt>{t(`me.limit.${l.key}` as MessageKey)}</dt>
          <dd data-limit={l.key}>{formatNumber(l.value)}
            {l.remaining !== null && <span className="mst-muted"
              data-limit-left={l.key}>{' · '}{t('me.limit.left',
                { count: formatNumber(l.remaining) })}</span>}
            {l.inFlight !== null && <span className="mst-muted"
              data-limit-running={l.key}>{' · '}{t('me.limit.running',
                { count: formatNumber(l.inFlight) })}</span>}
          </dd>
        </div>)}
      </dl>
    </>}
    {view.usage.length > 0 && <>
      <h4 className="mst-h5">{t('me.usage')}</h4>
      <dl className="mst-me__list" data-me="usage">
        {view.usage.map((u) => <div key={u.key} className="mst-me__row">
          <dt>{t(`me.usage.${u.key}` as MessageKey)}</dt>
          <dd data-usage={u.key}>{u.key === 'cost_usd' ? formatUsd(u.value)
                                    : formatNumber(u.value)}</dd>
        </div>)}
      </dl>
    </>}
    {out}
  </section>;
}
