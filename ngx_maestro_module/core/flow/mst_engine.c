/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Everything the engine knows lives in the checkpoint (see mst_engine.h):
 * no function keeps a pointer into it or any state of its own between
 * calls, so a checkpoint that went through json_dumps() / json_loads()
 * (LMDB) behaves exactly like the original. Values that enter the
 * checkpoint (input, outputs, patches, foreach items) are deep-copied, and
 * values handed out (mst_engine_input()) are deep copies too, so a plugin
 * running on a pool thread never shares a JSON value with the checkpoint
 * the event loop keeps changing.
 *
 * The functions are not thread-safe on one checkpoint: the caller (mst_run,
 * in the event loop) serialises them.
 *
 * Entering a superstep ("building a frontier") takes a work list of node
 * names: each name enters once (fan-in), is counted in "visits", and
 * expands into one step, or one step per item for "foreach". A foreach
 * node whose array is missing, null or empty produces no step: it counts
 * as completed at once (state.outputs.<node> = []) and its out-edges are
 * evaluated on the state as is; the nodes they fire join the same work
 * list. Since a name enters a frontier only once, this terminates.
 * A foreach path that holds anything else than an array fails the workflow.
 *
 * Step limit: steps_run counts completed steps; a frontier that would take
 * steps_run past max_steps fails the workflow instead of being entered
 * ("step limit reached (max_steps N)").
 *
 * Foreach outputs: state.outputs.<node> is an array with one slot per step
 * of the node in the frontier; a completed step fills its slot. The array
 * is (re)created with null slots when its size does not match, so a node
 * that runs again in a loop keeps its previous outputs visible until the
 * new ones replace them, as a non-foreach node does.
 *
 * Worker deaths: a running step is either one of several a process runs
 * (a death then proves nothing about it: whichever step crashed the worker,
 * or kill -9, the OOM killer) or, once a suspect, the only suspect its
 * process runs ("isolated", set by the runner's suspect lane): a death then
 * is most likely its own. Only those count in the crash-loop guard; a
 * suspect's first death is unattributed, so a step that crashes its worker
 * every time is failed after retry_max + 3 deaths (1 + retry_max + 2),
 * while a healthy step next to it only ever collects unattributed deaths
 * (it is not isolated while the crasher runs beside it: the crasher is a
 * suspect after its first death and from then on runs alone).
 *
 * Return codes on a checkpoint that is not running: mst_engine_begin(),
 * _complete() and _fail() return MST_ECANCELLED when it was cancelled and
 * MST_EINVAL when it is complete or failed (late results are dropped);
 * MST_EINVAL also when the step is not "pending" (begin) or not "running"
 * (complete, fail).
 */

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mst_engine.h"


#define MST_ENGINE_BUILT      0     /* a frontier was built */
#define MST_ENGINE_ABORTED    1     /* building it failed the workflow */


static const char *mst_engine_str(json_t *obj, const char *key);
static json_t *mst_engine_string(const char *s);
static int64_t mst_engine_int(json_t *obj, const char *key);
static int mst_engine_set_int(json_t *obj, const char *key, int64_t n);
static int mst_engine_check(json_t *cp);
static int mst_engine_step_in(json_t *cp, const char *node, int index,
    const char *status, json_t **step);
static json_t *mst_engine_find(json_t *cp, const char *node, int index);
static int mst_engine_step_index(json_t *step);
static int mst_engine_failed(json_t *cp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int mst_engine_build(const mst_graph_t *g, json_t *cp, json_t *work,
    json_t **out);
static int mst_engine_enter(const mst_graph_t *g, json_t *cp, json_t *work,
    int advance);
static int mst_engine_advance(const mst_graph_t *g, json_t *cp);
static int mst_engine_store_output(json_t *cp, json_t *step, json_t *output);


/* runs in the event loop, as every function here */

json_t *
mst_engine_start(const mst_graph_t *g, json_t *input)
{
    int      rc;
    json_t  *cp, *state, *work;

    if (input != NULL && !json_is_object(input)) {
        return NULL;
    }

    state = input != NULL ? json_deep_copy(input) : json_object();
    if (state == NULL) {
        return NULL;
    }

    if (json_object_set_new(state, "outputs", json_object()) != 0) {
        json_decref(state);
        return NULL;
    }

    cp = json_pack("{s:i, s:i, s:s, s:o, s:[], s:{}, s:n}",
                   "superstep", 1, "steps_run", 0, "status", "running",
                   "state", state, "frontier", "visits", "error");
    if (cp == NULL) {
        return NULL;
    }

    work = json_pack("[s]", mst_graph_entry(g));
    if (work == NULL) {
        json_decref(cp);
        return NULL;
    }

    rc = mst_engine_enter(g, cp, work, 0);

    if (rc < 0) {
        json_decref(cp);
        return NULL;
    }

    return cp;
}


size_t
mst_engine_ready(const mst_graph_t *g, json_t *cp, mst_step_t *out,
    size_t max)
{
    size_t             i, n;
    json_t            *step;
    const mst_node_t  *node;

    if (mst_engine_check(cp) != MST_OK) {
        return 0;
    }

    n = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (n >= max) {
            break;
        }

        if (strcmp(mst_engine_str(step, "status"), "pending") != 0) {
            continue;
        }

        node = mst_graph_node(g, mst_engine_str(step, "node"));
        if (node == NULL) {
            continue;
        }

        out[n].node = node;
        out[n].index = mst_engine_step_index(step);
        out[n].item = out[n].index >= 0 ? json_object_get(step, "item")
                                        : NULL;
        out[n].attempts = (int) mst_engine_int(step, "attempts");
        out[n].suspect = json_is_true(json_object_get(step, "suspect"));
        n++;
    }

    return n;
}


int
mst_engine_begin(json_t *cp, const char *node, int index)
{
    int      rc;
    json_t  *step;

    rc = mst_engine_step_in(cp, node, index, "pending", &step);
    if (rc != MST_OK) {
        return rc;
    }

    json_object_del(step, "isolated");

    if (json_object_set_new(step, "status", json_string("running")) != 0
        || mst_engine_set_int(step, "attempts",
                              mst_engine_int(step, "attempts") + 1)
           != MST_OK)
    {
        return MST_ENOMEM;
    }

    return MST_OK;
}


int
mst_engine_isolate(json_t *cp, const char *node, int index)
{
    int      rc;
    json_t  *step;

    rc = mst_engine_step_in(cp, node, index, "running", &step);
    if (rc != MST_OK) {
        return rc;
    }

    return json_object_set_new(step, "isolated", json_true()) == 0
           ? MST_OK : MST_ENOMEM;
}


json_t *
mst_engine_input(const mst_graph_t *g, json_t *cp, const mst_step_t *step,
    json_t *agent_config, const char *workflow_id)
{
    int          attempt;
    json_t      *in, *config, *state, *s, *v;
    const char  *key;

    s = mst_engine_find(cp, step->node->name, step->index);
    attempt = s != NULL ? (int) mst_engine_int(s, "attempts")
                        : step->attempts + 1;

    config = json_object();
    if (config == NULL) {
        return NULL;
    }

    if (json_is_object(agent_config)) {
        json_object_foreach(agent_config, key, v) {
            json_object_set_new(config, key, json_deep_copy(v));
        }
    }

    if (json_is_object(step->node->config)) {
        json_object_foreach(step->node->config, key, v) {
            json_object_set_new(config, key, json_deep_copy(v));
        }
    }

    state = json_deep_copy(json_object_get(cp, "state"));
    if (state == NULL) {
        json_decref(config);
        return NULL;
    }

    /* "o" steals config and state, even when packing fails */

    in = json_pack("{s:s, s:s, s:o, s:o, s:i, s:s?}",
                   "node", step->node->name,
                   "agent", step->node->agent,
                   "config", config,
                   "state", state,
                   "attempt", attempt,
                   "workflow_id", workflow_id);
    if (in == NULL) {
        return NULL;
    }

    if (step->index >= 0) {
        if (json_object_set_new(in, "index", json_integer(step->index)) != 0
            || json_object_set_new(in, "item",
                                   step->item != NULL
                                   ? json_deep_copy(step->item)
                                   : json_null())
               != 0)
        {
            json_decref(in);
            return NULL;
        }
    }

    return in;
}


int
mst_engine_complete(const mst_graph_t *g, json_t *cp, const char *node,
    int index, json_t *output, json_t *patch)
{
    int          rc;
    json_t      *step, *state, *v;
    const char  *key;

    rc = mst_engine_check(cp);
    if (rc != MST_OK) {
        return rc;
    }

    if (mst_graph_node(g, node) == NULL) {
        return MST_NOTFOUND;
    }

    step = mst_engine_find(cp, node, index);
    if (step == NULL) {
        return MST_NOTFOUND;
    }

    if (strcmp(mst_engine_str(step, "status"), "running") != 0) {
        return MST_EINVAL;
    }

    rc = mst_engine_store_output(cp, step, output);
    if (rc != MST_OK) {
        return rc;
    }

    state = json_object_get(cp, "state");

    if (json_is_object(patch)) {
        json_object_foreach(patch, key, v) {
            if (strcmp(key, "prompt") == 0 || strcmp(key, "context") == 0
                || strcmp(key, "outputs") == 0)
            {
                continue;
            }

            if (json_object_set_new(state, key, json_deep_copy(v)) != 0) {
                return MST_ENOMEM;
            }
        }
    }

    /* it ran to its end: whatever killed its workers, it was not this */
    json_object_del(step, "suspect");
    json_object_del(step, "isolated");

    if (json_object_set_new(step, "status", json_string("done")) != 0
        || json_object_set_new(step, "error", json_null()) != 0
        || mst_engine_set_int(cp, "steps_run",
                              mst_engine_int(cp, "steps_run") + 1)
           != MST_OK)
    {
        return MST_ENOMEM;
    }

    return mst_engine_advance(g, cp);
}


int
mst_engine_fail(const mst_graph_t *g, json_t *cp, const char *node,
    int index, const char *error, int retryable)
{
    int                rc;
    json_t            *step;
    int64_t            attempts;
    const mst_node_t  *n;

    rc = mst_engine_check(cp);
    if (rc != MST_OK) {
        return rc;
    }

    n = mst_graph_node(g, node);
    if (n == NULL) {
        return MST_NOTFOUND;
    }

    step = mst_engine_find(cp, node, index);
    if (step == NULL) {
        return MST_NOTFOUND;
    }

    if (strcmp(mst_engine_str(step, "status"), "running") != 0) {
        return MST_EINVAL;
    }

    if (error == NULL) {
        error = "failed";
    }

    /* deaths that were not its own do not use its retries */
    attempts = mst_engine_int(step, "attempts")
               - mst_engine_int(step, "unattributed");

    json_object_del(step, "isolated");

    if (json_object_set_new(step, "error", mst_engine_string(error)) != 0) {
        return MST_ENOMEM;
    }

    if (retryable && attempts <= n->retry_max) {
        if (json_object_set_new(step, "status", json_string("pending"))
            != 0)
        {
            return MST_ENOMEM;
        }

        return MST_ENGINE_RETRY;
    }

    if (json_object_set_new(step, "status", json_string("failed")) != 0) {
        return MST_ENOMEM;
    }

    if (index >= 0) {
        return mst_engine_failed(cp, "%s[%d]: %s", node, index, error);
    }

    return mst_engine_failed(cp, "%s: %s", node, error);
}


int
mst_engine_recover(const mst_graph_t *g, json_t *cp)
{
    int                n, index, isolated;
    char               label[96];
    size_t             i;
    json_t            *step;
    int64_t            deaths;
    const char        *name, *key;
    const mst_node_t  *node;

    if (mst_engine_check(cp) != MST_OK) {
        return 0;
    }

    n = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(mst_engine_str(step, "status"), "running") != 0) {
            continue;
        }

        name = mst_engine_str(step, "node");
        node = mst_graph_node(g, name);
        index = mst_engine_step_index(step);

        /* the lone suspect of its process: the death is its own */
        isolated = json_is_true(json_object_get(step, "isolated"));
        key = isolated ? "deaths" : "unattributed";
        deaths = mst_engine_int(step, key) + 1;

        if (mst_engine_set_int(step, key, deaths) != MST_OK) {
            return n;
        }

        json_object_del(step, "isolated");

        if (node == NULL) {
            json_object_set_new(step, "status", json_string("failed"));
            mst_engine_failed(cp, "%s: worker died while running the step "
                              "(not in the graph any more)", name);
            return n;
        }

        /* one death of its own is survived whatever the retry policy
           (kill -9, OOM); more than retries + 1 is a crash loop */
        if (isolated && deaths > node->retry_max + 1) {
            json_object_set_new(step, "status", json_string("failed"));

            if (index >= 0) {
                snprintf(label, sizeof(label), "%s[%d]", name, index);
            } else {
                snprintf(label, sizeof(label), "%s", name);
            }

            mst_engine_failed(cp, "%s: worker died while running the step "
                              "alone, %lld times (retry.max %d): the step "
                              "crashes its worker", label, (long long) deaths,
                              node->retry_max);
            return n;
        }

        if (json_object_set_new(step, "suspect", json_true()) != 0
            || json_object_set_new(step, "status", json_string("pending"))
               != 0)
        {
            return n;
        }

        n++;
    }

    return n;
}


