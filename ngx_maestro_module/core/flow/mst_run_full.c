/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_run.h. What the runner does as the store fills up
 * (mst_store_level(), the headroom of maestro_store_headroom):
 *
 *  - CLOSED: a new workflow is refused (MST_MAPFULL, 507 store_full)
 *    before it writes anything; running ones go on.
 *  - RESERVE: a running workflow's next commit ends it instead, failed
 *    with the code "store_full", in a small write (the record and its
 *    final events; the last checkpoint stays the last step's), so what is
 *    left of the map serves cancels, deletes, leases and these final
 *    writes. A commit that finds the map full anyway (free pages an old
 *    reader still holds) is followed by the same final write in a
 *    transaction of its own.
 *
 * A workflow whose cancellation was asked for ends cancelled all the
 * same. Nothing here is blamed on a worker's death: a workflow stopped for
 * want of space says so, and is never left running for a claimer to
 * recover.
 */

#include <stdio.h>
#include <string.h>

#include "mst_run.h"
#include "mst_run_int.h"


#define MST_RUN_FULL_ERROR  "the store is full (maestro_store_size)"


int
mst_run_admit(mst_run_env_t *env, char *err, size_t errlen)
{
    mst_store_space_t  sp;

    if (mst_store_level(env->store) == MST_STORE_ROOM) {
        return MST_OK;
    }

    if (mst_store_space_last(env->store, &sp) != MST_OK) {
        return mst_err(err, errlen, MST_MAPFULL, "%s",
                       mst_strerror(MST_MAPFULL));
    }

    return mst_err(err, errlen, MST_MAPFULL,
                   "the store is full: %zu of %zu bytes in use, the last "
                   "%zu kept for deletes and running workflows (raise "
                   "maestro_store_size)", sp.used, sp.map, sp.headroom);
}


/* the workflow of tx ends failed with "store_full", then tx commits */
static int
mst_run_full_end(mst_run_tx_t *tx, mst_run_next_t *next, char *err,
    size_t errlen)
{
    int  rc;

    mst_run_next_free(next);
    next->retry_in_ms = 0;
    next->status = MST_ENGINE_FAILED;
    next->finished = 1;

    if (json_is_true(json_object_get(tx->rec, "cancel_requested"))) {
        /* what the user asked for, with no more room than a failure */
        mst_run_finalize(tx, "cancelled", NULL);

    } else {
        json_object_set_new(tx->rec, "error_code",
                            json_string("store_full"));
        mst_run_finalize(tx, "failed", MST_RUN_FULL_ERROR);
    }

    /* the record says it ended: no new checkpoint, the smallest write */
    tx->cp_dirty = 0;

    rc = mst_run_tx_commit(tx);
    if (rc != MST_OK) {
        next->finished = 0;
        return mst_err(err, errlen, rc, "store: %s", mst_strerror(rc));
    }

    return MST_OK;
}


int
mst_run_full(mst_run_env_t *env, const char *id, uint64_t epoch,
    mst_run_next_t *next, char *err, size_t errlen)
{
    int           rc;
    mst_run_tx_t  tx;

    rc = mst_run_tx_owned(env, &tx, id, epoch, next, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    return mst_run_full_end(&tx, next, err, errlen);
}


int
mst_run_full_commit(mst_run_tx_t *tx, mst_run_next_t *next, char *err,
    size_t errlen)
{
    int             rc;
    uint64_t        epoch;
    const char     *id;
    mst_run_env_t  *env;

    env = tx->env;
    id = tx->id;
    epoch = (uint64_t) mst_run_int(tx->rec, "epoch");

    rc = mst_run_full_end(tx, next, err, errlen);

    if (rc == MST_MAPFULL) {
        /* what tx wrote before did not fit: the final write alone */
        rc = mst_run_full(env, id, epoch, next, err, errlen);
    }

    return rc;
}


/*
 * Whether the commit of tx should end its workflow instead (RESERVE): not
 * one that ends it anyway (done, failed, cancelled: final writes).
 */
int
mst_run_full_now(mst_run_tx_t *tx, int er)
{
    if (er == MST_ENGINE_DONE || er == MST_ENGINE_FAILED
        || json_is_true(json_object_get(tx->rec, "cancel_requested")))
    {
        return 0;
    }

    return mst_store_level(tx->env->store) == MST_STORE_RESERVE;
}
