/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN (implementation notes; the contract is in mst_store.h)
 *
 * - One MDB_env per process with MDB_NOTLS, so a read transaction is not
 *   tied to a thread; the five sub-databases are opened once, in one write
 *   transaction, by mst_store_open() and their handles kept in the store.
 *   mst_txn_t wraps an MDB_txn with its store, so helpers find the handles.
 *
 * - Errors: a failed LMDB call inside a write transaction leaves it only
 *   abortable (LMDB marks it); we return the mapped code and the caller
 *   aborts, so nothing is half-written. mst_txn_commit() always frees.
 *
 * - MDB_MAP_RESIZED (another process grew the map): the map is adopted with
 *   mdb_env_set_mapsize(env, 0) and the begin is retried once. LMDB allows
 *   that only while this process has no transaction open, so begins and
 *   ends are counted under a mutex and the resize is done only when the
 *   caller's own (failed) begin is the only one counted.
 *
 * - Range scans put a cursor on prefix + be64 with MDB_SET_RANGE and stop
 *   at the first key whose prefix differs. "Last key with a prefix" is
 *   found by MDB_SET_RANGE on the first key past the prefix, then MDB_PREV
 *   (or MDB_LAST when nothing follows).
 *
 * - Deleting ranges re-seeks after every mdb_cursor_del(), rather than
 *   relying on where a cursor stands after a delete.
 */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <lmdb.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"



static int mst_store_mkdir(const char *path, char *err, size_t errlen);
static void mst_store_active(mst_store_t *store, int delta);
static void mst_store_seq_key(unsigned char *key, const char *id,
    uint64_t seq);
static int mst_store_id_ok(const char *id);
static int mst_store_has_prefix(const MDB_val *k, const void *prefix,
    size_t len);
static json_t *mst_store_parse(const MDB_val *v, size_t flags);
static int mst_store_put_cached(mst_txn_t *txn, MDB_dbi dbi, const void *key,
    size_t klen, const json_t *json, mst_store_cache_t *cache,
    const char *id, uint64_t seq);
static int mst_store_last_with_prefix(MDB_cursor *cur, unsigned char *end,
    size_t endlen, const void *prefix, size_t plen, MDB_val *k, MDB_val *v);
static int mst_store_del_prefix(mst_txn_t *txn, MDB_dbi dbi,
    const unsigned char *first, size_t plen);
static int mst_store_log_trim(mst_txn_t *txn, const unsigned char *prefix,
    size_t plen, size_t keep);
static int mst_store_log_prefix(mst_txn_t *txn, const char *agent,
    unsigned char *key, size_t *plen);
static json_t *mst_store_wf_match(const MDB_val *k, const MDB_val *v,
    const mst_wf_filter_t *filter);


/* makes agent log keys unique within a process (same agent, same ms) */
static uint32_t  mst_store_log_counter;


/* ---- environment ------------------------------------------------------ */


int
mst_store_open(mst_store_t **store, const mst_store_conf_t *conf,
    char *err, size_t errlen)
{
    int           rc;
    unsigned      flags;
    MDB_txn      *txn;
    const char   *what;
    mst_store_t  *st;

    *store = NULL;

    if (conf == NULL || conf->path == NULL || conf->path[0] == '\0') {
        return mst_err(err, errlen, MST_EINVAL, "no store path given");
    }

    rc = mst_store_mkdir(conf->path, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    st = calloc(1, sizeof(mst_store_t));
    if (st == NULL) {
        return mst_err(err, errlen, MST_ENOMEM,
                       "cannot allocate store \"%s\"", conf->path);
    }

    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        return mst_err(err, errlen, MST_ERROR,
                       "pthread_mutex_init() failed for store \"%s\"",
                       conf->path);
    }

    txn = NULL;

    what = "mdb_env_create()";
    rc = mdb_env_create(&st->env);
    if (rc != MDB_SUCCESS) {
        st->env = NULL;
        goto failed;
    }

    what = "mdb_env_set_maxdbs()";
    rc = mdb_env_set_maxdbs(st->env, MST_STORE_MAXDBS);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    if (conf->map_size > 0) {
        what = "mdb_env_set_mapsize()";
        rc = mdb_env_set_mapsize(st->env, conf->map_size);
        if (rc != MDB_SUCCESS) {
            goto failed;
        }
    }

    what = "mdb_env_set_maxreaders()";
    rc = mdb_env_set_maxreaders(st->env, conf->max_readers
                                         ? conf->max_readers
                                         : MST_STORE_MAXREADERS);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    /* MDB_NOSYNC implies MDB_NOMETASYNC */
    flags = MDB_NOTLS | (conf->sync ? 0 : MDB_NOSYNC)
            | (conf->writemap ? MDB_WRITEMAP : 0);

    what = "mdb_env_open()";
    rc = mdb_env_open(st->env, conf->path, flags, 0600);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "mdb_txn_begin()";
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS) {
        txn = NULL;
        goto failed;
    }

    what = "mdb_dbi_open()";

    rc = mdb_dbi_open(txn, "workflows", MDB_CREATE, &st->wf);
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "checkpoints", MDB_CREATE, &st->cp);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "events", MDB_CREATE, &st->ev);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "agent_logs", MDB_CREATE, &st->log);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &st->kv);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "active", MDB_CREATE, &st->act);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "feed", MDB_CREATE, &st->feed);
    }
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "mdb_txn_commit()";
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    st->maxkey = (size_t) mdb_env_get_maxkeysize(st->env);
    if (st->maxkey > MST_STORE_KEY_MAX) {
        st->maxkey = MST_STORE_KEY_MAX;
    }

    *store = st;

    return MST_OK;

