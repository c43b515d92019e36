import { useState } from 'react';
import { Button, DataTable, InlineNotification, ProgressBar, Select,
         SelectItem, Table, TableBody, TableCell, TableContainer, TableHead,
         TableHeader, TableRow, Toggle } from '@carbon/react';
import { Renew } from '@carbon/icons-react';
import { useI18n } from '../i18n';
import { countByState, useWorkflows } from '../live/useWorkflows';
import { useWorkflowStream } from '../live/useWorkflowStream';
import { StatusChip } from '../components/StatusChip';
import { WorkflowGraph } from '../components/WorkflowGraph';
import { AgentTiles } from '../components/AgentTiles';
import { LogPanel } from '../components/LogPanel';
import { ConnectionBadge } from '../components/ConnectionBadge';

export function MonitorScreen() {
  const { t, formatTime } = useI18n();
  const [limit, setLimit] = useState(50);
  const [auto, setAuto] = useState(true);
  /* live: the monitor feed (SSE), with a slow poll as a safety net;
     the fast poll only while the feed is down */
  const { items, loading, error, refresh, live: feedLive } = useWorkflows(
    limit, auto ? 3000 : 0, { feed: auto, feedIntervalMs: 15000 });
  const [selected, setSelected] = useState<string | null>(null);
  const live = useWorkflowStream(selected);
  const counts = countByState(items);

  const headers = [
    { key: 'id', header: t('monitor.col.id') },
    { key: 'workflow', header: t('monitor.col.workflow') },
    { key: 'status', header: t('monitor.col.status') },
    { key: 'progress', header: t('monitor.col.progress') },
    { key: 'started', header: t('monitor.col.started') },
  ];
  const rows = items.map((w) => ({ id: w.id, workflow: w.workflow,
                                   status: w.status, progress: w.progress,
                                   started: w.started_at }));
  const byId = new Map(items.map((w) => [w.id, w]));

  return <div className="mst-screen">
    <h1 className="mst-h1" tabIndex={-1} id="main-heading">
      {t('monitor.title')}
    </h1>

    <ul className="mst-counts" aria-label={t('monitor.table')}>
      <li className="mst-count mst-count--active">
        <span className="mst-count__n" data-count="active">
          {counts.active}</span>
        <span>{t('monitor.active')}</span></li>
      <li className="mst-count mst-count--complete">
        <span className="mst-count__n" data-count="completed">
          {counts.completed}</span>
        <span>{t('monitor.completed')}</span></li>
      <li className="mst-count mst-count--failed">
        <span className="mst-count__n" data-count="failed">
          {counts.failed}</span>
        <span>{t('monitor.failed')}</span></li>
    </ul>

    {error && <InlineNotification kind="error" lowContrast hideCloseButton
      title={t('monitor.loadError')} subtitle={error} />}

    <DataTable rows={rows} headers={headers} isSortable={false}>
      {({ rows: drows, headers: dheaders, getHeaderProps, getRowProps,
          getTableProps, getTableContainerProps }) => (
        <TableContainer title={t('monitor.table')}
                        description={t('monitor.table.desc')}
                        {...getTableContainerProps()}>
          <div className="mst-toolbar" role="group"
               aria-label={t('monitor.table')}>
              <Toggle id="auto-refresh" size="sm" labelText={t('monitor.auto')}
                      toggled={auto} onToggle={(v: boolean) => setAuto(v)} />
              {auto && <span className={`mst-conn mst-conn--${feedLive
                ? 'open' : 'connecting'}`} data-feed={feedLive ? 'live'
                : 'polling'}>
                <span className="mst-conn__dot" aria-hidden="true" />
                {t(feedLive ? 'monitor.live' : 'monitor.polling')}
              </span>}
              <Select id="rows-limit" labelText={t('monitor.limit')} inline
                      size="sm" value={String(limit)}
                      onChange={(e) => setLimit(Number(e.target.value))}>
                {[25, 50, 100, 200].map((n) =>
                  <SelectItem key={n} value={String(n)} text={String(n)} />)}
              </Select>
              <Button kind="primary" size="sm" renderIcon={Renew}
                      onClick={refresh} disabled={loading && !items.length}>
                {t('monitor.refresh')}
              </Button>
          </div>
          <div className="mst-table-scroll">
          <Table {...getTableProps()} size="md">
            <TableHead>
              <TableRow>
                {dheaders.map((h) => {
                  const { key, ...hp } = getHeaderProps({ header: h });
                  return <TableHeader key={key} {...hp}>{h.header}
                  </TableHeader>;
                })}
              </TableRow>
            </TableHead>
            <TableBody>
              {drows.length === 0 && <TableRow>
                <TableCell colSpan={headers.length}>
                  {loading ? t('common.loading') : t('monitor.empty')}
                </TableCell></TableRow>}
              {drows.map((row) => {
                const w = byId.get(row.id);
                if (!w) {
                  return null;
                }
                const { key, ...rp } = getRowProps({ row });
                return <TableRow key={key} {...rp}
                         data-workflow-id={w.id}
                         className={selected === w.id ? 'is-selected' : ''}
                         aria-selected={selected === w.id}>
                  <TableCell>
                    <button type="button" className="mst-linkbtn mst-mono"
                            aria-label={t('monitor.select', { id: w.id })}
                            aria-pressed={selected === w.id}
                            onClick={() => setSelected(w.id)}>
                      {w.id}
                    </button>
                  </TableCell>
                  <TableCell>{w.workflow}</TableCell>
                  <TableCell><StatusChip status={w.status} /></TableCell>
                  <TableCell className="mst-progress-cell">
                    <ProgressBar size="small" value={w.progress} max={100}
                                 label={`${w.id} ${t('monitor.col.progress')}`}
                                 hideLabel
                                 status={w.status === 'failed' ? 'error'
                                   : w.status === 'complete' ? 'finished'
                                     : 'active'}
                                 helperText={`${Math.round(w.progress)}%`} />
                  </TableCell>
                  <TableCell>{w.started_at ? formatTime(w.started_at)
                    : t('monitor.notStarted')}</TableCell>
                </TableRow>;
              })}
            </TableBody>
          </Table>
          </div>
        </TableContainer>)}
    </DataTable>

    {selected && <section className="mst-section"
                           aria-labelledby="selected-title">
      <div className="mst-section__head">
        <h2 className="mst-h2" id="selected-title">
          {t('monitor.selected', { id: selected })}
        </h2>
        <ConnectionBadge state={live.connection} transport={live.transport}
                         failure={live.failure} />
      </div>
      <WorkflowGraph state={live} />
      <AgentTiles state={live} />
      <LogPanel entries={live.logs} id="monitor-log" />
    </section>}
  </div>;
}
