import { useEffect, useState } from 'react';
import { Tag } from '@carbon/react';
import { useI18n } from '../i18n';
import { analyzeLocal, getComplexity,
         type ComplexityResult } from '../api/complexity';

const TYPE = { simple: 'green', moderate: 'warm-gray', complex: 'magenta' } as
  const;

/* Live complexity of the prompt; updates as the user types (debounced). */
export function ComplexityTag({ text }: { text: string }) {
  const { t } = useI18n();
  const [res, setRes] = useState<ComplexityResult>(() => analyzeLocal(text));

  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      getComplexity(text).then((r) => { if (live) setRes(r); })
        .catch(() => { if (live) setRes(analyzeLocal(text)); });
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text]);

  return <div className="mst-complexity" role="status" aria-live="polite">
    <span className="mst-complexity__label">{t('prompt.complexity')}:</span>
    <Tag type={TYPE[res.level]} size="md" data-complexity={res.level}>
      {t(`prompt.complexity.${res.level}`)}
    </Tag>
    <span className="mst-muted mst-small">
      {t('prompt.words', { count: res.words })}
    </span>
  </div>;
}
