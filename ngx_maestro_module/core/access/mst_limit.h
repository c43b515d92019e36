/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Limits: the second stage of the admission path, after the caller is
 * known and before anything is read or run. The one place where
 * requests, tokens, concurrency and budget per caller will be checked
 * (GCRA in shared memory, later). Today no limit is configured and every
 * caller is admitted; the front ends already ask here, so a limit added
 * later applies to every way in at once.
 *
 * The verdict says, when a caller is refused, why and when to retry
 * (for Retry-After), so every front end answers alike.
 */

#ifndef _MST_LIMIT_H_INCLUDED_
#define _MST_LIMIT_H_INCLUDED_

#include "mst_common.h"
#include "mst_caller.h"

typedef struct mst_limits_s  mst_limits_t;     /* none yet: pass NULL */

typedef struct {
    int        admitted;
    uint64_t   limit;           /* the tightest rule's cells at once */
    uint64_t   remaining;       /* its cells left after this request */
    uint64_t   reset_ms;        /* until its bucket is full again */
    uint64_t   window_ms;       /* its window (RateLimit-Policy w=) */
    uint64_t   retry_after_ms;  /* when refused: when to come back */
    char       why[MST_ERRLEN];
} mst_limit_verdict_t;

/* MST_OK, with the verdict; today always admitted */
int mst_limit_check(const mst_limits_t *limits, const mst_caller_t *caller,
    mst_limit_verdict_t *v);

#endif /* _MST_LIMIT_H_INCLUDED_ */