void
mst_engine_cancel(json_t *cp)
{
    if (strcmp(mst_engine_str(cp, "status"), "running") == 0) {
        json_object_set_new(cp, "status", json_string("cancelled"));
    }
}


/*
 * complete: 100. Otherwise steps_run / (steps_run + frontier steps not
 * done + graph nodes never entered), capped at 99. It grows along a run
 * except when a foreach expands into many steps or a loop goes round
 * again, where it may step back; callers that show it clamp to the last
 * value shown.
 */

int
mst_engine_progress(const mst_graph_t *g, json_t *cp)
{
    size_t   i, left, unvisited;
    json_t  *step, *visits;
    int64_t  run, p;

    if (strcmp(mst_engine_str(cp, "status"), "complete") == 0) {
        return 100;
    }

    run = mst_engine_int(cp, "steps_run");
    left = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(mst_engine_str(step, "status"), "done") != 0) {
            left++;
        }
    }

    visits = json_object_get(cp, "visits");
    unvisited = 0;

    for (i = 0; i < mst_graph_node_count(g); i++) {
        if (json_object_get(visits, mst_graph_node_at(g, i)->name) == NULL) {
            unvisited++;
        }
    }

    if (run <= 0) {
        return 0;
    }

    p = run * 100 / (run + (int64_t) left + (int64_t) unvisited);

    return p > 99 ? 99 : (int) p;
}