failed:

    mst_err(err, errlen, mst_store_rc(rc), "%s failed for store \"%s\": %s",
            what, conf->path, mdb_strerror(rc));

    if (txn != NULL) {
        mdb_txn_abort(txn);
    }

    if (st->env != NULL) {
        mdb_env_close(st->env);
    }

    pthread_mutex_destroy(&st->lock);
    free(st);

    return mst_store_rc(rc);
}


void
mst_store_close(mst_store_t *store)
{
    if (store == NULL) {
        return;
    }

    mdb_env_close(store->env);
    mst_store_cache_free(&store->wf_cache);
    mst_store_cache_free(&store->cp_cache);
    pthread_mutex_destroy(&store->lock);
    free(store);
}


void
mst_store_reader_check(mst_store_t *store)
{
    int  dead;

    (void) mdb_reader_check(store->env, &dead);
}


int
mst_store_usage(mst_store_t *store, size_t *used, size_t *map_size)
{
    int          rc;
    MDB_stat     st;
    MDB_envinfo  info;

    rc = mdb_env_info(store->env, &info);
    if (rc == MDB_SUCCESS) {
        rc = mdb_env_stat(store->env, &st);
    }

    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    *used = (info.me_last_pgno + 1) * (size_t) st.ms_psize;
    *map_size = info.me_mapsize;

    return MST_OK;
}


/* ---- transactions ----------------------------------------------------- */


int
mst_txn_begin(mst_store_t *store, int readonly, mst_txn_t **txn)
{
    int         rc;
    mst_txn_t  *t;

    *txn = NULL;

    t = malloc(sizeof(mst_txn_t));
    if (t == NULL) {
        return MST_ENOMEM;
    }

    t->store = store;
    t->readonly = readonly != 0;

    mst_store_active(store, 1);

    rc = mdb_txn_begin(store->env, NULL, readonly ? MDB_RDONLY : 0, &t->txn);

    if (rc == MDB_MAP_RESIZED) {

        /* only legal while no transaction of this process is open */

        pthread_mutex_lock(&store->lock);
        rc = (store->active == 1) ? mdb_env_set_mapsize(store->env, 0)
                                  : MDB_MAP_RESIZED;
        pthread_mutex_unlock(&store->lock);

        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_begin(store->env, NULL, readonly ? MDB_RDONLY : 0,
                               &t->txn);
        }
    }

    if (rc != MDB_SUCCESS) {
        mst_store_active(store, -1);
        free(t);
        return mst_store_rc(rc);
    }

    *txn = t;

    return MST_OK;
}


int
mst_txn_commit(mst_txn_t *txn)
{
    int  rc;

    if (txn == NULL) {
        return MST_EINVAL;
    }

    /* mdb_txn_commit() frees the MDB_txn also when it fails */
    rc = mdb_txn_commit(txn->txn);

    mst_store_active(txn->store, -1);
    free(txn);

    return mst_store_rc(rc);
}


void
mst_txn_abort(mst_txn_t *txn)
{
    if (txn == NULL) {
        return;
    }

    mdb_txn_abort(txn->txn);

    mst_store_active(txn->store, -1);
    free(txn);
}


/* ---- workflow records ------------------------------------------------- */


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
        return mst_store_rc(rc);
    }

    if (!txn->readonly) {
        *rec = mst_store_cache_take(&txn->store->wf_cache, id, 0, &v);
        if (*rec != NULL) {
            return MST_OK;
        }
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
        return mst_store_rc(rc);
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
    }

    return rc == MDB_SUCCESS ? MST_OK : mst_store_rc(rc);
}


