/*
 * Copyright (C) Maestro authors
 */

/*
 * The runner's internals, shared by the files that implement it:
 * mst_run.c (the transaction, the record's bookkeeping, create and claim),
 * mst_run_next.c (what a commit begins next), mst_run_step.c (a step and
 * its commit), mst_run_cancel.c, mst_run_lease.c, mst_run_prune.c,
 * mst_run_lane.c (the suspect lane), mst_run_full.c (the store filling
 * up).
 * Nothing outside the runner includes this.
 */

#ifndef _MST_RUN_INT_H_INCLUDED_
#define _MST_RUN_INT_H_INCLUDED_

#include "mst_run.h"


#define MST_RUN_MAX_READY     256

/* a suspect that finds the lane busy comes back this much later at the
   latest (the host wakes it when the lane is free: this is a safety net) */
#define MST_RUN_LANE_WAIT_MS  250


/* one runner transaction: the record, its last checkpoint and graph */
typedef struct {
    mst_run_env_t      *env;
    mst_txn_t          *txn;
    const char         *id;
    json_t             *rec;
    json_t             *cp;
    json_t             *cp_read;        /* cp as read: the next one is
                                           stored as the change from it */
    uint64_t            seq;
    json_t             *agents;         /* the agent entries this
                                           transaction read or changed,
                                           written back as parts */
    uint64_t            lane;           /* the lane taken, kept on commit */
    mst_graph_t        *graph;
    unsigned            graph_owned:1;
    unsigned            graph_cached:1; /* in use from mst_graph_cache */
    unsigned            events:1;       /* appended events */
    unsigned            cp_dirty:1;
} mst_run_tx_t;


/* helpers on JSON fields */
int64_t mst_run_int(json_t *o, const char *key);
const char *mst_run_str(json_t *o, const char *key);

/* the caller's own copy of a record just written (see mst_run.c) */
json_t *mst_run_own_copy(json_t *rec);

/* to env->log, printf-style */
void mst_run_log(mst_run_env_t *env, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* begin: read record, last checkpoint and graph of id in a write txn */
int mst_run_tx_begin(mst_run_env_t *env, mst_run_tx_t *tx, const char *id,
    char *err, size_t errlen);
void mst_run_tx_abort(mst_run_tx_t *tx);
/* write record (and checkpoint when changed) back and commit */
int mst_run_tx_commit(mst_run_tx_t *tx);

/* begin on a workflow this process owns at epoch (else MST_CONFLICT) */
int mst_run_tx_owned(mst_run_env_t *env, mst_run_tx_t *tx, const char *id,
    uint64_t epoch, mst_run_next_t *next, char *err, size_t errlen);
int mst_run_fence(mst_run_tx_t *tx, uint64_t epoch);

/* append an event (data is stolen) */
int mst_run_event(mst_run_tx_t *tx, const char *name, json_t *data);
/* the workflow_update event of the record's current state */
void mst_run_wf_update(mst_run_tx_t *tx);

/* a node's entry in the record's "agents", created on first use */
json_t *mst_run_agent_entry(mst_run_tx_t *tx, const char *node);
/* update a node's entry in the record and emit agent_status */
void mst_run_agent_status(mst_run_tx_t *tx, const char *node,
    const char *status, double progress, const char *task);

/* steps of node still not done in the frontier, other than index */
int mst_run_node_remaining(json_t *cp, const char *node, int index);
/* steps of node in the frontier */
int mst_run_node_total(json_t *cp, const char *node);

/* the suspect lane, for a step this transaction begins: its token or 0
   (busy); given back if the transaction does not commit */
uint64_t mst_run_lane_take(mst_run_tx_t *tx);

/* a failed step's backoff (doubling per attempt): sets its "retry_at" */
int64_t mst_run_retry_later(mst_run_tx_t *tx, const char *node, int index);

/* the final state: result, status, "done" or "error" event */
void mst_run_finalize(mst_run_tx_t *tx, const char *status,
    const char *error);

/* after the engine moved: progress, status events, next steps */
int mst_run_after(mst_run_tx_t *tx, int er, mst_run_next_t *next);

/* mst_run_after(), then commit (or abort); next is emptied on failure */
int mst_run_settle(mst_run_tx_t *tx, int er, mst_run_next_t *next,
    char *err, size_t errlen);
/* the commit half of it */
int mst_run_commit_next(mst_run_tx_t *tx, mst_run_next_t *next, char *err,
    size_t errlen);

/* the store filling up (mst_run_full.c) */

/* MST_MAPFULL (err says why, naming the directive) past CLOSED */
int mst_run_admit(mst_run_env_t *env, char *err, size_t errlen);
/* whether the commit of tx ends its workflow as "store_full" instead */
int mst_run_full_now(mst_run_tx_t *tx, int er);
/* end the workflow of tx failed with "store_full", and commit */
int mst_run_full_commit(mst_run_tx_t *tx, mst_run_next_t *next, char *err,
    size_t errlen);

#endif /* _MST_RUN_INT_H_INCLUDED_ */
