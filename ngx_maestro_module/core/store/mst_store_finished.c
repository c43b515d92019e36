/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The finished index: which workflows are final, oldest first, overall
 * and per user, so retention reads only what it deletes (mst_retain.h).
 *
 *   finished       be64(finished_at) + id            -> user hash or ""
 *   finished_user  user hash                          -> be64(count)
 *                  user hash + be64(finished_at) + id -> ""
 *                  "backfill"                         -> "done" or an id
 *
 * The user hash is the first 16 bytes of SHA-256(user_id): fixed length
 * keys, and no user id in clear next to sealed records. The count of all
 * finished workflows is the entries of "finished" (mdb_stat, O(1)).
 *
 * mst_store_wf_put() adds a record here when it writes it final (status
 * neither queued nor running, "finished_at" set), in the same transaction;
 * mst_store_wf_delete() removes it. A final record never becomes active
 * again (mst_run_claim refuses it), so its entry never moves. Records
 * written before the index existed are added by mst_store_fin_backfill(),
 * a bounded scan resumed from the id it stored; a store created with the
 * index is marked done at creation.
 */

#include <string.h>
#include <lmdb.h>

#include "mst_store.h"
#include "mst_store_int.h"
#include "mst_apikey.h"


#define MST_FIN_KEY_LEN     (8 + MST_ID_LEN)
#define MST_FIN_UKEY_LEN    (MST_FIN_USER_LEN + MST_FIN_KEY_LEN)
#define MST_FIN_META        "backfill"
#define MST_FIN_DONE        "done"


static int mst_store_fin_unlink(mst_txn_t *txn, const unsigned char *tk,
    const unsigned char *user, int has_user);


static int
mst_store_fin_final(const json_t *rec, int64_t *finished_at)
{
    const char  *s;

    s = json_string_value(json_object_get((json_t *) rec, "status"));

    if (s == NULL || strcmp(s, "queued") == 0 || strcmp(s, "running") == 0) {
        return 0;
    }

    *finished_at = json_integer_value(json_object_get((json_t *) rec,
                                                      "finished_at"));

    return *finished_at > 0;
}


/* the record's user hash; 0 when it has no user */
static int
mst_store_fin_user(const json_t *rec, unsigned char *user)
{
    unsigned char  h[32];
    const char    *u;

    u = json_string_value(json_object_get((json_t *) rec, "user_id"));

    if (u == NULL || u[0] == '\0' || mst_sha256(u, strlen(u), h) != MST_OK) {
        return 0;
    }

    memcpy(user, h, MST_FIN_USER_LEN);

    return 1;
}


int
mst_store_fin_user_hash(const char *user_id, unsigned char *user)
{
    unsigned char  h[32];

    if (mst_sha256(user_id, strlen(user_id), h) != MST_OK) {
        return MST_ERROR;
    }

    memcpy(user, h, MST_FIN_USER_LEN);

    return MST_OK;
}


static void
mst_store_fin_key(unsigned char *tk, int64_t finished_at, const char *id)
{
    mst_store_put_be64(tk, (uint64_t) finished_at);
    memcpy(tk + 8, id, MST_ID_LEN);
}


static int
mst_store_fin_count_add(mst_txn_t *txn, const unsigned char *user, int d)
{
    int            rc;
    uint64_t       n;
    MDB_val        k, v;
    unsigned char  buf[8];

    k.mv_size = MST_FIN_USER_LEN;
    k.mv_data = (void *) user;

    rc = mdb_get(txn->txn, txn->store->finu, &k, &v);

    n = (rc == MDB_SUCCESS && v.mv_size == 8)
        ? mst_store_get_be64(v.mv_data) : 0;

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return rc;
    }

    n = (d < 0) ? (n > 0 ? n - 1 : 0) : n + 1;

    if (n == 0) {
        rc = mdb_del(txn->txn, txn->store->finu, &k, NULL);
        return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
    }

    mst_store_put_be64(buf, n);
    v.mv_size = 8;
    v.mv_data = buf;

    return mdb_put(txn->txn, txn->store->finu, &k, &v, 0);
}