int
mst_store_wf_list(mst_txn_t *txn, const mst_wf_filter_t *filter,
    json_t **items, char *next_cursor)
{
    int          rc, full;
    char         last[MST_ID_LEN];
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
        return mst_store_rc(rc);
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

        rec = mst_store_wf_match(&k, &v, filter);

        if (rec != NULL) {

            if (n == filter->limit) {
                /* one more matching record exists: there is a next page */
                json_decref(rec);
                full = 1;
                break;
            }

            json_object_del(rec, "graph");

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
        return mst_store_rc(rc);
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
        return mst_store_rc(rc);
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
        return mst_store_rc(rc);
    }

    return MST_OK;
}


int
mst_store_wf_delete(mst_txn_t *txn, const char *id)
{
    int            rc, found;
    MDB_val        k;
    unsigned char  first[MST_STORE_SEQ_KEY_LEN];

    if (txn->readonly || !mst_store_id_ok(id)) {
        return MST_EINVAL;
    }

    k.mv_size = MST_ID_LEN;
    k.mv_data = (void *) id;

    rc = mdb_del(txn->txn, txn->store->wf, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_store_rc(rc);
    }

    found = (rc == MDB_SUCCESS);

    rc = mdb_del(txn->txn, txn->store->act, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return mst_store_rc(rc);
    }

    mst_store_seq_key(first, id, 0);

    rc = mst_store_del_prefix(txn, txn->store->cp, first, MST_ID_LEN);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_del_prefix(txn, txn->store->ev, first, MST_ID_LEN);
    if (rc != MST_OK) {
        return rc;
    }

    return found ? MST_OK : MST_NOTFOUND;
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
        return mst_store_rc(rc);
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
        return mst_store_rc(rc);
    }

    return MST_OK;
}


/* ---- checkpoints ------------------------------------------------------ */


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
    char    *text;
    size_t   len;

    if (txn->readonly || !mst_store_id_ok(id) || cp == NULL) {
        return;
    }

    text = mst_json_dump(cp, &len);
    if (text != NULL) {
        mst_store_cache_keep(&txn->store->cp_cache, id, seq, text, len, cp);
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
        return mst_store_rc(rc);
    }

    mst_store_seq_key(end, id, UINT64_MAX);

    rc = mst_store_last_with_prefix(cur, end, sizeof(end), id, MST_ID_LEN,
                                    &k, &v);

    if (rc == MDB_SUCCESS && k.mv_size != MST_STORE_SEQ_KEY_LEN) {
        rc = MDB_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        mdb_cursor_close(cur);
        return mst_store_rc(rc);
    }

    last = mst_store_get_be64((unsigned char *) k.mv_data + MST_ID_LEN);

    *cp = txn->readonly
          ? NULL
          : mst_store_cache_take(&txn->store->cp_cache, id, last, &v);

    if (*cp == NULL) {
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
        return mst_store_rc(rc);
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
        return mst_store_rc(rc);
    }

    *list = arr;

    return MST_OK;
}


/* ---- events ----------------------------------------------------------- */


int
mst_store_event_append(mst_txn_t *txn, const char *id, json_t *rec,
    const char *name, json_t *data, uint64_t *seq)
{
    int            rc;
    char          *text;
    size_t         nlen, tlen;
    json_t        *last, *own;
    MDB_val        k, v;
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

    nlen = strlen(name);

    mst_store_seq_key(key, id, next);

    k.mv_size = sizeof(key);
    k.mv_data = key;
    v.mv_size = nlen + 1 + tlen;
    v.mv_data = NULL;

    /*
     * MDB_NOOVERWRITE: a stale "last_event_id" (record not written back)
     * must not silently replace an event subscribers may have seen
     */

    rc = mdb_put(txn->txn, txn->store->ev, &k, &v,
                 MDB_NOOVERWRITE | MDB_RESERVE);

    if (rc == MDB_SUCCESS) {
        memcpy(v.mv_data, name, nlen + 1);
        memcpy((char *) v.mv_data + nlen + 1, text, tlen);
    }

    free(text);

    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
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
    size_t         n, nlen;
    MDB_val        k, v;
    const char    *p, *nul;
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
        return mst_store_rc(rc);
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

        p = v.mv_data;
        nul = memchr(p, '\0', v.mv_size);

        if (nul == NULL) {
            rc = EINVAL;
            break;
        }

        nlen = (size_t) (nul - p);

        n++;

        if (cb(mst_store_get_be64((unsigned char *) k.mv_data + MST_ID_LEN),
               p, nul + 1, v.mv_size - nlen - 1, arg)
            != 0
            || (max > 0 && n == max))
        {
            rc = MDB_NOTFOUND;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return mst_store_rc(rc);
    }

    return MST_OK;
}


