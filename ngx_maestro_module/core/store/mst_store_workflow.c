/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Workflow records: the "workflows" sub-database, id -> record (compact
 * JSON text), and "active", id -> "" for every record whose status is
 * queued or running, kept in step by mst_store_wf_put(), so startup and
 * lease scans read only the live ones. A final record is also indexed
 * by finished_at (mst_store_finished.c). Deleting a workflow (retention)
 * also deletes its checkpoints, events, parts (mst_store_part.c) and
 * index entries.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"


static json_t *mst_store_wf_match(mst_txn_t *txn, const MDB_val *k,
    MDB_val *v, const mst_wf_filter_t *filter, int *rc);


int
mst_store_wf_get(mst_txn_t *txn, const char *id, json_t **rec)
{
    int      rc;
    MDB_val  k, v;

    *rec = NULL;

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    k.mv_size = MST_ID_LEN;
    k.mv_data = (void *) id;

    rc = mdb_get(txn->txn, txn->store->wf, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    if (!txn->readonly) {
        *rec = mst_store_cache_take(&txn->store->wf_cache, id, 0, &v);
        if (*rec != NULL) {
            return MST_OK;
        }
    }

    rc = mst_store_open_val(txn, txn->store->wf, &k, &v);
    if (rc != MST_OK) {
        return rc;
    }

    *rec = mst_store_parse(&v, 0);
    if (*rec == NULL || !json_is_object(*rec)) {
        json_decref(*rec);
        *rec = NULL;
        return MST_EINVAL;
    }

    return MST_OK;
}


int
mst_store_wf_flag(mst_txn_t *txn, const char *id, const char *key)
{
    int      rc;
    char     needle[128];
    size_t   n;
    MDB_val  k, v;

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    n = (size_t) snprintf(needle, sizeof(needle), "\"%s\":true", key);
    if (n >= sizeof(needle)) {
        return MST_EINVAL;
    }

    k.mv_size = MST_ID_LEN;
    k.mv_data = (void *) id;

    rc = mdb_get(txn->txn, txn->store->wf, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    /* sealed: the match is on the plain text */
    rc = mst_store_open_val(txn, txn->store->wf, &k, &v);
    if (rc != MST_OK) {
        return rc;
    }

    return memmem(v.mv_data, v.mv_size, needle, n) != NULL;
}


int
mst_store_wf_put(mst_txn_t *txn, const char *id, const json_t *rec)
{
    int          rc;
    MDB_val      k, v;
    const char  *status;

    if (txn->readonly || !mst_store_id_ok(id) || !json_is_object(rec)) {
        return MST_EINVAL;
    }

    rc = mst_store_put_cached(txn, txn->store->wf, id, MST_ID_LEN, rec,
                              &txn->store->wf_cache, id, 0);
    if (rc != MST_OK) {
        return rc;
    }

    /* the active index: lease scans read it instead of every record */

    status = json_string_value(json_object_get((json_t *) rec, "status"));

    k.mv_size = MST_ID_LEN;
    k.mv_data = (void *) id;

    if (status != NULL
        && (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0))
    {
        /* a put of a key already there would still copy its pages */
        rc = mdb_get(txn->txn, txn->store->act, &k, &v);

        if (rc == MDB_NOTFOUND) {
            v.mv_size = 0;
            v.mv_data = NULL;
            rc = mdb_put(txn->txn, txn->store->act, &k, &v, 0);
        }

    } else {
        rc = mdb_del(txn->txn, txn->store->act, &k, NULL);
        if (rc == MDB_NOTFOUND) {
            rc = MDB_SUCCESS;
        }

        /* finished: nothing will step it, so its parse cache goes */
        mst_store_cache_forget(&txn->store->wf_cache, id);
        mst_store_cache_forget(&txn->store->cp_cache, id);

        if (rc == MDB_SUCCESS) {
            /* retention finds it there (mst_store_finished.c) */
            return mst_store_fin_add(txn, id, rec);
        }
    }

    return rc == MDB_SUCCESS ? MST_OK : mst_txn_rc(txn, rc);
}


int
mst_store_wf_list(mst_txn_t *txn, const mst_wf_filter_t *filter,
    json_t **items, char *next_cursor)
{
    int          rc, full;
    char         last[MST_ID_LEN], id[MST_ID_LEN + 1];
    size_t       n;
    json_t      *list, *rec;
    MDB_val      k, v;
    MDB_cursor  *cur;

    *items = NULL;
    next_cursor[0] = '\0';

    if (filter->limit == 0 || filter->limit > MST_STORE_LIST_MAX) {
        return MST_EINVAL;
    }

    if (filter->cursor != NULL && !mst_store_id_ok(filter->cursor)) {
        return MST_EINVAL;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->wf, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    list = json_array();
    if (list == NULL) {
        mdb_cursor_close(cur);
        return MST_ENOMEM;
    }

    /* newest first: walk backwards from the last key before the cursor */

    if (filter->cursor != NULL) {
        k.mv_size = MST_ID_LEN;
        k.mv_data = (void *) filter->cursor;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

        if (rc == MDB_SUCCESS) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);

        } else if (rc == MDB_NOTFOUND) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        }

    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }

    n = 0;
    full = 0;
    memset(last, 0, sizeof(last));

    while (rc == MDB_SUCCESS) {

        rec = mst_store_wf_match(txn, &k, &v, filter, &rc);
        if (rc != MDB_SUCCESS) {
            break;
        }

        if (rec != NULL) {

            if (n == filter->limit) {
                /* one more matching record exists: there is a next page */
                json_decref(rec);
                full = 1;
                break;
            }

            json_object_del(rec, "graph");

            memcpy(id, k.mv_data, MST_ID_LEN);
            id[MST_ID_LEN] = '\0';

            rc = mst_store_wf_attach(txn, id, rec);
            if (rc != MST_OK) {
                json_decref(rec);
                break;
            }

            if (json_array_append_new(list, rec) != 0) {
                rc = ENOMEM;
                break;
            }

            memcpy(last, k.mv_data, MST_ID_LEN);
            n++;
        }

        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        json_decref(list);
        return mst_txn_rc(txn, rc);
    }

    if (full) {
        memcpy(next_cursor, last, MST_ID_LEN);
        next_cursor[MST_ID_LEN] = '\0';
    }

    *items = list;

    return MST_OK;
}


