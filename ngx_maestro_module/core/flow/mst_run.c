/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_run.h. Every public function here is one write
 * transaction (the read-modify-write of record + checkpoint + events is
 * atomic because LMDB serialises writers across threads and processes).
 * All of it runs on pool threads.
 */

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mst_feed.h"
#include "mst_host.h"
#include "mst_json.h"
#include "mst_usage.h"
#include "mst_run.h"


#define MST_RUN_MAX_READY  256


typedef struct {
    mst_run_env_t      *env;
    mst_txn_t          *txn;
    const char         *id;
    json_t             *rec;
    json_t             *cp;
    uint64_t            seq;
    mst_graph_t        *graph;
    unsigned            graph_owned:1;
    unsigned            graph_cached:1; /* in use from mst_graph_cache */
    unsigned            events:1;       /* appended events */
    unsigned            cp_dirty:1;
} mst_run_tx_t;


static int mst_run_tx_begin(mst_run_env_t *env, mst_run_tx_t *tx,
    const char *id, char *err, size_t errlen);
static int mst_run_tx_commit(mst_run_tx_t *tx);
static void mst_run_tx_abort(mst_run_tx_t *tx);
static int mst_run_fence(mst_run_tx_t *tx, uint64_t epoch);
static int mst_run_event(mst_run_tx_t *tx, const char *name, json_t *data);
static void mst_run_wf_update(mst_run_tx_t *tx);
static json_t *mst_run_agent_entry(mst_run_tx_t *tx, const char *node);
static void mst_run_agent_status(mst_run_tx_t *tx, const char *node,
    const char *status, double progress, const char *task);
static int mst_run_begin_steps(mst_run_tx_t *tx, mst_run_next_t *next);
static void mst_run_finalize(mst_run_tx_t *tx, const char *status,
    const char *error);
static json_t *mst_run_result(mst_run_tx_t *tx);
static int mst_run_node_remaining(json_t *cp, const char *node, int index);
static int mst_run_node_total(json_t *cp, const char *node);
static int mst_run_apply_ctx(mst_run_tx_t *tx, maestro_ctx_t *ctx);


/* helpers on JSON fields */

static int64_t
mst_run_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}


static const char *
mst_run_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}


/*
 * The caller's own copy of a record just written: the written one stays in
 * the store's parse cache, where the next write transaction may take and
 * change it on another thread.
 */
static json_t *
mst_run_own_copy(json_t *rec)
{
    json_t  *copy;

    copy = json_deep_copy(rec);
    json_decref(rec);

    return copy;
}


void
mst_run_next_free(mst_run_next_t *next)
{
    size_t  i;

    if (next->steps != NULL) {
        for (i = 0; i < next->nsteps; i++) {
            free(next->steps[i].input);
        }
        free(next->steps);
    }

    next->steps = NULL;
    next->nsteps = 0;
}


const mst_agent_t *
mst_run_agent(const mst_run_env_t *env, const char *name)
{
    size_t  i;

    for (i = 0; i < env->nagents; i++) {
        if (strcmp(env->agents[i].name, name) == 0) {
            return &env->agents[i];
        }
    }

    return NULL;
}


mst_graph_t *
mst_run_graph(const mst_run_env_t *env, const char *name)
{
    size_t  i;

    for (i = 0; i < env->ngraphs; i++) {
        if (strcmp(mst_graph_name(env->graphs[i]), name) == 0) {
            return env->graphs[i];
        }
    }

    return NULL;
}


static int
mst_run_agent_exists(const char *agent, void *arg)
{
    return mst_run_agent(arg, agent) != NULL;
}


static void
mst_run_log(mst_run_env_t *env, int level, const char *fmt, ...)
{
    char     buf[512];
    va_list  args;

    if (env->log == NULL) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    env->log(env->log_arg, level, buf);
}


/*
 * Inline graphs (sent with a request) are kept apart from the record,
 * which every step rewrites: in the "kv" namespace below, which no agent
 * name can reach (agent names have no dot).
 */
#define MST_RUN_GRAPHS  "maestro.graphs"


static int
mst_run_graph_load(mst_run_tx_t *tx, json_t **def, char *err,
    size_t errlen)
{
    int     rc;
    char   *text;
    size_t  len;

    rc = mst_store_kv_get(tx->txn, MST_RUN_GRAPHS, tx->id, &text, &len);
    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "workflow \"%s\" graph: %s", tx->id,
                       mst_strerror(rc));
    }

    *def = json_loadb(text, len, 0, NULL);
    free(text);

    if (*def == NULL) {
        return mst_err(err, errlen, MST_EINVAL,
                       "workflow \"%s\": stored graph is not JSON", tx->id);
    }

    return MST_OK;
}


