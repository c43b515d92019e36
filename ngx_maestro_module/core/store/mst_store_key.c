/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * API keys (mst_apikey.h): the "keys" sub-database, key id -> the
 * record's JSON. Keys are few and read on every authenticated request by
 * id; a list walks them in id order. The records hold hashes only, so
 * nothing here is secret in clear (and nothing is sealed).
 *
 * The requests' reads (mst_store_key_get_shared) keep the parsed record
 * per thread with the bytes it was parsed from: a record whose stored
 * bytes are the same is not parsed again, a changed one (revoked,
 * rotated, touched) is, so every request still sees the committed
 * record.
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
        return mst_txn_rc(txn, rc);
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

    return (rc == MDB_KEYEXIST) ? MST_EXISTS : mst_txn_rc(txn, rc);
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
        return mst_txn_rc(txn, rc);
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
        return mst_txn_rc(txn, rc);
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

    return (rc == MDB_SUCCESS) ? MST_OK : mst_txn_rc(txn, rc);
}


#define MST_STORE_KEY_CACHE  64     /* per thread */


typedef struct {
    char     *bytes;                /* the stored record, or NULL */
    size_t    len;
    json_t   *rec;
} mst_store_key_slot_t;


/*
 * On the heap: the module's thread-locals share the static TLS block of
 * a dlopen()ed object (mst_memstat's are initial-exec), a few hundred
 * bytes in all.
 */
static __thread mst_store_key_slot_t  *mst_store_key_cache;


int
mst_store_key_get_shared(mst_txn_t *txn, const char *id, json_t **rec)
{
    int                    rc;
    size_t                 h;
    MDB_val                k, v;
    json_t                *parsed;
    const unsigned char   *p;
    mst_store_key_slot_t  *slot;

    *rec = NULL;

    if (mst_store_key_id(id, &k) != MST_OK) {
        return MST_NOTFOUND;
    }

    rc = mdb_get(txn->txn, txn->store->key, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    /* the id's hash picks a slot (FNV-1a) */
    h = 2166136261u;
    for (p = (const unsigned char *) id; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }

    if (mst_store_key_cache == NULL) {
        mst_store_key_cache = calloc(MST_STORE_KEY_CACHE,
                                     sizeof(mst_store_key_slot_t));
    }

    if (mst_store_key_cache == NULL) {
        parsed = mst_store_parse(&v, 0);
        if (parsed == NULL || !json_is_object(parsed)) {
            json_decref(parsed);
            return MST_EINVAL;
        }

        *rec = parsed;
        return MST_OK;
    }

    slot = &mst_store_key_cache[h % MST_STORE_KEY_CACHE];

    if (slot->bytes != NULL && slot->len == v.mv_size
        && memcmp(slot->bytes, v.mv_data, v.mv_size) == 0)
    {
        *rec = json_incref(slot->rec);
        return MST_OK;
    }

    parsed = mst_store_parse(&v, 0);
    if (parsed == NULL || !json_is_object(parsed)) {
        json_decref(parsed);
        return MST_EINVAL;
    }

    free(slot->bytes);
    json_decref(slot->rec);

    slot->len = v.mv_size;
    slot->rec = parsed;
    slot->bytes = malloc(v.mv_size);

    if (slot->bytes != NULL) {
        memcpy(slot->bytes, v.mv_data, v.mv_size);
        *rec = json_incref(parsed);

    } else {
        /* nothing to compare with next time: the caller's alone */
        slot->rec = NULL;
        *rec = parsed;
    }

    return MST_OK;
}


void
mst_store_key_cache_clear(void)
{
    size_t  i;

    if (mst_store_key_cache == NULL) {
        return;
    }

    for (i = 0; i < MST_STORE_KEY_CACHE; i++) {
        free(mst_store_key_cache[i].bytes);
        json_decref(mst_store_key_cache[i].rec);
    }

    free(mst_store_key_cache);
    mst_store_key_cache = NULL;
}
