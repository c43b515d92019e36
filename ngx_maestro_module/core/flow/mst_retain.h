/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Workflow retention: finished workflows (record, checkpoints, events)
 * expire
 *
 *   by age         finished longer ago than max_age_ms
 *   by count       beyond the newest max_count of all
 *   per user       beyond the newest max_per_user of one user
 *   by pressure    while the data takes more than pressure_pct of the
 *                  map, past pressure_min_age_ms (the oldest first)
 *
 * Each pass reads the finished index (mst_store.h, mst_fin_*) from its
 * oldest end and stops at the first workflow to keep, so its cost is what
 * it deletes, whatever the store holds. Deletions run in write
 * transactions of at most batch workflows, at most max_txns of them per
 * pass (then res->more says call again soon), on a pool thread; users are
 * visited a slice (users_per_pass) at a time from a cursor in state.
 * Queued and running workflows are never in the index, so never expire.
 */

#ifndef _MST_RETAIN_H_INCLUDED_
#define _MST_RETAIN_H_INCLUDED_

#include "mst_store.h"


enum {
    MST_RETAIN_KEEP = 0,
    MST_RETAIN_AGE,
    MST_RETAIN_COUNT,
    MST_RETAIN_PRESSURE,
    MST_RETAIN_USER,
    MST_RETAIN_NREASONS
};


typedef struct {
    int64_t     max_age_ms;             /* 0: no age limit */
    size_t      max_count;              /* 0: no limit */
    size_t      max_per_user;           /* 0: no limit */
    unsigned    pressure_pct;           /* 0: off; else 1..99 */
    int64_t     pressure_min_age_ms;
    size_t      batch;                  /* deletions per transaction */
    size_t      max_txns;               /* transactions per pass */
    size_t      users_per_pass;
    size_t      backfill;               /* records indexed per pass */
} mst_retain_conf_t;


typedef struct {
    unsigned char  user[MST_FIN_USER_LEN];
    int            user_set;            /* 0: from the first */
} mst_retain_state_t;


typedef struct {
    size_t      expired[MST_RETAIN_NREASONS];
    size_t      stale;                  /* index entries without record */
    int         more;                   /* stopped at a bound */
    int         backfilling;            /* old records not indexed yet */
} mst_retain_result_t;


/*
 * Whether the oldest finished workflow (finished at finished_at) goes,
 * and why: count of all finished ones, live bytes of data and map size.
 */
int mst_retain_why(const mst_retain_conf_t *conf, int64_t now,
    int64_t finished_at, size_t count, size_t live, size_t map);

/* how many of a user's count go */
size_t mst_retain_user_excess(const mst_retain_conf_t *conf, size_t count);

/* conf has something to do */
int mst_retain_enabled(const mst_retain_conf_t *conf);

/* one pass; blocks (LMDB writes): a pool thread */
int mst_retain_run(mst_store_t *store, const mst_retain_conf_t *conf,
    int64_t now, mst_retain_state_t *state, mst_retain_result_t *res);

#endif /* _MST_RETAIN_H_INCLUDED_ */
