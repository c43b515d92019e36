/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Agent logs: the "agent_logs" sub-database, agent '\0' be64(ms) be32(n)
 * -> entry (JSON text). n is a per-process counter, so two entries of one
 * agent in the same millisecond get distinct keys; an append trims the
 * agent's entries to the newest keep.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"


static int mst_store_log_trim(mst_txn_t *txn, const unsigned char *prefix,
    size_t plen, size_t keep);
static int mst_store_log_prefix(mst_txn_t *txn, const char *agent,
    unsigned char *key, size_t *plen);

/* makes agent log keys unique within a process (same agent, same ms) */
static uint32_t  mst_store_log_counter;


int
mst_store_agent_log_append(mst_txn_t *txn, const char *agent,
    const json_t *entry, size_t keep)
{
    int              rc, tries;
    char            *text;
    size_t           plen;
    MDB_val          k;
    uint32_t         n;
    mst_crypt_iov_t  iov;
    unsigned char    key[MST_STORE_KEY_MAX + 1];

    if (txn->readonly || entry == NULL) {
        return MST_EINVAL;
    }

    rc = mst_store_log_prefix(txn, agent, key, &plen);
    if (rc != MST_OK) {
        return rc;
    }

    text = json_dumps(entry, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        return MST_ENOMEM;
    }

    mst_store_put_be64(key + plen, (uint64_t) mst_now_ms());

    rc = MDB_KEYEXIST;

    /* another process may have used the same ms and counter */

    for (tries = 0; tries < 8 && rc == MDB_KEYEXIST; tries++) {
        n = __atomic_fetch_add(&mst_store_log_counter, 1, __ATOMIC_RELAXED);

        key[plen + 8] = (unsigned char) (n >> 24);
        key[plen + 9] = (unsigned char) (n >> 16);
        key[plen + 10] = (unsigned char) (n >> 8);
        key[plen + 11] = (unsigned char) n;

        k.mv_size = plen + MST_STORE_LOG_SUFFIX;
        k.mv_data = key;
        iov.data = text;
        iov.len = strlen(text);

        rc = mst_store_put_val(txn, txn->store->log, &k, &iov, 1,
                               MDB_NOOVERWRITE, NULL);
    }

    free(text);

    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    if (keep == 0) {
        return MST_OK;
    }

    return mst_store_log_trim(txn, key, plen, keep);
}


int
mst_store_agent_log_list(mst_txn_t *txn, const char *agent,
    size_t limit, json_t **list)
{
    int            rc;
    size_t         plen, i, n;
    json_t        *tmp, *arr, *e;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  prefix[MST_STORE_KEY_MAX + 1];
    unsigned char  end[MST_STORE_KEY_MAX + 1];

    *list = NULL;

    rc = mst_store_log_prefix(txn, agent, prefix, &plen);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mdb_cursor_open(txn->txn, txn->store->log, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    tmp = json_array();
    if (tmp == NULL) {
        mdb_cursor_close(cur);
        return MST_ENOMEM;
    }

    /* newest first into tmp, then reversed */

    memcpy(end, prefix, plen);
    end[plen - 1] = '\1';

    rc = mst_store_last_with_prefix(cur, end, plen, prefix, plen, &k, &v);

    while (rc == MDB_SUCCESS && (limit == 0 || json_array_size(tmp) < limit)) {

        rc = mst_store_open_val(txn, txn->store->log, &k, &v);
        if (rc != MST_OK) {
            break;
        }

        e = mst_store_parse(&v, JSON_DECODE_ANY);

        if (e != NULL && json_array_append_new(tmp, e) != 0) {
            rc = ENOMEM;
            break;
        }

        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);

        if (rc == MDB_SUCCESS && !mst_store_has_prefix(&k, prefix, plen)) {
            rc = MDB_NOTFOUND;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        json_decref(tmp);
        return mst_txn_rc(txn, rc);
    }

    arr = json_array();
    if (arr == NULL) {
        json_decref(tmp);
        return MST_ENOMEM;
    }

    n = json_array_size(tmp);

    for (i = n; i > 0; i--) {
        if (json_array_append(arr, json_array_get(tmp, i - 1)) != 0) {
            json_decref(tmp);
            json_decref(arr);
            return MST_ENOMEM;
        }
    }

    json_decref(tmp);

    *list = arr;

    return MST_OK;
}


/* drops all but the newest keep entries of the agent */

static int
mst_store_log_trim(mst_txn_t *txn, const unsigned char *prefix, size_t plen,
    size_t keep)
{
    int            rc;
    size_t         n, dlen;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  end[MST_STORE_KEY_MAX + 1];
    unsigned char  drop[MST_STORE_KEY_MAX + 1];

    rc = mdb_cursor_open(txn->txn, txn->store->log, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    /* "agent\1" sorts right after every "agent\0..." key */

    memcpy(end, prefix, plen);
    end[plen - 1] = '\1';

    rc = mst_store_last_with_prefix(cur, end, plen, prefix, plen, &k, &v);

    for (n = 0; rc == MDB_SUCCESS && n < keep; n++) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);

        if (rc == MDB_SUCCESS && !mst_store_has_prefix(&k, prefix, plen)) {
            rc = MDB_NOTFOUND;
        }
    }

    if (rc != MDB_SUCCESS || k.mv_size > sizeof(drop)) {
        /* at most keep entries */
        mdb_cursor_close(cur);
        return rc == MDB_NOTFOUND ? MST_OK : mst_txn_rc(txn, rc);
    }

    /* k: the newest entry to drop; drop it and everything older */

    dlen = k.mv_size;
    memcpy(drop, k.mv_data, dlen);

    for ( ;; ) {
        k.mv_size = plen;
        k.mv_data = (void *) prefix;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc != MDB_SUCCESS) {
            break;
        }

        if (!mst_store_has_prefix(&k, prefix, plen)
            || memcmp(k.mv_data, drop, k.mv_size < dlen ? k.mv_size : dlen)
               > 0)
        {
            rc = MDB_NOTFOUND;
            break;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? MST_OK : mst_txn_rc(txn, rc);
}


/* key = agent '\0'; *plen gets its length */

static int
mst_store_log_prefix(mst_txn_t *txn, const char *agent, unsigned char *key,
    size_t *plen)
{
    size_t  len;

    if (agent == NULL) {
        return MST_EINVAL;
    }

    len = strlen(agent);

    if (len == 0 || len + 1 + MST_STORE_LOG_SUFFIX > txn->store->maxkey) {
        return MST_EINVAL;
    }

    memcpy(key, agent, len + 1);
    *plen = len + 1;

    return MST_OK;
}
