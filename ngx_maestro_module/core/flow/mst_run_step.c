/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_run.h and mst_run.c. One step on its pool thread: the
 * plugin's run() with a host context, whose events, logs and token counts
 * are flushed in batches (their own transactions, fenced), then the commit
 * of the step's output or failure (retry policy included) and of its
 * metrics and token usage, which begins the next ready steps.
 */

#include <stdlib.h>
#include <string.h>

#include "mst_feed.h"
#include "mst_host.h"
#include "mst_json.h"
#include "mst_json_delta.h"
#include "mst_memstat.h"
#include "mst_usage.h"
#include "mst_run.h"
#include "mst_run_int.h"


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


/*
 * The user's running total, the submitting key's and team's and
 * everyone's, in the same transaction as the workflow's own numbers, so
 * they never disagree.
 */
static int
mst_run_user_account(mst_run_tx_t *tx, json_t *by_model)
{
    mst_usage_who_t  who;

    who.user = json_string_value(json_object_get(tx->rec, "user_id"));
    who.key_id = json_string_value(json_object_get(tx->rec, "key_id"));
    who.team = json_string_value(json_object_get(tx->rec, "team"));

    return mst_usage_put(tx->txn, &who, by_model);
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
    int           rc, paused;
    mst_run_tx_t  tx;

    ctx->last_flush = mst_mono_ms();

    if (ctx->fenced
        || (json_array_size(ctx->events) == 0 && !ctx->progress_dirty))
    {
        return MST_OK;
    }

    if (mst_store_level(ctx->env->store) == MST_STORE_RESERVE) {
        /* kept for the step's commit, which ends the workflow */
        return MST_OK;
    }

    /* the host's transaction, not the plugin's memory */
    paused = mst_memstat_pause();

    rc = mst_run_tx_begin(ctx->env, &tx, ctx->id, NULL, 0);
    if (rc != MST_OK) {
        goto done;
    }

    rc = mst_run_fence(&tx, ctx->epoch);
    if (rc != MST_OK) {
        ctx->fenced = 1;
        mst_run_tx_abort(&tx);
        goto done;
    }

    rc = mst_run_apply_ctx(&tx, ctx);
    if (rc != MST_OK) {
        mst_run_tx_abort(&tx);
        goto done;
    }

    rc = mst_run_tx_commit(&tx);

done:

    mst_memstat_resume(paused);

    return rc;
}


static int
mst_run_retryable(int prc)
{
    return prc != MAESTRO_EPERMANENT && prc != MAESTRO_ECANCELLED
           && prc != MAESTRO_EINVAL;
}


/*
 * The state after a step's patch within maestro_state_max_size. Its size
 * is kept in the checkpoint ("state_bytes") and moved by what the step
 * changed, so the check costs what the change costs. Over the bound, the
 * step is undone and fails the workflow ("state_too_large: ...").
 */
static int
mst_run_state_bound(mst_run_tx_t *tx, const mst_run_step_t *step, int er,
    char *msg, size_t len)
{
    int      rc;
    long     bytes;
    json_t  *old, *d;

    if (tx->env->limits.state == 0 || tx->cp_read == NULL) {
        return er;
    }

    old = json_object_get(tx->cp_read, "state");
    bytes = (long) json_integer_value(json_object_get(tx->cp_read,
                                                      "state_bytes"));
    if (bytes <= 0) {
        bytes = (long) json_dumpb(old, NULL, 0, JSON_COMPACT);
    }

    d = mst_json_delta(old, json_object_get(tx->cp, "state"), &rc);
    bytes += mst_json_delta_growth(old, d);
    json_decref(d);

    if (bytes < 0) {
        bytes = 0;
    }

    if (mst_limits_state(&tx->env->limits, (size_t) bytes, msg, len)
        == MST_OK)
    {
        json_object_set_new(tx->cp, "state_bytes",
                            json_integer((json_int_t) bytes));
        return er;
    }

    mst_run_log(tx->env, MAESTRO_LOG_WARN,
                "workflow \"%s\" step \"%s\": %s", tx->id, step->node, msg);

    json_decref(tx->cp);
    tx->cp = mst_json_tree_copy(tx->cp_read);

    if (tx->cp == NULL) {
        return MST_ENOMEM;
    }

    return mst_engine_fail(tx->graph, tx->cp, step->node, step->index, msg,
                           0);
}


