/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Event retention (maestro_event_retention): a bounded scan of records in
 * id order, resumed from a cursor, that drops the event logs of
 * workflows finished long enough ago and marks their records
 * "events_pruned". One write transaction per call, on a pool thread.
 */

#include <stdlib.h>
#include <string.h>

#include "mst_run.h"
#include "mst_run_int.h"


typedef struct {
    int64_t      before;        /* finished before this: pruned */
    json_t      *ids;
    char        *cursor;
    size_t       seen;
} mst_run_prune_ctx_t;


static int
mst_run_prune_cb(const char *id, json_t *rec, void *arg)
{
    mst_run_prune_ctx_t  *pc = arg;

    const char  *status;
    int64_t      finished;

    memcpy(pc->cursor, id, MST_ID_LEN + 1);
    pc->seen++;

    status = mst_run_str(rec, "status");
    finished = mst_run_int(rec, "finished_at");

    if (status != NULL
        && strcmp(status, "queued") != 0 && strcmp(status, "running") != 0
        && finished > 0 && finished < pc->before
        && !json_is_true(json_object_get(rec, "events_pruned")))
    {
        json_array_append_new(pc->ids, json_string(id));
    }

    return 0;
}


int
mst_run_prune(mst_run_env_t *env, int64_t ttl_ms, size_t max, char *cursor,
    size_t *pruned)
{
    int                   rc;
    size_t                i;
    json_t               *rec, *v;
    mst_txn_t            *txn;
    const char           *id;
    mst_run_prune_ctx_t   pc;

    *pruned = 0;

    rc = mst_txn_begin(env->store, 0, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    pc.before = mst_now_ms() - ttl_ms;
    pc.ids = json_array();
    pc.cursor = cursor;
    pc.seen = 0;

    rc = mst_store_wf_scan(txn, cursor, max, mst_run_prune_cb, &pc);

    if (rc == MST_OK && pc.seen < max) {
        cursor[0] = '\0';      /* the end: next time from the start */
    }

    json_array_foreach(pc.ids, i, v) {
        if (rc != MST_OK) {
            break;
        }

        id = json_string_value(v);

        rc = mst_store_wf_get(txn, id, &rec);
        if (rc != MST_OK) {
            break;
        }

        rc = mst_store_event_delete(txn, id);

        if (rc == MST_OK) {
            json_object_set_new(rec, "events_pruned", json_true());
            rc = mst_store_wf_put(txn, id, rec);
        }

        json_decref(rec);
        (*pruned)++;
    }

    json_decref(pc.ids);

    if (rc != MST_OK) {
        mst_txn_abort(txn);
        *pruned = 0;
        return rc;
    }

    return mst_txn_commit(txn);
}
