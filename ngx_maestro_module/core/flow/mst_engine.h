/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The workflow engine is pure: it turns a graph and a checkpoint (one JSON
 * object) into the steps to run next, and folds step results back into the
 * checkpoint. It does no I/O and keeps no state of its own, so the caller
 * (mst_run) can persist the checkpoint after every change and any process
 * can resume from the last stored one.
 *
 * Execution is in supersteps (as Pregel / LangGraph): every step of the
 * current superstep may run in parallel; when all are done, the edges fired
 * by them give the next superstep's nodes (deduplicated, so a node fed by a
 * fan-out runs once: fan-in). A node with "foreach" expands into one step
 * per item of its state array.
 *
 * Checkpoint:
 *   {
 *     "superstep": 1, "steps_run": 0, "status": "running",
 *     "state": { "prompt": "...", "context": [...], "outputs": {...}, ... },
 *     "frontier": [
 *       { "node": "llm", "index": 0, "item": ..., "status": "pending",
 *         "attempts": 0, "error": null }
 *     ],
 *     "visits": { "planner": 1 },
 *     "error": null
 *   }
 * status: running | complete | failed; a step's status: pending | running |
 * done | failed. "index"/"item" only on foreach steps. A node's output is
 * stored at state.outputs.<node> (foreach: an array, at the step's index).
 * Top-level keys the step set (the patch) are merged into "state".
 *
 * Worker deaths (mst_engine_recover()): a step that was running when its
 * worker died becomes a "suspect": true until it completes. A death is the
 * step's own ("deaths") only when the step was running "isolated": as the
 * one suspect its process ran (the runner's suspect lane, mst_run_lane.c);
 * else it is "unattributed" (the step ran beside others, any of which may
 * have crashed the worker, or the worker was killed). Only the step's own
 * deaths count against it, and unattributed ones do not use its retries.
 */

#ifndef _MST_ENGINE_H_INCLUDED_
#define _MST_ENGINE_H_INCLUDED_

#include "mst_graph.h"

/* results of mst_engine_complete() / mst_engine_fail() */
#define MST_ENGINE_CONTINUE   0   /* more steps are ready or running */
#define MST_ENGINE_RETRY      1   /* the failed step is pending again */
#define MST_ENGINE_DONE       2   /* the workflow completed */
#define MST_ENGINE_FAILED     3   /* the workflow failed: cp.error says why */

typedef struct {
    const mst_node_t  *node;
    int                index;       /* -1 unless foreach */
    json_t            *item;        /* borrowed, NULL unless foreach */
    int                attempts;    /* attempts before this one */
    int                suspect;     /* running when a worker died */
} mst_step_t;

/*
 * A new checkpoint for a workflow: state = { "prompt", "context", ... }
 * from input (an object; copied), frontier = [entry].
 */
json_t *mst_engine_start(const mst_graph_t *g, json_t *input);

/*
 * Fills out[] with the steps of the current superstep whose status is
 * "pending" (at most max); returns how many.
 */
size_t mst_engine_ready(const mst_graph_t *g, json_t *cp, mst_step_t *out,
    size_t max);

/* marks a step running and counts the attempt; MST_NOTFOUND if absent */
int mst_engine_begin(json_t *cp, const char *node, int index);

/* a running suspect is its process's only one: a death now is its own */
int mst_engine_isolate(json_t *cp, const char *node, int index);

/*
 * The plugin input for a step (new object): {"node", "agent", "config",
 * "state", "item", "index", "attempt", "workflow_id"}; config is the node's
 * config merged over agent_config (either may be NULL).
 */
json_t *mst_engine_input(const mst_graph_t *g, json_t *cp,
    const mst_step_t *step, json_t *agent_config, const char *workflow_id);

/*
 * Folds a successful step into cp: output (may be NULL) and patch (object
 * of top-level state keys, may be NULL; reserved keys are ignored). When
 * the superstep is finished, advances to the next one (or completes, or
 * fails on max_steps). Returns MST_ENGINE_CONTINUE or _DONE or _FAILED,
 * or a negative MST_* code (unknown step).
 */
int mst_engine_complete(const mst_graph_t *g, json_t *cp, const char *node,
    int index, json_t *output, json_t *patch);

/*
 * A failed attempt: when retryable and attempts (less unattributed deaths)
 * <= node retry_max, the step goes back to "pending" (MST_ENGINE_RETRY);
 * else the workflow fails (MST_ENGINE_FAILED, cp.error = "node: error").
 */
int mst_engine_fail(const mst_graph_t *g, json_t *cp, const char *node,
    int index, const char *error, int retryable);

/*
 * Resume after the death of the worker that ran cp: its "running" steps go
 * back to "pending" as suspects; returns how many. A step isolated when
 * its worker died counts the death as its own; more of those than its
 * retry policy allows plus one (one is always survived) is a crash loop:
 * the workflow fails ("worker died while running the step alone ...").
 */
int mst_engine_recover(const mst_graph_t *g, json_t *cp);

/* cancel: status "failed" is not used; sets status "cancelled" */
void mst_engine_cancel(json_t *cp);

/* 0..100, from steps done vs steps known */
int mst_engine_progress(const mst_graph_t *g, json_t *cp);

#endif /* _MST_ENGINE_H_INCLUDED_ */