int
mst_store_fin_add(mst_txn_t *txn, const char *id, const json_t *rec)
{
    int            rc, has_user;
    int64_t        fin;
    MDB_val        k, v;
    unsigned char  tk[MST_FIN_KEY_LEN], uk[MST_FIN_UKEY_LEN];

    if (!mst_store_fin_final(rec, &fin)) {
        return MST_OK;
    }

    mst_store_fin_key(tk, fin, id);

    k.mv_size = MST_FIN_KEY_LEN;
    k.mv_data = tk;

    /* written final before (events_pruned, a second put): there already */
    rc = mdb_get(txn->txn, txn->store->fin, &k, &v);
    if (rc != MDB_NOTFOUND) {
        return mst_store_rc(rc);
    }

    has_user = mst_store_fin_user(rec, uk);

    v.mv_size = has_user ? MST_FIN_USER_LEN : 0;
    v.mv_data = uk;

    rc = mdb_put(txn->txn, txn->store->fin, &k, &v, 0);

    if (rc == MDB_SUCCESS && has_user) {
        memcpy(uk + MST_FIN_USER_LEN, tk, MST_FIN_KEY_LEN);

        k.mv_size = MST_FIN_UKEY_LEN;
        k.mv_data = uk;
        v.mv_size = 0;
        v.mv_data = NULL;

        rc = mdb_put(txn->txn, txn->store->finu, &k, &v, 0);

        if (rc == MDB_SUCCESS) {
            rc = mst_store_fin_count_add(txn, uk, 1);
        }
    }

    return mst_store_rc(rc);
}


int
mst_store_fin_del(mst_txn_t *txn, const char *id, const json_t *rec)
{
    int64_t        fin;
    unsigned char  tk[MST_FIN_KEY_LEN], user[MST_FIN_USER_LEN];

    if (!mst_store_fin_final(rec, &fin)) {
        return MST_OK;
    }

    mst_store_fin_key(tk, fin, id);

    return mst_store_fin_unlink(txn, tk, user,
                                mst_store_fin_user(rec, user));
}


/* removes the entry tk (and its user's), if it is there */
static int
mst_store_fin_unlink(mst_txn_t *txn, const unsigned char *tk,
    const unsigned char *user, int has_user)
{
    int            rc;
    MDB_val        k;
    unsigned char  uk[MST_FIN_UKEY_LEN];

    k.mv_size = MST_FIN_KEY_LEN;
    k.mv_data = (void *) tk;

    rc = mdb_del(txn->txn, txn->store->fin, &k, NULL);
    if (rc != MDB_SUCCESS || !has_user) {
        /* not there: counted out already */
        return rc == MDB_NOTFOUND ? MST_OK : mst_store_rc(rc);
    }

    memcpy(uk, user, MST_FIN_USER_LEN);
    memcpy(uk + MST_FIN_USER_LEN, tk, MST_FIN_KEY_LEN);

    k.mv_size = MST_FIN_UKEY_LEN;
    k.mv_data = uk;

    rc = mdb_del(txn->txn, txn->store->finu, &k, NULL);

    if (rc == MDB_SUCCESS) {
        rc = mst_store_fin_count_add(txn, user, -1);
    }

    return rc == MDB_NOTFOUND ? MST_OK : mst_store_rc(rc);
}


static void
mst_store_fin_parse(const unsigned char *tk, mst_fin_t *f)
{
    f->finished_at = (int64_t) mst_store_get_be64(tk);
    memcpy(f->id, tk + 8, MST_ID_LEN);
    f->id[MST_ID_LEN] = '\0';
}


int
mst_store_fin_oldest(mst_txn_t *txn, const unsigned char *user,
    mst_fin_t *f)
{
    int            rc;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  uk[MST_FIN_UKEY_LEN];

    memset(f, 0, sizeof(mst_fin_t));

    rc = mdb_cursor_open(txn->txn, user ? txn->store->finu : txn->store->fin,
                         &cur);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    if (user == NULL) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

        while (rc == MDB_SUCCESS && k.mv_size != MST_FIN_KEY_LEN) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }

        if (rc == MDB_SUCCESS) {
            mst_store_fin_parse(k.mv_data, f);
            f->has_user = (v.mv_size == MST_FIN_USER_LEN);
            if (f->has_user) {
                memcpy(f->user, v.mv_data, MST_FIN_USER_LEN);
            }
        }

    } else {
        /* the count's key sorts first, its entries right after it */
        memcpy(uk, user, MST_FIN_USER_LEN);
        memset(uk + MST_FIN_USER_LEN, 0, MST_FIN_KEY_LEN);

        k.mv_size = MST_FIN_UKEY_LEN;
        k.mv_data = uk;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

        if (rc == MDB_SUCCESS
            && (k.mv_size != MST_FIN_UKEY_LEN
                || memcmp(k.mv_data, user, MST_FIN_USER_LEN) != 0))
        {
            rc = MDB_NOTFOUND;
        }

        if (rc == MDB_SUCCESS) {
            mst_store_fin_parse((unsigned char *) k.mv_data
                                + MST_FIN_USER_LEN, f);
            f->has_user = 1;
            memcpy(f->user, user, MST_FIN_USER_LEN);
        }
    }

    mdb_cursor_close(cur);

    return mst_store_rc(rc);
}


