/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_graph.h (mst_graph_cache_*).
 *
 * A workflow submitted with its own graph keeps that graph's definition in
 * the store, and every transaction on it used to load and parse it again.
 * The definition never changes once written, so a parsed graph can be kept
 * by workflow id with no check at all. Slots are direct-mapped by a hash of
 * the id; a slot whose graph is in use by a transaction is not replaced
 * (the newcomer is simply not kept), and a graph leaves the cache only
 * when nobody uses it. A mutex guards the slots: transactions of several
 * stores may run at once in one process.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mst_graph.h"


#define MST_GRAPH_CACHE_SLOTS  64


typedef struct {
    char           id[MST_ID_LEN];
    mst_graph_t   *graph;
    unsigned       refs;
} mst_graph_cached_t;


static mst_graph_cached_t  mst_graph_cache[MST_GRAPH_CACHE_SLOTS];
static pthread_mutex_t     mst_graph_cache_lock = PTHREAD_MUTEX_INITIALIZER;


static mst_graph_cached_t *
mst_graph_cache_slot(const char *id)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < MST_ID_LEN; i++) {
        h = (h ^ (unsigned char) id[i]) * 16777619u;
    }

    return &mst_graph_cache[h % MST_GRAPH_CACHE_SLOTS];
}


mst_graph_t *
mst_graph_cache_get(const char *id)
{
    mst_graph_t         *g;
    mst_graph_cached_t  *s;

    g = NULL;

    pthread_mutex_lock(&mst_graph_cache_lock);

    s = mst_graph_cache_slot(id);

    if (s->graph != NULL && memcmp(s->id, id, MST_ID_LEN) == 0) {
        s->refs++;
        g = s->graph;
    }

    pthread_mutex_unlock(&mst_graph_cache_lock);

    return g;
}


int
mst_graph_cache_keep(const char *id, mst_graph_t *g)
{
    int                  kept;
    mst_graph_t         *old;
    mst_graph_cached_t  *s;

    kept = 0;
    old = NULL;

    pthread_mutex_lock(&mst_graph_cache_lock);

    s = mst_graph_cache_slot(id);

    if (s->refs == 0) {
        old = s->graph;
        memcpy(s->id, id, MST_ID_LEN);
        s->graph = g;
        s->refs = 1;
        kept = 1;
    }

    pthread_mutex_unlock(&mst_graph_cache_lock);

    mst_graph_free(old);

    return kept;
}


void
mst_graph_cache_release(mst_graph_t *g)
{
    size_t  i;

    pthread_mutex_lock(&mst_graph_cache_lock);

    for (i = 0; i < MST_GRAPH_CACHE_SLOTS; i++) {
        if (mst_graph_cache[i].graph == g && mst_graph_cache[i].refs > 0) {
            mst_graph_cache[i].refs--;
            break;
        }
    }

    pthread_mutex_unlock(&mst_graph_cache_lock);
}
