/*
 * The workflow's agents as a D3-drawn graph: nodes in order of first
 * activity, left to right (wrapping in rows on narrow screens), edges from
 * the order the agents ran (loops drawn as arcs back), each node filled
 * with its status colour and an animated ring while it is active.
 */
import { useEffect, useMemo, useRef } from 'react';
import { useWidth } from './useWidth';
import { select } from 'd3-selection';
import 'd3-transition';
import { useI18n, type MessageKey } from '../i18n';
import { ACTIVE, graphEdges, graphOrder,
         type LiveWorkflow } from '../live/workflowState';
import { statusColor, textOn } from './status';

const NODE_W = 132;
const NODE_H = 52;
const GAP_X = 56;
const GAP_Y = 56;
const PAD = 16;

interface Pos { x: number; y: number }

export function layout(order: string[], width: number):
  { pos: Record<string, Pos>; w: number; h: number } {
  const perRow = Math.max(1, Math.floor((width - 2 * PAD + GAP_X)
                                        / (NODE_W + GAP_X)));
  const pos: Record<string, Pos> = {};
  order.forEach((n, i) => {
    const row = Math.floor(i / perRow);
    const col = i % perRow;
    pos[n] = { x: PAD + col * (NODE_W + GAP_X),
               y: PAD + 20 + row * (NODE_H + GAP_Y) };
  });
  const cols = Math.min(perRow, Math.max(1, order.length));
  const rows = Math.max(1, Math.ceil(order.length / perRow));
  return { pos, w: 2 * PAD + cols * NODE_W + (cols - 1) * GAP_X
             + (cols === 1 ? 48 : 0),
           h: 2 * PAD + 20 + rows * NODE_H + (rows - 1) * GAP_Y + 20 };
}

function edgePath(a: Pos, b: Pos): string {
  const ax = a.x + NODE_W;
  const ay = a.y + NODE_H / 2;
  if (b.x > a.x && b.y === a.y) {
    return `M${ax},${ay} L${b.x - 4},${b.y + NODE_H / 2}`;
  }
  if (b.y > a.y) {
    /* next row */
    const sx = a.x + NODE_W / 2;
    const sy = a.y + NODE_H;
    const tx = b.x + NODE_W / 2;
    const ty = b.y - 4;
    return `M${sx},${sy} C${sx},${sy + GAP_Y / 2} ${tx},${ty - GAP_Y / 2} `
      + `${tx},${ty}`;
  }
  if (b.x === a.x) {
    /* back up the same column: round the right side */
    const rx = a.x + NODE_W;
    return `M${rx},${a.y + NODE_H / 2} C${rx + 40},${a.y + NODE_H / 2} `
      + `${rx + 40},${b.y + NODE_H / 2} ${rx + 4},${b.y + NODE_H / 2}`;
  }
  /* backwards: an arc above */
  const sx = a.x + NODE_W / 2;
  const tx = b.x + NODE_W / 2;
  const top = Math.min(a.y, b.y) - 18;
  return `M${sx},${a.y} C${sx},${top} ${tx},${top} ${tx},${b.y - 4}`;
}