int
mst_store_wf_scan_active(mst_txn_t *txn, mst_wf_scan_pt cb, void *arg)
{
    int          rc, stop;
    char         id[MST_ID_LEN + 1];
    json_t      *rec;
    MDB_val      k, v;
    const char  *status;
    MDB_cursor  *cur;

    if (cb == NULL) {
        return MST_EINVAL;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->act, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    stop = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == MDB_SUCCESS && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != MST_ID_LEN) {
            continue;
        }

        if (mdb_get(txn->txn, txn->store->wf, &k, &v) != MDB_SUCCESS) {
            continue;
        }

        /* one that cannot be opened is skipped (and logged) */
        if (mst_store_open_val(txn, txn->store->wf, &k, &v) != MST_OK) {
            continue;
        }

        rec = mst_store_parse(&v, 0);
        if (rec == NULL) {
            continue;
        }

        status = json_string_value(json_object_get(rec, "status"));

        if (status != NULL
            && (strcmp(status, "queued") == 0
                || strcmp(status, "running") == 0))
        {
            memcpy(id, k.mv_data, MST_ID_LEN);
            id[MST_ID_LEN] = '\0';

            stop = cb(id, rec, arg);
        }

        json_decref(rec);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_txn_rc(txn, rc);
    }

    return MST_OK;
}


