/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * GCRA (the generic cell rate algorithm): a request rate as one number
 * per key, the theoretical arrival time (TAT) of the next cell. A rule
 * of rate cells per window w admits burst + 1 cells at once, then one
 * every w / rate, as limit_req does.
 *
 * Exact integer arithmetic: time is kept scaled by the rate (one unit
 * is 1 / rate ms), so the emission interval of one cell is the window
 * in ms, an integer whatever the rate. The math and the state are 128
 * bits and saturate, so no input overflows: any 64-bit clock in ms times
 * MST_GCRA_RATE_MAX (10^12: a token a cell at any real token limit)
 * fits with room.
 *
 * A cell costs 1 for a request; cost > 1 charges several cells at once
 * (tokens), mst_gcra_refund gives cells back, mst_gcra_charge takes
 * them whatever the state (tokens used past a reservation: a debt).
 *
 * The state is plain memory (a shared memory node): the caller locks.
 */

#ifndef _MST_GCRA_H_INCLUDED_
#define _MST_GCRA_H_INCLUDED_

#include <stdint.h>

#define MST_GCRA_SECOND    1000ULL
#define MST_GCRA_MINUTE    (60ULL * MST_GCRA_SECOND)
#define MST_GCRA_HOUR      (60ULL * MST_GCRA_MINUTE)
#define MST_GCRA_DAY       (24ULL * MST_GCRA_HOUR)

#define MST_GCRA_RATE_MAX  1000000000000ULL    /* cells per window */

typedef struct {
    uint64_t   rate;        /* cells per window, 1..MST_GCRA_RATE_MAX */
    uint64_t   window_ms;   /* MST_GCRA_SECOND .. MST_GCRA_DAY */
    uint64_t   burst;       /* cells over the steady rate, 0.. */
} mst_gcra_rule_t;

typedef struct {
    uint64_t   tat[2];      /* scaled: ms * rate, low and high 64 bits;
                               0: never used */
    uint64_t   seen_ms;     /* the latest clock seen */
} mst_gcra_state_t;

typedef struct {
    int        admitted;
    uint64_t   limit;       /* burst + 1: cells at once (the quota) */
    uint64_t   remaining;   /* cells still admitted at once, after this */
    uint64_t   reset_ms;    /* until the bucket is full again */
    uint64_t   retry_after_ms;  /* refused: until cost cells fit; else 0 */
} mst_gcra_verdict_t;

/*
 * Charge cost cells (0 counts as 1) at now_ms (any monotonic clock).
 * Refused: the cells are unchanged. A clock going backwards is taken as
 * the last time seen: it never admits more.
 */
void mst_gcra_take(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost, uint64_t now_ms, mst_gcra_verdict_t *v);

/*
 * Charge cost cells whatever the state (tokens already used): the state
 * may go into debt, so later takes wait until it is paid off.
 */
void mst_gcra_charge(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost, uint64_t now_ms);

/* give back cost cells charged before (tokens not used) */
void mst_gcra_refund(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost);

/* the state is full again at now_ms: it may be forgotten */
int mst_gcra_idle(const mst_gcra_rule_t *rule, const mst_gcra_state_t *st,
    uint64_t now_ms);

#endif /* _MST_GCRA_H_INCLUDED_ */