int
mst_run_graph_def(mst_run_env_t *env, const char *id, json_t *rec,
    json_t **def)
{
    int           rc;
    const char   *name;
    mst_graph_t  *g;
    mst_run_tx_t  tx;

    name = mst_run_str(rec, "workflow");
    g = (name != NULL && !json_is_true(json_object_get(rec, "inline")))
        ? mst_run_graph(env, name) : NULL;

    if (g != NULL) {
        *def = json_deep_copy(mst_graph_json(g));
        return *def ? MST_OK : MST_ENOMEM;
    }

    memset(&tx, 0, sizeof(mst_run_tx_t));
    tx.id = id;

    rc = mst_txn_begin(env->store, 1, &tx.txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_run_graph_load(&tx, def, NULL, 0);
    mst_txn_abort(tx.txn);

    return rc;
}


/* transaction frame */

static int
mst_run_tx_begin(mst_run_env_t *env, mst_run_tx_t *tx, const char *id,
    char *err, size_t errlen)
{
    int           rc;
    const char   *name;
    json_t       *def;

    memset(tx, 0, sizeof(mst_run_tx_t));
    tx->env = env;
    tx->id = id;

    rc = mst_txn_begin(env->store, 0, &tx->txn);
    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    rc = mst_store_wf_get(tx->txn, id, &tx->rec);
    if (rc != MST_OK) {
        mst_run_tx_abort(tx);
        return mst_err(err, errlen, rc, "workflow \"%s\": %s", id,
                       mst_strerror(rc));
    }

    rc = mst_store_checkpoint_last(tx->txn, id, &tx->seq, &tx->cp);
    if (rc != MST_OK) {
        mst_run_tx_abort(tx);
        return mst_err(err, errlen, rc, "workflow \"%s\" checkpoint: %s", id,
                       mst_strerror(rc));
    }

    /* a named graph as configured now; an inline one from the record */

    name = mst_run_str(tx->rec, "workflow");

    if (!json_is_true(json_object_get(tx->rec, "inline")) && name != NULL) {
        tx->graph = mst_run_graph(env, name);
    }

    if (tx->graph == NULL) {
        /* a workflow's own graph: parsed once, then from the cache */
        tx->graph = mst_graph_cache_get(id);
        tx->graph_cached = (tx->graph != NULL);
    }

    if (tx->graph == NULL) {
        rc = mst_run_graph_load(tx, &def, err, errlen);
        if (rc != MST_OK) {
            mst_run_tx_abort(tx);
            return rc;
        }

        tx->graph = mst_graph_parse(def, mst_run_agent_exists, env, err,
                                    errlen);
        json_decref(def);

        if (tx->graph == NULL) {
            mst_run_tx_abort(tx);
            return MST_EINVAL;
        }

        if (mst_graph_cache_keep(id, tx->graph)) {
            tx->graph_cached = 1;

        } else {
            tx->graph_owned = 1;
        }
    }

    return MST_OK;
}


static void
mst_run_tx_release(mst_run_tx_t *tx)
{
    json_decref(tx->rec);
    json_decref(tx->cp);

    if (tx->graph_owned) {
        mst_graph_free(tx->graph);

    } else if (tx->graph_cached) {
        mst_graph_cache_release(tx->graph);
    }

    tx->rec = NULL;
    tx->cp = NULL;
    tx->graph = NULL;
    tx->graph_owned = 0;
    tx->graph_cached = 0;
}


static void
mst_run_tx_abort(mst_run_tx_t *tx)
{
    mst_txn_abort(tx->txn);
    tx->txn = NULL;
    mst_run_tx_release(tx);
}


static int
mst_run_tx_commit(mst_run_tx_t *tx)
{
    int       rc;
    uint64_t  last;

    json_object_set_new(tx->rec, "updated_at", json_integer(mst_now_ms()));

    if (tx->cp_dirty) {
        tx->seq++;
        rc = mst_store_checkpoint_put(tx->txn, tx->id, tx->seq, tx->cp);
        if (rc != MST_OK) {
            mst_run_tx_abort(tx);
            return rc;
        }
        json_object_set_new(tx->rec, "checkpoint_seq",
                            json_integer((json_int_t) tx->seq));

    } else if (tx->cp != NULL) {
        /* unchanged (a progress flush): the next one need not parse it */
        mst_store_checkpoint_keep(tx->txn, tx->id, tx->seq, tx->cp);
    }

    rc = mst_store_wf_put(tx->txn, tx->id, tx->rec);
    if (rc != MST_OK) {
        mst_run_tx_abort(tx);
        return rc;
    }

    last = (uint64_t) mst_run_int(tx->rec, "last_event_id");

    rc = mst_txn_commit(tx->txn);
    tx->txn = NULL;

    if (rc == MST_OK && tx->events && tx->env->notify) {
        tx->env->notify(tx->env->notify_arg, tx->id, last);
    }

    mst_run_tx_release(tx);

    return rc;
}


static int
mst_run_fence(mst_run_tx_t *tx, uint64_t epoch)
{
    if (mst_run_int(tx->rec, "owner") != tx->env->pid
        || (uint64_t) mst_run_int(tx->rec, "epoch") != epoch)
    {
        return MST_CONFLICT;
    }

    return MST_OK;
}


static int
mst_run_event(mst_run_tx_t *tx, const char *name, json_t *data)
{
    int  rc;

    rc = mst_store_event_append(tx->txn, tx->id, tx->rec, name, data, NULL);
    json_decref(data);

    if (rc == MST_OK) {
        tx->events = 1;
    }

    return rc;
}


static void
mst_run_wf_update(mst_run_tx_t *tx)
{
    json_t  *started, *data, *user;

    started = json_object_get(tx->rec, "started_at");

    data = json_pack("{s:s, s:s, s:s, s:I, s:O}",
                     "id", tx->id,
                     "name", mst_run_str(tx->rec, "workflow"),
                     "status", mst_run_str(tx->rec, "status"),
                     "progress", (json_int_t) mst_run_int(tx->rec, "progress"),
                     "started_at", started ? started : json_null());
    if (data == NULL) {
        return;
    }

    json_incref(data);

    if (mst_run_event(tx, "workflow_update", data) == MST_OK) {

        /* the same change, with its "ts", on the feed of all workflows */

        user = json_object_get(tx->rec, "user_id");
        json_object_set(data, "user_id", user ? user : json_null());

        (void) mst_feed_append(tx->txn, "workflow_update", data,
                               MST_FEED_KEEP, NULL);
    }

    json_decref(data);
}


static json_t *
mst_run_agent_entry(mst_run_tx_t *tx, const char *node)
{
    json_t            *agents, *entry;
    const mst_node_t  *n;

    agents = json_object_get(tx->rec, "agents");
    if (agents == NULL) {
        agents = json_object();
        json_object_set_new(tx->rec, "agents", agents);
    }

    entry = json_object_get(agents, node);
    if (entry == NULL) {
        n = mst_graph_node(tx->graph, node);
        entry = json_pack("{s:s, s:s, s:s, s:i, s:n, s:{s:i, s:i, s:i},"
                          " s:i}",
                          "name", node,
                          "agent", n ? n->agent : node,
                          "status", "idle",
                          "progress", 0,
                          "current_task",
                          "metrics", "tokens", 0, "execution_ms", 0,
                          "memory_bytes", 0,
                          "attempts", 0);
        json_object_set_new(agents, node, entry);
    }

    return entry;
}


/* update a node's entry in the record and emit agent_status */
static void
mst_run_agent_status(mst_run_tx_t *tx, const char *node, const char *status,
    double progress, const char *task)
{
    json_t  *entry, *data;

    entry = mst_run_agent_entry(tx, node);

    if (status != NULL) {
        json_object_set_new(entry, "status", json_string(status));
    }

    if (progress >= 0) {
        /* percent, as the workflow's */
        json_object_set_new(entry, "progress",
                            json_integer((json_int_t) (progress * 100 + 0.5)));
    }

    if (task != NULL) {
        json_object_set_new(entry, "current_task", json_string(task));
    }

    data = json_deep_copy(entry);
    json_object_set_new(data, "id", json_string(node));
    json_object_set_new(data, "workflow_id", json_string(tx->id));

    mst_run_event(tx, "agent_status", data);
}


static const char *
mst_run_busy_status(mst_run_tx_t *tx, const char *node)
{
    const mst_agent_t  *agent;
    const mst_node_t   *n;

    /* agents whose plugin plans show as "planning" while they run */
    n = mst_graph_node(tx->graph, node);
    agent = n ? mst_run_agent(tx->env, n->agent) : NULL;

    if (agent != NULL && agent->plugin != NULL
        && agent->plugin->capabilities != NULL
        && strstr(agent->plugin->capabilities, "\"plan\"") != NULL)
    {
        return "planning";
    }

    return "executing";
}


/* steps of node still not done in the current frontier, other than index */
static int
mst_run_node_remaining(json_t *cp, const char *node, int index)
{
    int      n;
    size_t   i;
    json_t  *step;

    n = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(mst_run_str(step, "node"), node) != 0) {
            continue;
        }

        if ((json_object_get(step, "index") != NULL
             ? mst_run_int(step, "index") : -1) == index)
        {
            continue;
        }

        if (strcmp(mst_run_str(step, "status"), "done") != 0) {
            n++;
        }
    }

    return n;
}


