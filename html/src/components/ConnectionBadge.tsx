import { useI18n } from '../i18n';
import type { ConnectionState, TransportKind } from '../live/transport';

export function ConnectionBadge({ state, transport = null, failure = null }:
  { state: ConnectionState; transport?: TransportKind | null;
    failure?: string | null }) {
  const { t } = useI18n();
  return <span className={`mst-conn mst-conn--${state}`}
               data-connection={state}
               data-transport={transport ?? undefined} role="status">
    <span className="mst-conn__dot" aria-hidden="true" />
    {state === 'failed' && failure ? t('live.failed', { message: failure })
                                   : t(`conn.${state}`)}
    {transport && state !== 'idle' && <span className="mst-conn__via">
      {' · '}{t(`conn.transport.${transport}`)}</span>}
  </span>;
}
