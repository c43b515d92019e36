/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Checkpoints: the "checkpoints" sub-database, id + be64(seq) ->
 * checkpoint. A value is either a whole checkpoint (JSON text) or a
 * delta to the one before it (mst_json_delta.h):
 *
 *   {"$base":B,"$n":N,"$acc":A,"$full":F,"$d":delta}
 *
 * B is the seq of the whole checkpoint the chain starts at, N the deltas
 * since (this one included), A their bytes, F the bytes of the whole one.
 * A step writes what it changed; a whole checkpoint is written again when
 * the chain would pass MST_STORE_CP_CHAIN deltas or A would pass F, so a
 * checkpoint is read from at most one whole value and a bounded chain, and
 * the deltas of a chain never take more room than its base. Checkpoints
 * written before deltas existed are whole ones and read as they are.
 *
 * The last one of a workflow is found with mst_store_last_with_prefix();
 * writes go through the parse cache (the stored bytes, whole or delta,
 * with the whole JSON), so a step that reads back the checkpoint the
 * previous step wrote neither parses nor rebuilds it.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "mst_json.h"
#include "mst_json_delta.h"

#include "mst_store.h"
#include "mst_store_int.h"


#define MST_STORE_CP_CHAIN   64         /* deltas after a whole one, at most */
#define MST_STORE_CP_HDR     "{\"$base\":"


typedef struct {
    uint64_t   base;
    uint64_t   n;
    uint64_t   acc;
    uint64_t   full;
} mst_store_cp_hdr_t;


static int mst_store_cp_hdr(const MDB_val *plain, mst_store_cp_hdr_t *h);
static int mst_store_cp_get(mst_txn_t *txn, const char *id, uint64_t seq,
    MDB_val *plain);
static int mst_store_cp_build(mst_txn_t *txn, const char *id, uint64_t base,
    uint64_t seq, json_t **cp);
static int mst_store_cp_apply(const MDB_val *plain, uint64_t base,
    json_t **cp);


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


int
mst_store_checkpoint_put_delta(mst_txn_t *txn, const char *id, uint64_t seq,
    const json_t *cp, json_t *prev)
{
    int                  rc;
    char                *dtext, *text;
    size_t               dlen, len, hlen;
    json_t              *d;
    MDB_val              plain;
    mst_store_cp_hdr_t   h;
    unsigned char        key[MST_STORE_SEQ_KEY_LEN];

    if (prev == NULL || seq == 0) {
        return mst_store_checkpoint_put(txn, id, seq, cp);
    }

    if (txn->readonly || !mst_store_id_ok(id) || cp == NULL) {
        return MST_EINVAL;
    }

    /* the chain the one before starts or continues */

    rc = mst_store_cp_get(txn, id, seq - 1, &plain);
    if (rc == MST_NOTFOUND) {
        return mst_store_checkpoint_put(txn, id, seq, cp);
    }

    if (rc != MST_OK) {
        return rc;
    }

    if (!mst_store_cp_hdr(&plain, &h)) {
        h.base = seq - 1;
        h.n = 0;
        h.acc = 0;
        h.full = plain.mv_size;
    }

    d = mst_json_delta(prev, (json_t *) cp, &rc);
    if (rc != MST_OK) {
        return rc;
    }

    dtext = d ? mst_json_dump(d, &dlen) : strdup("null");
    json_decref(d);

    if (dtext == NULL) {
        return MST_ENOMEM;
    }

    if (d == NULL) {
        dlen = 4;
    }

    if (h.n + 1 > MST_STORE_CP_CHAIN || h.acc + dlen > h.full) {
        free(dtext);
        return mst_store_checkpoint_put(txn, id, seq, cp);
    }

    text = malloc(dlen + 128);
    if (text == NULL) {
        free(dtext);
        return MST_ENOMEM;
    }

    hlen = (size_t) snprintf(text, 128,
                             MST_STORE_CP_HDR "%llu,\"$n\":%llu,\"$acc\":%llu,"
                             "\"$full\":%llu,\"$d\":",
                             (unsigned long long) h.base,
                             (unsigned long long) h.n + 1,
                             (unsigned long long) (h.acc + dlen),
                             (unsigned long long) h.full);

    memcpy(text + hlen, dtext, dlen);
    len = hlen + dlen;
    text[len++] = '}';
    free(dtext);

    mst_store_seq_key(key, id, seq);

    return mst_store_put_text_cached(txn, txn->store->cp, key, sizeof(key),
                                     text, len, cp, &txn->store->cp_cache,
                                     id, seq);
}


