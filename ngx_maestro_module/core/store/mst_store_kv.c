/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Plugins' key-value namespaces: the "kv" sub-database, ns '\0' key ->
 * bytes, stored as given (no JSON). The host's memory_get/memory_set are
 * the only callers; a write goes in with the transaction it is given.
 * Sealing tells a sealed value by its first byte (0xFF), so a plain value
 * written before sealing was on that starts with 0xFF reads as a sealed
 * one that fails to open; JSON and UTF-8 text never start so.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"


/* key = ns '\0' key, in buf (MST_STORE_KEY_MAX + 1 bytes) */

static int
mst_store_kv_key(mst_txn_t *txn, const char *ns, const char *key,
    unsigned char *buf, MDB_val *k)
{
    size_t  nlen, klen;

    nlen = strlen(ns);
    klen = strlen(key);

    if (nlen == 0 || nlen + 1 + klen > txn->store->maxkey) {
        return MST_EINVAL;
    }

    memcpy(buf, ns, nlen + 1);
    memcpy(buf + nlen + 1, key, klen);

    k->mv_size = nlen + 1 + klen;
    k->mv_data = buf;

    return MST_OK;
}


int
mst_store_kv_get(mst_txn_t *txn, const char *ns, const char *key,
    char **value, size_t *len)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  buf[MST_STORE_KEY_MAX + 1];

    *value = NULL;

    if (ns == NULL || key == NULL) {
        return MST_EINVAL;
    }

    if (mst_store_kv_key(txn, ns, key, buf, &k) != MST_OK) {
        return MST_EINVAL;
    }

    rc = mdb_get(txn->txn, txn->store->kv, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    rc = mst_store_open_val(txn, txn->store->kv, &k, &v);
    if (rc != MST_OK) {
        return rc;
    }

    *value = malloc(v.mv_size + 1);
    if (*value == NULL) {
        return MST_ENOMEM;
    }

    memcpy(*value, v.mv_data, v.mv_size);
    (*value)[v.mv_size] = '\0';

    if (len != NULL) {
        *len = v.mv_size;
    }

    return MST_OK;
}


int
mst_store_kv_put(mst_txn_t *txn, const char *ns, const char *key,
    const char *value, size_t len)
{
    MDB_val          k;
    unsigned char    buf[MST_STORE_KEY_MAX + 1];
    mst_crypt_iov_t  iov;

    if (txn->readonly || ns == NULL || key == NULL
        || (value == NULL && len > 0))
    {
        return MST_EINVAL;
    }

    if (mst_store_kv_key(txn, ns, key, buf, &k) != MST_OK) {
        return MST_EINVAL;
    }

    iov.data = value;
    iov.len = len;

    return mst_txn_rc(txn, mst_store_put_val(txn, txn->store->kv, &k, &iov, 1,
                                          0, NULL));
}


int
mst_store_kv_delete_prefix(mst_txn_t *txn, const char *ns,
    const char *prefix)
{
    MDB_val        k;
    unsigned char  buf[MST_STORE_KEY_MAX + 1];

    if (txn->readonly || ns == NULL || prefix == NULL) {
        return MST_EINVAL;
    }

    if (mst_store_kv_key(txn, ns, prefix, buf, &k) != MST_OK) {
        return MST_EINVAL;
    }

    return mst_store_del_prefix(txn, txn->store->kv, buf, k.mv_size);
}


int
mst_store_kv_delete(mst_txn_t *txn, const char *ns, const char *key)
{
    int            rc;
    MDB_val        k;
    unsigned char  buf[MST_STORE_KEY_MAX + 1];

    if (txn->readonly || ns == NULL || key == NULL
        || mst_store_kv_key(txn, ns, key, buf, &k) != MST_OK)
    {
        return MST_EINVAL;
    }

    rc = mdb_del(txn->txn, txn->store->kv, &k, NULL);

    return (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) ? MST_OK
                                                     : mst_txn_rc(txn, rc);
}
