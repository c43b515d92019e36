/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Erasure on request (data protection): a user's data, or an API key's.
 *
 *   a user   every workflow whose user_id is theirs (record, checkpoints,
 *            events), their usage record, and each of their API keys
 *            with its usage
 *   a key    every workflow it submitted (record "key_id"), its usage,
 *            and its record
 *   one workflow  its record, checkpoints and events (DELETE
 *            /api/v1/workflows/{id}; retention deletes the same way)
 *
 * All in the caller's one write transaction: it is all erased or none.
 * A workflow still queued or running is not erased under its runner:
 * the erasure is refused (MST_CONFLICT) and names one, so the caller
 * cancels them and asks again. Everyone's total usage (GET /api/v1/usage)
 * keeps the numbers, without the user. Agent logs are per agent, kept by
 * maestro_agent_log_size, and are not searched.
 */

#ifndef _MST_ERASE_H_INCLUDED_
#define _MST_ERASE_H_INCLUDED_

#include "mst_store.h"

typedef struct {
    size_t   workflows;             /* erased */
    size_t   keys;                  /* erased */
    size_t   active;                /* queued or running: refused */
    char     active_id[MST_ID_LEN + 1];
} mst_erase_t;

/* MST_OK, MST_CONFLICT (r->active), or a store error */
int mst_erase_user(mst_txn_t *txn, const char *user_id, mst_erase_t *r);

/* MST_NOTFOUND when there is no such key */
int mst_erase_key(mst_txn_t *txn, const char *key_id, mst_erase_t *r);

/* MST_NOTFOUND, MST_CONFLICT (queued or running), or a store error */
int mst_erase_workflow(mst_txn_t *txn, const char *id, mst_erase_t *r);

#endif /* _MST_ERASE_H_INCLUDED_ */
