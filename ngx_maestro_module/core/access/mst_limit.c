/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_limit.h */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mst_limit.h"


void
mst_limit_verdict_init(mst_limit_verdict_t *v)
{
    memset(v, 0, sizeof(mst_limit_verdict_t));
    v->admitted = 1;
}


void
mst_limit_verdict_add(mst_limit_verdict_t *v, const mst_gcra_verdict_t *g,
    uint64_t window_ms, const char *what)
{
    if (g->admitted) {
        /* a refusal or a tighter admitting rule stays */
        if (!v->admitted || (v->limit != 0 && g->remaining >= v->remaining))
        {
            return;
        }

    } else if (!v->admitted && g->retry_after_ms <= v->retry_after_ms) {
        return;
    }

    if (!g->admitted) {
        snprintf(v->why, sizeof(v->why), "too many %s: retry in %llu ms",
                 what ? what : "requests",
                 (unsigned long long) g->retry_after_ms);
    }

    v->admitted = g->admitted;
    v->limit = g->limit;
    v->remaining = g->remaining;
    v->reset_ms = g->reset_ms;
    v->window_ms = window_ms;
    v->retry_after_ms = g->retry_after_ms;
}


void
mst_limit_verdict_count(mst_limit_verdict_t *v, const mst_limit_rule_t *r,
    uint64_t inflight)
{
    if (inflight < r->max) {
        return;                 /* slots say nothing of when to retry */
    }

    if (!v->admitted) {
        return;                 /* refused already, with its own why */
    }

    v->admitted = 0;

    /* a slot frees when a request ends: try again in a second */
    v->retry_after_ms = 1000;
    v->limit = r->max;
    v->remaining = 0;
    v->reset_ms = 1000;
    v->window_ms = 1000;

    snprintf(v->why, sizeof(v->why), "%s: %llu %s at once",
             r->name ? r->name : "limit", (unsigned long long) r->max,
             r->kind == MST_LIMIT_STREAMS ? "open streams"
                                          : "requests in flight");
}


int
mst_limit_tokens_rule(mst_limit_rule_t *r, uint64_t tokens,
    uint64_t window_ms, uint64_t burst)
{
    if (tokens == 0 || tokens > MST_LIMIT_TOKENS_MAX
        || burst > MST_LIMIT_TOKENS_MAX)
    {
        return MST_EINVAL;
    }

    /* a cell a token: the window's tokens at once, and burst more */
    r->kind = MST_LIMIT_TOKENS;
    r->gcra.rate = tokens;
    r->gcra.window_ms = window_ms;
    r->gcra.burst = tokens + burst - 1;

    return MST_OK;
}


static uint64_t
mst_limit_field(const json_t *limits, const char *name)
{
    json_t  *v;

    v = json_object_get(limits, name);

    return (json_is_integer(v) && json_integer_value(v) > 0)
           ? (uint64_t) json_integer_value(v) : 0;
}


size_t
mst_limit_key_rules(const json_t *key, mst_limit_rule_t *out)
{
    size_t     n;
    json_t    *limits;
    uint64_t   v;

    limits = json_object_get(key, "limits");
    if (!json_is_object(limits)) {
        return 0;
    }

    n = 0;

    v = mst_limit_field(limits, "rpm");
    if (v) {
        memset(&out[n], 0, sizeof(mst_limit_rule_t));
        out[n].kind = MST_LIMIT_REQUESTS;
        out[n].gcra.rate = v > MST_GCRA_RATE_MAX ? MST_GCRA_RATE_MAX : v;
        out[n].gcra.window_ms = MST_GCRA_MINUTE;
        out[n].gcra.burst = out[n].gcra.rate - 1;
        out[n].name = "rpm";
        n++;
    }

    v = mst_limit_field(limits, "tpm");
    if (v) {
        memset(&out[n], 0, sizeof(mst_limit_rule_t));
        if (mst_limit_tokens_rule(&out[n], v > MST_LIMIT_TOKENS_MAX
                                           ? MST_LIMIT_TOKENS_MAX : v,
                                  MST_GCRA_MINUTE, 0) == MST_OK)
        {
            out[n++].name = "tpm";
        }
    }

    v = mst_limit_field(limits, "tpd");
    if (v) {
        memset(&out[n], 0, sizeof(mst_limit_rule_t));
        if (mst_limit_tokens_rule(&out[n], v > MST_LIMIT_TOKENS_MAX
                                           ? MST_LIMIT_TOKENS_MAX : v,
                                  MST_GCRA_DAY, 0) == MST_OK)
        {
            out[n++].name = "tpd";
        }
    }

    v = mst_limit_field(limits, "max_parallel");
    if (v) {
        memset(&out[n], 0, sizeof(mst_limit_rule_t));
        out[n].kind = MST_LIMIT_PARALLEL;
        out[n].max = v > MST_LIMIT_PARALLEL_MAX ? MST_LIMIT_PARALLEL_MAX : v;
        out[n].name = "max_parallel";
        n++;
    }

    return n;
}


