/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * A workflow's parts (see mst_store.h): the "parts" sub-database,
 * id + kind + name -> JSON text, sealed as every value is. The key starts
 * with the id, so a workflow's parts are one range: mst_store_wf_delete()
 * drops them with its record, and a kind's parts are read with one
 * cursor walk.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"


#define MST_STORE_PART_NAME_MAX  (MST_STORE_KEY_MAX - MST_ID_LEN - 1)


static int
mst_store_part_key(unsigned char *key, const char *id, int kind,
    const char *name, MDB_val *k)
{
    size_t  n;

    n = strlen(name);

    if (!mst_store_id_ok(id) || n > MST_STORE_PART_NAME_MAX) {
        return MST_EINVAL;
    }

    memcpy(key, id, MST_ID_LEN);
    key[MST_ID_LEN] = (unsigned char) kind;
    memcpy(key + MST_ID_LEN + 1, name, n);

    k->mv_size = MST_ID_LEN + 1 + n;
    k->mv_data = key;

    return MST_OK;
}


int
mst_store_part_put(mst_txn_t *txn, const char *id, int kind,
    const char *name, const json_t *value)
{
    int              rc;
    char            *text;
    MDB_val          k;
    mst_crypt_iov_t  iov;
    unsigned char    key[MST_STORE_KEY_MAX];

    if (txn->readonly || value == NULL) {
        return MST_EINVAL;
    }

    rc = mst_store_part_key(key, id, kind, name, &k);
    if (rc != MST_OK) {
        return rc;
    }

    text = mst_json_dump(value, &iov.len);
    if (text == NULL) {
        return MST_ENOMEM;
    }

    iov.data = text;

    rc = mst_store_put_val(txn, txn->store->part, &k, &iov, 1, 0, NULL);
    free(text);

    return rc == MDB_SUCCESS ? MST_OK : mst_txn_rc(txn, rc);
}


int
mst_store_part_get(mst_txn_t *txn, const char *id, int kind,
    const char *name, json_t **value)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[MST_STORE_KEY_MAX];

    *value = NULL;

    rc = mst_store_part_key(key, id, kind, name, &k);
    if (rc != MST_OK) {
        return rc == MST_EINVAL ? MST_NOTFOUND : rc;
    }

    rc = mdb_get(txn->txn, txn->store->part, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    rc = mst_store_open_val(txn, txn->store->part, &k, &v);
    if (rc != MST_OK) {
        return rc;
    }

    *value = mst_store_parse(&v, JSON_DECODE_ANY);

    return *value ? MST_OK : MST_EINVAL;
}


int
mst_store_part_all(mst_txn_t *txn, const char *id, int kind,
    json_t **parts)
{
    int            rc;
    char           name[MST_STORE_PART_NAME_MAX + 1];
    size_t         n;
    json_t        *all, *value;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  key[MST_ID_LEN + 1];

    *parts = NULL;

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->part, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    all = json_object();
    if (all == NULL) {
        mdb_cursor_close(cur);
        return MST_ENOMEM;
    }

    memcpy(key, id, MST_ID_LEN);
    key[MST_ID_LEN] = (unsigned char) kind;

    k.mv_size = sizeof(key);
    k.mv_data = key;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (!mst_store_has_prefix(&k, key, sizeof(key))) {
            rc = MDB_NOTFOUND;
            break;
        }

        n = k.mv_size - sizeof(key);
        memcpy(name, (char *) k.mv_data + sizeof(key), n);
        name[n] = '\0';

        rc = mst_store_open_val(txn, txn->store->part, &k, &v);
        if (rc != MST_OK) {
            break;
        }

        value = mst_store_parse(&v, JSON_DECODE_ANY);
        if (value == NULL) {
            continue;       /* as a scan skips a record that does not parse */
        }

        if (json_object_set_new(all, name, value) != 0) {
            rc = ENOMEM;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        json_decref(all);
        return mst_txn_rc(txn, rc);
    }

    *parts = all;

    return MST_OK;
}


int
mst_store_wf_attach(mst_txn_t *txn, const char *id, json_t *rec)
{
    int      rc;
    json_t  *v;

    if (json_object_get(rec, "agents") == NULL) {
        rc = mst_store_part_all(txn, id, MST_PART_AGENT, &v);
        if (rc != MST_OK) {
            return rc;
        }

        json_object_set_new(rec, "agents", v);
    }

    if (json_object_get(rec, "prompt") == NULL) {
        rc = mst_store_part_get(txn, id, MST_PART_PROMPT, "", &v);

        if (rc == MST_OK) {
            json_object_set_new(rec, "prompt", v);

        } else if (rc != MST_NOTFOUND) {
            return rc;
        }
    }

    return MST_OK;
}
