/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_feed.h */

#include <string.h>
#include <stdlib.h>

#include "mst_json.h"
#include "mst_store_int.h"
#include "mst_feed.h"


int
mst_feed_last(mst_txn_t *txn, uint64_t *seq)
{
    int          rc;
    MDB_val      k, v;
    MDB_cursor  *cur;

    *seq = 0;

    rc = mdb_cursor_open(txn->txn, txn->store->feed, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);

    if (rc == MDB_NOTFOUND) {
        return MST_OK;
    }

    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    if (k.mv_size == 8) {
        *seq = mst_store_get_be64(k.mv_data);
    }

    return MST_OK;
}


int
mst_feed_append(mst_txn_t *txn, const char *name, json_t *data, size_t keep,
    uint64_t *seq)
{
    int            rc;
    char          *text;
    size_t         tlen;
    MDB_val        k;
    uint64_t       next;
    unsigned char  key[8];

    if (txn->readonly || name == NULL || !json_is_object(data)) {
        return MST_EINVAL;
    }

    rc = mst_feed_last(txn, &next);
    if (rc != MST_OK) {
        return rc;
    }

    next++;

    text = mst_json_dump(data, &tlen);
    if (text == NULL) {
        return MST_ENOMEM;
    }

    mst_store_put_be64(key, next);

    k.mv_size = sizeof(key);
    k.mv_data = key;

    /* appended at the end of the tree: LMDB's cheapest insert */
    rc = mst_store_put_named(txn, txn->store->feed, &k, name, text, tlen,
                             MDB_APPEND);
    free(text);

    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    if (keep > 0 && next > keep) {
        mst_store_put_be64(key, next - keep);
        rc = mdb_del(txn->txn, txn->store->feed, &k, NULL);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            return mst_txn_rc(txn, rc);
        }
    }

    if (seq != NULL) {
        *seq = next;
    }

    return MST_OK;
}


int
mst_feed_range(mst_txn_t *txn, uint64_t after, size_t max, mst_event_pt cb,
    void *arg)
{
    int            rc;
    size_t         n, tlen;
    MDB_val        k, v;
    const char    *name, *text;
    MDB_cursor    *cur;
    unsigned char  first[8];

    if (cb == NULL) {
        return MST_EINVAL;
    }

    if (after == UINT64_MAX) {
        return MST_OK;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->feed, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    mst_store_put_be64(first, after + 1);

    k.mv_size = sizeof(first);
    k.mv_data = first;

    n = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != 8) {
            continue;
        }

        /* like a malformed one, one that cannot be opened is skipped */
        if (mst_store_open_val(txn, txn->store->feed, &k, &v) != MST_OK
            || mst_store_named(&v, &name, &text, &tlen) != 0)
        {
            continue;
        }

        n++;

        if (cb(mst_store_get_be64(k.mv_data), name, text, tlen, arg)
            != 0
            || (max > 0 && n == max))
        {
            rc = MDB_NOTFOUND;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_txn_rc(txn, rc);
    }

    return MST_OK;
}