/* when the frontier is all done, enters the next superstep */

static int
mst_engine_advance(const mst_graph_t *g, json_t *cp)
{
    int          rc;
    size_t       i, j;
    json_t      *frontier, *step, *work, *next, *prev;
    const char  *name;

    frontier = json_object_get(cp, "frontier");

    json_array_foreach(frontier, i, step) {
        if (strcmp(mst_engine_str(step, "status"), "done") != 0) {
            return MST_ENGINE_CONTINUE;
        }
    }

    work = json_array();
    if (work == NULL) {
        return MST_ENOMEM;
    }

    json_array_foreach(frontier, i, step) {
        name = mst_engine_str(step, "node");

        /* each distinct node once, in frontier order */

        for (j = 0; j < i; j++) {
            prev = json_array_get(frontier, j);
            if (strcmp(mst_engine_str(prev, "node"), name) == 0) {
                break;
            }
        }

        if (j < i) {
            continue;
        }

        rc = mst_graph_next(g, name, json_object_get(cp, "state"), &next);

        if (rc == MST_NOTFOUND) {
            json_decref(work);
            return mst_engine_failed(cp, "%s: not in the graph", name);
        }

        if (rc != MST_OK) {
            json_decref(work);
            return rc;
        }

        rc = json_array_extend(work, next) == 0 ? MST_OK : MST_ENOMEM;

        if (rc != MST_OK) {
            json_decref(next);
            json_decref(work);
            return rc;
        }

        json_decref(next);
    }

    return mst_engine_enter(g, cp, work, 1);
}


