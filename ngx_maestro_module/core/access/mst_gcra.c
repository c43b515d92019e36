/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_gcra.h */

#include <string.h>

#include "mst_gcra.h"


typedef unsigned __int128  mst_gcra_u128_t;


static uint64_t mst_gcra_sat(mst_gcra_u128_t x);
static uint64_t mst_gcra_ceil_ms(mst_gcra_u128_t scaled, uint64_t rate);


#define MST_GCRA_U128_MAX  (~(mst_gcra_u128_t) 0)


static mst_gcra_u128_t
mst_gcra_tat(const mst_gcra_state_t *st)
{
    return ((mst_gcra_u128_t) st->tat[1] << 64) | st->tat[0];
}


static void
mst_gcra_set_tat(mst_gcra_state_t *st, mst_gcra_u128_t tat)
{
    st->tat[0] = (uint64_t) tat;
    st->tat[1] = (uint64_t) (tat >> 64);
}


/* a + b, saturating (the state never wraps) */
static mst_gcra_u128_t
mst_gcra_add(mst_gcra_u128_t a, mst_gcra_u128_t b)
{
    return (a > MST_GCRA_U128_MAX - b) ? MST_GCRA_U128_MAX : a + b;
}


static uint64_t
mst_gcra_sat(mst_gcra_u128_t x)
{
    return (x > UINT64_MAX) ? UINT64_MAX : (uint64_t) x;
}


/* scaled time to ms, rounded up: a retry never comes too early */
static uint64_t
mst_gcra_ceil_ms(mst_gcra_u128_t scaled, uint64_t rate)
{
    return mst_gcra_sat((scaled + rate - 1) / rate);
}


void
mst_gcra_take(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost, uint64_t now_ms, mst_gcra_verdict_t *v)
{
    uint64_t         rate;
    mst_gcra_u128_t  t, now, tat, ntat, cap, used;

    memset(v, 0, sizeof(mst_gcra_verdict_t));

    rate = rule->rate ? rule->rate : 1;
    cost = cost ? cost : 1;

    t = rule->window_ms;                       /* one cell, scaled */
    now = (mst_gcra_u128_t) now_ms * rate;
    cap = ((mst_gcra_u128_t) rule->burst + 1) * t;

    v->limit = mst_gcra_sat((mst_gcra_u128_t) rule->burst + 1);

    /* a clock gone backwards (another worker's, a little behind) is the
       last time seen: it never admits more */
    if (now_ms < st->seen_ms) {
        now = (mst_gcra_u128_t) st->seen_ms * rate;

    } else {
        st->seen_ms = now_ms;
    }

    tat = mst_gcra_tat(st);
    if (tat < now) {
        tat = now;
    }

    ntat = mst_gcra_add(tat, (mst_gcra_u128_t) cost * t);

    if (ntat - now <= cap) {
        v->admitted = 1;
        mst_gcra_set_tat(st, ntat);
        used = ntat - now;

    } else {
        v->retry_after_ms = mst_gcra_ceil_ms(ntat - now - cap, rate);
        used = tat - now;
    }

    /* in debt (mst_gcra_charge): nothing left */
    v->remaining = (used >= cap) ? 0 : mst_gcra_sat((cap - used) / t);
    v->reset_ms = mst_gcra_ceil_ms(used, rate);
}


void
mst_gcra_charge(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost, uint64_t now_ms)
{
    uint64_t         rate;
    mst_gcra_u128_t  now, tat;

    rate = rule->rate ? rule->rate : 1;

    if (now_ms > st->seen_ms) {
        st->seen_ms = now_ms;
    }

    now = (mst_gcra_u128_t) st->seen_ms * rate;
    tat = mst_gcra_tat(st);

    if (tat < now) {
        tat = now;
    }

    mst_gcra_set_tat(st, mst_gcra_add(tat, (mst_gcra_u128_t) cost
                                           * rule->window_ms));
}


void
mst_gcra_refund(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost)
{
    mst_gcra_u128_t  back, tat;

    back = (mst_gcra_u128_t) cost * rule->window_ms;
    tat = mst_gcra_tat(st);

    mst_gcra_set_tat(st, (back >= tat) ? 0 : tat - back);
}


int
mst_gcra_idle(const mst_gcra_rule_t *rule, const mst_gcra_state_t *st,
    uint64_t now_ms)
{
    uint64_t  rate;

    rate = rule->rate ? rule->rate : 1;

    return mst_gcra_tat(st) <= (mst_gcra_u128_t) now_ms * rate;
}
