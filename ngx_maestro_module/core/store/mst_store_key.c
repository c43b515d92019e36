/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * API keys (mst_apikey.h): the "keys" sub-database, key id -> the
 * record's JSON. Keys are few and read on every authenticated request by
 * id; a list walks them in id order. The records hold hashes only, so
 * nothing here is secret in clear.
 */

#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"


static int
mst_store_key_id(const char *id, MDB_val *k)
{
    size_t  len;

    len = (id != NULL) ? strlen(id) : 0;

    if (len == 0 || len > MST_STORE_KEY_ID_MAX) {
        return MST_NOTFOUND;
    }

    k->mv_size = len;
    k->mv_data = (void *) id;

    return MST_OK;
}


int
mst_store_key_get(mst_txn_t *txn, const char *id, json_t **rec)
{
    int      rc;
    MDB_val  k, v;

    *rec = NULL;

    if (mst_store_key_id(id, &k) != MST_OK) {
        return MST_NOTFOUND;
    }

    rc = mdb_get(txn->txn, txn->store->key, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
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
mst_store_key_put(mst_txn_t *txn, const char *id, const json_t *rec,
    int create)
{
    int      rc;
    char    *text;
    MDB_val  k, v;

    if (txn->readonly || mst_store_key_id(id, &k) != MST_OK) {
        return MST_EINVAL;
    }

    text = mst_json_dump(rec, &v.mv_size);
    if (text == NULL) {
        return MST_ENOMEM;
    }

    v.mv_data = text;

    rc = mdb_put(txn->txn, txn->store->key, &k, &v,
                 create ? MDB_NOOVERWRITE : 0);
    free(text);

    return (rc == MDB_KEYEXIST) ? MST_EXISTS : mst_store_rc(rc);
}


int
mst_store_key_list(mst_txn_t *txn, const char *user_id, const char *cursor,
    size_t max, json_t **list, char *next)
{
    int          rc;
    char         after[MST_STORE_KEY_ID_MAX + 1];
    json_t      *rec, *out;
    MDB_val      k, v;
    MDB_cursor  *cur;
    const char  *owner;

    /* cursor may be next itself: the next page of this one */

    after[0] = '\0';
    if (cursor != NULL && strlen(cursor) <= MST_STORE_KEY_ID_MAX) {
        strcpy(after, cursor);
    }

    *list = NULL;
    next[0] = '\0';

    rc = mdb_cursor_open(txn->txn, txn->store->key, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    out = json_array();
    if (out == NULL) {
        mdb_cursor_close(cur);
        return MST_ENOMEM;
    }

    if (mst_store_key_id(after, &k) == MST_OK) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_SUCCESS && k.mv_size == strlen(after)
            && memcmp(k.mv_data, after, k.mv_size) == 0)
        {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }

    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }

    for ( /* void */ ; rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v,
                                                              MDB_NEXT))
    {
        if (json_array_size(out) == max) {
            /* one more exists: the cursor is the last one listed */
            owner = json_string_value(json_object_get(
                        json_array_get(out, max - 1), "id"));
            if (owner != NULL && strlen(owner) <= MST_STORE_KEY_ID_MAX) {
                strcpy(next, owner);
            }
            break;
        }

        rec = mst_store_parse(&v, 0);
        if (rec == NULL) {
            continue;               /* not ours to judge: skip */
        }

        owner = json_string_value(json_object_get(rec, "user_id"));

        if (user_id != NULL && (owner == NULL || strcmp(owner, user_id) != 0))
        {
            json_decref(rec);
            continue;
        }

        json_array_append_new(out, rec);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        json_decref(out);
        return mst_store_rc(rc);
    }

    *list = out;

    return MST_OK;
}


int
mst_store_key_delete(mst_txn_t *txn, const char *id)
{
    int      rc;
    MDB_val  k;

    if (txn->readonly || mst_store_key_id(id, &k) != MST_OK) {
        return MST_EINVAL;
    }

    rc = mdb_del(txn->txn, txn->store->key, &k, NULL);

    return (rc == MDB_SUCCESS) ? MST_OK : mst_store_rc(rc);
}