/* ---- agent logs ------------------------------------------------------- */


int
mst_store_agent_log_append(mst_txn_t *txn, const char *agent,
    const json_t *entry, size_t keep)
{
    int            rc, tries;
    char          *text;
    size_t         plen;
    MDB_val        k, v;
    uint32_t       n;
    unsigned char  key[MST_STORE_KEY_MAX + 1];

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
        v.mv_size = strlen(text);
        v.mv_data = text;

        rc = mdb_put(txn->txn, txn->store->log, &k, &v, MDB_NOOVERWRITE);
    }

    free(text);

    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
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
        return mst_store_rc(rc);
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
        return mst_store_rc(rc);
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


/* ---- key-value namespaces --------------------------------------------- */


int
mst_store_kv_get(mst_txn_t *txn, const char *ns, const char *key,
    char **value, size_t *len)
{
    int            rc;
    size_t         nlen, klen;
    MDB_val        k, v;
    unsigned char  buf[MST_STORE_KEY_MAX + 1];

    *value = NULL;

    if (ns == NULL || key == NULL) {
        return MST_EINVAL;
    }

    nlen = strlen(ns);
    klen = strlen(key);

    if (nlen == 0 || nlen + 1 + klen > txn->store->maxkey) {
        return MST_EINVAL;
    }

    memcpy(buf, ns, nlen + 1);
    memcpy(buf + nlen + 1, key, klen);

    k.mv_size = nlen + 1 + klen;
    k.mv_data = buf;

    rc = mdb_get(txn->txn, txn->store->kv, &k, &v);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
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
    size_t         nlen, klen;
    MDB_val        k, v;
    unsigned char  buf[MST_STORE_KEY_MAX + 1];

    if (txn->readonly || ns == NULL || key == NULL
        || (value == NULL && len > 0))
    {
        return MST_EINVAL;
    }

    nlen = strlen(ns);
    klen = strlen(key);

    if (nlen == 0 || nlen + 1 + klen > txn->store->maxkey) {
        return MST_EINVAL;
    }

    memcpy(buf, ns, nlen + 1);
    memcpy(buf + nlen + 1, key, klen);

    k.mv_size = nlen + 1 + klen;
    k.mv_data = buf;
    v.mv_size = len;
    v.mv_data = (void *) (value ? value : "");

    return mst_store_rc(mdb_put(txn->txn, txn->store->kv, &k, &v, 0));
}


/* ---- helpers ---------------------------------------------------------- */


int
mst_store_rc(int rc)
{
    switch (rc) {

    case MDB_SUCCESS:
        return MST_OK;

    case MDB_NOTFOUND:
        return MST_NOTFOUND;

    case MDB_MAP_FULL:
        return MST_MAPFULL;

    case MDB_KEYEXIST:
        return MST_EXISTS;

    case ENOMEM:
        return MST_ENOMEM;

    case EINVAL:
    case MDB_BAD_VALSIZE:
        return MST_EINVAL;

    case EIO:
    case ENOSPC:
    case EDQUOT:
    case EROFS:
    case MDB_PANIC:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return MST_EIO;

    default:
        return MST_ERROR;
    }
}


/* mkdir -p with mode 0700 for the components it creates */

static int
mst_store_mkdir(const char *path, char *err, size_t errlen)
{
    char         buf[PATH_MAX], c;
    size_t       len, i;
    struct stat  st;

    len = strlen(path);

    if (len >= sizeof(buf)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "store path \"%s\" is too long", path);
    }

    memcpy(buf, path, len + 1);

    for (i = 1; i <= len; i++) {

        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }

        c = buf[i];
        buf[i] = '\0';

        if (mkdir(buf, 0700) == -1 && errno != EEXIST) {
            return mst_err(err, errlen,
                           errno == ENOSPC || errno == EIO ? MST_EIO
                                                           : MST_ERROR,
                           "mkdir(\"%s\") failed for store \"%s\": %s",
                           buf, path, strerror(errno));
        }

        buf[i] = c;
    }

    if (stat(path, &st) == -1) {
        return mst_err(err, errlen, MST_ERROR,
                       "stat(\"%s\") failed for store: %s",
                       path, strerror(errno));
    }

    if (!S_ISDIR(st.st_mode)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "store path \"%s\" is not a directory", path);
    }

    return MST_OK;
}


