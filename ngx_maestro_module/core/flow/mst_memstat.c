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

static __thread int         mst_memstat_on;
static __thread int64_t     mst_memstat_live;
static __thread int64_t     mst_memstat_peak;


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
    mst_memstat_live = 0;
    mst_memstat_peak = 0;
    mst_memstat_on = 1;
}


size_t
mst_memstat_end(void)
{
    mst_memstat_on = 0;

    return (size_t) mst_memstat_peak;
}


int
mst_memstat_pause(void)
{
    int  on;

    on = mst_memstat_on;
    mst_memstat_on = 0;

    return on;
}


void
mst_memstat_resume(int paused)
{
    mst_memstat_on = paused;
}


static void *
mst_memstat_malloc(size_t size)
{
    void  *p;

    p = malloc(size);

    if (p != NULL && mst_memstat_on) {
        mst_memstat_live += (int64_t) malloc_usable_size(p);

        if (mst_memstat_live > mst_memstat_peak) {
            mst_memstat_peak = mst_memstat_live;
        }
    }

    return p;
}


static void
mst_memstat_free(void *p)
{
    if (p != NULL && mst_memstat_on) {
        mst_memstat_live -= (int64_t) malloc_usable_size(p);
    }

    free(p);
}
