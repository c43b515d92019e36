/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_run.h. Every public function of mst_run*.c is one write
 * transaction (the read-modify-write of record + checkpoint + events is
 * atomic because LMDB serialises writers across threads and processes).
 * All of it runs on pool threads.
 *
 * This file: the transaction (mst_run_tx_t: record, last checkpoint and
 * graph read together, fenced, written back together), the record's
 * bookkeeping (events, workflow_update, agent entries), and a workflow's
 * start: create, submit, claim. What follows a commit (the ready steps,
 * retries, the final state) is in mst_run_next.c; running a step and
 * committing its result in mst_run_step.c; cancellation in
 * mst_run_cancel.c; leases in mst_run_lease.c; retention in
 * mst_run_prune.c.
 */

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mst_feed.h"
#include "mst_host.h"
#include "mst_json.h"
#include "mst_json_delta.h"
#include "mst_usage.h"
#include "mst_run.h"
#include "mst_run_int.h"


/*
 * Inline graphs (sent with a request) are kept apart from the record,
 * which every step rewrites: a part of the workflow (mst_store.h); those
 * stored before the parts are in the "kv" namespace below, which no agent
 * name can reach (agent names have no dot).
 */
#define MST_RUN_GRAPHS  "maestro.graphs"

/*
 * A small workflow keeps its agents and prompt in its record, as records
 * did before the parts: rewriting a few hundred bytes costs less than a
 * write to one more tree. Past these, they are parts.
 */
#define MST_RUN_INLINE_AGENTS  32
#define MST_RUN_INLINE_PROMPT  4096


/* helpers on JSON fields */

int64_t
mst_run_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}


const char *
mst_run_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}


/*
 * The caller's own copy of a record just written: the written one stays in
 * the store's parse cache, where the next write transaction may take and
 * change it on another thread.
 */
json_t *
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


void
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


static int
mst_run_graph_load(mst_run_tx_t *tx, json_t **def, char *err,
    size_t errlen)
{
    int     rc;
    char   *text;
    size_t  len;

    rc = mst_store_part_get(tx->txn, tx->id, MST_PART_GRAPH, "", def);
    if (rc != MST_NOTFOUND) {
        return rc == MST_OK ? MST_OK
                            : mst_err(err, errlen, rc,
                                      "workflow \"%s\" graph: %s", tx->id,
                                      mst_strerror(rc));
    }

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

int
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

    /* new containers, shared leaves: the step's change is found cheaply */
    tx->cp_read = mst_json_tree_copy(tx->cp);

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
    json_decref(tx->cp_read);
    json_decref(tx->agents);

    if (tx->graph_owned) {
        mst_graph_free(tx->graph);

    } else if (tx->graph_cached) {
        mst_graph_cache_release(tx->graph);
    }

    tx->rec = NULL;
    tx->cp = NULL;
    tx->cp_read = NULL;
    tx->agents = NULL;
    tx->graph = NULL;
    tx->graph_owned = 0;
    tx->graph_cached = 0;
}


void
mst_run_tx_abort(mst_run_tx_t *tx)
{
    mst_txn_abort(tx->txn);
    tx->txn = NULL;

    /* the suspect it began is not running */
    if (tx->lane != 0) {
        mst_run_lane_release(tx->env, tx->lane);
        tx->lane = 0;
    }

    mst_run_tx_release(tx);
}


int
mst_run_tx_commit(mst_run_tx_t *tx)
{
    int          rc;
    json_t      *entry;
    uint64_t     last;
    const char  *key;

    json_object_set_new(tx->rec, "updated_at", json_integer(mst_now_ms()));

    if (tx->cp_dirty) {
        tx->seq++;
        rc = mst_store_checkpoint_put_delta(tx->txn, tx->id, tx->seq,
                                            tx->cp, tx->cp_read);
        if (rc != MST_OK) {
            mst_run_tx_abort(tx);
            return rc;
        }
        json_object_set_new(tx->rec, "checkpoint_seq",
                            json_integer((json_int_t) tx->seq));

    } else if (tx->cp != NULL) {
        /* unchanged (a progress flush): the next one need not parse it */
        mst_store_checkpoint_keep(tx->txn, tx->id, tx->seq, tx->cp,
                                  tx->cp_read);
    }

    json_object_foreach(tx->agents, key, entry) {
        rc = mst_store_part_put(tx->txn, tx->id, MST_PART_AGENT, key, entry);
        if (rc != MST_OK) {
            mst_run_tx_abort(tx);
            return rc;
        }
    }

    rc = mst_store_wf_put(tx->txn, tx->id, tx->rec);
    if (rc != MST_OK) {
        mst_run_tx_abort(tx);
        return rc;
    }

    last = (uint64_t) mst_run_int(tx->rec, "last_event_id");

    rc = mst_txn_commit(tx->txn);
    tx->txn = NULL;

    if (tx->lane != 0) {
        /* kept by the suspect it began, unless that was not committed */
        if (rc != MST_OK) {
            mst_run_lane_release(tx->env, tx->lane);
        }
        tx->lane = 0;
    }

    if (rc == MST_OK && tx->events && tx->env->notify) {
        tx->env->notify(tx->env->notify_arg, tx->id, last);
    }

    mst_run_tx_release(tx);

    return rc;
}