int
mst_store_fin_count(mst_txn_t *txn, const unsigned char *user, size_t *n)
{
    int       rc;
    MDB_val   k, v;
    MDB_stat  st;

    *n = 0;

    if (user == NULL) {
        rc = mdb_stat(txn->txn, txn->store->fin, &st);
        if (rc == MDB_SUCCESS) {
            *n = st.ms_entries;
        }
        return mst_store_rc(rc);
    }

    k.mv_size = MST_FIN_USER_LEN;
    k.mv_data = (void *) user;

    rc = mdb_get(txn->txn, txn->store->finu, &k, &v);

    if (rc == MDB_SUCCESS && v.mv_size == 8) {
        *n = (size_t) mst_store_get_be64(v.mv_data);
    }

    return rc == MDB_NOTFOUND ? MST_OK : mst_store_rc(rc);
}


int
mst_store_fin_next_user(mst_txn_t *txn, const unsigned char *after,
    unsigned char *user, size_t *n)
{
    int            rc;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  from[MST_FIN_UKEY_LEN + 1];

    *n = 0;

    rc = mdb_cursor_open(txn->txn, txn->store->finu, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    /* past every key of after: its hash, then more than any entry */
    if (after != NULL) {
        memcpy(from, after, MST_FIN_USER_LEN);
        memset(from + MST_FIN_USER_LEN, 0xff, MST_FIN_KEY_LEN + 1);
        k.mv_size = sizeof(from);

    } else {
        memset(from, 0, MST_FIN_USER_LEN);
        k.mv_size = MST_FIN_USER_LEN;
    }

    k.mv_data = from;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        /* a count (the meta key has another length) */
        if (k.mv_size == MST_FIN_USER_LEN && v.mv_size == 8) {
            memcpy(user, k.mv_data, MST_FIN_USER_LEN);
            *n = (size_t) mst_store_get_be64(v.mv_data);
            break;
        }
    }

    mdb_cursor_close(cur);

    return mst_store_rc(rc);
}


int
mst_store_fin_expire(mst_txn_t *txn, const mst_fin_t *f)
{
    int            rc, gone;
    int64_t        fin;
    json_t        *rec;
    unsigned char  tk[MST_FIN_KEY_LEN];

    rc = mst_store_wf_get(txn, f->id, &rec);

    if (rc == MST_OK && mst_store_fin_final(rec, &fin)
        && fin == f->finished_at)
    {
        rc = mst_store_wf_delete_rec(txn, f->id, rec);
        json_decref(rec);
        return rc;
    }

    json_decref(rec);

    /* one that cannot be read goes with its entry: it is past its time */
    gone = (rc == MST_EINVAL || rc == MST_ECRYPT);

    if (rc != MST_OK && rc != MST_NOTFOUND && !gone) {
        return rc;
    }

    /* else the entry alone: its record is gone, or not the one it names */
    mst_store_fin_key(tk, f->finished_at, f->id);

    rc = mst_store_fin_unlink(txn, tk, f->user, f->has_user);

    if (rc == MST_OK && gone) {
        rc = mst_store_wf_delete_rec(txn, f->id, NULL);
        return rc == MST_NOTFOUND ? MST_OK : rc;
    }

    return rc == MST_OK ? MST_NOTFOUND : rc;
}


/* ---- records written before the index ------------------------------- */


typedef struct {
    mst_txn_t   *txn;
    char         last[MST_ID_LEN + 1];
    size_t       seen;
    int          rc;
} mst_store_fin_fill_t;