static int
mst_run_node_total(json_t *cp, const char *node)
{
    int      n;
    size_t   i;
    json_t  *step;

    n = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(mst_run_str(step, "node"), node) == 0) {
            n++;
        }
    }

    return n;
}


/* the frontier entry of a step */
static json_t *
mst_run_frontier_step(json_t *cp, const char *node, int index)
{
    size_t   i;
    json_t  *step, *idx;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        idx = json_object_get(step, "index");

        if (strcmp(mst_run_str(step, "node"), node) == 0
            && (idx ? (int) json_integer_value(idx) : -1) == index)
        {
            return step;
        }
    }

    return NULL;
}


/*
 * After a failed attempt that will be retried: the backoff doubles per
 * attempt, and the step is not begun before "retry_at" even when a
 * sibling's commit begins the other ready steps.
 */
static int64_t
mst_run_retry_later(mst_run_tx_t *tx, const char *node, int index)
{
    int                shift;
    json_t            *step;
    int64_t            backoff;
    const mst_node_t  *n;

    n = mst_graph_node(tx->graph, node);
    step = mst_run_frontier_step(tx->cp, node, index);

    if (n == NULL || step == NULL) {
        return 1;
    }

    shift = (int) mst_run_int(step, "attempts") - 1;
    shift = shift < 0 ? 0 : (shift > 6 ? 6 : shift);

    backoff = n->retry_backoff_ms << shift;
    if (backoff < 1) {
        backoff = 1;
    }

    json_object_set_new(step, "retry_at",
                        json_integer(mst_now_ms() + backoff));

    return backoff;
}


