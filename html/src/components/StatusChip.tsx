import { useI18n, type MessageKey } from '../i18n';
import { statusColor, textOn } from './status';

export function StatusChip({ status }: { status: string }) {
  const { t } = useI18n();
  const bg = statusColor(status);
  const key = `status.${status}` as MessageKey;
  return <span className="mst-chip" data-status={status}
               style={{ background: bg, color: textOn(bg) }}>
    {t(key)}
  </span>;
}
