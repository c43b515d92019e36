/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Events: the "events" sub-database, id + be64(seq) -> name '\0' data
 * (JSON text). seq is the workflow record's "last_event_id" + 1, so an
 * event and the record that counts it are written in one transaction.
 * Ranges are read zero-copy: the callback gets pointers into the map (a
 * sealed event: into the transaction's buffer, reused by the next one).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"



int
mst_store_event_append(mst_txn_t *txn, const char *id, json_t *rec,
    const char *name, json_t *data, uint64_t *seq)
{
    int            rc;
    char          *text;
    size_t         tlen;
    json_t        *last, *own;
    MDB_val        k;
    uint64_t       next;
    json_int_t     prev;
    unsigned char  key[MST_STORE_SEQ_KEY_LEN];

    if (txn->readonly || !mst_store_id_ok(id) || !json_is_object(rec)
        || name == NULL || (data != NULL && !json_is_object(data)))
    {
        return MST_EINVAL;
    }

    last = json_object_get(rec, "last_event_id");

    if (last != NULL && !json_is_integer(last)) {
        return MST_EINVAL;
    }

    prev = last ? json_integer_value(last) : 0;
    if (prev < 0) {
        return MST_EINVAL;
    }

    next = (uint64_t) prev + 1;

    own = NULL;

    if (data == NULL) {
        own = json_object();
        if (own == NULL) {
            return MST_ENOMEM;
        }
        data = own;
    }

    if (json_object_get(data, "ts") == NULL
        && json_object_set_new(data, "ts", json_integer(mst_now_ms())) != 0)
    {
        json_decref(own);
        return MST_ENOMEM;
    }

    text = mst_json_dump(data, &tlen);
    json_decref(own);

    if (text == NULL) {
        return MST_ENOMEM;
    }

    mst_store_seq_key(key, id, next);

    k.mv_size = sizeof(key);
    k.mv_data = key;

    /*
     * MDB_NOOVERWRITE: a stale "last_event_id" (record not written back)
     * must not silently replace an event subscribers may have seen
     */

    rc = mst_store_put_named(txn, txn->store->ev, &k, name, text, tlen,
                             MDB_NOOVERWRITE);
    free(text);

    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    if (json_object_set_new(rec, "last_event_id",
                            json_integer((json_int_t) next))
        != 0)
    {
        return MST_ENOMEM;
    }

    if (seq != NULL) {
        *seq = next;
    }

    return MST_OK;
}


int
mst_store_event_range(mst_txn_t *txn, const char *id, uint64_t after,
    size_t max, mst_event_pt cb, void *arg)
{
    int            rc;
    size_t         n, tlen;
    MDB_val        k, v;
    const char    *name, *text;
    MDB_cursor    *cur;
    unsigned char  first[MST_STORE_SEQ_KEY_LEN];

    if (cb == NULL) {
        return MST_EINVAL;
    }

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    if (after == UINT64_MAX) {
        return MST_OK;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->ev, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    mst_store_seq_key(first, id, after + 1);

    k.mv_size = sizeof(first);
    k.mv_data = first;

    n = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (!mst_store_has_prefix(&k, id, MST_ID_LEN)) {
            rc = MDB_NOTFOUND;
            break;
        }

        if (k.mv_size != MST_STORE_SEQ_KEY_LEN) {
            continue;
        }

        rc = mst_store_open_val(txn, txn->store->ev, &k, &v);
        if (rc != MST_OK) {
            break;
        }

        if (mst_store_named(&v, &name, &text, &tlen) != 0) {
            rc = EINVAL;
            break;
        }

        n++;

        if (cb(mst_store_get_be64((unsigned char *) k.mv_data + MST_ID_LEN),
               name, text, tlen, arg)
            != 0
            || (max > 0 && n == max))
        {
            rc = MDB_NOTFOUND;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return mst_txn_rc(txn, rc);
    }

    return MST_OK;
}


int
mst_store_event_delete(mst_txn_t *txn, const char *id)
{
    unsigned char  first[MST_STORE_SEQ_KEY_LEN];

    if (txn->readonly || !mst_store_id_ok(id)) {
        return MST_EINVAL;
    }

    mst_store_seq_key(first, id, 0);

    return mst_store_del_prefix(txn, txn->store->ev, first, MST_ID_LEN);
}