void
mst_store_checkpoint_keep(mst_txn_t *txn, const char *id, uint64_t seq,
    const json_t *cp, json_t *prev)
{
    int             rc;
    char           *text, *kept;
    size_t          len;
    json_t         *d;
    MDB_val         k, v, plain;
    unsigned char   key[MST_STORE_SEQ_KEY_LEN];

    if (txn->readonly || !mst_store_id_ok(id) || cp == NULL) {
        return;
    }

    mst_store_seq_key(key, id, seq);

    k.mv_size = sizeof(key);
    k.mv_data = key;

    if (mdb_get(txn->txn, txn->store->cp, &k, &v) != MDB_SUCCESS) {
        return;
    }

    if (prev != NULL) {
        /* unchanged since it was read: the stored bytes are its bytes */

        d = mst_json_delta(prev, (json_t *) cp, &rc);
        if (d != NULL || rc != MST_OK) {
            json_decref(d);
            return;
        }

        kept = malloc(v.mv_size);
        if (kept != NULL) {
            memcpy(kept, v.mv_data, v.mv_size);
            mst_store_cache_keep(&txn->store->cp_cache, id, seq, kept,
                                 v.mv_size, cp);
        }

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

    kept = NULL;

    if (mst_crypt_is_sealed(v.mv_data, v.mv_size)) {
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
    int                  rc;
    MDB_val              k, v;
    uint64_t             last;
    MDB_cursor          *cur;
    mst_store_cp_hdr_t   h;
    unsigned char        end[MST_STORE_SEQ_KEY_LEN];

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

        if (mst_store_cp_hdr(&v, &h)) {
            mdb_cursor_close(cur);

            rc = mst_store_cp_build(txn, id, h.base, last, cp);
            if (rc != MST_OK) {
                return rc;
            }

            goto done;
        }

        *cp = mst_store_parse(&v, JSON_DECODE_ANY);
    }

    mdb_cursor_close(cur);

    if (*cp == NULL) {
        return MST_EINVAL;
    }

done:

    if (seq != NULL) {
        *seq = last;
    }

    return MST_OK;
}


int
mst_store_checkpoint_page(mst_txn_t *txn, const char *id, uint64_t from,
    size_t limit, size_t max_bytes, json_t **list, uint64_t *next)
{
    int                  rc;
    size_t               n, bytes;
    json_t              *arr, *cp, *item;
    MDB_val              k, v;
    uint64_t             seq, prev;
    MDB_cursor          *cur;
    mst_store_cp_hdr_t   h;
    unsigned char        first[MST_STORE_SEQ_KEY_LEN];

    *list = NULL;
    *next = 0;

    if (!mst_store_id_ok(id)) {
        return MST_NOTFOUND;
    }

    if (limit == 0) {
        return MST_EINVAL;
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

    mst_store_seq_key(first, id, from);

    k.mv_size = sizeof(first);
    k.mv_data = first;

    cp = NULL;
    prev = 0;
    n = 0;
    bytes = 0;

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

        if (n == limit || (n > 0 && bytes >= max_bytes)) {
            /* one more exists: the next page starts there */
            *next = seq;
            rc = MDB_NOTFOUND;
            break;
        }

        rc = mst_store_open_val(txn, txn->store->cp, &k, &v);
        if (rc != MST_OK) {
            break;
        }

        if (!mst_store_cp_hdr(&v, &h)) {
            bytes += v.mv_size;
            json_decref(cp);
            cp = mst_store_parse(&v, JSON_DECODE_ANY);

        } else if (cp != NULL && n > 0 && prev == seq - 1) {
            bytes += h.full + h.acc;
            rc = mst_store_cp_apply(&v, h.base, &cp);

        } else {
            /* the page starts inside a chain: from its base */
            bytes += h.full + h.acc;
            json_decref(cp);
            cp = NULL;
            rc = mst_store_cp_build(txn, id, h.base, seq, &cp);
        }

        if (rc != MST_OK || cp == NULL) {
            rc = (rc != MST_OK) ? rc : EINVAL;
            break;
        }

        /* the item keeps its own containers: cp goes on changing */

        item = json_pack("{s:I, s:o}", "seq", (json_int_t) seq,
                         "checkpoint", mst_json_tree_copy(cp));

        if (item == NULL || json_array_append_new(arr, item) != 0) {
            rc = ENOMEM;
            break;
        }

        prev = seq;
        n++;
    }

    json_decref(cp);
    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        json_decref(arr);
        *next = 0;
        return mst_txn_rc(txn, rc);
    }

    *list = arr;

    return MST_OK;
}


