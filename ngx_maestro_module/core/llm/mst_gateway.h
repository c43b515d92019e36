/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The LLM gateway's decisions in front of several OpenAI-compatible
 * providers: which provider to try, in which order, whether its breaker
 * lets a request through, and what a call's or a health check's outcome
 * does to it. The nginx worker's engine (ngx_http_maestro_engine.c) makes
 * the calls on its event loop, for /v1 and the plugins' calls alike, with
 * mst_gateway_plan(), _take() and _done(), and the health checks with
 * mst_gateway_health(); the wire itself is mst_oai.h.
 *
 *  - Order: by priority (lower first); among equal priorities, a
 *    weighted random choice, so load spreads by weight, or (balance
 *    "latency") the lowest EWMA of time-to-first-token first.
 *  - Circuit breaker per provider: closed; open after `failures`
 *    consecutive failures (nothing is sent to it); half-open after
 *    `recovery_ms`, when exactly one probe request may go; the probe's
 *    success closes it, its failure opens it again. The breakers live in
 *    memory the caller gives (nginx puts them in shared memory, so every
 *    worker sees the same state) and change with atomic operations only.
 *  - Fallback: on a provider failure (connect error, timeout, 429, 5xx,
 *    malformed answer) the engine tries the next provider of the plan,
 *    unless the answer had started streaming: text already delivered
 *    cannot be taken back, so a stream broken mid-way is an error, never
 *    a silent switch. Which failure is which, retries and backoff inside
 *    one provider: mst_oai_classify(), mst_oai_backoff().
 *
 * With no provider, the offline provider answers (mst_offline.h).
 */

#ifndef _MST_GATEWAY_H_INCLUDED_
#define _MST_GATEWAY_H_INCLUDED_

#include "mst_llm.h"
#include "mst_oai.h"

#define MST_GATEWAY_MAX      16

#define MST_GATEWAY_WEIGHTED  0
#define MST_GATEWAY_LATENCY   1

/* with LATENCY, one call in this many takes the weighted draw */
#define MST_GATEWAY_EXPLORE   16

typedef struct mst_gateway_s  mst_gateway_t;

/* one provider's breaker: lives in shared memory; all fields atomic */
typedef struct {
    volatile uint64_t     state;        /* MST_BREAKER_* */
    volatile uint64_t     failures;     /* consecutive */
    volatile uint64_t     opened_at;    /* ms */
    volatile uint64_t     probing;      /* a half-open probe is out */
    volatile uint64_t     requests;
    volatile uint64_t     errors;
    volatile uint64_t     ewma_ms;      /* first token, EWMA (1/8) */
    volatile uint64_t     health;       /* MST_HEALTH_*: the last check */
} mst_breaker_t;

#define MST_HEALTH_UNKNOWN     0
#define MST_HEALTH_UP          1
#define MST_HEALTH_DOWN        2

#define MST_BREAKER_CLOSED     0
#define MST_BREAKER_OPEN       1
#define MST_BREAKER_HALF_OPEN  2

typedef struct {
    mst_llm_provider_t    provider;
    int                   priority;     /* lower first */
    int                   weight;       /* >= 1 */
} mst_gateway_provider_t;

typedef struct {
    uint64_t              failures;     /* to open: default 5 */
    int64_t               recovery_ms;  /* open -> half-open: 60000 */
} mst_breaker_conf_t;

/*
 * n may be 0 (offline). breakers: n slots the caller keeps (zeroed
 * once, shared between processes), or NULL for private ones.
 */
mst_gateway_t *mst_gateway_create(const mst_gateway_provider_t *providers,
    size_t n, const mst_breaker_conf_t *bc, mst_breaker_t *breakers,
    char *err, size_t errlen);
void mst_gateway_free(mst_gateway_t *gw);

/* MST_GATEWAY_WEIGHTED (the default) or MST_GATEWAY_LATENCY */
void mst_gateway_set_balance(mst_gateway_t *gw, int balance);

int mst_gateway_online(const mst_gateway_t *gw);

/*
 * For the engine that makes the HTTP calls (on the event loop):
 *
 * mst_gateway_plan(): the members to try for a request of model, in order:
 * those whose provider serves model (its model=), in the gateway's order,
 * then those of each model of its fallback chain (mst_gateway_fallback),
 * each with its own model. Returns 0 when no member serves model.
 * mst_gateway_take(): whether member i may be sent a request now (its
 * breaker; may claim the half-open probe).
 * mst_gateway_done(): the outcome of what was sent to member i: 1 worked
 * (first_ms: time to first byte), 0 the provider failed, -1 neither (the
 * client's error or the client went away: only a probe is given back).
 */
size_t mst_gateway_plan(mst_gateway_t *gw, const char *model,
    size_t *order);
/* every member, in the gateway's order (a plugin's call) */
size_t mst_gateway_plan_all(mst_gateway_t *gw, size_t *order);

/*
 * maestro_llm_fallback: model, then next[0], next[1], ... (copied), on
 * the failures in on (MST_FAIL_*; 0: all of them).
 */
#define MST_GATEWAY_MAX_FALLBACK  8

/* on: MST_FAIL_* of mst_oai.h */

int mst_gateway_fallback(mst_gateway_t *gw, const char *model,
    const char *const *next, size_t n, unsigned on);
/* the failures on which model falls back to its chain (MST_FAIL_ALL) */
unsigned mst_gateway_fallback_on(const mst_gateway_t *gw, const char *model);
int mst_gateway_take(mst_gateway_t *gw, size_t i);
void mst_gateway_done(mst_gateway_t *gw, size_t i, int ok,
    int64_t first_ms);
const mst_llm_provider_t *mst_gateway_provider(const mst_gateway_t *gw,
    size_t i);

/* the distinct models the providers serve, for GET /v1/models */
json_t *mst_gateway_models(const mst_gateway_t *gw);

/* the number of members */
size_t mst_gateway_size(const mst_gateway_t *gw);

/*
 * The outcome of member i's active health check (GET /models, made by
 * the engine): a failure opens its breaker (as if it had failed
 * `failures` times); a success makes an open breaker's next call the
 * half-open probe at once. When its health changed, appends
 * {"provider", "healthy", "error"} to changes (may be NULL) and returns
 * 1; else 0.
 */
int mst_gateway_health(mst_gateway_t *gw, size_t i, int ok,
    const char *error, json_t *changes);

/* [{"name", "base_url", "priority", "weight", "breaker": {"state",
   "failures", "opened_at"}, "requests", "errors", "latency_ms",
   "health": unknown | up | down}] */
json_t *mst_gateway_status(const mst_gateway_t *gw);

#endif /* _MST_GATEWAY_H_INCLUDED_ */
