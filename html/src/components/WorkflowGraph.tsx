/*
 * The workflow's agents as a D3-drawn graph, from the graph definition the
 * server runs (fallback: the order the agents ran). Layered: each layer is
 * a column, left to right (a fan-out's branches stacked in one column),
 * or a row, top to bottom, when the columns do not fit the width. Loops
 * are drawn as arcs back, conditional edges dashed, a node that can end
 * the workflow gets a terminal dot. Each node is filled with its status
 * colour and has an animated ring while it is active.
 */
import { useEffect, useMemo, useRef } from 'react';
import { useWidth } from './useWidth';
import { select } from 'd3-selection';
import 'd3-transition';
import { useI18n, type MessageKey } from '../i18n';
import { ACTIVE, type LiveWorkflow } from '../live/workflowState';
import { modelOf, type GraphModel, type ModelEdge } from '../live/graphModel';
import { statusColor, textOn } from './status';

const NODE_W = 132;
const NODE_H = 52;
const GAP_L = 56;           /* between layers */
const GAP_S = 24;           /* between siblings in a layer */
const PAD = 16;
const TOP = 24;             /* room for arcs above */
const SIDE = 48;            /* room for arcs at the side / end dots */

interface Pos { x: number; y: number }

export interface Layout {
  pos: Record<string, Pos>;
  w: number;
  h: number;
  horizontal: boolean;
}

/* loops: leave room at the side for arcs back (top to bottom) */
export function layout(layers: string[][], width: number,
                       loops = true): Layout {
  const n = layers.length;
  const widest = Math.max(1, ...layers.map((l) => l.length));
  const hw = 2 * PAD + n * NODE_W + Math.max(0, n - 1) * GAP_L + SIDE;
  const horizontal = hw <= width;
  const pos: Record<string, Pos> = {};
  if (horizontal) {
    layers.forEach((l, li) => {
      const off = (widest - l.length) / 2;
      l.forEach((node, i) => {
        pos[node] = { x: PAD + li * (NODE_W + GAP_L),
                      y: PAD + TOP + (off + i) * (NODE_H + GAP_S) };
      });
    });
    return { pos, horizontal, w: hw,
             h: 2 * PAD + TOP + widest * NODE_H
               + (widest - 1) * GAP_S + 8 };
  }
  layers.forEach((l, li) => {
    const off = (widest - l.length) / 2;
    l.forEach((node, i) => {
      pos[node] = { x: PAD + (off + i) * (NODE_W + GAP_S),
                    y: PAD + TOP + li * (NODE_H + GAP_L) };
    });
  });
  return { pos, horizontal,
           w: 2 * PAD + widest * NODE_W + (widest - 1) * GAP_S
             + (loops ? SIDE : 0),
           h: 2 * PAD + TOP + n * NODE_H + Math.max(0, n - 1) * GAP_L
             + SIDE / 2 };
}

export function edgePath(a: Pos, b: Pos, horizontal: boolean,
                         back: boolean): string {
  if (a === b || (a.x === b.x && a.y === b.y)) {
    /* a node that loops to itself */
    const x = a.x + NODE_W - 24;
    return `M${x},${a.y} C${x},${a.y - 28} ${a.x + NODE_W + 30},`
      + `${a.y + NODE_H / 2} ${a.x + NODE_W + 4},${a.y + NODE_H / 2}`;
  }
  if (!back && horizontal && b.x > a.x) {
    const sx = a.x + NODE_W;
    const sy = a.y + NODE_H / 2;
    const tx = b.x - 4;
    const ty = b.y + NODE_H / 2;
    const mx = (sx + tx) / 2;
    return `M${sx},${sy} C${mx},${sy} ${mx},${ty} ${tx},${ty}`;
  }
  if (!back && !horizontal && b.y > a.y) {
    const sx = a.x + NODE_W / 2;
    const sy = a.y + NODE_H;
    const tx = b.x + NODE_W / 2;
    const ty = b.y - 4;
    const my = (sy + ty) / 2;
    return `M${sx},${sy} C${sx},${my} ${tx},${my} ${tx},${ty}`;
  }
  if (horizontal) {
    /* back: an arc above */
    const sx = a.x + NODE_W / 2;
    const tx = b.x + NODE_W / 2;
    const top = Math.min(a.y, b.y) - TOP + 4;
    return `M${sx},${a.y} C${sx},${top} ${tx},${top} ${tx},${b.y - 4}`;
  }
  /* back, top to bottom: round the right side */
  const rx = Math.max(a.x, b.x) + NODE_W + SIDE - 8;
  return `M${a.x + NODE_W},${a.y + NODE_H / 2} C${rx},${a.y + NODE_H / 2} `
    + `${rx},${b.y + NODE_H / 2} ${b.x + NODE_W + 4},${b.y + NODE_H / 2}`;
}