/*
 * Builds the frontier of the nodes in work (stolen) and installs it, or
 * completes or fails the workflow.
 */

static int
mst_engine_enter(const mst_graph_t *g, json_t *cp, json_t *work,
    int advance)
{
    int      rc;
    json_t  *frontier;
    int64_t  run;

    rc = mst_engine_build(g, cp, work, &frontier);
    json_decref(work);

    if (rc < 0) {
        return rc;
    }

    if (rc == MST_ENGINE_ABORTED) {
        return MST_ENGINE_FAILED;
    }

    run = mst_engine_int(cp, "steps_run");

    if (run + (int64_t) json_array_size(frontier) > mst_graph_max_steps(g)) {
        json_decref(frontier);
        return mst_engine_failed(cp, "step limit reached (max_steps %d)",
                                 mst_graph_max_steps(g));
    }

    if (json_object_set_new(cp, "frontier", frontier) != 0) {
        return MST_ENOMEM;
    }

    if (json_array_size(frontier) == 0) {
        if (json_object_set_new(cp, "status", json_string("complete")) != 0) {
            return MST_ENOMEM;
        }

        return MST_ENGINE_DONE;
    }

    if (advance
        && mst_engine_set_int(cp, "superstep",
                              mst_engine_int(cp, "superstep") + 1)
           != MST_OK)
    {
        return MST_ENOMEM;
    }

    return MST_ENGINE_CONTINUE;
}


