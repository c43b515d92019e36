import { sankey, sankeyLinkHorizontal, type SankeyGraph } from 'd3-sankey';
import { useI18n } from '../i18n';
import type { FlowGraph } from '../metrics/compute';

import { useWidth } from './useWidth';

type N = { key: string; label: string };
type L = { source: number; target: number; value: number };

const PALETTE = ['#0f62fe', '#42be65', '#f1c21b', '#a56eff', '#33b1ff',
                 '#ff7eb6', '#24a148', '#8a3ffc'];

export function SankeyFlow({ flow }: { flow: FlowGraph }) {
  const { t } = useI18n();
  const [ref, width] = useWidth<HTMLElement>(760);
  const W = Math.max(300, width);
  const H = W < 500 ? 260 : 320;
  if (!flow.links.length) {
    return <p className="mst-muted">{t('metrics.flow.empty')}</p>;
  }
  const gen = sankey<N, L>().nodeWidth(14).nodePadding(18)
    .extent([[8, 8], [W - 8, H - 8]]);
  const graph: SankeyGraph<N, L> = gen({
    nodes: flow.nodes.map((n) => ({ ...n })),
    links: flow.links.map((l) => ({ ...l })),
  });
  const path = sankeyLinkHorizontal();
  const names = [...new Set(flow.nodes.map((n) => n.key.split('#')[0]))];
  const color = (key: string) =>
    PALETTE[names.indexOf(key.split('#')[0]) % PALETTE.length];
  const summary = flow.nodes.map((n) => n.label).join(' → ');

  return <figure className="mst-sankey" ref={ref}>
    <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img"
         aria-label={t('metrics.flow.label', { summary })}>
      <g fill="none">
        {graph.links.map((l, i) => (
          <path key={i} d={path(l) ?? ''} className="mst-sankey__link"
                stroke={color((l.source as N).key)}
                strokeWidth={Math.max(1, l.width ?? 1)}>
            <title>{`${(l.source as N).label} → ${(l.target as N).label}: `
              + `${l.value}`}</title>
          </path>))}
      </g>
      <g>
        {graph.nodes.map((n) => (
          <g key={n.key}>
            <rect x={n.x0} y={n.y0} width={(n.x1 ?? 0) - (n.x0 ?? 0)}
                  height={Math.max(2, (n.y1 ?? 0) - (n.y0 ?? 0))}
                  fill={color(n.key)} />
            <text className="mst-sankey__label"
                  x={(n.x0 ?? 0) < W / 2 ? (n.x1 ?? 0) + 6 : (n.x0 ?? 0) - 6}
                  y={((n.y0 ?? 0) + (n.y1 ?? 0)) / 2} dy="0.35em"
                  textAnchor={(n.x0 ?? 0) < W / 2 ? 'start' : 'end'}>
              {n.label}
            </text>
          </g>))}
      </g>
    </svg>
    <figcaption className="mst-muted mst-small">
      {t('metrics.flow.desc')}
    </figcaption>
  </figure>;
}