static void
mst_store_active(mst_store_t *store, int delta)
{
    pthread_mutex_lock(&store->lock);
    store->active += delta;
    pthread_mutex_unlock(&store->lock);
}


void
mst_store_put_be64(unsigned char *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char) v;
        v >>= 8;
    }
}


uint64_t
mst_store_get_be64(const unsigned char *p)
{
    int       i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


static void
mst_store_seq_key(unsigned char *key, const char *id, uint64_t seq)
{
    memcpy(key, id, MST_ID_LEN);
    mst_store_put_be64(key + MST_ID_LEN, seq);
}


static int
mst_store_id_ok(const char *id)
{
    return id != NULL && mst_id_valid(id, strnlen(id, MST_ID_LEN + 1));
}


static int
mst_store_has_prefix(const MDB_val *k, const void *prefix, size_t len)
{
    return k->mv_size >= len && memcmp(k->mv_data, prefix, len) == 0;
}


static json_t *
mst_store_parse(const MDB_val *v, size_t flags)
{
    json_error_t  jerr;

    return json_loadb(v->mv_data, v->mv_size, flags, &jerr);
}


/*
 * Writes json as text, and keeps the text and the JSON in a parse cache
 * (see mst_store_cache.c). The caller must not change json afterwards.
 */

static int
mst_store_put_cached(mst_txn_t *txn, MDB_dbi dbi, const void *key,
    size_t klen, const json_t *json, mst_store_cache_t *cache,
    const char *id, uint64_t seq)
{
    int      rc;
    char    *text;
    MDB_val  k, v;

    text = mst_json_dump(json, &v.mv_size);
    if (text == NULL) {
        return MST_ENOMEM;
    }

    k.mv_size = klen;
    k.mv_data = (void *) key;
    v.mv_data = text;

    rc = mdb_put(txn->txn, dbi, &k, &v, 0);

    if (rc == MDB_SUCCESS) {
        mst_store_cache_keep(cache, id, seq, text, v.mv_size, json);

    } else {
        free(text);
    }

    return mst_store_rc(rc);
}


/*
 * Puts cur on the last key that starts with prefix; end is a key that
 * sorts after every such key and before any other (it is not modified).
 * Returns an LMDB code; MDB_NOTFOUND when no key has the prefix.
 */

static int
mst_store_last_with_prefix(MDB_cursor *cur, unsigned char *end,
    size_t endlen, const void *prefix, size_t plen, MDB_val *k, MDB_val *v)
{
    int  rc;

    k->mv_size = endlen;
    k->mv_data = end;

    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);

    if (rc == MDB_SUCCESS) {
        if (k->mv_size == endlen && memcmp(k->mv_data, end, endlen) == 0
            && mst_store_has_prefix(k, prefix, plen))
        {
            return MDB_SUCCESS;     /* end itself is a key of the prefix */
        }

        rc = mdb_cursor_get(cur, k, v, MDB_PREV);

    } else if (rc == MDB_NOTFOUND) {
        /* nothing at or after end: the last key of the DB, if any */
        rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    }

    if (rc == MDB_SUCCESS && !mst_store_has_prefix(k, prefix, plen)) {
        rc = MDB_NOTFOUND;
    }

    return rc;
}


/* deletes every key that starts with the plen bytes of first, from first */

static int
mst_store_del_prefix(mst_txn_t *txn, MDB_dbi dbi, const unsigned char *first,
    size_t plen)
{
    int          rc;
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn->txn, dbi, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    for ( ;; ) {
        k.mv_size = MST_STORE_SEQ_KEY_LEN;
        k.mv_data = (void *) first;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc != MDB_SUCCESS) {
            break;
        }

        if (!mst_store_has_prefix(&k, first, plen)) {
            rc = MDB_NOTFOUND;
            break;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? MST_OK : mst_store_rc(rc);
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
        return mst_store_rc(rc);
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
        return rc == MDB_NOTFOUND ? MST_OK : mst_store_rc(rc);
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

    return rc == MDB_NOTFOUND ? MST_OK : mst_store_rc(rc);
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


/* the parsed record if it is a well-formed record matching filter */

static json_t *
mst_store_wf_match(const MDB_val *k, const MDB_val *v,
    const mst_wf_filter_t *filter)
{
    json_t      *rec;
    const char  *s;

    if (k->mv_size != MST_ID_LEN) {
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
