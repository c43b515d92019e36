/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN (implementation notes; the contract is in mst_store.h)
 *
 * This file holds the environment, transactions and the helpers every
 * record kind shares (mst_store_int.h); each record kind has its own file:
 * mst_store_workflow.c, mst_store_checkpoint.c, mst_store_event.c,
 * mst_store_log.c (agent logs), mst_store_kv.c (plugins' memory).
 *
 * - One MDB_env per process with MDB_NOTLS, so a read transaction is not
 *   tied to a thread; the sub-databases are opened once, in one write
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
 *   caller's own (failed) begin is the only one counted. A read begin
 *   (maybe on the event loop) tries once; a write begin (pool threads
 *   only) waits for the others for up to MST_STORE_RESIZE_TRIES ms, so
 *   the old workers of a reload that grew maestro_store_size adopt it.
 *
 * - Range scans put a cursor on prefix + be64 with MDB_SET_RANGE and stop
 *   at the first key whose prefix differs. "Last key with a prefix" is
 *   found by MDB_SET_RANGE on the first key past the prefix, then MDB_PREV
 *   (or MDB_LAST when nothing follows).
 *
 * - Deleting ranges re-seeks after every mdb_cursor_del(), rather than
 *   relying on where a cursor stands after a delete.
 *
 * - Sealing (conf->crypt): every record kind writes through
 *   mst_store_put_val() and reads through mst_store_open_val(), so the
 *   record files only say which bytes are plain text. A value is sealed
 *   straight into the space LMDB reserves for it; an opened one is put in
 *   one buffer per transaction, grown as needed, so a scan reuses it.
 *   The AAD is a byte naming the sub-database followed by the key.
 */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <lmdb.h>
#include <openssl/crypto.h>

#include "mst_json.h"

#include "mst_store.h"
#include "mst_store_int.h"


static int mst_store_mkdir(const char *path, char *err, size_t errlen);
static void mst_store_active(mst_store_t *store, int delta);
static size_t mst_store_aad(mst_store_t *st, MDB_dbi dbi, const MDB_val *k,
    unsigned char *aad);
static void mst_store_txn_free(mst_txn_t *txn);
static void mst_store_full(mst_store_t *store);


/* a write begin waits this many ms at most to adopt a grown map */
#define MST_STORE_RESIZE_TRIES  100

/* after a write found the map full, how long mst_store_level() holds */
#define MST_STORE_FULL_HOLD_MS  1000


/* ---- environment ----------------------------------------------------- */


int
mst_store_open(mst_store_t **store, const mst_store_conf_t *conf,
    char *err, size_t errlen)
{
    int           rc;
    unsigned      flags;
    MDB_txn      *txn;
    mst_txn_t     ft;
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
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "keys", MDB_CREATE, &st->key);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "finished", MDB_CREATE, &st->fin);
    }
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "finished_user", MDB_CREATE, &st->finu);
        rc = mdb_dbi_open(txn, "parts", MDB_CREATE, &st->part);
    }
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    ft.txn = txn;
    ft.store = st;
    ft.readonly = 0;
    ft.buf = NULL;
    ft.cap = 0;

    what = "the finished index";
    rc = mst_store_fin_init(&ft);
    if (rc != MST_OK) {
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

    st->crypt = conf->crypt;
    st->headroom = conf->headroom;
    st->level_at = mst_mono_ms() - MST_STORE_LEVEL_MS;
    st->errlog = conf->errlog;
    st->errlog_arg = conf->errlog_arg;

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
    int                rc;
    mst_store_space_t  sp;

    rc = mst_store_space(store, &sp);
    if (rc != MST_OK) {
        return rc;
    }

    *used = sp.used;
    *map_size = sp.map;

    return MST_OK;
}


/* mdb_reader_list()'s lines: "pid thread txnid", txnid "-" when idle */
static int
mst_store_reader_line(const char *line, void *arg)
{
    int      pid;
    size_t   tid, txnid, *oldest;

    oldest = arg;

    if (sscanf(line, "%d %zx %zu", &pid, &tid, &txnid) == 3
        && txnid < *oldest)
    {
        *oldest = txnid;
    }

    return 0;
}


