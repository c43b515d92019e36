import { describe, expect, it } from 'vitest';
import type { GraphDef } from '../api/types';
import { renderApp } from '../test/render';
import { initialState, reduce } from '../live/workflowState';
import { edgePath, layout, WorkflowGraph } from './WorkflowGraph';

const FAN: GraphDef = {
  entry: 'a',
  nodes: { a: { agent: 'echo' }, b: { agent: 'sleep' },
           c: { agent: 'sleep' }, d: { agent: 'echo' } },
  edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'c' },
          { from: 'b', to: 'd' }, { from: 'c', to: 'd' },
          { from: 'd', to: '$end' }],
};

describe('WorkflowGraph', () => {
  it('layers are columns when they fit, rows when they do not', () => {
    const layers = [['a'], ['b', 'c'], ['d']];
    const wide = layout(layers, 1000);
    expect(wide.horizontal).toBe(true);
    expect(wide.pos.b.x).toBe(wide.pos.c.x);      /* one column */
    expect(wide.pos.b.y).toBeLessThan(wide.pos.c.y);
    expect(wide.pos.a.y).toBe((wide.pos.b.y + wide.pos.c.y) / 2);
    expect(wide.pos.d.x).toBeGreaterThan(wide.pos.b.x);
    const narrow = layout(layers, 340, false);
    expect(narrow.horizontal).toBe(false);
    expect(narrow.pos.b.y).toBe(narrow.pos.c.y);  /* one row */
    expect(narrow.pos.d.y).toBeGreaterThan(narrow.pos.b.y);
    expect(narrow.w).toBeLessThanOrEqual(340);
  });

  it('back edges arc around instead of going forward', () => {
    const a = { x: 200, y: 40 };
    const b = { x: 16, y: 40 };
    expect(edgePath(a, b, true, true)).toMatch(/^M266,40 C266,20/);
    expect(edgePath(b, a, true, false)).toMatch(/^M148,66 /);
  });

  it('draws the definition: 4 nodes, 4 edges, an end', () => {
    let st = initialState('wf');
    st = reduce(st, { type: 'graph', id: 'wf', graph: FAN });
    const { container } = renderApp(<WorkflowGraph state={st} />);
    const root = container.querySelector('.mst-graph') as HTMLElement;
    expect(root.dataset.graphSource).toBe('definition');
    const nodes = [...container.querySelectorAll('g.mst-graph__node')]
      .map((n) => n.getAttribute('data-node'));
    expect(nodes).toEqual(['a', 'b', 'c', 'd']);
    const edges = [...container.querySelectorAll('path.mst-graph__edge')]
      .map((e) => e.getAttribute('data-edge'));
    expect(edges).toEqual(['a->b', 'a->c', 'b->d', 'c->d']);
    expect(container.querySelectorAll('circle.mst-graph__end'))
      .toHaveLength(1);
    expect(container.querySelector('svg')?.getAttribute('aria-label'))
      .toBe('Workflow graph: a Idle, b Idle, c Idle, d Idle');
  });

  it('without a definition: inferred, and empty says so', () => {
    const empty = renderApp(<WorkflowGraph state={initialState('wf')} />);
    expect(empty.container.textContent).toContain('No agents yet.');
    empty.unmount();
    const st = reduce(initialState('wf'), { type: 'record', record: {
      id: 'wf', workflow: 'w', status: 'queued', progress: 0, user_id: null,
      created_at: 1, started_at: null, finished_at: null, updated_at: 1,
      last_event_id: 0,
      agents: { x: { name: 'x', agent: 'x', status: 'idle', progress: 0,
                     current_task: null, attempts: 0,
                     metrics: { tokens: 0, execution_ms: 0,
                                memory_bytes: 0 } } } } });
    const { container } = renderApp(<WorkflowGraph state={st} />);
    expect(container.querySelector('.mst-graph')?.getAttribute(
      'data-graph-source')).toBe('inferred');
    expect(container.querySelectorAll('g.mst-graph__node')).toHaveLength(1);
  });
});
