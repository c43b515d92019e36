/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_limit.h */

#include <string.h>

#include "mst_limit.h"


int
mst_limit_check(const mst_limits_t *limits, const mst_caller_t *caller,
    mst_limit_verdict_t *v)
{
    memset(v, 0, sizeof(mst_limit_verdict_t));

    /* no limit is configured yet: everyone is admitted */
    v->admitted = 1;

    return MST_OK;
}