/* where a node's terminal dot goes */
function endPoint(p: Pos, horizontal: boolean): Pos {
  return horizontal ? { x: p.x + NODE_W + 18, y: p.y + NODE_H / 2 }
    : { x: p.x + NODE_W / 2, y: p.y + NODE_H + 16 };
}

const edgeKey = (e: ModelEdge) => `${e.from}->${e.to}`;

export function WorkflowGraph({ state }: { state: LiveWorkflow }) {
  const { t } = useI18n();
  const svgRef = useRef<SVGSVGElement>(null);
  const [wrapRef, width] = useWidth<HTMLDivElement>(720);

  const model: GraphModel = useMemo(() => modelOf(state),
    /* the shape changes only with these */
    // eslint-disable-next-line
    [state.graph, state.nodes.join('|'), state.firstActive.join('|'),
     state.activations.length]);
  const order = model.nodes;
  const edges = model.edges;
  const { pos, w, h, horizontal } = useMemo(
    () => layout(model.layers, width, model.edges.some((e) => e.back)),
    [model, width]);

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
    const path = (e: ModelEdge) => edgePath(pos[e.from], pos[e.to],
                                            horizontal, e.back);

    const edgeData = edges.filter((e) => pos[e.from] && pos[e.to]);
    svg.select<SVGGElement>('g.edges')
      .selectAll<SVGPathElement, ModelEdge>('path')
      .data(edgeData, edgeKey)
      .join((enter) => enter.append('path')
        .attr('class', 'mst-graph__edge')
        .attr('marker-end', 'url(#mst-arrow)')
        .attr('d', path)
        .style('opacity', 0)
        .call((e) => e.transition().duration(dur).style('opacity', 1)))
      .attr('data-edge', edgeKey)
      .classed('is-conditional', (e) => e.conditional)
      .classed('is-back', (e) => e.back)
      .attr('d', path);

    svg.select<SVGGElement>('g.ends')
      .selectAll<SVGCircleElement, string>('circle')
      .data(model.ends.filter((n) => pos[n]), (d) => d)
      .join('circle')
      .attr('class', 'mst-graph__end')
      .attr('r', 5)
      .attr('cx', (d) => endPoint(pos[d], horizontal).x)
      .attr('cy', (d) => endPoint(pos[d], horizontal).y);

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
      .attr('data-agent', (d) => model.agentOf[d] ?? d)
      .attr('data-foreach', (d) => model.foreach[d] ?? null)
      .attr('data-status', (d) => state.agents[d]?.status ?? 'idle')
      .classed('is-active', (d) =>
        ACTIVE.includes(state.agents[d]?.status ?? 'idle'));
    /* move only when the place changes: live updates re-render many
       times a second, and restarting the move each time would leave
       the nodes crawling and never arriving */
    nodes.each(function (d) {
      const g = select(this);
      const target = `translate(${pos[d].x},${pos[d].y})`;
      if (g.attr('data-target') !== target) {
        g.attr('data-target', target)
          .transition('move').duration(dur)
          .attr('transform', target);
      }
    });
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
      .text((d) => {
        const name = model.foreach[d] ? `${d} ×` : d;
        return name.length > 16 ? `${name.slice(0, 15)}…` : name;
      });
    nodes.select<SVGTextElement>('text.mst-graph__status')
      .attr('fill', (d) => textOn(statusColor(state.agents[d]?.status
                                               ?? 'idle')))
      .text((d) => t(`status.${state.agents[d]?.status ?? 'idle'}` as
                     MessageKey));
  });

  return <div className="mst-graph" ref={wrapRef}
              data-graph-source={model.fromDefinition ? 'definition'
                : 'inferred'}
              data-layout={horizontal ? 'horizontal' : 'vertical'}>
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
        <g className="ends" />
        <g className="nodes" />
      </svg>}
  </div>;
}
