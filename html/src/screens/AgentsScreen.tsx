import { useCallback, useEffect, useState } from 'react';
import { Button, InlineNotification, Table, TableBody, TableCell,
         TableContainer, TableHead, TableHeader, TableRow,
         Tag } from '@carbon/react';
import { Renew } from '@carbon/icons-react';
import { useI18n } from '../i18n';
import { agentLogs, listAgents } from '../api/client';
import type { AgentInfo, AgentLogEntry } from '../api/types';
import { LogPanel } from '../components/LogPanel';

export function AgentsScreen() {
  const { t } = useI18n();
  const [agents, setAgents] = useState<AgentInfo[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [logs, setLogs] = useState<AgentLogEntry[]>([]);

  const load = useCallback(() => {
    setLoading(true);
    listAgents().then((r) => {
      setAgents(r.items ?? []);
      setError(null);
    }).catch((e: Error) => setError(e.message))
      .finally(() => setLoading(false));
  }, []);

  useEffect(load, [load]);

  const loadLogs = useCallback((name: string) => {
    agentLogs(name, 100).then((r) => setLogs(r.items ?? []))
      .catch((e: Error) => setError(e.message));
  }, []);

  useEffect(() => {
    if (!selected) {
      return undefined;
    }
    loadLogs(selected);
    const timer = setInterval(() => loadLogs(selected), 5000);
    return () => clearInterval(timer);
  }, [selected, loadLogs]);

  return <div className="mst-screen">
    <h1 className="mst-h1" tabIndex={-1} id="main-heading">
      {t('agents.title')}
    </h1>
    {error && <InlineNotification kind="error" lowContrast hideCloseButton
      title={t('agents.loadError')} subtitle={error} />}
    <TableContainer title={t('agents.table')}>
      <div className="mst-table-scroll">
      <Table size="md">
        <TableHead><TableRow>
          <TableHeader>{t('agents.col.name')}</TableHeader>
          <TableHeader>{t('agents.col.plugin')}</TableHeader>
          <TableHeader>{t('agents.col.version')}</TableHeader>
          <TableHeader>{t('agents.col.description')}</TableHeader>
          <TableHeader>{t('agents.col.capabilities')}</TableHeader>
        </TableRow></TableHead>
        <TableBody>
          {agents.length === 0 && <TableRow><TableCell colSpan={5}>
            {loading ? t('common.loading') : t('agents.empty')}
          </TableCell></TableRow>}
          {agents.map((a) => <TableRow key={a.name} data-agent={a.name}
                                       className={selected === a.name
                                         ? 'is-selected' : ''}>
            <TableCell>
              <button type="button" className="mst-linkbtn"
                      aria-pressed={selected === a.name}
                      aria-label={t('agents.showLogs', { name: a.name })}
                      onClick={() => setSelected(a.name)}>{a.name}</button>
            </TableCell>
            <TableCell className="mst-mono">{a.plugin}</TableCell>
            <TableCell>{a.version}</TableCell>
            <TableCell className="mst-desc">{a.description}</TableCell>
            <TableCell>{(a.capabilities ?? []).map((c) =>
              <Tag key={c} type="cool-gray" size="sm">{c}</Tag>)}</TableCell>
          </TableRow>)}
        </TableBody>
      </Table>
      </div>
    </TableContainer>
    <div className="mst-actions">
      <Button kind="tertiary" size="sm" renderIcon={Renew} onClick={() => {
        load();
        if (selected) {
          loadLogs(selected);
        }
      }}>{t('monitor.refresh')}</Button>
    </div>
    {selected && <LogPanel entries={logs} id="agent-log"
                           title={t('agents.logs', { name: selected })} />}
  </div>;
}