/*
 * LMDB's free list (sub-database 0): each record is the id of the
 * transaction that freed the pages and their list, an array of MDB_ID
 * (a size_t) whose first element is their count, as mdb_stat -f reads
 * it. A writer reuses the pages of records older than every reader's
 * snapshot (mdb_find_oldest()) before it grows the map: only those are
 * counted, so a long reader that pins freed pages does not pass for
 * room.
 */
static int
mst_store_free_pages(mst_txn_t *txn, size_t *pages)
{
    int          rc;
    size_t       n, id, oldest;
    MDB_val      k, v;
    MDB_cursor  *cur;

    *pages = 0;

    /* at most the last commit's id: its own frees wait for the next */
    oldest = (size_t) mdb_txn_id(txn->txn);
    (void) mdb_reader_list(txn->store->env, mst_store_reader_line, &oldest);

    rc = mdb_cursor_open(txn->txn, 0, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_store_rc(rc);
    }

    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
        if (k.mv_size != sizeof(size_t) || v.mv_size < sizeof(size_t)) {
            continue;
        }

        memcpy(&id, k.mv_data, sizeof(size_t));

        if (id >= oldest) {
            break;      /* in id order: the rest are newer still */
        }

        memcpy(&n, v.mv_data, sizeof(size_t));
        *pages += n;
    }

    mdb_cursor_close(cur);

    return (rc == MDB_NOTFOUND || rc == MDB_SUCCESS) ? MST_OK
                                                     : mst_store_rc(rc);
}


int
mst_store_space(mst_store_t *store, mst_store_space_t *space)
{
    int          rc;
    size_t       free, last;
    MDB_stat     st;
    mst_txn_t   *txn;
    MDB_envinfo  info;

    memset(space, 0, sizeof(mst_store_space_t));

    rc = mst_txn_begin(store, 1, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_free_pages(txn, &free);

    if (rc == MST_OK) {
        rc = mst_store_rc(mdb_env_info(store->env, &info));
    }

    if (rc == MST_OK) {
        rc = mst_store_rc(mdb_env_stat(store->env, &st));
    }

    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return rc;
    }

    last = info.me_last_pgno + 1;
    free = free < last ? free : last;

    space->used = (last - free) * (size_t) st.ms_psize;
    space->free = free * (size_t) st.ms_psize;
    space->map = info.me_mapsize;
    space->headroom = store->headroom < space->map ? store->headroom
                                                   : space->map;

    if (space->used + space->headroom / 2 >= space->map) {
        space->level = MST_STORE_RESERVE;

    } else if (space->used + space->headroom >= space->map) {
        space->level = MST_STORE_CLOSED;

    } else {
        space->level = MST_STORE_ROOM;
    }

    return MST_OK;
}


int
mst_store_level(mst_store_t *store)
{
    int                level;
    int64_t            now;
    mst_store_space_t  sp;

    now = mst_mono_ms();

    pthread_mutex_lock(&store->lock);
    level = store->space.level;
    now = (now - store->level_at < MST_STORE_LEVEL_MS) ? 0 : now;
    pthread_mutex_unlock(&store->lock);

    if (now == 0 || mst_store_space(store, &sp) != MST_OK) {
        return level;
    }

    pthread_mutex_lock(&store->lock);

    /* a full map seen by a write meanwhile holds until its time is up */
    if (now - store->level_at >= MST_STORE_LEVEL_MS) {
        store->space = sp;
        store->level_at = now;
    }

    level = store->space.level;

    pthread_mutex_unlock(&store->lock);

    return level;
}


int
mst_store_space_last(mst_store_t *store, mst_store_space_t *space)
{
    pthread_mutex_lock(&store->lock);
    *space = store->space;
    pthread_mutex_unlock(&store->lock);

    return space->map ? MST_OK : MST_NOTFOUND;
}


/* a write found the map full: RESERVE for a while, whatever a measure says
   (free pages an old reader still sees cannot be reused yet) */
