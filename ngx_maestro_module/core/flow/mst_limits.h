/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The bounds of one workflow, so that one request cannot take a worker or
 * the store: the size of its graph (nodes, edges, a node's out-edges, its
 * "max_steps"), of what it stores (prompt, context) and, while it runs,
 * the width of a superstep (foreach items) and the size of its state.
 * Submissions over a bound are refused with a stable code; a running
 * workflow that passes one fails with the code at the head of its error.
 * Each bound is a directive (maestro_graph_max_nodes ...); 0 is no bound.
 */

#ifndef _MST_LIMITS_H_INCLUDED_
#define _MST_LIMITS_H_INCLUDED_

#include "mst_graph.h"

typedef struct {
    size_t   nodes;         /* maestro_graph_max_nodes */
    size_t   edges;         /* maestro_graph_max_edges */
    size_t   fanout;        /* maestro_graph_max_fanout: a node's
                               out-edges, a superstep's steps */
    size_t   steps;         /* maestro_graph_max_steps: its "max_steps" */
    size_t   state;         /* maestro_state_max_size, bytes */
    size_t   prompt;        /* maestro_prompt_max_size, bytes */
    size_t   context;       /* maestro_context_max_size, bytes (JSON) */
} mst_limits_t;

/* what a refusal says: an HTTP status, a stable code, the message */
typedef struct {
    int          status;
    const char  *code;
    char         message[MST_ERRLEN];
} mst_limits_error_t;

/*
 * A graph definition before it is parsed (a client's can be large):
 * nodes, edges, out-edges of a node, "max_steps". MST_OK or MST_EINVAL
 * with e filled (422 graph_too_large / max_steps_too_large). The message
 * names the directive that raises the bound.
 */
int mst_limits_graph(const mst_limits_t *l, json_t *def,
    mst_limits_error_t *e);

/* a submission's prompt and context (413 prompt_too_large / ...) */
int mst_limits_input(const mst_limits_t *l, json_t *prompt, json_t *context,
    mst_limits_error_t *e);

/*
 * While running: a superstep's width and the state after a step. The
 * error (for the workflow's "error") starts with its code:
 * "fanout_too_large: ..." / "state_too_large: ...".
 */
int mst_limits_width(const mst_limits_t *l, size_t steps, char *err,
    size_t errlen);
int mst_limits_state(const mst_limits_t *l, size_t bytes, char *err,
    size_t errlen);

#endif /* _MST_LIMITS_H_INCLUDED_ */