int
mst_store_checkpoint_list(mst_txn_t *txn, const char *id, json_t **list)
{
    uint64_t  next;

    return mst_store_checkpoint_page(txn, id, 0, SIZE_MAX, SIZE_MAX, list,
                                     &next);
}


/* whether plain is a delta, and its header */
static int
mst_store_cp_hdr(const MDB_val *plain, mst_store_cp_hdr_t *h)
{
    char                 buf[128];
    size_t               n;
    unsigned long long   base, cnt, acc, full;

    n = sizeof(MST_STORE_CP_HDR) - 1;

    if (plain->mv_size < n || memcmp(plain->mv_data, MST_STORE_CP_HDR, n))
    {
        return 0;
    }

    n = plain->mv_size < sizeof(buf) - 1 ? plain->mv_size : sizeof(buf) - 1;
    memcpy(buf, plain->mv_data, n);
    buf[n] = '\0';

    if (sscanf(buf, MST_STORE_CP_HDR "%llu,\"$n\":%llu,\"$acc\":%llu,"
               "\"$full\":%llu,", &base, &cnt, &acc, &full) != 4)
    {
        return 0;
    }

    h->base = base;
    h->n = cnt;
    h->acc = acc;
    h->full = full;

    return 1;
}


/* the plain text of the checkpoint at seq (valid until the next open) */
static int
mst_store_cp_get(mst_txn_t *txn, const char *id, uint64_t seq,
    MDB_val *plain)
{
    int            rc;
    MDB_val        k;
    unsigned char  key[MST_STORE_SEQ_KEY_LEN];

    mst_store_seq_key(key, id, seq);

    k.mv_size = sizeof(key);
    k.mv_data = key;

    rc = mdb_get(txn->txn, txn->store->cp, &k, plain);
    if (rc != MDB_SUCCESS) {
        return mst_txn_rc(txn, rc);
    }

    return mst_store_open_val(txn, txn->store->cp, &k, plain);
}


/* *cp: the whole checkpoint at base with the deltas up to seq applied */
static int
mst_store_cp_build(mst_txn_t *txn, const char *id, uint64_t base,
    uint64_t seq, json_t **cp)
{
    int                  rc;
    uint64_t             s;
    MDB_val              plain;
    mst_store_cp_hdr_t   h;

    *cp = NULL;

    if (base >= seq || seq - base > MST_STORE_CP_CHAIN) {
        return MST_EINVAL;
    }

    rc = mst_store_cp_get(txn, id, base, &plain);
    if (rc != MST_OK) {
        return rc == MST_NOTFOUND ? MST_EINVAL : rc;
    }

    if (mst_store_cp_hdr(&plain, &h)) {
        return MST_EINVAL;
    }

    *cp = mst_store_parse(&plain, JSON_DECODE_ANY);
    if (*cp == NULL) {
        return MST_EINVAL;
    }

    for (s = base + 1; s <= seq; s++) {
        rc = mst_store_cp_get(txn, id, s, &plain);
        if (rc == MST_OK) {
            rc = mst_store_cp_apply(&plain, base, cp);
        }

        if (rc != MST_OK) {
            json_decref(*cp);
            *cp = NULL;
            return rc == MST_NOTFOUND ? MST_EINVAL : rc;
        }
    }

    return MST_OK;
}


/* applies the delta in plain (of the chain at base) to *cp */
static int
mst_store_cp_apply(const MDB_val *plain, uint64_t base, json_t **cp)
{
    int                  rc;
    json_t              *rec;
    mst_store_cp_hdr_t   h;

    if (!mst_store_cp_hdr(plain, &h) || h.base != base) {
        return MST_EINVAL;
    }

    rec = mst_store_parse(plain, 0);
    if (rec == NULL) {
        return MST_EINVAL;
    }

    rc = mst_json_delta_apply(cp, json_object_get(rec, "$d"));
    json_decref(rec);

    return rc;
}