static int
mst_store_fin_fill(const char *id, json_t *rec, void *arg)
{
    mst_store_fin_fill_t  *ff = arg;

    memcpy(ff->last, id, MST_ID_LEN + 1);
    ff->seen++;

    ff->rc = mst_store_fin_add(ff->txn, id, rec);

    return ff->rc != MST_OK;
}


static int
mst_store_fin_meta(mst_txn_t *txn, const char *value, size_t len)
{
    MDB_val  k, v;

    k.mv_size = sizeof(MST_FIN_META) - 1;
    k.mv_data = MST_FIN_META;
    v.mv_size = len;
    v.mv_data = (void *) value;

    return mst_store_rc(mdb_put(txn->txn, txn->store->finu, &k, &v, 0));
}


int
mst_store_fin_backfill(mst_txn_t *txn, size_t max, int *done)
{
    int                    rc;
    MDB_val                k, v;
    mst_store_fin_fill_t   ff;

    *done = 0;

    k.mv_size = sizeof(MST_FIN_META) - 1;
    k.mv_data = MST_FIN_META;

    memset(&ff, 0, sizeof(ff));
    ff.txn = txn;

    rc = mdb_get(txn->txn, txn->store->finu, &k, &v);

    if (rc == MDB_SUCCESS) {
        if (v.mv_size != MST_ID_LEN) {
            *done = 1;
            return MST_OK;
        }
        memcpy(ff.last, v.mv_data, MST_ID_LEN);

    } else if (rc != MDB_NOTFOUND) {
        return mst_store_rc(rc);
    }

    if (txn->readonly) {
        return MST_OK;
    }

    rc = mst_store_wf_scan(txn, ff.last, max, mst_store_fin_fill, &ff);
    if (rc == MST_OK) {
        rc = ff.rc;
    }

    if (rc != MST_OK) {
        return rc;
    }

    if (ff.seen < max) {
        *done = 1;
        return mst_store_fin_meta(txn, MST_FIN_DONE, sizeof(MST_FIN_DONE) - 1);
    }

    return mst_store_fin_meta(txn, ff.last, MST_ID_LEN);
}


int
mst_store_fin_init(mst_txn_t *txn)
{
    int       rc;
    MDB_val   k, v;
    MDB_stat  st;

    /* a store without records needs no backfill */
    k.mv_size = sizeof(MST_FIN_META) - 1;
    k.mv_data = MST_FIN_META;

    rc = mdb_get(txn->txn, txn->store->finu, &k, &v);
    if (rc != MDB_NOTFOUND) {
        return mst_store_rc(rc);
    }

    rc = mdb_stat(txn->txn, txn->store->wf, &st);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    if (st.ms_entries > 0) {
        return MST_OK;
    }

    return mst_store_fin_meta(txn, MST_FIN_DONE, sizeof(MST_FIN_DONE) - 1);
}


int
mst_store_live(mst_txn_t *txn, size_t *live, size_t *map_size)
{
    int           rc;
    size_t        pages, i;
    MDB_stat      st;
    MDB_envinfo   info;
    mst_store_t  *s;
    MDB_dbi       dbis[MST_STORE_MAXDBS + 2];
    size_t        n;

    s = txn->store;
    n = 0;

    dbis[n++] = 0;          /* the free list's own pages */
    dbis[n++] = 1;          /* the main database (names) */
    dbis[n++] = s->wf;
    dbis[n++] = s->cp;
    dbis[n++] = s->ev;
    dbis[n++] = s->log;
    dbis[n++] = s->kv;
    dbis[n++] = s->act;
    dbis[n++] = s->feed;
    dbis[n++] = s->key;
    dbis[n++] = s->fin;
    dbis[n++] = s->finu;
    dbis[n++] = s->part;

    pages = 2;              /* the meta pages */

    for (i = 0; i < n; i++) {
        rc = mdb_stat(txn->txn, dbis[i], &st);
        if (rc != MDB_SUCCESS) {
            return mst_store_rc(rc);
        }

        pages += st.ms_branch_pages + st.ms_leaf_pages
                 + st.ms_overflow_pages;
    }

    rc = mdb_env_info(s->env, &info);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    *live = pages * st.ms_psize;
    *map_size = info.me_mapsize;

    return MST_OK;
}