/*
 * The steps of the nodes in work (which may grow: nodes fired by foreach
 * nodes with no items join it). Returns MST_ENGINE_BUILT with *out set,
 * MST_ENGINE_ABORTED when the workflow failed, or a negative MST_* code.
 */

static int
mst_engine_build(const mst_graph_t *g, json_t *cp, json_t *work,
    json_t **out)
{
    int                rc;
    size_t             i, j, n;
    json_t            *state, *visits, *outputs, *placed, *frontier;
    json_t            *arr, *step, *next;
    const char        *name;
    const mst_node_t  *node;

    *out = NULL;

    state = json_object_get(cp, "state");
    visits = json_object_get(cp, "visits");

    if (!json_is_object(state) || !json_is_object(visits)) {
        return MST_EINVAL;
    }

    outputs = json_object_get(state, "outputs");
    if (!json_is_object(outputs)) {
        outputs = json_object();
        if (json_object_set_new(state, "outputs", outputs) != 0) {
            return MST_ENOMEM;
        }
    }

    placed = json_object();
    frontier = json_array();

    if (placed == NULL || frontier == NULL) {
        rc = MST_ENOMEM;
        goto failed;
    }

    for (i = 0; i < json_array_size(work); i++) {
        name = json_string_value(json_array_get(work, i));

        if (name == NULL || json_object_get(placed, name) != NULL) {
            continue;
        }

        if (json_object_set_new(placed, name, json_true()) != 0) {
            rc = MST_ENOMEM;
            goto failed;
        }

        node = mst_graph_node(g, name);
        if (node == NULL) {
            mst_engine_failed(cp, "%s: not in the graph", name);
            rc = MST_ENGINE_ABORTED;
            goto failed;
        }

        if (mst_engine_set_int(visits, name, mst_engine_int(visits, name) + 1)
            != MST_OK)
        {
            rc = MST_ENOMEM;
            goto failed;
        }

        if (node->foreach == NULL) {
            step = json_pack("{s:s, s:s, s:i, s:n}", "node", name,
                             "status", "pending", "attempts", 0, "error");

            if (step == NULL || json_array_append_new(frontier, step) != 0) {
                rc = MST_ENOMEM;
                goto failed;
            }

            continue;
        }

        arr = mst_json_path(state, node->foreach);

        if (arr != NULL && !json_is_null(arr) && !json_is_array(arr)) {
            mst_engine_failed(cp, "%s: \"foreach\" path \"%s\" is not "
                              "an array", name, node->foreach);
            rc = MST_ENGINE_ABORTED;
            goto failed;
        }

        n = json_array_size(arr);

        for (j = 0; j < n; j++) {
            step = json_pack("{s:s, s:i, s:o, s:s, s:i, s:n}", "node", name,
                             "index", (int) j,
                             "item", json_deep_copy(json_array_get(arr, j)),
                             "status", "pending", "attempts", 0, "error");

            if (step == NULL || json_array_append_new(frontier, step) != 0) {
                rc = MST_ENOMEM;
                goto failed;
            }
        }

        if (n > 0) {
            continue;
        }

        /* no items: completed at once, its out-edges fire now */

        if (json_object_set_new(outputs, name, json_array()) != 0) {
            rc = MST_ENOMEM;
            goto failed;
        }

        rc = mst_graph_next(g, name, state, &next);
        if (rc != MST_OK) {
            goto failed;
        }

        rc = json_array_extend(work, next) == 0 ? MST_OK : MST_ENOMEM;
        json_decref(next);

        if (rc != MST_OK) {
            goto failed;
        }
    }

    json_decref(placed);
    *out = frontier;

    return MST_ENGINE_BUILT;

failed:

    json_decref(placed);
    json_decref(frontier);

    return rc;
}


