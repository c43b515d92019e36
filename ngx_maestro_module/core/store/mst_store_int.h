/*
 * Copyright (C) Maestro authors
 */

/*
 * The store's internals, shared by the files that implement parts of it:
 * mst_store.c (environment, transactions, the helpers below), one file per
 * record kind (mst_store_workflow.c, _checkpoint.c, _event.c, _log.c,
 * _kv.c), the parse cache (mst_store_cache.c) and the status feed
 * (core/flow/mst_feed.c). Nothing else includes this.
 */

#ifndef _MST_STORE_INT_H_INCLUDED_
#define _MST_STORE_INT_H_INCLUDED_

#include <pthread.h>
#include <lmdb.h>

#include "mst_store.h"
#include "mst_crypt.h"


#define MST_STORE_MAXDBS        16
#define MST_STORE_MAXREADERS    512
#define MST_STORE_KEY_MAX       511     /* LMDB's default max key size */
#define MST_STORE_SEQ_KEY_LEN   (MST_ID_LEN + 8)
#define MST_STORE_LOG_SUFFIX    12      /* be64(ms) + be32(n) */
#define MST_STORE_LIST_MAX      1000
#define MST_STORE_CACHE_SLOTS   4096    /* workflows running at once, about;
                                           ~8 KB each while running */


/*
 * The parse cache (mst_store_cache.c): the last value a write transaction
 * of this process wrote for a key, as text and as the JSON it was dumped
 * from. A later write transaction that reads the same bytes back takes
 * the JSON instead of parsing them. Only write transactions use it, so
 * LMDB's writer lock serialises every access.
 */
typedef struct {
    char              id[MST_ID_LEN];
    uint64_t          seq;          /* checkpoints: the key's sequence */
    size_t            len;
    char             *text;         /* NULL: empty slot */
    json_t           *json;
} mst_store_cached_t;

typedef struct {
    mst_store_cached_t  slot[MST_STORE_CACHE_SLOTS];
    uint64_t            hits;
    uint64_t            misses;
} mst_store_cache_t;


struct mst_store_s {
    MDB_env          *env;
    MDB_dbi           wf;
    MDB_dbi           cp;
    MDB_dbi           ev;
    MDB_dbi           log;
    MDB_dbi           kv;
    MDB_dbi           act;      /* ids of queued / running workflows */
    MDB_dbi           feed;     /* every workflow's status changes */
    MDB_dbi           key;      /* API keys */
    MDB_dbi           fin;      /* final ones by finished_at */
    MDB_dbi           finu;     /* the same per user, with counts */
    MDB_dbi           part;     /* workflows' parts (mst_store_part.c) */
    size_t            maxkey;
    const mst_crypt_t  *crypt;      /* NULL: values stored plain */
    void             (*errlog)(void *arg, const char *msg);
    void              *errlog_arg;
    int               active;       /* open transactions, under lock */
    pthread_mutex_t   lock;
    size_t            headroom;     /* conf->headroom */
    mst_store_space_t  space;       /* under lock: the last measure; its
                                       level RESERVE after a full map */
    int64_t           level_at;     /* when (monotonic ms) */
    mst_store_cache_t  wf_cache;    /* records */
    mst_store_cache_t  cp_cache;    /* last checkpoints */
};


struct mst_txn_s {
    MDB_txn          *txn;
    mst_store_t      *store;
    int               readonly;
    int               err;      /* the write error that made LMDB mark
                                   the transaction failed (MDB_MAP_FULL,
                                   MDB_TXN_FULL), or 0 */
    unsigned char    *buf;      /* the last sealed value opened */
    size_t            cap;
};



/* an LMDB return code as MST_* */
int mst_store_rc(int rc);

/*
 * The same in a transaction: a write that fails with MDB_MAP_FULL (or
 * MDB_TXN_FULL) is remembered, and MDB_BAD_TXN, which every later call in
 * the transaction returns, is reported as that first failure.
 */
int mst_txn_rc(mst_txn_t *txn, int rc);

void mst_store_put_be64(unsigned char *p, uint64_t v);
uint64_t mst_store_get_be64(const unsigned char *p);

/* key = id + be64(seq), MST_STORE_SEQ_KEY_LEN bytes */
void mst_store_seq_key(unsigned char *key, const char *id, uint64_t seq);

