import { useI18n } from '../i18n';
import type { ConnectionState } from '../live/transport';

export function ConnectionBadge({ state }: { state: ConnectionState }) {
  const { t } = useI18n();
  return <span className={`mst-conn mst-conn--${state}`}
               data-connection={state} role="status">
    <span className="mst-conn__dot" aria-hidden="true" />
    {t(`conn.${state}`)}
  </span>;
}
