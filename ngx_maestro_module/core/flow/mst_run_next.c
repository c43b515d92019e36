/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_run.h and mst_run.c. What a commit decides next, in the
 * commit's own transaction: the steps of the frontier that became ready
 * (marked running, their plugin input built, returned in mst_run_next_t),
 * the backoff of a failed step's retry, and the workflow's final state
 * (result, "done" or "error" event). Runs on pool threads.
 */

#include <stdlib.h>
#include <string.h>

#include "mst_json.h"
#include "mst_sched.h"
#include "mst_run.h"
#include "mst_run_int.h"


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
int
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


int
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
int64_t
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


/*
 * A suspect waits for this process's lane: pending, its workflow comes
 * back after MST_RUN_LANE_WAIT_MS, or sooner when the host sees the lane
 * free (lane_wait); its agent says why (once).
 */
static void
mst_run_lane_wait(mst_run_tx_t *tx, const char *node, mst_run_next_t *next)
{
    const char  *status;

    if (next->retry_in_ms == 0 || next->retry_in_ms > MST_RUN_LANE_WAIT_MS) {
        next->retry_in_ms = MST_RUN_LANE_WAIT_MS;
    }

    next->lane_wait = 1;

    status = mst_run_str(mst_run_agent_entry(tx, node), "status");

    if (status == NULL || strcmp(status, "waiting") != 0) {
        mst_run_agent_status(tx, node, "waiting", -1,
                             "a worker died while it ran: waits to run "
                             "alone");
    }
}


/* steps begun and not finished */
static size_t
mst_run_running(json_t *cp)
{
    size_t   i, n;
    json_t  *step;

    n = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(mst_run_str(step, "status"), "running") == 0) {
            n++;
        }
    }

    return n;
}


/*
 * Begin the ready steps: running in cp, agent_status, plugin inputs. At
 * most env->step_cap are running at once; the others stay pending until
 * a commit of this workflow makes room.
 */
