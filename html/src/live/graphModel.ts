/*
 * The drawable shape of a workflow graph: from the definition the server
 * runs (GET /api/v1/workflows/{id}/graph) when there is one, else inferred
 * from the order the agents ran (the fallback). Pure, so it is unit-tested.
 *
 * Edges to "$end" end a branch: they are not nodes, the node is marked as
 * an end instead. Back edges (loops, found by a depth-first walk from the
 * entry) are flagged so the drawing can route them around and the Sankey
 * (which must be acyclic) can leave them out. Layers are the longest path
 * over the forward edges, so a fan-out puts its branches side by side in
 * the same layer and a fan-in node after all of them.
 */

import type { GraphDef } from '../api/types';
import { graphEdges, graphOrder, type LiveWorkflow } from './workflowState';

export const END = '$end';

export interface ModelEdge {
  from: string;
  to: string;
  conditional: boolean;
  back: boolean;
}

export interface GraphModel {
  nodes: string[];                  /* by layer, then position in layer */
  edges: ModelEdge[];
  layer: Record<string, number>;
  layers: string[][];
  ends: string[];
  agentOf: Record<string, string>;
  foreach: Record<string, string>;
  fromDefinition: boolean;
}

export function graphModel(def: GraphDef, extra: string[] = [],
                           fromDefinition = true): GraphModel {
  const defNodes = def.nodes && typeof def.nodes === 'object'
    ? def.nodes : {};
  const names = Object.keys(defNodes);
  for (const n of extra) {
    if (!names.includes(n)) {
      names.push(n);
    }
  }
  const known = new Set(names);
  const agentOf: Record<string, string> = {};
  const foreach: Record<string, string> = {};
  for (const n of names) {
    const d = defNodes[n];
    agentOf[n] = typeof d?.agent === 'string' ? d.agent : n;
    if (typeof d?.foreach === 'string') {
      foreach[n] = d.foreach;
    }
  }

  const ends: string[] = [];
  const edges: ModelEdge[] = [];
  const seen = new Map<string, ModelEdge>();
  for (const e of Array.isArray(def.edges) ? def.edges : []) {
    if (!e || !known.has(e.from)) {
      continue;
    }
    if (e.to === END) {
      if (!ends.includes(e.from)) {
        ends.push(e.from);
      }
      continue;
    }
    if (!known.has(e.to)) {
      continue;
    }
    const conditional = e.when !== undefined || e.else === true;
    const k = `${e.from}\u0000${e.to}`;
    const prev = seen.get(k);
    if (prev) {
      prev.conditional = prev.conditional && conditional;
      continue;
    }
    const me = { from: e.from, to: e.to, conditional, back: false };
    seen.set(k, me);
    edges.push(me);
  }

  const out = new Map<string, ModelEdge[]>();
  const indeg = new Map<string, number>();
  for (const n of names) {
    out.set(n, []);
  }
  for (const e of edges) {
    out.get(e.from)?.push(e);
    indeg.set(e.to, (indeg.get(e.to) ?? 0) + 1);
  }

  /* back edges: to a node still on the depth-first stack */
  const entry = def.entry && known.has(def.entry) ? def.entry
    : names.find((n) => !indeg.get(n)) ?? names[0];
  const state = new Map<string, 1 | 2>();
  const visit = (n: string) => {
    const stack: [string, number][] = [[n, 0]];
    state.set(n, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const list = out.get(top[0]) ?? [];
      if (top[1] >= list.length) {
        state.set(top[0], 2);
        stack.pop();
        continue;
      }
      const e = list[top[1]++];
      const s = state.get(e.to);
      if (s === 1) {
        e.back = true;
      } else if (s === undefined) {
        state.set(e.to, 1);
        stack.push([e.to, 0]);
      }
    }
  };
  if (entry !== undefined) {
    visit(entry);
  }
  for (const n of names) {
    if (!state.has(n)) {
      visit(n);
    }
  }

  /* longest path over forward edges (Kahn's order) */
  const layer: Record<string, number> = {};
  const fwdIn = new Map<string, number>();
  for (const e of edges) {
    if (!e.back) {
      fwdIn.set(e.to, (fwdIn.get(e.to) ?? 0) + 1);
    }
  }
  const queue = names.filter((n) => !fwdIn.get(n));
  for (const n of queue) {
    layer[n] = 0;
  }
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i];
    for (const e of out.get(n) ?? []) {
      if (e.back) {
        continue;
      }
      layer[e.to] = Math.max(layer[e.to] ?? 0, layer[n] + 1);
      const left = (fwdIn.get(e.to) ?? 1) - 1;
      fwdIn.set(e.to, left);
      if (left === 0) {
        queue.push(e.to);
      }
    }
  }
  for (const n of names) {
    layer[n] ??= 0;
  }

  /* within a layer: by the mean position of the parents, then by name
     order, so branches keep the order they were declared in */
  const depth = names.length ? Math.max(...names.map((n) => layer[n])) : -1;
  const layers: string[][] = [];
  const pos = new Map<string, number>();
  for (let l = 0; l <= depth; l++) {
    const here = names.filter((n) => layer[n] === l);
    const bary = (n: string) => {
      const ps = edges.filter((e) => e.to === n && !e.back
                              && pos.has(e.from))
        .map((e) => pos.get(e.from) as number);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : -1;
    };
    const keyed = here.map((n, i) => ({ n, b: bary(n), i }));
    keyed.sort((a, b) => (a.b - b.b) || (a.i - b.i));
    const row = keyed.map((k) => k.n);
    row.forEach((n, i) => pos.set(n, i));
    layers.push(row);
  }

  return { nodes: layers.flat(), edges, layer, layers, ends, agentOf,
           foreach, fromDefinition };
}

/* the live workflow's model: its definition, else the inferred one */
export function modelOf(st: LiveWorkflow): GraphModel {
  if (st.graph) {
    return graphModel(st.graph, st.nodes, true);
  }
  const order = graphOrder(st);
  const nodes: GraphDef['nodes'] = {};
  for (const n of order) {
    nodes[n] = { agent: st.agents[n]?.agent ?? n };
  }
  return graphModel({ entry: order[0], nodes,
                      edges: graphEdges(st).map(([from, to]) =>
                        ({ from, to })) }, [], false);
}