/* id is a well-formed workflow id (MST_ID_LEN characters) */
int mst_store_id_ok(const char *id);

int mst_store_has_prefix(const MDB_val *k, const void *prefix, size_t len);

/*
 * A named record (events, the feed): name '\0' JSON text. put_named
 * writes it with flags | MDB_RESERVE and returns an LMDB code; named
 * splits one, -1 when it has no name.
 */
int mst_store_put_named(mst_txn_t *txn, MDB_dbi dbi, MDB_val *k,
    const char *name, const char *text, size_t tlen, unsigned int flags);
int mst_store_named(const MDB_val *v, const char **name, const char **text,
    size_t *tlen);

/*
 * Writes the n pieces of plain text as the value of k in dbi (flags |
 * MDB_RESERVE): sealed when the store has a key ring, with the record
 * kind and k as AAD. *stored (may be NULL) gets the bytes as stored, valid
 * until the next write. Returns an LMDB code, or MST_ECRYPT.
 */
int mst_store_put_val(mst_txn_t *txn, MDB_dbi dbi, MDB_val *k,
    const mst_crypt_iov_t *iov, size_t n, unsigned int flags,
    MDB_val *stored);

/*
 * v, a value read from dbi under k, as plain text: a sealed one is opened
 * into the transaction's buffer (valid until the next open in this
 * transaction) and v points at it; a plain one is left as it is.
 * MST_OK, MST_ECRYPT (logged) or MST_ENOMEM.
 */
int mst_store_open_val(mst_txn_t *txn, MDB_dbi dbi, const MDB_val *k,
    MDB_val *v);

/* the JSON of a stored value; NULL when it does not parse */
json_t *mst_store_parse(const MDB_val *v, size_t flags);

/*
 * Writes json as text under key, and keeps the text and the JSON in cache
 * for id, seq. The caller must not change json afterwards.
 */
int mst_store_put_cached(mst_txn_t *txn, MDB_dbi dbi, const void *key,
    size_t klen, const json_t *json, mst_store_cache_t *cache,
    const char *id, uint64_t seq);

/* the same for text already made (malloc; taken, also on failure) */
int mst_store_put_text_cached(mst_txn_t *txn, MDB_dbi dbi, const void *key,
    size_t klen, char *text, size_t len, const json_t *json,
    mst_store_cache_t *cache, const char *id, uint64_t seq);

/*
 * Puts cur on the last key that starts with prefix; end is a key that
 * sorts after every such key and before any other (it is not modified).
 * Returns an LMDB code; MDB_NOTFOUND when no key has the prefix.
 */
int mst_store_last_with_prefix(MDB_cursor *cur, unsigned char *end,
    size_t endlen, const void *prefix, size_t plen, MDB_val *k, MDB_val *v);

/* deletes every key that starts with the plen bytes of first, from first */
int mst_store_del_prefix(mst_txn_t *txn, MDB_dbi dbi,
    const unsigned char *first, size_t plen);

/*
 * The JSON whose dump is exactly v's bytes, when this cache kept it for
 * id (and seq); the caller owns it and the slot is emptied. NULL: parse.
 */
json_t *mst_store_cache_take(mst_store_cache_t *cache, const char *id,
    uint64_t seq, const MDB_val *v);

/* keep text (malloc, owned by the cache from now) and json for id, seq */
void mst_store_cache_keep(mst_store_cache_t *cache, const char *id,
    uint64_t seq, char *text, size_t len, const json_t *json);

/* the finished index, kept by wf_put and wf_delete (_finished.c) */
int mst_store_fin_add(mst_txn_t *txn, const char *id, const json_t *rec);
int mst_store_fin_del(mst_txn_t *txn, const char *id, const json_t *rec);
int mst_store_fin_init(mst_txn_t *txn);

/* mst_store_wf_delete() of a record already read */
int mst_store_wf_delete_rec(mst_txn_t *txn, const char *id,
    const json_t *rec);
/* inline graphs of records written before the parts (mst_run.c) */
#define MST_STORE_LEGACY_GRAPHS  "maestro.graphs"

/* forget what is kept for id */
void mst_store_cache_forget(mst_store_cache_t *cache, const char *id);

void mst_store_cache_free(mst_store_cache_t *cache);

#endif /* _MST_STORE_INT_H_INCLUDED_ */
