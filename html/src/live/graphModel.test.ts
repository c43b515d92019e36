import { describe, expect, it } from 'vitest';
import type { GraphDef } from '../api/types';
import { graphModel, modelOf } from './graphModel';
import { initialState, reduce, type Action,
         type LiveWorkflow } from './workflowState';

const FAN: GraphDef = {
  name: 'fan', entry: 'a',
  nodes: { a: { agent: 'echo' }, b: { agent: 'sleep' },
           c: { agent: 'sleep' }, d: { agent: 'echo' } },
  edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'c' },
          { from: 'b', to: 'd' }, { from: 'c', to: 'd' },
          { from: 'd', to: '$end' }],
};

const DEFAULT: GraphDef = {
  name: 'default', entry: 'planner',
  nodes: { planner: { agent: 'planner' },
           llm: { agent: 'llm', foreach: 'plan.steps' },
           reviewer: { agent: 'reviewer' } },
  edges: [{ from: 'planner', to: 'llm' }, { from: 'llm', to: 'reviewer' },
          { from: 'reviewer', to: 'llm',
            when: { path: 'review.verdict', equals: 'revise' } },
          { from: 'reviewer', to: '$end', else: true }],
};

describe('graph model', () => {
  it('a fan-out / fan-in: 4 nodes, 4 edges, branches side by side', () => {
    const m = graphModel(FAN);
    expect(m.nodes).toEqual(['a', 'b', 'c', 'd']);
    expect(m.edges.map((e) => `${e.from}>${e.to}`))
      .toEqual(['a>b', 'a>c', 'b>d', 'c>d']);
    expect(m.edges.every((e) => !e.back && !e.conditional)).toBe(true);
    expect(m.layers).toEqual([['a'], ['b', 'c'], ['d']]);
    expect(m.ends).toEqual(['d']);
    expect(m.nodes).not.toContain('$end');
    expect(m.agentOf).toEqual({ a: 'echo', b: 'sleep', c: 'sleep',
                                d: 'echo' });
    expect(m.fromDefinition).toBe(true);
  });

  it('a loop is a conditional back edge; $end with else is an end', () => {
    const m = graphModel(DEFAULT);
    expect(m.layers).toEqual([['planner'], ['llm'], ['reviewer']]);
    const back = m.edges.filter((e) => e.back);
    expect(back).toEqual([{ from: 'reviewer', to: 'llm', conditional: true,
                            back: true }]);
    expect(m.ends).toEqual(['reviewer']);
    expect(m.foreach).toEqual({ llm: 'plan.steps' });
  });

  it('the longest path sets the layer (a skip edge does not pull up)', () => {
    const m = graphModel({ nodes: { a: { agent: 'x' }, b: { agent: 'x' },
                                    c: { agent: 'x' } },
                           edges: [{ from: 'a', to: 'c' },
                                   { from: 'a', to: 'b' },
                                   { from: 'b', to: 'c' }] });
    expect(m.layer).toEqual({ a: 0, b: 1, c: 2 });
  });

  it('skips unknown nodes, duplicates; keeps self loops as back', () => {
    const m = graphModel({
      nodes: { a: { agent: 'x' }, b: { agent: 'y' } },
      edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'b', when: {} },
              { from: 'a', to: 'ghost' }, { from: 'ghost', to: 'a' },
              { from: 'b', to: 'b', when: {} }],
    }, ['extra']);
    expect(m.nodes).toEqual(['a', 'extra', 'b']);
    expect(m.edges.map((e) => [e.from, e.to, e.back, e.conditional]))
      .toEqual([['a', 'b', false, false], ['b', 'b', true, true]]);
  });

  it('survives a malformed definition', () => {
    const m = graphModel({ nodes: null, edges: null } as unknown as
      GraphDef);
    expect(m.nodes).toEqual([]);
    expect(m.edges).toEqual([]);
    expect(m.layers).toEqual([]);
  });

  it('modelOf: the definition when loaded, else inferred', () => {
    let st: LiveWorkflow = initialState('wf');
    const agent = (id: string, status: string): Action => ({
      type: 'event',
      event: { id: 0, type: 'agent_status',
               data: { id, name: id, agent: id,
                       status: status as 'executing', progress: 0,
                       current_task: null, attempts: 1,
                       metrics: { tokens: 0, execution_ms: 0,
                                  memory_bytes: 0 } } } });
    st = reduce(st, agent('a', 'executing'));
    st = reduce(st, agent('b', 'executing'));
    st = reduce(st, agent('c', 'executing'));
    const inferred = modelOf(st);
    expect(inferred.fromDefinition).toBe(false);
    expect(inferred.edges.map((e) => `${e.from}>${e.to}`))
      .toEqual(['a>b', 'b>c']);
    st = reduce(st, { type: 'graph', id: 'wf', graph: FAN });
    const real = modelOf(st);
    expect(real.fromDefinition).toBe(true);
    expect(real.edges).toHaveLength(4);
    /* another workflow's graph is ignored */
    const other = reduce(initialState('x'), { type: 'graph', id: 'wf',
                                              graph: FAN });
    expect(other.graph).toBeNull();
  });
});
