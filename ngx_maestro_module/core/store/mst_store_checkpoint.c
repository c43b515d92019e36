/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Checkpoints: the "checkpoints" sub-database, id + be64(seq) ->
 * checkpoint (JSON text). The last one of a workflow is found with
 * mst_store_last_with_prefix(); writes go through the parse cache, so a
 * step that reads back the checkpoint the previous step wrote does not
 * parse it again.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"



int
mst_store_checkpoint_put(mst_txn_t *txn, const char *id, uint64_t seq,
    const json_t *cp)
{
    unsigned char  key[MST_STORE_SEQ_KEY_LEN];

    if (txn->readonly || !mst_store_id_ok(id) || cp == NULL) {
        return MST_EINVAL;
    }

    mst_store_seq_key(key, id, seq);

    return mst_store_put_cached(txn, txn->store->cp, key, sizeof(key), cp,
                                &txn->store->cp_cache, id, seq);
}


void
mst_store_checkpoint_keep(mst_txn_t *txn, const char *id, uint64_t seq,
    const json_t *cp)
{
    char           *text, *kept;
    size_t          len;
    MDB_val         k, v, plain;
    unsigned char   key[MST_STORE_SEQ_KEY_LEN];

    if (txn->readonly || !mst_store_id_ok(id) || cp == NULL) {
        return;
    }

    text = mst_json_dump(cp, &len);
    if (text == NULL) {
        return;
    }

    if (!mst_crypt_ready(txn->store->crypt)) {
        mst_store_cache_keep(&txn->store->cp_cache, id, seq, text, len, cp);
        return;
    }

    /*
     * sealed: the cache holds the stored bytes, which a new text cannot
     * be; they are kept when they open to exactly this text, so a cp
     * changed since it was read is still only a miss
     */

    mst_store_seq_key(key, id, seq);

    k.mv_size = sizeof(key);
    k.mv_data = key;

    kept = NULL;

    if (mdb_get(txn->txn, txn->store->cp, &k, &v) == MDB_SUCCESS
        && mst_crypt_is_sealed(v.mv_data, v.mv_size))
    {
        plain = v;

        if (mst_store_open_val(txn, txn->store->cp, &k, &plain) == MST_OK
            && plain.mv_size == len
            && memcmp(plain.mv_data, text, len) == 0)
        {
            kept = malloc(v.mv_size);
        }
    }

    free(text);

    if (kept != NULL) {
        memcpy(kept, v.mv_data, v.mv_size);
        mst_store_cache_keep(&txn->store->cp_cache, id, seq, kept,
                             v.mv_size, cp);
    }
}


int
mst_store_checkpoint_last(mst_txn_t *txn, const char *id, uint64_t *seq,
    json_t **cp)
{
    int            rc;
    MDB_val        k, v;
    uint64_t       last;
    MDB_cursor    *cur;
    unsigned char  end[MST_STORE_SEQ_KEY_LEN];

    *cp = NULL;

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->cp, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    mst_store_seq_key(end, id, UINT64_MAX);

    rc = mst_store_last_with_prefix(cur, end, sizeof(end), id, MST_ID_LEN,
                                    &k, &v);

    if (rc == MDB_SUCCESS && k.mv_size != MST_STORE_SEQ_KEY_LEN) {
        rc = MDB_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        mdb_cursor_close(cur);
        return mst_txn_rc(txn, rc);
    }

    last = mst_store_get_be64((unsigned char *) k.mv_data + MST_ID_LEN);

    *cp = txn->readonly
          ? NULL
          : mst_store_cache_take(&txn->store->cp_cache, id, last, &v);

    if (*cp == NULL) {
        rc = mst_store_open_val(txn, txn->store->cp, &k, &v);
        if (rc != MST_OK) {
            mdb_cursor_close(cur);
            return rc;
        }

        *cp = mst_store_parse(&v, JSON_DECODE_ANY);
    }

    if (*cp == NULL) {
        mdb_cursor_close(cur);
        return MST_EINVAL;
    }

    if (seq != NULL) {
        *seq = last;
    }

    mdb_cursor_close(cur);

    return MST_OK;
}


int
mst_store_checkpoint_list(mst_txn_t *txn, const char *id, json_t **list)
{
    int            rc;
    json_t        *arr, *cp, *item;
    MDB_val        k, v;
    uint64_t       seq;
    MDB_cursor    *cur;
    unsigned char  first[MST_STORE_SEQ_KEY_LEN];

    *list = NULL;

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->cp, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    arr = json_array();
    if (arr == NULL) {
        mdb_cursor_close(cur);
        return MST_ENOMEM;
    }

    mst_store_seq_key(first, id, 0);

    k.mv_size = sizeof(first);
    k.mv_data = first;

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

        seq = mst_store_get_be64((unsigned char *) k.mv_data + MST_ID_LEN);

        rc = mst_store_open_val(txn, txn->store->cp, &k, &v);
        if (rc != MST_OK) {
            break;
        }

        cp = mst_store_parse(&v, JSON_DECODE_ANY);
        if (cp == NULL) {
            rc = EINVAL;
            break;
        }

        /* json_*_set_new() and append_new() consume their value */

        item = json_object();
        if (item == NULL) {
            json_decref(cp);
            rc = ENOMEM;
            break;
        }

        if (json_object_set_new(item, "checkpoint", cp) != 0
            || json_object_set_new(item, "seq",
                                   json_integer((json_int_t) seq))
               != 0)
        {
            json_decref(item);
            rc = ENOMEM;
            break;
        }

        if (json_array_append_new(arr, item) != 0) {
            rc = ENOMEM;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        json_decref(arr);
        return mst_txn_rc(txn, rc);
    }

    *list = arr;

    return MST_OK;
}
