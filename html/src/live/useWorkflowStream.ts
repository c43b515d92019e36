import { useEffect, useReducer } from 'react';
import { eventsUrl, getWorkflow } from '../api/client';
import { initialState, isFinal, reduce,
         type LiveWorkflow } from './workflowState';
import { openLive, type SseOptions } from './transport';

/*
 * Follows one workflow: loads its record (the node list), then its live
 * events (replayed from the start, so the answer and logs are complete),
 * until the final event. id null: nothing.
 */
export function useWorkflowStream(id: string | null,
                                  opts: SseOptions = {}): LiveWorkflow {
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

    const transport = openLive(eventsUrl(id), {
      onEvent: (event) => dispatch({ type: 'event', event }),
      onState: (s) => dispatch({ type: 'connection', state: s }),
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