static int
mst_run_begin_steps(mst_run_tx_t *tx, mst_run_next_t *next)
{
    char                task[96];
    const char         *key;
    size_t              n, i, total, cap, room;
    json_t             *input, *entry;
    int64_t             now, wait;
    uint64_t            lane;
    mst_step_t          ready[MST_RUN_MAX_READY];
    mst_run_step_t     *rs;
    const mst_agent_t  *agent;

    cap = __atomic_load_n(&tx->env->step_cap, __ATOMIC_RELAXED);
    room = cap ? mst_sched_room(cap, mst_run_running(tx->cp))
               : MST_RUN_MAX_READY;

    n = mst_engine_ready(tx->graph, tx->cp, ready,
                         room < MST_RUN_MAX_READY ? room : MST_RUN_MAX_READY);
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

        lane = 0;

        if (ready[i].suspect) {
            /* a suspect of a worker's death runs alone in this process */
            lane = mst_run_lane_take(tx);

            if (lane == 0) {
                mst_run_lane_wait(tx, ready[i].node->name, next);
                continue;
            }
        }

        if (mst_engine_begin(tx->cp, ready[i].node->name, ready[i].index)
            != MST_OK
            || (lane != 0
                && mst_engine_isolate(tx->cp, ready[i].node->name,
                                      ready[i].index)
                   != MST_OK))
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
        rs->lane = lane;
        key = mst_run_str(tx->rec, "key_id");
        snprintf(rs->key_id, sizeof(rs->key_id), "%s", key ? key : "");
        rs->input = mst_json_dump(input, NULL);
        json_decref(input);

        if (rs->input == NULL) {
            return MST_ENOMEM;
        }

        if (lane != 0) {
            snprintf(task, sizeof(task), "attempt %d, alone: a worker died "
                     "while it ran", rs->attempt);
        } else if (rs->index >= 0) {
            /* a scan of the frontier: only where it is shown */
            total = mst_run_node_total(tx->cp, rs->node);
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


void
mst_run_finalize(mst_run_tx_t *tx, const char *status, const char *error)
{
    const char  *key;
    json_t      *entry, *result, *data, *agents;
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

    agents = json_incref(json_object_get(tx->rec, "agents"));

    if (agents == NULL
        && mst_store_part_all(tx->txn, tx->id, MST_PART_AGENT, &agents)
           != MST_OK)
    {
        agents = NULL;
    }

    if (agents != NULL && tx->agents != NULL
        && agents != json_object_get(tx->rec, "agents"))
    {
        /* this transaction's changes are newer than what is stored */
        json_object_update(agents, tx->agents);
    }

    json_object_foreach(agents, key, entry) {
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

    json_decref(agents);

    mst_run_wf_update(tx);

    if (strcmp(status, "failed") == 0) {
        data = json_pack("{s:s, s:s, s:s}", "id", tx->id, "status", status,
                         "error", error ? error : "failed");

        if (data != NULL && json_object_get(tx->rec, "error_code")) {
            json_object_set(data, "code",
                            json_object_get(tx->rec, "error_code"));
        }

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
int
mst_run_after(mst_run_tx_t *tx, int er, mst_run_next_t *next)
{
    int          progress;
    char         msg[MST_ERRLEN];
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

    if (er == MST_ENGINE_CONTINUE
        && mst_limits_width(&tx->env->limits,
                            json_array_size(json_object_get(tx->cp,
                                                            "frontier")),
                            msg, sizeof(msg))
           != MST_OK)
    {
        /* a foreach expanded past the bound: nothing of it runs */
        json_object_set_new(tx->cp, "status", json_string("failed"));
        json_object_set_new(tx->cp, "error", json_string(msg));
        er = MST_ENGINE_FAILED;
        next->status = er;
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


/* a commit found the map full after all: the final write on its own */
static int
mst_run_full_after(mst_run_env_t *env, const char *id, uint64_t epoch,
    mst_run_next_t *next, char *err, size_t errlen)
{
    mst_run_log(env, MAESTRO_LOG_ERROR, "workflow \"%s\" ends failed: "
                "the store is full (maestro_store_size)", id);

    return mst_run_full(env, id, epoch, next, err, errlen);
}


/* the end of every step-moving transaction: next steps, then commit */
int
mst_run_settle(mst_run_tx_t *tx, int er, mst_run_next_t *next, char *err,
    size_t errlen)
{
    int             rc;
    uint64_t        epoch;
    const char     *id;
    mst_run_env_t  *env;

    if (mst_run_full_now(tx, er)) {
        /* past the reserve: the workflow ends here, in a small write */
        return mst_run_full_commit(tx, next, err, errlen);
    }

    env = tx->env;
    id = tx->id;
    epoch = (uint64_t) mst_run_int(tx->rec, "epoch");

    rc = mst_run_after(tx, er, next);
    if (rc != MST_OK) {
        if (mst_txn_failed(tx->txn) != MST_OK) {
            rc = mst_txn_failed(tx->txn);
        }
        mst_run_next_free(next);
        mst_run_tx_abort(tx);
        mst_err(err, errlen, rc, "workflow \"%s\": %s", id,
                mst_strerror(rc));

        return rc == MST_MAPFULL
               ? mst_run_full_after(env, id, epoch, next, err, errlen) : rc;
    }

    return mst_run_commit_next(tx, next, err, errlen);
}


/* commit what mst_run_after() decided; next is emptied on failure */
int
mst_run_commit_next(mst_run_tx_t *tx, mst_run_next_t *next, char *err,
    size_t errlen)
{
    int             rc;
    uint64_t        epoch;
    const char     *id;
    mst_run_env_t  *env;

    env = tx->env;
    id = tx->id;
    epoch = (uint64_t) mst_run_int(tx->rec, "epoch");

    rc = mst_run_tx_commit(tx);
    if (rc != MST_OK) {
        mst_run_next_free(next);
        mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));

        if (rc == MST_MAPFULL) {
            rc = mst_run_full_after(env, id, epoch, next, err, errlen);
        }
    }

    return rc;
}