/* begin the ready steps: running in cp, agent_status, plugin inputs */
static int
mst_run_begin_steps(mst_run_tx_t *tx, mst_run_next_t *next)
{
    char                task[96];
    size_t              n, i, total;
    json_t             *input, *entry;
    int64_t             now, wait;
    mst_step_t          ready[MST_RUN_MAX_READY];
    mst_run_step_t     *rs;
    const mst_agent_t  *agent;

    n = mst_engine_ready(tx->graph, tx->cp, ready, MST_RUN_MAX_READY);
    if (n == 0) {
        return MST_OK;
    }

    next->steps = calloc(n, sizeof(mst_run_step_t));
    if (next->steps == NULL) {
        return MST_ENOMEM;
    }

    now = mst_now_ms();

    for (i = 0; i < n; i++) {
        agent = mst_run_agent(tx->env, ready[i].node->agent);
        if (agent == NULL) {
            return MST_EINVAL;
        }

        entry = mst_run_frontier_step(tx->cp, ready[i].node->name,
                                      ready[i].index);
        if (entry != NULL && mst_run_int(entry, "retry_at") > now) {
            /*
             * Still backing off: the caller's timer begins it. The timer
             * may have fired a little early (clocks differ), so say when
             * to come back.
             */
            wait = mst_run_int(entry, "retry_at") - now;
            if (next->retry_in_ms == 0 || wait < next->retry_in_ms) {
                next->retry_in_ms = wait;
            }
            continue;
        }

        if (mst_engine_begin(tx->cp, ready[i].node->name, ready[i].index)
            != MST_OK)
        {
            return MST_ERROR;
        }

        ready[i].attempts++;

        input = mst_engine_input(tx->graph, tx->cp, &ready[i], agent->config,
                                 tx->id);
        if (input == NULL) {
            return MST_ENOMEM;
        }

        rs = &next->steps[next->nsteps++];
        snprintf(rs->node, sizeof(rs->node), "%s", ready[i].node->name);
        rs->index = ready[i].index;
        rs->attempt = ready[i].attempts;
        rs->timeout_ms = ready[i].node->timeout_ms;
        rs->agent = agent;
        rs->input = mst_json_dump(input, NULL);
        json_decref(input);

        if (rs->input == NULL) {
            return MST_ENOMEM;
        }

        total = mst_run_node_total(tx->cp, rs->node);

        if (rs->index >= 0) {
            snprintf(task, sizeof(task), "step %d of %zu", rs->index + 1,
                     total);
        } else {
            snprintf(task, sizeof(task), "attempt %d", rs->attempt);
        }

        json_object_set_new(mst_run_agent_entry(tx, rs->node), "attempts",
                            json_integer(rs->attempt));
        mst_run_agent_status(tx, rs->node, mst_run_busy_status(tx, rs->node),
                             -1, task);
    }

    tx->cp_dirty = 1;

    return MST_OK;
}


static json_t *
mst_run_result(mst_run_tx_t *tx)
{
    size_t       i;
    json_t      *state, *res, *out, *outputs, *item, *c;
    const char  *key, *last;
    char        *text;
    size_t       len, cap;

    state = json_object_get(tx->cp, "state");

    res = json_object_get(state, "result");
    if (json_is_string(res)) {
        return json_incref(res);
    }

    /* else the output of the node that completed last */

    outputs = json_object_get(state, "outputs");
    last = NULL;

    json_object_foreach(json_object_get(tx->cp, "visits"), key, item) {
        if (json_object_get(outputs, key) != NULL) {
            last = key;
        }
    }

    out = last ? json_object_get(outputs, last) : NULL;
    if (out == NULL || json_is_null(out)) {
        return json_null();
    }

    c = json_object_get(out, "content");
    if (json_is_string(c)) {
        return json_incref(c);
    }

    if (json_is_array(out)) {
        text = NULL;
        len = 0;
        cap = 0;

        json_array_foreach(out, i, item) {
            c = json_object_get(item, "content");
            if (!json_is_string(c)) {
                continue;
            }

            if (len + json_string_length(c) + 2 > cap) {
                cap = (len + json_string_length(c) + 2) * 2;
                text = realloc(text, cap);
                if (text == NULL) {
                    return json_null();
                }
            }

            if (len) {
                text[len++] = '\n';
            }
            memcpy(text + len, json_string_value(c), json_string_length(c));
            len += json_string_length(c);
        }

        if (text != NULL) {
            res = json_stringn(text, len);
            free(text);
            return res;
        }
    }

    text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    res = json_string(text ? text : "");
    free(text);

    return res;
}


static void
mst_run_finalize(mst_run_tx_t *tx, const char *status, const char *error)
{
    const char  *key;
    json_t      *entry, *result, *data;
    int64_t      now;

    now = mst_now_ms();

    json_object_set_new(tx->rec, "status", json_string(status));
    json_object_set_new(tx->rec, "finished_at", json_integer(now));
    json_object_set_new(tx->rec, "owner", json_integer(0));
    json_object_set_new(tx->rec, "lease_until", json_integer(0));

    if (strcmp(status, "complete") == 0) {
        json_object_set_new(tx->rec, "progress", json_integer(100));
        result = mst_run_result(tx);
        json_object_set(tx->rec, "result", result);

    } else {
        result = json_null();
        if (error != NULL) {
            json_object_set_new(tx->rec, "error", json_string(error));
        }
    }

    /* agents still busy stop with the workflow */

    json_object_foreach(json_object_get(tx->rec, "agents"), key, entry) {
        const char *s = mst_run_str(entry, "status");

        if (s != NULL && (strcmp(s, "executing") == 0
                          || strcmp(s, "planning") == 0
                          || strcmp(s, "waiting") == 0))
        {
            mst_run_agent_status(tx, key,
                                 strcmp(status, "failed") == 0 ? "error"
                                                               : "idle",
                                 -1, status);
        }
    }

    mst_run_wf_update(tx);

    if (strcmp(status, "failed") == 0) {
        data = json_pack("{s:s, s:s, s:s}", "id", tx->id, "status", status,
                         "error", error ? error : "failed");
        mst_run_event(tx, "error", data);

    } else {
        data = json_pack("{s:s, s:s, s:O}", "id", tx->id, "status", status,
                         "result", result);
        mst_run_event(tx, "done", data);
    }

    json_decref(result);

    mst_run_log(tx->env, MAESTRO_LOG_INFO, "workflow \"%s\" %s%s%s", tx->id,
                status, error ? ": " : "", error ? error : "");
}


