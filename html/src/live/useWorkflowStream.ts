import { useEffect, useReducer } from 'react';
import { getWorkflow, getWorkflowGraph } from '../api/client';
import { initialState, isFinal, reduce,
         type LiveWorkflow } from './workflowState';
import { openLive, type LiveOptions } from './transport';

/*
 * Follows one workflow: loads its record (the node list) and its graph
 * definition (for drawing), then its live events (replayed from the start, so the answer and logs are complete),
 * until the final event. id null: nothing.
 */
export function useWorkflowStream(id: string | null,
                                  opts: LiveOptions = {}): LiveWorkflow {
  const [state, dispatch] = useReducer(reduce, id, initialState);

  useEffect(() => {
    dispatch({ type: 'reset', id });
    if (!id) {
      return undefined;
    }
    const ctrl = new AbortController();
    getWorkflow(id, ctrl.signal)
      .then((record) => dispatch({ type: 'record', record }))
      .catch(() => { /* the stream carries everything anyway */ });
    getWorkflowGraph(id, ctrl.signal)
      .then((r) => dispatch({ type: 'graph', id, graph: r.graph }))
      .catch(() => { /* drawn from the order the agents ran instead */ });

    const transport = openLive(id, {
      onEvent: (event) => dispatch({ type: 'event', event }),
      onState: (s) => dispatch({ type: 'connection', state: s }),
      onTransport: (kind) => dispatch({ type: 'transport', kind }),
      onFailure: (f) => dispatch({ type: 'failure', message: f.message }),
    }, opts);

    return () => {
      ctrl.abort();
      transport.close();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);

  return state;
}

export { isFinal };