/* a transaction on a workflow this process owns at this epoch */
int
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


int
mst_run_fence(mst_run_tx_t *tx, uint64_t epoch)
{
    if (mst_run_int(tx->rec, "owner") != tx->env->pid
        || (uint64_t) mst_run_int(tx->rec, "epoch") != epoch)
    {
        return MST_CONFLICT;
    }

    return MST_OK;
}


int
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


void
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


json_t *
mst_run_agent_entry(mst_run_tx_t *tx, const char *node)
{
    int                rc;
    json_t            *agents, *entry;
    const mst_node_t  *n;

    /* a record written before the parts holds its agents */
    agents = json_object_get(tx->rec, "agents");

    if (agents == NULL) {
        if (tx->agents == NULL) {
            tx->agents = json_object();
        }

        agents = tx->agents;
        entry = json_object_get(agents, node);

        if (entry == NULL) {
            rc = mst_store_part_get(tx->txn, tx->id, MST_PART_AGENT, node,
                                    &entry);
            if (rc == MST_OK && json_is_object(entry)) {
                json_object_set_new(agents, node, entry);
                return entry;
            }

            json_decref(entry);
            entry = NULL;
        }
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
void
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


/* the record and first checkpoint; with next, claimed at once */
static int
mst_run_new(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, const char *key_id, const char *team, char *id,
    json_t **rec, mst_run_next_t *next, char *err, size_t errlen)
{
    int            rc, inl;
    size_t         i;
    int64_t        now;
    json_t        *input, *cp, *prompt_json, *agents;
    mst_run_tx_t   tx;

    memset(&tx, 0, sizeof(mst_run_tx_t));
    tx.env = env;
    tx.id = id;
    tx.graph = (mst_graph_t *) graph;

    if (next != NULL) {
        memset(next, 0, sizeof(mst_run_next_t));
    }

    /* new work: refused once the store is past its headroom */
    rc = mst_run_admit(env, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

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
                       " s:I, s:i, s:i, s:i, s:i, s:i, s:i,"
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
                       "tokens", "prompt", 0, "completion", 0, "total", 0,
                       "result",
                       "error",
                       "cancel_requested", 0);
    if (tx.rec == NULL) {
        json_decref(cp);
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    /* the API key and team that submitted it: its agents' tokens count
       against them */
    if (key_id != NULL && key_id[0] != '\0') {
        json_object_set_new(tx.rec, "key_id", json_string(key_id));
    }

    if (team != NULL && team[0] != '\0') {
        json_object_set_new(tx.rec, "team", json_string(team));
    }

    rc = mst_txn_begin(env->store, 0, &tx.txn);
    if (rc != MST_OK) {
        json_decref(tx.rec);
        json_decref(cp);
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    /* written once: the prompt, an inline graph */

    prompt_json = json_string(prompt);
    rc = prompt_json ? MST_OK : MST_ENOMEM;

    if (mst_graph_node_count(graph) <= MST_RUN_INLINE_AGENTS) {
        json_object_set_new(tx.rec, "agents", json_object());
    }

    if (rc == MST_OK && strlen(prompt) <= MST_RUN_INLINE_PROMPT) {
        json_object_set(tx.rec, "prompt", prompt_json);

    } else if (rc == MST_OK) {
        rc = mst_store_part_put(tx.txn, id, MST_PART_PROMPT, "",
                                prompt_json);
    }

    if (rc == MST_OK && inl) {
        rc = mst_store_part_put(tx.txn, id, MST_PART_GRAPH, "",
                                mst_graph_json(graph));
    }

    if (rc != MST_OK) {
        json_decref(prompt_json);
        tx.graph = NULL;
        mst_run_tx_abort(&tx);
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
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
            if (mst_txn_failed(tx.txn) != MST_OK) {
                rc = mst_txn_failed(tx.txn);
            }
            mst_run_next_free(next);
            json_decref(prompt_json);
            tx.graph = NULL;
            mst_run_tx_abort(&tx);
            return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
        }
    }

    *rec = json_incref(tx.rec);
    agents = json_incref(tx.agents);
    tx.graph = NULL;        /* borrowed: not freed by release */

    rc = mst_run_tx_commit(&tx);
    if (rc != MST_OK) {
        if (next != NULL) {
            mst_run_next_free(next);
        }
        json_decref(*rec);
        json_decref(agents);
        json_decref(prompt_json);
        *rec = NULL;
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    /* the answer shows the record whole, as the API does */

    *rec = mst_run_own_copy(*rec);

    if (*rec != NULL) {
        if (json_object_get(*rec, "agents") == NULL) {
            json_object_set_new(*rec, "agents",
                                agents ? agents : json_object());
            agents = NULL;
        }

        json_object_set_new(*rec, "prompt", prompt_json);
        json_decref(agents);

    } else {
        json_decref(agents);
        json_decref(prompt_json);
    }

    return MST_OK;
}


int
mst_run_create(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, char *id, json_t **rec, char *err, size_t errlen)
{
    return mst_run_new(env, graph, workflow_name, prompt, context, user_id,
                       NULL, NULL, id, rec, NULL, err, errlen);
}


int
mst_run_submit(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, const char *key_id, const char *team, char *id,
    json_t **rec, mst_run_next_t *next, char *err, size_t errlen)
{
    return mst_run_new(env, graph, workflow_name, prompt, context, user_id,
                       key_id, team, id, rec, next, err, errlen);
}


int
mst_run_claim(mst_run_env_t *env, const char *id, int force_own,
    mst_run_alive_pt alive, mst_run_next_t *next, char *err, size_t errlen)
{
    int            rc, recovered;
    long           owner;
    int64_t        now;
    uint64_t       seq;
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

    if (mst_run_full_now(&tx, MST_ENGINE_CONTINUE)) {
        /*
         * Past the reserve (its owner could not even renew the lease):
         * not resumed, only ended, in the smallest write
         */
        return mst_run_full_commit(&tx, next, err, errlen);
    }

    recovered = mst_engine_recover(tx.graph, tx.cp);
    tx.cp_dirty = 1;

    if (owner != 0) {
        mst_run_event(&tx, "log_entry",
            json_pack("{s:I, s:s, s:s, s:s}",
                      "timestamp", (json_int_t) now,
                      "level", "warn",
                      "agent", "maestro",
                      "message", "workflow resumed from its last checkpoint"
                                 " by another worker"));
    }

    seq = tx.seq;

    rc = mst_run_settle(&tx,
                        strcmp(mst_run_str(tx.cp, "status"), "failed") == 0
                        ? MST_ENGINE_FAILED : MST_ENGINE_CONTINUE,
                        next, err, errlen);

    next->prev_owner = owner;

    /* said once it is so */
    if (rc == MST_OK && owner != 0) {
        mst_run_log(env, MAESTRO_LOG_WARN,
                    "workflow \"%s\" resumed by process %ld from checkpoint "
                    "%llu (previous owner %ld, %d step(s) interrupted, "
                    "each to run again alone)",
                    id, env->pid, (unsigned long long) seq, owner,
                    recovered);
    }

    return rc;
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

    if (mst_run_full_now(&tx, MST_ENGINE_CONTINUE)) {
        return mst_run_full_commit(&tx, next, err, errlen);
    }

    rc = mst_run_after(&tx, MST_ENGINE_CONTINUE, next);
    if (rc != MST_OK) {
        if (mst_txn_failed(tx.txn) != MST_OK) {
            rc = mst_txn_failed(tx.txn);
        }
        mst_run_next_free(next);
        mst_run_tx_abort(&tx);
        mst_err(err, errlen, rc, "workflow \"%s\": %s", id,
                mst_strerror(rc));

        /* nothing was written: the final write on its own */
        return rc == MST_MAPFULL
               ? mst_run_full(env, id, epoch, next, err, errlen) : rc;
    }

    if (next->nsteps == 0 && !next->finished) {
        /* still waiting (a backoff, the suspect lane): nothing to write,
           and polling the lane must not grow the store */
        mst_run_next_free(next);
        mst_run_tx_abort(&tx);
        return MST_OK;
    }

    return mst_run_commit_next(&tx, next, err, errlen);
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
