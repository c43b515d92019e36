import { useMemo, useState } from 'react';
import { Select, SelectItem, Tab, TabList, TabPanel, TabPanels,
         Tabs } from '@carbon/react';
import { Bar, BarChart, CartesianGrid, Cell, Legend, Line, LineChart, Pie,
         PieChart, ResponsiveContainer, Tooltip, XAxis,
         YAxis } from 'recharts';
import { useI18n } from '../i18n';
import { useWorkflows } from '../live/useWorkflows';
import { useWorkflowStream } from '../live/useWorkflowStream';
import { modelOf } from '../live/graphModel';
import { flowFromModel, flowGraph, heatmap, responseTrend, throughput, tokenSplit,
         tokensByAgent, type HeatMetric } from '../metrics/compute';
import { SankeyFlow } from '../components/SankeyFlow';
import { formatClock } from '../components/format';
import { textOn } from '../components/status';

/* from #d0e2ff (none) to #002d9c (the most): Carbon blue 20 to 80 */
function heatColor(f: number): string {
  const a = [0xd0, 0xe2, 0xff];
  const b = [0x00, 0x2d, 0x9c];
  return '#' + a.map((x, i) => Math.round(x + (b[i] - x) * f)
    .toString(16).padStart(2, '0')).join('');
}

const AXIS = { fill: 'var(--cds-text-secondary)', fontSize: 12 };
const GRID = 'var(--cds-border-subtle)';
const TOOLTIP = {
  contentStyle: { background: 'var(--cds-layer)',
                  border: '1px solid var(--cds-border-strong)',
                  color: 'var(--cds-text-primary)' },
  labelStyle: { color: 'var(--cds-text-primary)' },
  itemStyle: { color: 'var(--cds-text-primary)' },
};

function NoData() {
  const { t } = useI18n();
  return <p className="mst-muted mst-empty">{t('metrics.noData')}</p>;
}

function ChartCard({ title, children }: { title: string;
                                          children: React.ReactNode }) {
  return <section className="mst-card" aria-label={title}>
    <h3 className="mst-h3">{title}</h3>
    {children}
  </section>;
}

function Heat({ metric, items }: { metric: HeatMetric;
                                   items: ReturnType<typeof useWorkflows>[
                                     'items'] }) {
  const { t, formatNumber } = useI18n();
  const hm = heatmap(items, metric);
  if (!hm.agents.length) {
    return <NoData />;
  }
  return <div className="mst-table-scroll" tabIndex={0}
              aria-label={t('metrics.heatmap')} role="region">
    <table className="mst-heat">
      <caption className="mst-small mst-muted">
        {t('metrics.heatmap.desc', { metric:
          t(`metrics.heatmap.${metric}`) })}
      </caption>
      <thead><tr>
        <th scope="col">{t('agents.col.name')}</th>
        {hm.workflows.map((id) => <th key={id} scope="col"
          className="mst-mono" title={id}>{id.slice(-6)}</th>)}
      </tr></thead>
      <tbody>
        {hm.agents.map((a, r) => <tr key={a}>
          <th scope="row">{a}</th>
          {hm.values[r].map((v, c) => {
            const f = Number.isNaN(v) || !hm.max ? 0 : v / hm.max;
            const bg = heatColor(f);
            return <td key={hm.workflows[c]}
                       style={Number.isNaN(v) ? undefined
                         : { background: bg, color: textOn(bg) }}>
              {Number.isNaN(v) ? '—' : formatNumber(v)}
            </td>;
          })}
        </tr>)}
      </tbody>
    </table>
  </div>;
}

function Flow({ items }: { items: ReturnType<typeof useWorkflows>['items'] }) {
  const { t } = useI18n();
  const [picked, setPicked] = useState<string | null>(null);
  const id = picked ?? items[0]?.id ?? null;
  const live = useWorkflowStream(id);
  /* the graph's real edges; without its definition, the order they ran */
  const flow = useMemo(() => (live.graph
    ? flowFromModel(modelOf(live), live.agents)
    : flowGraph(live.activations)),
  // eslint-disable-next-line
  [live.graph, live.nodes, live.agents, live.activations]);
  if (!items.length) {
    return <NoData />;
  }
  return <div>
    <Select id="flow-workflow" labelText={t('metrics.flow.workflow')}
            value={id ?? ''} onChange={(e) => setPicked(e.target.value)}
            className="mst-flow-select">
      {items.map((w) => <SelectItem key={w.id} value={w.id}
                                    text={`${w.id} · ${w.workflow}`} />)}
    </Select>
    <SankeyFlow flow={flow} />
  </div>;
}