/* after the engine moved: progress, status events, next steps */
static int
mst_run_after(mst_run_tx_t *tx, int er, mst_run_next_t *next)
{
    int          progress;
    const char  *error;

    tx->cp_dirty = 1;
    next->status = er;

    if (er != MST_ENGINE_DONE
        && json_is_true(json_object_get(tx->rec, "cancel_requested")))
    {
        mst_engine_cancel(tx->cp);
        mst_run_finalize(tx, "cancelled", NULL);
        next->status = MST_ENGINE_FAILED;
        next->finished = 1;
        return MST_OK;
    }

    switch (er) {

    case MST_ENGINE_DONE:
        mst_run_finalize(tx, "complete", NULL);
        next->finished = 1;
        return MST_OK;

    case MST_ENGINE_FAILED:
        error = mst_run_str(tx->cp, "error");
        mst_run_finalize(tx, "failed", error ? error : "failed");
        next->finished = 1;
        return MST_OK;

    default:
        break;
    }

    /* the engine's estimate drops when a foreach expands or a loop goes
       round again; what users see only moves forward */
    progress = mst_engine_progress(tx->graph, tx->cp);

    if (progress > mst_run_int(tx->rec, "progress")) {
        json_object_set_new(tx->rec, "progress", json_integer(progress));
        mst_run_wf_update(tx);
    }

    if (er == MST_ENGINE_RETRY) {
        return MST_OK;
    }

    return mst_run_begin_steps(tx, next);
}


