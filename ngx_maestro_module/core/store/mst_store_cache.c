/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: the store's parse cache (see mst_store_int.h).
 *
 * A running workflow's record and last checkpoint are read, changed and
 * written back by every step, and parsing them was the largest cost of a
 * step. The owner wrote those bytes itself in its previous transaction, so
 * the store keeps what it wrote: the text and the JSON it was dumped from.
 *
 * The check is the bytes themselves: a slot is used only when the value
 * now in the database is byte for byte the text kept. Any other writer
 * (another process cancelling or claiming the workflow, a transaction of
 * ours that was aborted after the put) leaves different bytes, or the same
 * bytes for the same JSON, so a stale slot is never used.
 *
 * The JSON is handed over (the slot is emptied), because the caller will
 * change it; the contract of the puts is that the JSON is not changed
 * after it was written. It is handed over only while the slot holds the
 * only reference: a caller that kept one (to answer a request) may still
 * read it on another thread. A finished workflow's record and checkpoint
 * are not kept (nothing steps it any more), so the cache holds running
 * workflows only. Slots are direct-mapped by a hash of the id: a
 * collision just replaces the older entry, so the memory is bounded.
 */

#include <stdlib.h>
#include <string.h>

#include "mst_store_int.h"


static mst_store_cached_t *
mst_store_cache_slot(mst_store_cache_t *cache, const char *id)
{
    size_t    i;
    uint32_t  h;

    /* FNV-1a */
    h = 2166136261u;

    for (i = 0; i < MST_ID_LEN; i++) {
        h = (h ^ (unsigned char) id[i]) * 16777619u;
    }

    return &cache->slot[h % MST_STORE_CACHE_SLOTS];
}


static void
mst_store_cache_clear(mst_store_cached_t *s)
{
    free(s->text);
    json_decref(s->json);

    s->text = NULL;
    s->json = NULL;
    s->len = 0;
}


json_t *
mst_store_cache_take(mst_store_cache_t *cache, const char *id, uint64_t seq,
    const MDB_val *v)
{
    json_t              *json;
    mst_store_cached_t  *s;

    s = mst_store_cache_slot(cache, id);

    if (s->json == NULL
        || s->seq != seq
        || s->len != v->mv_size
        || memcmp(s->id, id, MST_ID_LEN) != 0
        || memcmp(s->text, v->mv_data, s->len) != 0)
    {
        cache->misses++;
        return NULL;
    }

    json = s->json;

    /* someone else still holds it (and may read it): parse instead */
    if (__atomic_load_n(&json->refcount, __ATOMIC_ACQUIRE) != 1) {
        cache->misses++;
        return NULL;
    }

    cache->hits++;

    s->json = NULL;
    mst_store_cache_clear(s);

    return json;
}


void
mst_store_cache_keep(mst_store_cache_t *cache, const char *id, uint64_t seq,
    char *text, size_t len, const json_t *json)
{
    mst_store_cached_t  *s;

    s = mst_store_cache_slot(cache, id);

    mst_store_cache_clear(s);

    memcpy(s->id, id, MST_ID_LEN);
    s->seq = seq;
    s->text = text;
    s->len = len;
    s->json = json_incref((json_t *) json);
}


void
mst_store_cache_forget(mst_store_cache_t *cache, const char *id)
{
    mst_store_cached_t  *s;

    s = mst_store_cache_slot(cache, id);

    if (s->json != NULL && memcmp(s->id, id, MST_ID_LEN) == 0) {
        mst_store_cache_clear(s);
    }
}


void
mst_store_cache_free(mst_store_cache_t *cache)
{
    size_t  i;

    for (i = 0; i < MST_STORE_CACHE_SLOTS; i++) {
        mst_store_cache_clear(&cache->slot[i]);
    }
}