int
mst_store_wf_scan(mst_txn_t *txn, const char *cursor, size_t max,
    mst_wf_scan_pt cb, void *arg)
{
    int          rc, stop;
    char         id[MST_ID_LEN + 1];
    size_t       n;
    json_t      *rec;
    MDB_val      k, v;
    MDB_cursor  *cur;

    if (cb == NULL) {
        return MST_EINVAL;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->wf, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    if (cursor != NULL && cursor[0] != '\0') {
        k.mv_size = strlen(cursor);
        k.mv_data = (void *) cursor;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

        /* strictly after the cursor */
        if (rc == MDB_SUCCESS && k.mv_size == strlen(cursor)
            && memcmp(k.mv_data, cursor, k.mv_size) == 0)
        {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }

    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }

    stop = 0;

    for (n = 0;
         rc == MDB_SUCCESS && !stop && n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != MST_ID_LEN) {
            continue;
        }

        n++;

        if (mst_store_open_val(txn, txn->store->wf, &k, &v) != MST_OK) {
            continue;
        }

        rec = mst_store_parse(&v, 0);
        if (rec == NULL) {
            continue;
        }

        memcpy(id, k.mv_data, MST_ID_LEN);
        id[MST_ID_LEN] = '\0';

        stop = cb(id, rec, arg);
        json_decref(rec);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_txn_rc(txn, rc);
    }

    return MST_OK;
}


int
mst_store_wf_delete(mst_txn_t *txn, const char *id)
{
    int      rc;
    json_t  *rec;

    if (txn->readonly || !mst_store_id_ok(id)) {
        return MST_EINVAL;
    }

    /* its finished_at and user name its entries in the finished index */
    rc = mst_store_wf_get(txn, id, &rec);
    if (rc != MST_OK && rc != MST_NOTFOUND && rc != MST_EINVAL
        && rc != MST_ECRYPT)
    {
        return rc;
    }

    rc = mst_store_wf_delete_rec(txn, id, rec);
    json_decref(rec);

    return rc;
}


/* rec: the record as read, NULL when it is missing or cannot be read */
int
mst_store_wf_delete_rec(mst_txn_t *txn, const char *id, const json_t *rec)
{
    int            rc, found;
    MDB_val        k;
    unsigned char  first[MST_STORE_SEQ_KEY_LEN];

    if (rec != NULL) {
        rc = mst_store_fin_del(txn, id, rec);
        if (rc != MST_OK) {
            return rc;
        }
    }

    k.mv_size = MST_ID_LEN;
    k.mv_data = (void *) id;

    rc = mdb_del(txn->txn, txn->store->wf, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_txn_rc(txn, rc);
    }

    found = (rc == MDB_SUCCESS);

    rc = mdb_del(txn->txn, txn->store->act, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_txn_rc(txn, rc);
    }

    mst_store_cache_forget(&txn->store->wf_cache, id);
    mst_store_cache_forget(&txn->store->cp_cache, id);

    mst_store_seq_key(first, id, 0);

    rc = mst_store_del_prefix(txn, txn->store->cp, first, MST_ID_LEN);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_del_prefix(txn, txn->store->ev, first, MST_ID_LEN);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_del_prefix(txn, txn->store->part, first, MST_ID_LEN);
    if (rc != MST_OK) {
        return rc;
    }

    /* an inline graph stored before the parts */
    rc = mst_store_kv_delete(txn, MST_STORE_LEGACY_GRAPHS, id);
    if (rc != MST_OK) {
        return rc;
    }

    return found ? MST_OK : MST_NOTFOUND;
}


/*
 * The parsed record if it is a well-formed record matching filter; *rc
 * is MDB_SUCCESS, or the error of a sealed record that cannot be opened
 * (a listing does not hide it).
 */

static json_t *
mst_store_wf_match(mst_txn_t *txn, const MDB_val *k, MDB_val *v,
    const mst_wf_filter_t *filter, int *rc)
{
    json_t      *rec;
    const char  *s;

    *rc = MDB_SUCCESS;

    if (k->mv_size != MST_ID_LEN) {
        return NULL;
    }

    *rc = mst_store_open_val(txn, txn->store->wf, k, v);
    if (*rc != MST_OK) {
        return NULL;
    }

    rec = mst_store_parse(v, 0);

    if (rec == NULL || !json_is_object(rec)) {
        json_decref(rec);
        return NULL;
    }

    if (filter->status != NULL) {
        s = json_string_value(json_object_get(rec, "status"));

        if (s == NULL || strcmp(s, filter->status) != 0) {
            json_decref(rec);
            return NULL;
        }
    }

    if (filter->user_id != NULL) {
        s = json_string_value(json_object_get(rec, "user_id"));

        if (s == NULL || strcmp(s, filter->user_id) != 0) {
            json_decref(rec);
            return NULL;
        }
    }

    return rec;
}