export function WorkflowGraph({ state }: { state: LiveWorkflow }) {
  const { t } = useI18n();
  const svgRef = useRef<SVGSVGElement>(null);
  const [wrapRef, width] = useWidth<HTMLDivElement>(720);

  const order = graphOrder(state);
  const edges = graphEdges(state);
  const { pos, w, h } = useMemo(() => layout(order, width),
                                // eslint-disable-next-line
                                [order.join('|'), width]);

  const summary = order.map((n) => {
    const s = state.agents[n]?.status ?? 'idle';
    return `${n} ${t(`status.${s}` as MessageKey)}`;
  }).join(', ');

  useEffect(() => {
    const svg = select(svgRef.current);
    if (!svgRef.current) {
      return;
    }
    const reduce = typeof window !== 'undefined' && window.matchMedia
      ? window.matchMedia('(prefers-reduced-motion: reduce)').matches
      : true;
    const dur = reduce ? 0 : 400;

    const edgeData = edges.filter(([a, b]) => pos[a] && pos[b]);
    svg.select<SVGGElement>('g.edges')
      .selectAll<SVGPathElement, [string, string]>('path')
      .data(edgeData, (d) => d.join('->'))
      .join((enter) => enter.append('path')
        .attr('class', 'mst-graph__edge')
        .attr('marker-end', 'url(#mst-arrow)')
        .attr('d', (d) => edgePath(pos[d[0]], pos[d[1]]))
        .style('opacity', 0)
        .call((e) => e.transition().duration(dur).style('opacity', 1)))
      .attr('d', (d) => edgePath(pos[d[0]], pos[d[1]]));

    const nodes = svg.select<SVGGElement>('g.nodes')
      .selectAll<SVGGElement, string>('g.mst-graph__node')
      .data(order, (d) => d)
      .join((enter) => {
        const g = enter.append('g').attr('class', 'mst-graph__node')
          .attr('transform', (d) => `translate(${pos[d].x},${pos[d].y})`);
        g.append('rect').attr('class', 'mst-graph__ring')
          .attr('x', -4).attr('y', -4).attr('rx', 10)
          .attr('width', NODE_W + 8).attr('height', NODE_H + 8);
        g.append('rect').attr('class', 'mst-graph__box')
          .attr('rx', 6).attr('width', NODE_W).attr('height', NODE_H);
        g.append('rect').attr('class', 'mst-graph__bar')
          .attr('x', 6).attr('y', NODE_H - 8).attr('height', 3)
          .attr('width', 0);
        g.append('text').attr('class', 'mst-graph__name')
          .attr('x', NODE_W / 2).attr('y', 21).attr('text-anchor', 'middle');
        g.append('text').attr('class', 'mst-graph__status')
          .attr('x', NODE_W / 2).attr('y', 37).attr('text-anchor', 'middle');
        return g;
      });

    nodes.attr('data-node', (d) => d)
      .attr('data-status', (d) => state.agents[d]?.status ?? 'idle')
      .classed('is-active', (d) =>
        ACTIVE.includes(state.agents[d]?.status ?? 'idle'));
    nodes.transition().duration(dur)
      .attr('transform', (d) => `translate(${pos[d].x},${pos[d].y})`);
    nodes.select<SVGRectElement>('rect.mst-graph__box')
      .transition().duration(dur)
      .attr('fill', (d) => statusColor(state.agents[d]?.status ?? 'idle'));
    nodes.select<SVGRectElement>('rect.mst-graph__ring')
      .attr('stroke', (d) => statusColor(state.agents[d]?.status ?? 'idle'));
    nodes.select<SVGRectElement>('rect.mst-graph__bar')
      .attr('fill', (d) => textOn(statusColor(state.agents[d]?.status
                                               ?? 'idle')))
      .transition().duration(dur)
      .attr('width', (d) => ((NODE_W - 12)
                             * (state.agents[d]?.progress ?? 0)) / 100);
    nodes.select<SVGTextElement>('text.mst-graph__name')
      .attr('fill', (d) => textOn(statusColor(state.agents[d]?.status
                                               ?? 'idle')))
      .text((d) => (d.length > 16 ? `${d.slice(0, 15)}…` : d));
    nodes.select<SVGTextElement>('text.mst-graph__status')
      .attr('fill', (d) => textOn(statusColor(state.agents[d]?.status
                                               ?? 'idle')))
      .text((d) => t(`status.${state.agents[d]?.status ?? 'idle'}` as
                     MessageKey));
  });

  return <div className="mst-graph" ref={wrapRef}>
    {order.length === 0
      ? <p className="mst-muted">{t('graph.empty')}</p>
      : <svg ref={svgRef} role="img" width="100%"
             aria-label={t('graph.label', { summary })}
             viewBox={`0 0 ${Math.max(w, 200)} ${h}`}
             style={{ maxWidth: `${Math.max(w, 200)}px` }}>
        <defs>
          <marker id="mst-arrow" viewBox="0 0 10 10" refX="9" refY="5"
                  markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" className="mst-graph__arrow" />
          </marker>
        </defs>
        <g className="edges" />
        <g className="nodes" />
      </svg>}
  </div>;
}
