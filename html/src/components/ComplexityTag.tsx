import { Tag } from '@carbon/react';
import { useI18n } from '../i18n';
import { useAnalysis } from '../api/useAnalysis';

const TYPE = { simple: 'green', moderate: 'warm-gray', complex: 'magenta' } as
  const;

/*
 * Live complexity of the prompt, with the intent and route (workflow) the
 * server would pick: the server's answer (debounced), the local heuristic
 * until it comes or when it fails.
 */
export function ComplexityTag({ text }: { text: string }) {
  const { t } = useI18n();
  const res = useAnalysis(text);

  return <div className="mst-complexity" role="status" aria-live="polite"
              data-source={res.source}
              title={t(res.source === 'server' ? 'prompt.analysis.server'
                : 'prompt.analysis.local')}>
    <span className="mst-complexity__label">{t('prompt.complexity')}:</span>
    <Tag type={TYPE[res.level]} size="md" data-complexity={res.level}
         data-source={res.source}>
      {t(`prompt.complexity.${res.level}`)}
    </Tag>
    <span className="mst-muted mst-small">
      {t('prompt.words', { count: res.words })}
    </span>
    {res.intent && <span className="mst-small" data-intent={res.intent}>
      {t('prompt.intent')}: <strong>{res.intent}</strong>
    </span>}
    {res.route && <span className="mst-small" data-route-name={res.route}>
      {t('prompt.route')}: <strong className="mst-mono">{res.route}</strong>
    </span>}
  </div>;
}
