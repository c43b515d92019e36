import { ProgressBar, Tile } from '@carbon/react';
import { useI18n } from '../i18n';
import type { LiveWorkflow } from '../live/workflowState';
import { graphOrder } from '../live/workflowState';
import { StatusChip } from './StatusChip';
import { formatClock, formatMs } from './format';
import { statusColor } from './status';

export function AgentTiles({ state }: { state: LiveWorkflow }) {
  const { t, formatNumber } = useI18n();
  const order = graphOrder(state);
  if (order.length === 0) {
    return <p className="mst-muted">{t('graph.empty')}</p>;
  }
  return <ul className="mst-tiles" aria-label={t('prompt.progress')}>
    {order.map((node) => {
      const a = state.agents[node];
      if (!a) {
        return null;
      }
      const logs = state.agentLogs[node] ?? [];
      return <li key={node} className="mst-tiles__item">
        <Tile className="mst-tile" data-node={node} data-status={a.status}
              style={{ borderTopColor: statusColor(a.status) }}>
          <div className="mst-tile__head">
            <h4 className="mst-h4">{node}
              {a.agent && a.agent !== node
                ? <span className="mst-muted"> ({a.agent})</span> : null}
            </h4>
            <StatusChip status={a.status} />
          </div>
          <ProgressBar size="small" value={a.progress} max={100}
                       label={t('agent.progress', { name: node })}
                       hideLabel helperText={`${Math.round(a.progress)}%`} />
          <dl className="mst-tile__facts">
            <div><dt>{t('agent.task')}</dt>
              <dd className="mst-tile__task">{a.current_task ?? '—'}</dd></div>
            <div><dt>{t('agent.tokens')}</dt>
              <dd data-metric="tokens">{formatNumber(a.metrics.tokens)}</dd>
            </div>
            <div><dt>{t('agent.time')}</dt>
              <dd>{formatMs(a.metrics.execution_ms)}</dd></div>
            <div><dt>{t('agent.attempts')}</dt><dd>{a.attempts}</dd></div>
          </dl>
          <h5 className="mst-h5">{t('agent.logs')}</h5>
          {logs.length === 0
            ? <p className="mst-muted mst-small">{t('agent.noLogs')}</p>
            : <ul className="mst-tile__logs">
              {logs.map((l) => <li key={l.id}>
                <span className="mst-muted">{formatClock(l.timestamp)}</span>
                {' '}{l.message}
              </li>)}
            </ul>}
        </Tile>
      </li>;
    })}
  </ul>;
}
