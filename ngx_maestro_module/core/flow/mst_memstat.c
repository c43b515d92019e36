/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_memstat.h */

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

#include "mst_memstat.h"


static void *mst_memstat_malloc(size_t size);
static void mst_memstat_free(void *p);


static int                  mst_memstat_installed;

/*
 * One thread-local block, initial-exec: the hooks run on every jansson
 * allocation of every thread, and the default dynamic model costs a
 * __tls_get_addr call per access from a dlopen()ed module (about 0.5 % of
 * the server's CPU in bench/ orchestration); glibc keeps static TLS room
 * for a few bytes of late-loaded modules.
 */
typedef struct {
    int64_t                 live;
    int64_t                 peak;
    int                     on;
} mst_memstat_t;

static __thread mst_memstat_t  mst_memstat
    __attribute__((tls_model("initial-exec")));


void
mst_memstat_init(void)
{
    if (mst_memstat_installed) {
        return;
    }

    mst_memstat_installed = 1;
    json_set_alloc_funcs(mst_memstat_malloc, mst_memstat_free);
}


void
mst_memstat_begin(void)
{
    mst_memstat.live = 0;
    mst_memstat.peak = 0;
    mst_memstat.on = 1;
}


size_t
mst_memstat_end(void)
{
    mst_memstat.on = 0;

    return (size_t) mst_memstat.peak;
}


int
mst_memstat_pause(void)
{
    int  on;

    on = mst_memstat.on;
    mst_memstat.on = 0;

    return on;
}


void
mst_memstat_resume(int paused)
{
    mst_memstat.on = paused;
}


static void *
mst_memstat_malloc(size_t size)
{
    void  *p;

    p = malloc(size);

    if (p != NULL && mst_memstat.on) {
        mst_memstat.live += (int64_t) malloc_usable_size(p);

        if (mst_memstat.live > mst_memstat.peak) {
            mst_memstat.peak = mst_memstat.live;
        }
    }

    return p;
}


static void
mst_memstat_free(void *p)
{
    if (p != NULL && mst_memstat.on) {
        mst_memstat.live -= (int64_t) malloc_usable_size(p);
    }

    free(p);
}
