/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_limits.h. The graph is checked on its JSON, before
 * mst_graph_parse() builds anything from it: counting is linear and
 * allocates one small table, so a graph of a million nodes is refused at
 * the cost of reading it.
 */

#include <stdio.h>
#include <string.h>

#include "mst_limits.h"


static int
mst_limits_refuse(mst_limits_error_t *e, int status, const char *code,
    const char *fmt, size_t n, size_t max, const char *directive)
{
    char  what[128];

    e->status = status;
    e->code = code;

    snprintf(what, sizeof(what), fmt, n);
    snprintf(e->message, sizeof(e->message), "%s, more than %zu (%s)",
             what, max, directive);

    return MST_EINVAL;
}


int
mst_limits_graph(const mst_limits_t *l, json_t *def, mst_limits_error_t *e)
{
    size_t       i, n, worst;
    json_t      *nodes, *edges, *edge, *out, *c;
    json_int_t   steps;
    const char  *from, *most;

    nodes = json_object_get(def, "nodes");
    edges = json_object_get(def, "edges");

    n = json_object_size(nodes);
    if (l->nodes && n > l->nodes) {
        return mst_limits_refuse(e, 422, "graph_too_large",
                                 "the graph has %zu nodes", n, l->nodes,
                                 "maestro_graph_max_nodes");
    }

    n = json_array_size(edges);
    if (l->edges && n > l->edges) {
        return mst_limits_refuse(e, 422, "graph_too_large",
                                 "the graph has %zu edges", n, l->edges,
                                 "maestro_graph_max_edges");
    }

    steps = json_integer_value(json_object_get(def, "max_steps"));
    if (l->steps && steps > (json_int_t) l->steps) {
        return mst_limits_refuse(e, 422, "max_steps_too_large",
                                 "\"max_steps\" is %zu", (size_t) steps,
                                 (size_t) l->steps,
                                 "maestro_graph_max_steps");
    }

    if (l->fanout == 0 || n <= l->fanout) {
        return MST_OK;
    }

    /* out-edges per node: only a graph with more edges than the bound */

    out = json_object();
    if (out == NULL) {
        e->status = 500;
        e->code = "internal";
        snprintf(e->message, sizeof(e->message), "out of memory");
        return MST_ENOMEM;
    }

    worst = 0;
    most = NULL;

    json_array_foreach(edges, i, edge) {
        from = json_string_value(json_object_get(edge, "from"));
        if (from == NULL) {
            continue;       /* mst_graph_parse() says what is wrong */
        }

        c = json_object_get(out, from);
        n = c ? (size_t) json_integer_value(c) + 1 : 1;

        if (json_object_set_new(out, from, json_integer((json_int_t) n))) {
            continue;
        }

        if (n > worst) {
            worst = n;
            most = from;
        }
    }

    if (worst > l->fanout) {
        e->status = 422;
        e->code = "graph_too_large";
        snprintf(e->message, sizeof(e->message),
                 "node \"%.64s\" has %zu out-edges, more than %zu "
                 "(maestro_graph_max_fanout)", most, worst, l->fanout);
        json_decref(out);
        return MST_EINVAL;
    }

    json_decref(out);

    return MST_OK;
}


int
mst_limits_input(const mst_limits_t *l, json_t *prompt, json_t *context,
    mst_limits_error_t *e)
{
    size_t  n;

    n = json_string_length(prompt);
    if (l->prompt && n > l->prompt) {
        return mst_limits_refuse(e, 413, "prompt_too_large",
                                 "the prompt is %zu bytes", n, l->prompt,
                                 "maestro_prompt_max_size");
    }

    if (l->context == 0 || context == NULL) {
        return MST_OK;
    }

    n = json_dumpb(context, NULL, 0, JSON_COMPACT);
    if (n > l->context) {
        return mst_limits_refuse(e, 413, "context_too_large",
                                 "the context is %zu bytes", n, l->context,
                                 "maestro_context_max_size");
    }

    return MST_OK;
}


int
mst_limits_width(const mst_limits_t *l, size_t steps, char *err,
    size_t errlen)
{
    if (l->fanout == 0 || steps <= l->fanout) {
        return MST_OK;
    }

    return mst_err(err, errlen, MST_EINVAL,
                   "fanout_too_large: a superstep of %zu steps, more than "
                   "%zu (maestro_graph_max_fanout)", steps, l->fanout);
}


int
mst_limits_state(const mst_limits_t *l, size_t bytes, char *err,
    size_t errlen)
{
    if (l->state == 0 || bytes <= l->state) {
        return MST_OK;
    }

    return mst_err(err, errlen, MST_EINVAL,
                   "state_too_large: the state is %zu bytes, more than %zu "
                   "(maestro_state_max_size)", bytes, l->state);
}