export default function MetricsScreen() {
  const { t, formatNumber } = useI18n();
  const { items } = useWorkflows(100, 10000);
  const [metric, setMetric] = useState<HeatMetric>('tokens');
  const [tab, setTab] = useState(0);

  const trend = responseTrend(items).map((p) => ({ ...p,
                                                   label: formatClock(p.t) }));
  const thr = throughput(items).map((b) => ({ ...b,
                                              label: formatClock(b.t) }));
  const byAgent = tokensByAgent(items);
  const split = tokenSplit(items);
  const pie = [
    { name: t('metrics.promptTokens'), value: split.prompt,
      color: '#8a3ffc' },
    { name: t('metrics.completionTokens'), value: split.completion,
      color: '#33b1ff' },
  ];

  return <div className="mst-screen">
    <h1 className="mst-h1" tabIndex={-1} id="main-heading">
      {t('metrics.title')}
    </h1>
    <p className="mst-muted">{t('metrics.sample', { count: items.length })}</p>
    <Tabs selectedIndex={tab} onChange={({ selectedIndex }:
                                        { selectedIndex: number }) =>
      setTab(selectedIndex)}>
      <TabList aria-label={t('metrics.tabs')} contained>
        <Tab>{t('metrics.performance')}</Tab>
        <Tab>{t('metrics.tokens')}</Tab>
        <Tab>{t('metrics.efficiency')}</Tab>
        <Tab>{t('metrics.cost')}</Tab>
        <Tab>{t('metrics.flow')}</Tab>
      </TabList>
      <TabPanels>
        <TabPanel>
          <div className="mst-grid2">
            <ChartCard title={t('metrics.responseTime')}>
              {trend.length ? <ResponsiveContainer width="100%" height={260}>
                <LineChart data={trend} margin={{ left: 8, right: 16 }}>
                  <CartesianGrid stroke={GRID} strokeDasharray="3 3" />
                  <XAxis dataKey="label" tick={AXIS} minTickGap={24} />
                  <YAxis tick={AXIS} width={56} />
                  <Tooltip {...TOOLTIP} />
                  <Line type="monotone" dataKey="ms" name={t('metrics.ms')}
                        stroke="#4589ff" strokeWidth={2} dot={false}
                        isAnimationActive={false} />
                </LineChart></ResponsiveContainer> : <NoData />}
            </ChartCard>
            <ChartCard title={t('metrics.throughput')}>
              {thr.length ? <ResponsiveContainer width="100%" height={260}>
                <BarChart data={thr} margin={{ left: 8, right: 16 }}>
                  <CartesianGrid stroke={GRID} strokeDasharray="3 3" />
                  <XAxis dataKey="label" tick={AXIS} minTickGap={24} />
                  <YAxis tick={AXIS} allowDecimals={false} width={40} />
                  <Tooltip {...TOOLTIP} />
                  <Bar dataKey="count" name={t('metrics.count')}
                       fill="#42be65" isAnimationActive={false} />
                </BarChart></ResponsiveContainer> : <NoData />}
            </ChartCard>
          </div>
        </TabPanel>
        <TabPanel>
          <div className="mst-grid2">
            <ChartCard title={t('metrics.byAgent')}>
              {byAgent.length ? <ResponsiveContainer width="100%" height={260}>
                <BarChart data={byAgent} layout="vertical"
                          margin={{ left: 16, right: 16 }}>
                  <CartesianGrid stroke={GRID} strokeDasharray="3 3" />
                  <XAxis type="number" tick={AXIS} />
                  <YAxis type="category" dataKey="agent" tick={AXIS}
                         width={80} />
                  <Tooltip {...TOOLTIP} />
                  <Bar dataKey="tokens" name={t('agent.tokens')}
                       fill="#a56eff" isAnimationActive={false} />
                </BarChart></ResponsiveContainer> : <NoData />}
            </ChartCard>
            <ChartCard title={t('metrics.distribution')}>
              {split.total ? <ResponsiveContainer width="100%" height={260}>
                <PieChart>
                  <Pie data={pie} dataKey="value" nameKey="name"
                       innerRadius={55} outerRadius={95}
                       isAnimationActive={false}
                       label={({ value }) => formatNumber(Number(value))}>
                    {pie.map((p) => <Cell key={p.name} fill={p.color} />)}
                  </Pie>
                  <Legend wrapperStyle={{ color: 'var(--cds-text-primary)' }} />
                  <Tooltip {...TOOLTIP} />
                </PieChart></ResponsiveContainer> : <NoData />}
            </ChartCard>
          </div>
        </TabPanel>
        <TabPanel>
          <ChartCard title={t('metrics.heatmap')}>
            <Select id="heat-metric" labelText={t('metrics.heatmap.metric')}
                    inline value={metric}
                    onChange={(e) => setMetric(e.target.value as HeatMetric)}>
              <SelectItem value="tokens" text={t('metrics.heatmap.tokens')} />
              <SelectItem value="time" text={t('metrics.heatmap.time')} />
              <SelectItem value="attempts"
                          text={t('metrics.heatmap.attempts')} />
            </Select>
            <Heat metric={metric} items={items} />
          </ChartCard>
        </TabPanel>
        <TabPanel>
          <div className="mst-emptystate" data-empty="cost">
            <h3 className="mst-h3">{t('metrics.cost.emptyTitle')}</h3>
            <p>{t('metrics.cost.emptyBody')}</p>
            <p className="mst-muted">{t('metrics.cost.tokensSoFar', {
              total: formatNumber(split.total) })}</p>
          </div>
        </TabPanel>
        <TabPanel>
          {tab === 4 ? <ChartCard title={t('metrics.flow')}>
            <Flow items={items} />
          </ChartCard> : null}
        </TabPanel>
      </TabPanels>
    </Tabs>
  </div>;
}
