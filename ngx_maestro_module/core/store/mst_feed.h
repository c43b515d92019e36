/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The feed: one ordered log of every workflow's status changes (its
 * workflow_update events), next to the per-workflow event logs. It serves
 * the monitor stream (GET /api/v1/events: dashboards, filtered by status
 * and user) and users' WebSocket sessions, which learn of a new workflow
 * of theirs from it, whichever worker accepted it.
 *
 *   feed   be64(seq) -> name '\0' data (JSON text, with "user_id")
 *
 * Entries are appended in the transaction that appends the workflow's own
 * event, so the feed and the event logs never disagree. The oldest entries
 * beyond "keep" are dropped as new ones come.
 */

#ifndef _MST_FEED_H_INCLUDED_
#define _MST_FEED_H_INCLUDED_

#include "mst_store.h"

#define MST_FEED_KEEP  100000

/* data is not stolen; "ts" is taken from it as is */
int mst_feed_append(mst_txn_t *txn, const char *name, json_t *data,
    size_t keep, uint64_t *seq);

/* entries with seq > after, in order, zero-copy (as events) */
int mst_feed_range(mst_txn_t *txn, uint64_t after, size_t max,
    mst_event_pt cb, void *arg);

/* the last seq (0 when empty) */
int mst_feed_last(mst_txn_t *txn, uint64_t *seq);

#endif /* _MST_FEED_H_INCLUDED_ */