uint64_t
mst_limit_estimate(size_t input_bytes, int64_t max_tokens, uint64_t cap)
{
    uint64_t  in;

    in = ((uint64_t) input_bytes + 3) / 4;

    return in + (max_tokens >= 0 ? (uint64_t) max_tokens : cap);
}


uint64_t
mst_limit_cells(const mst_limit_rule_t *r, uint64_t tokens)
{
    uint64_t  at_once;

    at_once = r->gcra.burst + 1;

    if (tokens == 0) {
        return 1;
    }

    return tokens > at_once ? at_once : tokens;
}


int
mst_limit_period(const char *period, int64_t now_ms, char *bucket,
    size_t len, int64_t *reset_ms)
{
    time_t     t;
    struct tm  tm, next;

    *reset_ms = 0;

    if (period == NULL || strcmp(period, "total") == 0) {
        snprintf(bucket, len, "total");
        return MST_OK;
    }

    t = (time_t) (now_ms / 1000);
    gmtime_r(&t, &tm);

    next = tm;
    next.tm_hour = 0;
    next.tm_min = 0;
    next.tm_sec = 0;

    if (strcmp(period, "day") == 0) {
        snprintf(bucket, len, "day:%04d-%02d-%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
        next.tm_mday++;

    } else if (strcmp(period, "month") == 0) {
        snprintf(bucket, len, "month:%04d-%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1);
        next.tm_mday = 1;
        next.tm_mon++;

    } else {
        return MST_EINVAL;
    }

    /* timegm normalises day 32 and month 12 */
    *reset_ms = (int64_t) timegm(&next) * 1000 - now_ms;

    return MST_OK;
}


int
mst_limit_spent(double budget, double spent, const char *period,
    const char *whose, char *why, size_t whylen)
{
    if (spent < budget) {
        return MST_OK;
    }

    return mst_err(why, whylen, MST_EDENIED,
                   "%s budget exhausted: %.6f of %.6f USD spent this %s",
                   whose, spent, budget, period ? period : "month");
}


int
mst_limit_budget(const json_t *key, double spent_usd, char *why,
    size_t whylen)
{
    json_t  *b;

    b = json_object_get(key, "budget_usd");

    if (!json_is_number(b)) {
        return MST_OK;
    }

    return mst_limit_spent(json_number_value(b), spent_usd,
                           json_string_value(json_object_get(key,
                                                             "budget_period")),
                           "the API key's", why, whylen);
}


const mst_budget_t *
mst_limit_team_budget(const mst_budget_t *budgets, size_t n,
    const char *team)
{
    size_t               i;
    const mst_budget_t  *any;

    if (team == NULL || team[0] == '\0') {
        return NULL;
    }

    any = NULL;

    for (i = 0; i < n; i++) {
        if (strcmp(budgets[i].team, team) == 0) {
            return &budgets[i];
        }

        if (strcmp(budgets[i].team, "*") == 0) {
            any = &budgets[i];
        }
    }

    return any;
}