static void
mst_store_full(mst_store_t *store)
{
    pthread_mutex_lock(&store->lock);
    store->space.level = MST_STORE_RESERVE;
    store->level_at = mst_mono_ms() + MST_STORE_FULL_HOLD_MS
                      - MST_STORE_LEVEL_MS;
    pthread_mutex_unlock(&store->lock);
}


/* ---- transactions ---------------------------------------------------- */


int
mst_txn_begin(mst_store_t *store, int readonly, mst_txn_t **txn)
{
    int         rc, tries;
    mst_txn_t  *t;

    *txn = NULL;

    t = malloc(sizeof(mst_txn_t));
    if (t == NULL) {
        return MST_ENOMEM;
    }

    t->store = store;
    t->readonly = readonly != 0;
    t->err = 0;
    t->buf = NULL;
    t->cap = 0;

    mst_store_active(store, 1);

    rc = mdb_txn_begin(store->env, NULL, readonly ? MDB_RDONLY : 0, &t->txn);

    for (tries = 0; rc == MDB_MAP_RESIZED; tries++) {

        /* only legal while no transaction of this process is open */

        pthread_mutex_lock(&store->lock);
        rc = (store->active == 1) ? mdb_env_set_mapsize(store->env, 0)
                                  : MDB_MAP_RESIZED;
        pthread_mutex_unlock(&store->lock);

        if (rc == MDB_MAP_RESIZED
            && (readonly || tries >= MST_STORE_RESIZE_TRIES))
        {
            break;
        }

        if (rc == MDB_MAP_RESIZED) {
            /*
             * A writer, on a pool thread: the others' transactions are
             * short, and their next begins fail the same way, so the
             * count soon drops to ours (or one of them adopts the map).
             */
            usleep(1000);
        }

        rc = mdb_txn_begin(store->env, NULL, readonly ? MDB_RDONLY : 0,
                           &t->txn);
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

    if (txn->err != 0) {
        /* LMDB would refuse it (MDB_BAD_TXN): say why */
        rc = txn->err;
        mdb_txn_abort(txn->txn);

    } else {
        /* mdb_txn_commit() frees the MDB_txn also when it fails */
        rc = mdb_txn_commit(txn->txn);

        if (rc == MDB_MAP_FULL) {
            mst_store_full(txn->store);
        }
    }

    mst_store_active(txn->store, -1);
    mst_store_txn_free(txn);

    return mst_store_rc(rc);
}


int
mst_txn_failed(const mst_txn_t *txn)
{
    return txn->err ? mst_store_rc(txn->err) : MST_OK;
}


void
mst_txn_abort(mst_txn_t *txn)
{
    if (txn == NULL) {
        return;
    }

    mdb_txn_abort(txn->txn);

    mst_store_active(txn->store, -1);
    mst_store_txn_free(txn);
}


/* ---- helpers shared by the record kinds ------------------------------ */


int
mst_txn_rc(mst_txn_t *txn, int rc)
{
    if (rc == MDB_BAD_TXN && txn->err != 0) {
        return mst_store_rc(txn->err);
    }

    if ((rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) && txn->err == 0) {
        txn->err = rc;

        if (rc == MDB_MAP_FULL) {
            mst_store_full(txn->store);
        }
    }

    return mst_store_rc(rc);
}


int
mst_store_rc(int rc)
{
    if (rc <= MST_ERROR && rc > MST_ERROR - 100) {
        return rc;      /* ours already (mst_store_put_val(), _open_val()) */
    }

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


void
mst_store_seq_key(unsigned char *key, const char *id, uint64_t seq)
{
    memcpy(key, id, MST_ID_LEN);
    mst_store_put_be64(key + MST_ID_LEN, seq);
}


int
mst_store_id_ok(const char *id)
{
    return id != NULL && mst_id_valid(id, strnlen(id, MST_ID_LEN + 1));
}


int
mst_store_has_prefix(const MDB_val *k, const void *prefix, size_t len)
{
    return k->mv_size >= len && memcmp(k->mv_data, prefix, len) == 0;
}


int
mst_store_put_named(mst_txn_t *txn, MDB_dbi dbi, MDB_val *k,
    const char *name, const char *text, size_t tlen, unsigned int flags)
{
    mst_crypt_iov_t  iov[2];

    iov[0].data = name;
    iov[0].len = strlen(name) + 1;
    iov[1].data = text;
    iov[1].len = tlen;

    return mst_store_put_val(txn, dbi, k, iov, 2, flags, NULL);
}


int
mst_store_put_val(mst_txn_t *txn, MDB_dbi dbi, MDB_val *k,
    const mst_crypt_iov_t *iov, size_t n, unsigned int flags,
    MDB_val *stored)
{
    int            rc, seal;
    char           err[MST_ERRLEN];
    size_t         i, len, alen;
    MDB_val        v;
    unsigned char  *p;
    unsigned char  aad[1 + MST_STORE_KEY_MAX];

    len = 0;

    for (i = 0; i < n; i++) {
        len += iov[i].len;
    }

    seal = mst_crypt_ready(txn->store->crypt);

    v.mv_size = seal ? len + MST_CRYPT_OVERHEAD : len;
    v.mv_data = NULL;

    rc = mdb_put(txn->txn, dbi, k, &v, flags | MDB_RESERVE);
    if (rc != MDB_SUCCESS) {
        (void) mst_txn_rc(txn, rc);     /* remembered, should it be ignored */
        return rc;
    }

    if (seal) {
        alen = mst_store_aad(txn->store, dbi, k, aad);

        rc = mst_crypt_seal(txn->store->crypt, aad, alen, iov, n,
                            v.mv_data, err, sizeof(err));
        if (rc != MST_OK) {
            /*
             * the caller aborts; should one commit anyway, the value
             * reads as a sealed record of no version, not as garbage
             */
            memset(v.mv_data, 0, v.mv_size);
            ((unsigned char *) v.mv_data)[0] = MST_CRYPT_MAGIC;

            if (txn->store->errlog != NULL) {
                txn->store->errlog(txn->store->errlog_arg, err);
            }
            return rc;
        }

    } else {
        p = v.mv_data;

        for (i = 0; i < n; i++) {
            if (iov[i].len > 0) {
                memcpy(p, iov[i].data, iov[i].len);
                p += iov[i].len;
            }
        }
    }

    if (stored != NULL) {
        *stored = v;
    }

    return MDB_SUCCESS;
}


int
mst_store_open_val(mst_txn_t *txn, MDB_dbi dbi, const MDB_val *k,
    MDB_val *v)
{
    int            rc;
    char           err[MST_ERRLEN], msg[MST_ERRLEN + 64];
    size_t         alen, need, plen;
    unsigned char  *buf;
    unsigned char  aad[1 + MST_STORE_KEY_MAX];

    if (!mst_crypt_is_sealed(v->mv_data, v->mv_size)) {
        return MST_OK;      /* plain: written before sealing was on */
    }

    if (txn->store->crypt == NULL) {
        rc = mst_err(err, sizeof(err), MST_ECRYPT,
                     "a sealed record was read and no "
                     "maestro_store_encryption_key is configured");

    } else {
        need = v->mv_size > MST_CRYPT_OVERHEAD
               ? v->mv_size - MST_CRYPT_OVERHEAD : 1;

        if (need > txn->cap) {
            buf = realloc(txn->buf, need);
            if (buf == NULL) {
                return MST_ENOMEM;
            }

            txn->buf = buf;
            txn->cap = need;
        }

        alen = mst_store_aad(txn->store, dbi, k, aad);

        rc = mst_crypt_open(txn->store->crypt, aad, alen, v->mv_data,
                            v->mv_size, txn->buf, &plen, err, sizeof(err));
    }

    if (rc != MST_OK) {
        if (txn->store->errlog != NULL) {
            snprintf(msg, sizeof(msg), "store: %s", err);
            txn->store->errlog(txn->store->errlog_arg, msg);
        }
        return rc;
    }

    v->mv_data = txn->buf;
    v->mv_size = plen;

    return MST_OK;
}


int
mst_store_named(const MDB_val *v, const char **name, const char **text,
    size_t *tlen)
{
    const char  *p, *nul;

    p = v->mv_data;
    nul = memchr(p, '\0', v->mv_size);

    if (nul == NULL) {
        return -1;
    }

    *name = p;
    *text = nul + 1;
    *tlen = v->mv_size - (size_t) (nul - p) - 1;

    return 0;
}


json_t *
mst_store_parse(const MDB_val *v, size_t flags)
{
    json_error_t  jerr;

    return json_loadb(v->mv_data, v->mv_size, flags, &jerr);
}


/*
 * Writes json as text, and keeps the text and the JSON in a parse cache
 * (see mst_store_cache.c). The caller must not change json afterwards.
 */

int
mst_store_put_cached(mst_txn_t *txn, MDB_dbi dbi, const void *key,
    size_t klen, const json_t *json, mst_store_cache_t *cache,
    const char *id, uint64_t seq)
{
    char    *text;
    size_t   len;

    text = mst_json_dump(json, &len);
    if (text == NULL) {
        return MST_ENOMEM;
    }

    return mst_store_put_text_cached(txn, dbi, key, klen, text, len, json,
                                     cache, id, seq);
}


int
mst_store_put_text_cached(mst_txn_t *txn, MDB_dbi dbi, const void *key,
    size_t klen, char *text, size_t len, const json_t *json,
    mst_store_cache_t *cache, const char *id, uint64_t seq)
{
    int              rc;
    char            *kept;
    MDB_val          k, v;
    mst_crypt_iov_t  iov;

    k.mv_size = klen;
    k.mv_data = (void *) key;
    iov.data = text;
    iov.len = len;

    rc = mst_store_put_val(txn, dbi, &k, &iov, 1, 0, &v);

    if (rc != MDB_SUCCESS) {
        free(text);
        return mst_txn_rc(txn, rc);
    }

    /*
     * the cache compares what is stored: sealed, those bytes (a hit then
     * skips opening as well as parsing)
     */

    kept = text;

    if (mst_crypt_ready(txn->store->crypt)) {
        kept = malloc(v.mv_size);
        if (kept != NULL) {
            memcpy(kept, v.mv_data, v.mv_size);
        }
        free(text);
    }

    if (kept != NULL) {
        mst_store_cache_keep(cache, id, seq, kept, v.mv_size, json);
    }

    return MST_OK;
}


/*
 * Puts cur on the last key that starts with prefix; end is a key that
 * sorts after every such key and before any other (it is not modified).
 * Returns an LMDB code; MDB_NOTFOUND when no key has the prefix.
 */

int
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

int
mst_store_del_prefix(mst_txn_t *txn, MDB_dbi dbi, const unsigned char *first,
    size_t plen)
{
    int          rc;
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn->txn, dbi, &cur);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
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

    return rc == MDB_NOTFOUND ? MST_OK : mst_txn_rc(txn, rc);
}


/* ---- helpers --------------------------------------------------------- */


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


/* aad = a byte naming the sub-database, then the key */

static size_t
mst_store_aad(mst_store_t *st, MDB_dbi dbi, const MDB_val *k,
    unsigned char *aad)
{
    size_t  len;

    aad[0] = dbi == st->wf ? 'w'
             : dbi == st->cp ? 'c'
             : dbi == st->ev ? 'e'
             : dbi == st->log ? 'l'
             : dbi == st->kv ? 'k'
             : dbi == st->feed ? 'f'
             : dbi == st->part ? 'p'
             : '?';

    len = k->mv_size < MST_STORE_KEY_MAX ? k->mv_size : MST_STORE_KEY_MAX;
    memcpy(aad + 1, k->mv_data, len);

    return 1 + len;
}


static void
mst_store_txn_free(mst_txn_t *txn)
{
    if (txn->buf != NULL) {
        /* the last plain text opened */
        OPENSSL_cleanse(txn->buf, txn->cap);
        free(txn->buf);
    }

    free(txn);
}


static void
mst_store_active(mst_store_t *store, int delta)
{
    pthread_mutex_lock(&store->lock);
    store->active += delta;
    pthread_mutex_unlock(&store->lock);
}