int
mst_run_step_exec(mst_run_env_t *env, const char *id, uint64_t epoch,
    const mst_run_step_t *step, volatile int *state, mst_run_next_t *next,
    char *err, size_t errlen)
{
    int             rc, prc, er, remaining, retryable;
    char            msg[MST_ERRLEN + 64];
    size_t          memory;
    int64_t         elapsed;
    json_t         *entry, *metrics, *output;
    mst_run_tx_t    tx;
    maestro_ctx_t   ctx;

    memset(next, 0, sizeof(mst_run_next_t));
    next->epoch = epoch;

    rc = mst_host_ctx_init(&ctx, env, id, epoch, step, state);
    if (rc != MST_OK) {
        mst_run_lane_release(env, step->lane);
        return mst_err(err, errlen, rc, "out of memory");
    }

    mst_memstat_begin();

    prc = step->agent->plugin->run(&ctx, &mst_host, step->agent->data,
                                   step->input);

    memory = mst_memstat_end();
    elapsed = mst_mono_ms() - ctx.started;

    /* the event loop may have given up on us (timeout): then it records
       the failure itself and our result is dropped */

    if (!__sync_bool_compare_and_swap(state, MST_STEP_RUNNING,
                                      MST_STEP_COMMITTING))
    {
        mst_host_ctx_free(&ctx);
        mst_run_lane_release(env, step->lane);
        return mst_err(err, errlen, MST_ETIMEDOUT,
                       "step \"%s\" abandoned", step->node);
    }

    pthread_mutex_lock(&ctx.lock);

    if (env->commit_begin != NULL) {
        env->commit_begin(env->commit_arg, step->host);
    }

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

    if (mst_run_full_now(&tx, MST_ENGINE_CONTINUE)) {
        /* past the reserve: the step's output is not kept */
        rc = mst_run_full_commit(&tx, next, err, errlen);
        goto done;
    }

    rc = mst_run_apply_ctx(&tx, &ctx);
    if (rc != MST_OK) {
        mst_run_tx_abort(&tx);
        mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));

        if (rc == MST_MAPFULL) {
            rc = mst_run_full(env, id, epoch, next, err, errlen);
        }
        goto done;
    }

    entry = mst_run_agent_entry(&tx, step->node);
    metrics = json_object_get(entry, "metrics");
    json_object_set_new(metrics, "execution_ms", json_integer(
        mst_run_int(metrics, "execution_ms") + elapsed));

    /* the largest of the node's runs (see mst_memstat.h) */
    if ((json_int_t) memory > mst_run_int(metrics, "memory_bytes")) {
        json_object_set_new(metrics, "memory_bytes",
                            json_integer((json_int_t) memory));
    }

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

        er = mst_run_state_bound(&tx, step, er, msg, sizeof(msg));

        if (er < 0) {
            mst_run_tx_abort(&tx);
            rc = mst_err(err, errlen, er, "step \"%s\": %s", step->node,
                         mst_strerror(er));
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

    /* the step is over: a suspect of this workflow may begin now */
    mst_run_lane_release(env, step->lane);

    rc = mst_run_settle(&tx, er, next, err, errlen);

done:

    if (env->commit_end != NULL) {
        env->commit_end(env->commit_arg, step->host);
    }

    pthread_mutex_unlock(&ctx.lock);
    mst_host_ctx_free(&ctx);

    /* and when its commit did not happen (fenced, store error) */
    mst_run_lane_release(env, step->lane);

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