/* a transaction on a workflow this process owns at this epoch */
static int
mst_run_tx_owned(mst_run_env_t *env, mst_run_tx_t *tx, const char *id,
    uint64_t epoch, mst_run_next_t *next, char *err, size_t errlen)
{
    int  rc;

    memset(next, 0, sizeof(mst_run_next_t));
    next->epoch = epoch;

    rc = mst_run_tx_begin(env, tx, id, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_run_fence(tx, epoch);
    if (rc != MST_OK) {
        mst_run_tx_abort(tx);
        return mst_err(err, errlen, rc, "workflow \"%s\": lease lost", id);
    }

    return MST_OK;
}


/* the end of every step-moving transaction: next steps, then commit */
static int
mst_run_settle(mst_run_tx_t *tx, int er, mst_run_next_t *next, char *err,
    size_t errlen)
{
    int  rc;

    rc = mst_run_after(tx, er, next);
    if (rc != MST_OK) {
        mst_run_next_free(next);
        mst_run_tx_abort(tx);
        return mst_err(err, errlen, rc, "workflow \"%s\": %s", tx->id,
                       mst_strerror(rc));
    }

    rc = mst_run_tx_commit(tx);
    if (rc != MST_OK) {
        mst_run_next_free(next);
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    return MST_OK;
}


/* a failed attempt: the agent waits for a retry or is in error */
static void
mst_run_step_error(mst_run_tx_t *tx, const char *node, int index,
    const char *msg, int er, mst_run_next_t *next)
{
    const mst_node_t  *n;

    n = mst_graph_node(tx->graph, node);

    mst_run_agent_status(tx, node,
                         er == MST_ENGINE_RETRY ? "waiting" : "error", -1,
                         msg);

    mst_run_event(tx, "log_entry",
        json_pack("{s:I, s:s, s:s, s:s, s:s}",
                  "timestamp", (json_int_t) mst_now_ms(),
                  "level", "error", "agent", n ? n->agent : node,
                  "node", node, "message", msg));

    if (er == MST_ENGINE_RETRY) {
        next->retry_in_ms = mst_run_retry_later(tx, node, index);
    }
}


/* the record and first checkpoint; with next, claimed at once */
static int
mst_run_new(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, char *id, json_t **rec, mst_run_next_t *next,
    char *err, size_t errlen)
{
    int            rc, inl;
    char          *text;
    size_t         i;
    int64_t        now;
    json_t        *input, *cp;
    mst_run_tx_t   tx;

    memset(&tx, 0, sizeof(mst_run_tx_t));
    tx.env = env;
    tx.id = id;
    tx.graph = (mst_graph_t *) graph;

    mst_id_new(id);
    now = mst_now_ms();
    inl = (mst_run_graph(env, workflow_name) != graph);

    input = json_pack("{s:s, s:o}", "prompt", prompt, "context",
                      context ? json_deep_copy(context) : json_array());
    if (input == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    if (user_id != NULL) {
        json_object_set_new(input, "user_id", json_string(user_id));
    }

    cp = mst_engine_start(graph, input);
    json_decref(input);

    if (cp == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    tx.cp = cp;
    tx.rec = json_pack("{s:s, s:s, s:b, s:s, s:s?, s:I, s:n, s:n,"
                       " s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:{},"
                       " s:{s:i, s:i, s:i}, s:n, s:n, s:b}",
                       "id", id,
                       "workflow", workflow_name,
                       "inline", inl,
                       "status", "queued",
                       "user_id", user_id,
                       "created_at", (json_int_t) now,
                       "started_at",
                       "finished_at",
                       "updated_at", (json_int_t) now,
                       "progress", 0,
                       "owner", 0,
                       "epoch", 0,
                       "lease_until", 0,
                       "last_event_id", 0,
                       "checkpoint_seq", 0,
                       "agents",
                       "tokens", "prompt", 0, "completion", 0, "total", 0,
                       "result",
                       "error",
                       "cancel_requested", 0);
    if (tx.rec == NULL) {
        json_decref(cp);
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    json_object_set_new(tx.rec, "prompt", json_string(prompt));

    rc = mst_txn_begin(env->store, 0, &tx.txn);
    if (rc != MST_OK) {
        json_decref(tx.rec);
        json_decref(cp);
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    if (inl) {
        text = json_dumps(mst_graph_json(graph), JSON_COMPACT);
        rc = text ? mst_store_kv_put(tx.txn, MST_RUN_GRAPHS, id, text,
                                     strlen(text))
                  : MST_ENOMEM;
        free(text);

        if (rc != MST_OK) {
            tx.graph = NULL;
            mst_run_tx_abort(&tx);
            return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
        }
    }

    /* every node starts idle, so a UI can draw the graph at once */
    for (i = 0; i < mst_graph_node_count(graph); i++) {
        mst_run_agent_entry(&tx, mst_graph_node_at(graph, i)->name);
    }

    mst_run_wf_update(&tx);

    tx.cp_dirty = 1;
    tx.seq = 0;

    if (next != NULL) {
        /* the accepting process runs it: claimed in this transaction */
        memset(next, 0, sizeof(mst_run_next_t));
        next->epoch = 1;

        json_object_set_new(tx.rec, "owner", json_integer(env->pid));
        json_object_set_new(tx.rec, "epoch", json_integer(1));
        json_object_set_new(tx.rec, "lease_until",
                            json_integer(now + env->lease_ms));
        json_object_set_new(tx.rec, "status", json_string("running"));
        json_object_set_new(tx.rec, "started_at", json_integer(now));
        mst_run_wf_update(&tx);

        rc = mst_run_after(&tx, MST_ENGINE_CONTINUE, next);
        if (rc != MST_OK) {
            mst_run_next_free(next);
            tx.graph = NULL;
            mst_run_tx_abort(&tx);
            return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
        }
    }

    *rec = json_incref(tx.rec);
    tx.graph = NULL;        /* borrowed: not freed by release */

    rc = mst_run_tx_commit(&tx);
    if (rc != MST_OK) {
        if (next != NULL) {
            mst_run_next_free(next);
        }
        json_decref(*rec);
        *rec = NULL;
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    *rec = mst_run_own_copy(*rec);

    return MST_OK;
}


int
mst_run_create(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, char *id, json_t **rec, char *err, size_t errlen)
{
    return mst_run_new(env, graph, workflow_name, prompt, context, user_id,
                       id, rec, NULL, err, errlen);
}


int
mst_run_submit(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, char *id, json_t **rec, mst_run_next_t *next,
    char *err, size_t errlen)
{
    return mst_run_new(env, graph, workflow_name, prompt, context, user_id,
                       id, rec, next, err, errlen);
}


int
mst_run_claim(mst_run_env_t *env, const char *id, int force_own,
    mst_run_alive_pt alive, mst_run_next_t *next, char *err, size_t errlen)
{
    int            rc, recovered;
    long           owner;
    int64_t        now;
    const char    *status;
    mst_run_tx_t   tx;

    memset(next, 0, sizeof(mst_run_next_t));

    rc = mst_run_tx_begin(env, &tx, id, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    now = mst_now_ms();
    status = mst_run_str(tx.rec, "status");
    owner = (long) mst_run_int(tx.rec, "owner");

    if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0) {
        mst_err(err, errlen, MST_EINVAL, "workflow \"%s\" is %s", id, status);
        mst_run_tx_abort(&tx);
        return MST_EINVAL;
    }

    if (owner != 0
        && mst_run_int(tx.rec, "lease_until") > now
        && ((owner == env->pid && !force_own)
            || (owner != env->pid && alive(owner))))
    {
        mst_run_tx_abort(&tx);
        return mst_err(err, errlen, MST_CONFLICT,
                       "workflow \"%s\" is owned by process %ld", id, owner);
    }

    next->epoch = (uint64_t) mst_run_int(tx.rec, "epoch") + 1;

    json_object_set_new(tx.rec, "owner", json_integer(env->pid));
    json_object_set_new(tx.rec, "epoch",
                        json_integer((json_int_t) next->epoch));
    json_object_set_new(tx.rec, "lease_until",
                        json_integer(now + env->lease_ms));

    if (strcmp(status, "queued") == 0) {
        json_object_set_new(tx.rec, "status", json_string("running"));
        json_object_set_new(tx.rec, "started_at", json_integer(now));
        mst_run_wf_update(&tx);
    }

    recovered = mst_engine_recover(tx.graph, tx.cp);
    tx.cp_dirty = 1;

    if (owner != 0) {
        mst_run_log(env, MAESTRO_LOG_WARN,
                    "workflow \"%s\" resumed by process %ld from checkpoint "
                    "%llu (previous owner %ld, %d step(s) interrupted)",
                    id, env->pid, (unsigned long long) tx.seq, owner,
                    recovered);

        mst_run_event(&tx, "log_entry",
            json_pack("{s:I, s:s, s:s, s:s}",
                      "timestamp", (json_int_t) now,
                      "level", "warn",
                      "agent", "maestro",
                      "message", "workflow resumed from its last checkpoint"
                                 " by another worker"));
    }

    return mst_run_settle(&tx,
                          strcmp(mst_run_str(tx.cp, "status"), "failed") == 0
                          ? MST_ENGINE_FAILED : MST_ENGINE_CONTINUE,
                          next, err, errlen);
}


int
mst_run_begin_ready(mst_run_env_t *env, const char *id, uint64_t epoch,
    mst_run_next_t *next, char *err, size_t errlen)
{
    int           rc;
    mst_run_tx_t  tx;

    rc = mst_run_tx_owned(env, &tx, id, epoch, next, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    return mst_run_settle(&tx, MST_ENGINE_CONTINUE, next, err, errlen);
}


/*
 * The user's running total and everyone's, in the same transaction as the
 * workflow's own numbers, so they never disagree.
 */
static int
mst_run_user_account(mst_run_tx_t *tx, json_t *by_model)
{
    const char  *user;

    user = json_string_value(json_object_get(tx->rec, "user_id"));

    return mst_usage_put(tx->txn, (user && user[0]) ? user : NULL,
                         by_model);
}


/* tokens.by_model and tokens.cost_usd of the record, and the user's */
static int
mst_run_account(mst_run_tx_t *tx, json_t *by_model)
{
    json_t  *tokens, *all;

    tokens = json_object_get(tx->rec, "tokens");

    all = json_object_get(tokens, "by_model");
    if (all == NULL) {
        all = json_object();
        json_object_set_new(tokens, "by_model", all);
    }

    mst_usage_merge(tokens, all, by_model);

    return mst_run_user_account(tx, by_model);
}


int
mst_run_user_usage(mst_run_env_t *env, const char *user, json_t **usage,
    char *err, size_t errlen)
{
    return mst_usage_get(env->store, user, usage, err, errlen);
}


double
mst_run_price(const mst_run_env_t *env, const char *model, long pt, long ct)
{
    return mst_usage_price(env->prices, env->nprices, model, pt, ct);
}


/* pending plugin events, tokens, progress into the transaction */
static int
mst_run_apply_ctx(mst_run_tx_t *tx, maestro_ctx_t *ctx)
{
    int          rc;
    size_t       i;
    json_t      *ev, *entry, *tokens, *metrics;
    const char  *name, *node;
    long         total;

    node = ctx->step->node;

    json_array_foreach(ctx->events, i, ev) {
        name = json_string_value(json_array_get(ev, 0));

        if (strcmp(name, "log_entry") == 0) {
            rc = mst_store_agent_log_append(tx->txn, ctx->step->agent->name,
                                            json_array_get(ev, 1),
                                            tx->env->agent_log_keep);
            if (rc != MST_OK) {
                return rc;
            }
        }

        rc = mst_run_event(tx, name, json_incref(json_array_get(ev, 1)));
        if (rc != MST_OK) {
            return rc;
        }
    }

    json_array_clear(ctx->events);

    total = ctx->prompt_tokens + ctx->completion_tokens;

    if (total) {
        tokens = json_object_get(tx->rec, "tokens");
        json_object_set_new(tokens, "prompt", json_integer(
            mst_run_int(tokens, "prompt") + ctx->prompt_tokens));
        json_object_set_new(tokens, "completion", json_integer(
            mst_run_int(tokens, "completion") + ctx->completion_tokens));
        json_object_set_new(tokens, "total", json_integer(
            mst_run_int(tokens, "total") + total));

        entry = mst_run_agent_entry(tx, node);
        metrics = json_object_get(entry, "metrics");
        json_object_set_new(metrics, "tokens", json_integer(
            mst_run_int(metrics, "tokens") + total));

        ctx->prompt_tokens = 0;
        ctx->completion_tokens = 0;
    }

    if (ctx->by_model != NULL) {
        rc = mst_run_account(tx, ctx->by_model);
        json_decref(ctx->by_model);
        ctx->by_model = NULL;

        if (rc != MST_OK) {
            return rc;
        }
    }

    if (ctx->progress_dirty) {
        ctx->progress_dirty = 0;
        mst_run_agent_status(tx, node, NULL, ctx->progress,
                             ctx->current_task[0] ? ctx->current_task : NULL);
    }

    return MST_OK;
}


/* runs on a pool thread, lock held */
int
mst_run_ctx_flush(maestro_ctx_t *ctx)
{
    int           rc;
    mst_run_tx_t  tx;

    ctx->last_flush = mst_mono_ms();

    if (ctx->fenced
        || (json_array_size(ctx->events) == 0 && !ctx->progress_dirty))
    {
        return MST_OK;
    }

    rc = mst_run_tx_begin(ctx->env, &tx, ctx->id, NULL, 0);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_run_fence(&tx, ctx->epoch);
    if (rc != MST_OK) {
        ctx->fenced = 1;
        mst_run_tx_abort(&tx);
        return rc;
    }

    rc = mst_run_apply_ctx(&tx, ctx);
    if (rc != MST_OK) {
        mst_run_tx_abort(&tx);
        return rc;
    }

    return mst_run_tx_commit(&tx);
}


static int
mst_run_retryable(int prc)
{
    return prc != MAESTRO_EPERMANENT && prc != MAESTRO_ECANCELLED
           && prc != MAESTRO_EINVAL;
}


int
mst_run_step_exec(mst_run_env_t *env, const char *id, uint64_t epoch,
    const mst_run_step_t *step, volatile int *state, mst_run_next_t *next,
    char *err, size_t errlen)
{
    int             rc, prc, er, remaining, retryable;
    char            msg[MST_ERRLEN + 64];
    int64_t         elapsed;
    json_t         *entry, *metrics, *output;
    mst_run_tx_t    tx;
    maestro_ctx_t   ctx;

    memset(next, 0, sizeof(mst_run_next_t));
    next->epoch = epoch;

    rc = mst_host_ctx_init(&ctx, env, id, epoch, step, state);
    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "out of memory");
    }

    prc = step->agent->plugin->run(&ctx, &mst_host, step->agent->data,
                                   step->input);

    elapsed = mst_mono_ms() - ctx.started;

    /* the event loop may have given up on us (timeout): then it records
       the failure itself and our result is dropped */

    if (!__sync_bool_compare_and_swap(state, MST_STEP_RUNNING,
                                      MST_STEP_COMMITTING))
    {
        mst_host_ctx_free(&ctx);
        return mst_err(err, errlen, MST_ETIMEDOUT,
                       "step \"%s\" abandoned", step->node);
    }

    pthread_mutex_lock(&ctx.lock);

    rc = mst_run_tx_begin(env, &tx, id, err, errlen);
    if (rc != MST_OK) {
        goto done;
    }

    rc = mst_run_fence(&tx, epoch);
    if (rc != MST_OK) {
        mst_run_tx_abort(&tx);
        mst_err(err, errlen, rc, "workflow \"%s\": lease lost", id);
        goto done;
    }

    rc = mst_run_apply_ctx(&tx, &ctx);
    if (rc != MST_OK) {
        mst_run_tx_abort(&tx);
        mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
        goto done;
    }

    entry = mst_run_agent_entry(&tx, step->node);
    metrics = json_object_get(entry, "metrics");
    json_object_set_new(metrics, "execution_ms", json_integer(
        mst_run_int(metrics, "execution_ms") + elapsed));

    remaining = mst_run_node_remaining(tx.cp, step->node, step->index);

    if (prc == MAESTRO_OK) {
        output = ctx.output ? ctx.output : json_null();

        er = mst_engine_complete(tx.graph, tx.cp, step->node, step->index,
                                 output, ctx.patch);

        if (er < 0) {
            mst_run_tx_abort(&tx);
            rc = mst_err(err, errlen, er, "step \"%s\" not running: %s",
                         step->node, mst_strerror(er));
            goto done;
        }

        if (remaining == 0) {
            mst_run_agent_status(&tx, step->node, "complete", 1.0, "done");

        } else {
            mst_run_agent_status(&tx, step->node, NULL,
                1.0 - (double) remaining
                      / mst_run_node_total(tx.cp, step->node),
                NULL);
        }

    } else if (prc == MAESTRO_ECANCELLED
               && (ctx.cancel_seen
                   || json_is_true(json_object_get(tx.rec,
                                                   "cancel_requested"))))
    {
        /* stopped because the user cancelled: mst_run_after() ends the
           workflow as cancelled */
        er = MST_ENGINE_CONTINUE;

    } else {
        retryable = mst_run_retryable(prc);

        if ((prc == MAESTRO_ECANCELLED || prc == MAESTRO_ETIMEDOUT)
            && mst_mono_ms() >= ctx.deadline && !ctx.cancel_seen)
        {
            /* the plugin gave up at its deadline: a timeout, retried */
            snprintf(msg, sizeof(msg), "timed out after %lld ms",
                     (long long) step->timeout_ms);
            retryable = 1;

        } else {
            snprintf(msg, sizeof(msg), "%s (%s)",
                     ctx.error[0] ? ctx.error : mst_host.strerror(prc),
                     mst_host.strerror(prc));
        }

        er = mst_engine_fail(tx.graph, tx.cp, step->node, step->index, msg,
                             retryable);

        if (er < 0) {
            mst_run_tx_abort(&tx);
            rc = mst_err(err, errlen, er, "step \"%s\": %s", step->node,
                         mst_strerror(er));
            goto done;
        }

        mst_run_step_error(&tx, step->node, step->index, msg, er, next);
    }

    rc = mst_run_settle(&tx, er, next, err, errlen);

done:

    pthread_mutex_unlock(&ctx.lock);
    mst_host_ctx_free(&ctx);

    return rc;
}


int
mst_run_step_failed(mst_run_env_t *env, const char *id, uint64_t epoch,
    const char *node, int index, const char *error, int retryable,
    mst_run_next_t *next, char *err, size_t errlen)
{
    int           rc, er;
    mst_run_tx_t  tx;

    rc = mst_run_tx_owned(env, &tx, id, epoch, next, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    er = mst_engine_fail(tx.graph, tx.cp, node, index, error, retryable);
    if (er < 0) {
        mst_run_tx_abort(&tx);
        return mst_err(err, errlen, er, "step \"%s\": %s", node,
                       mst_strerror(er));
    }

    mst_run_step_error(&tx, node, index, error, er, next);

    return mst_run_settle(&tx, er, next, err, errlen);
}


int
mst_run_cancel(mst_run_env_t *env, const char *id, mst_run_alive_pt alive,
    json_t **rec, int *final, char *err, size_t errlen)
{
    int            rc;
    long           owner;
    const char    *status;
    mst_run_tx_t   tx;

    *final = 0;
    *rec = NULL;

    rc = mst_run_tx_begin(env, &tx, id, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    status = mst_run_str(tx.rec, "status");

    if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0) {
        *rec = json_incref(tx.rec);
        mst_run_tx_abort(&tx);
        return mst_err(err, errlen, MST_EXISTS,
                       "workflow \"%s\" already finished (%s)", id, status);
    }

    json_object_set_new(tx.rec, "cancel_requested", json_true());

    owner = (long) mst_run_int(tx.rec, "owner");

    if (strcmp(status, "queued") == 0 || owner == 0 || !alive(owner)) {
        mst_engine_cancel(tx.cp);
        tx.cp_dirty = 1;
        mst_run_finalize(&tx, "cancelled", NULL);
        *final = 1;

    } else {
        mst_run_event(&tx, "log_entry",
            json_pack("{s:I, s:s, s:s, s:s}",
                      "timestamp", (json_int_t) mst_now_ms(),
                      "level", "info", "agent", "maestro",
                      "message", "cancellation requested"));
    }

    *rec = json_incref(tx.rec);

    rc = mst_run_tx_commit(&tx);
    if (rc != MST_OK) {
        json_decref(*rec);
        *rec = NULL;
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    *rec = mst_run_own_copy(*rec);

    return MST_OK;
}