static int
mst_engine_store_output(json_t *cp, json_t *step, json_t *output)
{
    int          index;
    size_t       i, count;
    json_t      *state, *outputs, *arr, *s, *copy;
    const char  *name;

    state = json_object_get(cp, "state");
    outputs = json_object_get(state, "outputs");

    if (!json_is_object(outputs)) {
        outputs = json_object();
        if (json_object_set_new(state, "outputs", outputs) != 0) {
            return MST_ENOMEM;
        }
    }

    copy = output != NULL ? json_deep_copy(output) : json_null();
    if (copy == NULL) {
        return MST_ENOMEM;
    }

    name = mst_engine_str(step, "node");
    index = mst_engine_step_index(step);

    if (index < 0) {
        return json_object_set_new(outputs, name, copy) == 0
               ? MST_OK : MST_ENOMEM;
    }

    count = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, s) {
        if (strcmp(mst_engine_str(s, "node"), name) == 0) {
            count++;
        }
    }

    if ((size_t) index >= count) {
        count = (size_t) index + 1;
    }

    arr = json_object_get(outputs, name);

    if (!json_is_array(arr) || json_array_size(arr) != count) {
        arr = json_array();
        if (arr == NULL || json_object_set_new(outputs, name, arr) != 0) {
            json_decref(copy);
            return MST_ENOMEM;
        }

        for (i = 0; i < count; i++) {
            if (json_array_append_new(arr, json_null()) != 0) {
                json_decref(copy);
                return MST_ENOMEM;
            }
        }
    }

    return json_array_set_new(arr, (size_t) index, copy) == 0
           ? MST_OK : MST_ENOMEM;
}


/* MST_OK when cp is a running checkpoint */

static int
mst_engine_check(json_t *cp)
{
    const char  *status;

    if (!json_is_object(cp)
        || !json_is_array(json_object_get(cp, "frontier"))
        || !json_is_object(json_object_get(cp, "state")))
    {
        return MST_EINVAL;
    }

    status = mst_engine_str(cp, "status");

    if (strcmp(status, "running") == 0) {
        return MST_OK;
    }

    return strcmp(status, "cancelled") == 0 ? MST_ECANCELLED : MST_EINVAL;
}


/* the step of a running checkpoint, in that status (else MST_EINVAL) */
static int
mst_engine_step_in(json_t *cp, const char *node, int index,
    const char *status, json_t **step)
{
    int  rc;

    rc = mst_engine_check(cp);
    if (rc != MST_OK) {
        return rc;
    }

    *step = mst_engine_find(cp, node, index);
    if (*step == NULL) {
        return MST_NOTFOUND;
    }

    if (strcmp(mst_engine_str(*step, "status"), status) != 0) {
        return MST_EINVAL;
    }

    return MST_OK;
}


static json_t *
mst_engine_find(json_t *cp, const char *node, int index)
{
    size_t   i;
    json_t  *step;

    if (node == NULL) {
        return NULL;
    }

    if (index < 0) {
        index = -1;
    }

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(mst_engine_str(step, "node"), node) == 0
            && mst_engine_step_index(step) == index)
        {
            return step;
        }
    }

    return NULL;
}


static int
mst_engine_step_index(json_t *step)
{
    json_t  *v;

    v = json_object_get(step, "index");

    return json_is_integer(v) ? (int) json_integer_value(v) : -1;
}


static int
mst_engine_failed(json_t *cp, const char *fmt, ...)
{
    char     buf[1024];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    json_object_set_new(cp, "status", json_string("failed"));
    json_object_set_new(cp, "error", mst_engine_string(buf));

    return MST_ENGINE_FAILED;
}


static const char *
mst_engine_str(json_t *obj, const char *key)
{
    const char  *s;

    s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : "";
}


static int64_t
mst_engine_int(json_t *obj, const char *key)
{
    return (int64_t) json_integer_value(json_object_get(obj, key));
}


static int
mst_engine_set_int(json_t *obj, const char *key, int64_t n)
{
    return json_object_set_new(obj, key, json_integer((json_int_t) n)) == 0
           ? MST_OK : MST_ENOMEM;
}


/* a JSON string of s; bytes that are not valid UTF-8 become '?' */

static json_t *
mst_engine_string(const char *s)
{
    char    *copy;
    size_t   i, len;
    json_t  *v;

    v = json_string(s);
    if (v != NULL) {
        return v;
    }

    copy = strdup(s);
    if (copy == NULL) {
        return NULL;
    }

    len = strlen(copy);

    for (i = 0; i < len; i++) {
        if ((unsigned char) copy[i] >= 0x80) {
            copy[i] = '?';
        }
    }

    v = json_string(copy);
    free(copy);

    return v;
}
