/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_run.h. Cancellation: the request (one transaction that
 * either finishes a queued or orphaned workflow at once, or marks a
 * running one for its owner), and the flag that running steps poll (a
 * read transaction, so any thread may ask).
 */

#include <stdlib.h>
#include <string.h>

#include "mst_run.h"
#include "mst_run_int.h"


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


int
mst_run_cancel_requested(mst_run_env_t *env, const char *id)
{
    int         yes;
    mst_txn_t  *txn;

    if (mst_txn_begin(env->store, 1, &txn) != MST_OK) {
        return 0;
    }

    /* every 100 ms of every running step: no parse of the record */
    yes = mst_store_wf_flag(txn, id, "cancel_requested") == 1;

    mst_txn_abort(txn);

    return yes;
}
