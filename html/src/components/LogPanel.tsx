import { useEffect, useRef } from 'react';
import { useI18n } from '../i18n';
import type { LogEntryData } from '../api/types';
import { formatClock } from './format';

interface Props {
  entries: (LogEntryData & { id?: number; workflow_id?: string })[];
  title?: string;
  id?: string;
}

/* Untrusted text: rendered as React text nodes only. */
export function LogPanel({ entries, title, id = 'log' }: Props) {
  const { t } = useI18n();
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    const el = box.current;
    if (el && stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [entries]);

  const heading = `${id}-title`;
  return <section className="mst-log" id={id} aria-labelledby={heading}>
    <h3 id={heading} className="mst-h3">{title ?? t('log.title')}</h3>
    <div className="mst-log__box" ref={box} tabIndex={0} role="log"
         aria-labelledby={heading} aria-live="off"
         onScroll={(e) => {
           const el = e.currentTarget;
           stick.current = el.scrollHeight - el.scrollTop
             - el.clientHeight < 24;
         }}>
      {entries.length === 0
        ? <p className="mst-muted">{t('log.empty')}</p>
        : <ol className="mst-log__list">
          {entries.map((e, i) => (
            <li key={e.id ?? `${e.timestamp}-${i}`}
                className={`mst-log__line mst-log__line--${e.level}`}>
              <time dateTime={new Date(e.timestamp).toISOString()}>
                {formatClock(e.timestamp)}
              </time>
              <span className="mst-log__level">{e.level}</span>
              <span className="mst-log__agent">{e.node ?? e.agent}</span>
              <span className="mst-log__msg">{e.message}</span>
            </li>))}
        </ol>}
    </div>
  </section>;
}
