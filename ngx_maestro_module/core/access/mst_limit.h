/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Limits: the second stage of the admission path, after the caller is
 * known. What a rule counts and how a request is charged is decided here;
 * the glue keeps the counters in shared memory (ngx_http_maestro_limit.c)
 * and calls these functions under its lock.
 *
 * Four kinds of rule:
 *   requests  GCRA cells, one per request (maestro_limit rate=, a key's
 *             "rpm")
 *   tokens    GCRA cells of a token (maestro_limit tokens=, a key's
 *             "tpm", "tpd"): a call reserves its estimate before the
 *             provider is asked and is reconciled with the real usage
 *             when the answer ends; a workflow's agents are charged
 *             their usage as each call ends
 *   parallel  requests in flight (maestro_limit concurrent=, a key's
 *             "max_parallel"): a slot is held to the request's last byte
 *   streams   open subscriptions: SSE follows, the monitor, WebSocket
 *             connections (maestro_limit streams=)
 *
 * A reservation is never larger than what its rule admits at once, so a
 * cap smaller than the estimate does not refuse the first request; the
 * excess is charged at reconciliation and later requests wait for it.
 *
 * Budget: a key's budget_usd per budget_period ("day" and "month" in UTC,
 * or "total"); the spend is read from the store's per-key usage. A key
 * whose spend reached its budget is refused (insufficient_quota) until
 * the period turns; the call that crosses it is not cut short.
 */

#ifndef _MST_LIMIT_H_INCLUDED_
#define _MST_LIMIT_H_INCLUDED_

#include "mst_common.h"
#include "mst_gcra.h"

typedef enum {
    MST_LIMIT_REQUESTS = 0,
    MST_LIMIT_TOKENS,
    MST_LIMIT_PARALLEL,
    MST_LIMIT_STREAMS
} mst_limit_kind_t;

typedef struct {
    mst_limit_kind_t   kind;
    mst_gcra_rule_t    gcra;        /* requests, tokens */
    uint64_t           max;         /* parallel, streams: at once */
    const char        *name;        /* "rpm", "tpm", ...: logs, /me */
} mst_limit_rule_t;

typedef struct {
    int        admitted;
    uint64_t   limit;           /* the tightest rule's cells at once */
    uint64_t   remaining;       /* its cells left after this request */
    uint64_t   reset_ms;        /* until its bucket is full again */
    uint64_t   window_ms;       /* its window (RateLimit-Policy w=) */
    uint64_t   retry_after_ms;  /* when refused: when to come back */
    char       why[MST_ERRLEN];
} mst_limit_verdict_t;

#define MST_LIMIT_KEY_RULES      4       /* rpm, tpm, tpd, max_parallel */

/* maestro_team_budget: a team's (or every team's, "*") budget */
typedef struct {
    const char        *team;
    double             usd;
    const char        *period;      /* "day", "month", "total" */
} mst_budget_t;
#define MST_LIMIT_TOKENS_MAX     MST_GCRA_RATE_MAX  /* per window */
#define MST_LIMIT_PARALLEL_MAX   1000000ULL

/* a verdict that admits, with no rule applied yet */
void mst_limit_verdict_init(mst_limit_verdict_t *v);

/*
 * One rule's GCRA verdict into v: a refusal wins (the one that waits
 * longest), else the rule with the fewest cells left. what: "requests"
 * or "tokens", for why.
 */
void mst_limit_verdict_add(mst_limit_verdict_t *v,
    const mst_gcra_verdict_t *g, uint64_t window_ms, const char *what);

/* one counter rule (parallel, streams): in flight before this one */
void mst_limit_verdict_count(mst_limit_verdict_t *v,
    const mst_limit_rule_t *r, uint64_t inflight);

/*
 * A token rule of `tokens` per window_ms (burst: tokens over it, 0: the
 * window's tokens at once). MST_EINVAL beyond MST_LIMIT_TOKENS_MAX.
 */
int mst_limit_tokens_rule(mst_limit_rule_t *r, uint64_t tokens,
    uint64_t window_ms, uint64_t burst);

/*
 * A key record's "limits" (rpm, tpm, tpd, max_parallel; 0 or null: none)
 * as rules; returns how many (<= MST_LIMIT_KEY_RULES). A per-minute or
 * per-day limit admits its whole window at once.
 */
size_t mst_limit_key_rules(const json_t *key, mst_limit_rule_t *out);

/*
 * Tokens a call reserves: its input (about 4 bytes a token, rounded up)
 * plus max_tokens, or cap when the request sets none (max_tokens < 0).
 */
uint64_t mst_limit_estimate(size_t input_bytes, int64_t max_tokens,
    uint64_t cap);

/* the cells a reservation of tokens takes under a token rule: at most
   what it admits at once (see above) */
uint64_t mst_limit_cells(const mst_limit_rule_t *r, uint64_t tokens);

/*
 * The bucket of a budget period at now (ms since the epoch, UTC):
 * "day:2026-12-07", "month:2026-12" or "total"; *reset_ms: until it
 * turns (0: never). MST_EINVAL: not a period.
 */
int mst_limit_period(const char *period, int64_t now_ms, char *bucket,
    size_t len, int64_t *reset_ms);

/*
 * A budget (USD) against what was spent this period (NULL: "month"):
 * MST_OK, or MST_EDENIED with why ("<whose> budget exhausted: ...")
 */
int mst_limit_spent(double budget, double spent, const char *period,
    const char *whose, char *why, size_t whylen);

/* the budget of team: its own, else "*"'s, else NULL */
const mst_budget_t *mst_limit_team_budget(const mst_budget_t *budgets,
    size_t n, const char *team);

/*
 * A key's budget against what it spent this period: MST_OK (no budget,
 * or some left), MST_EDENIED with why when spent >= budget_usd.
 */
int mst_limit_budget(const json_t *key, double spent_usd, char *why,
    size_t whylen);

#endif /* _MST_LIMIT_H_INCLUDED_ */
