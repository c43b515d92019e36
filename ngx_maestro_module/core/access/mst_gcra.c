/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_gcra.h */

#include <string.h>

#include "mst_gcra.h"


typedef unsigned __int128  mst_gcra_u128_t;


static uint64_t mst_gcra_sat(mst_gcra_u128_t x);
static uint64_t mst_gcra_ceil_ms(mst_gcra_u128_t scaled, uint64_t rate);


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

    tat = st->tat;
    if (tat < now) {
        tat = now;
    }

    ntat = tat + (mst_gcra_u128_t) cost * t;

    if (ntat - now <= cap) {
        v->admitted = 1;
        st->tat = mst_gcra_sat(ntat);
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
    tat = (st->tat < now) ? now : st->tat;

    st->tat = mst_gcra_sat(tat + (mst_gcra_u128_t) cost * rule->window_ms);
}


void
mst_gcra_refund(const mst_gcra_rule_t *rule, mst_gcra_state_t *st,
    uint64_t cost)
{
    mst_gcra_u128_t  back;

    back = (mst_gcra_u128_t) cost * rule->window_ms;

    st->tat = (back >= st->tat) ? 0 : st->tat - (uint64_t) back;
}


int
mst_gcra_idle(const mst_gcra_rule_t *rule, const mst_gcra_state_t *st,
    uint64_t now_ms)
{
    uint64_t  rate;

    rate = rule->rate ? rule->rate : 1;

    return (mst_gcra_u128_t) st->tat <= (mst_gcra_u128_t) now_ms * rate;
}
