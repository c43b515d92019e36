/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_gateway.h */

#include <stdlib.h>
#include <string.h>

#include "mst_gateway.h"


typedef struct {
    mst_gateway_provider_t   conf;
    char                    *name;
    char                    *base_url;
    mst_breaker_t           *breaker;
} mst_gateway_member_t;


typedef struct {
    char                    *model;
    char                    *next[MST_GATEWAY_MAX_FALLBACK];
    size_t                   n;
    unsigned                 on;        /* MST_FAIL_* */
} mst_gateway_chain_t;


struct mst_gateway_s {
    mst_gateway_member_t     members[MST_GATEWAY_MAX];
    mst_gateway_chain_t      chains[MST_GATEWAY_MAX];
    size_t                   nchains;
    size_t                   n;
    mst_breaker_conf_t       bc;
    mst_breaker_t           *own;       /* when the caller gave none */
    int                      balance;   /* MST_GATEWAY_WEIGHTED, ... */
};


mst_gateway_t *
mst_gateway_create(const mst_gateway_provider_t *providers, size_t n,
    const mst_breaker_conf_t *bc, mst_breaker_t *breakers, char *err,
    size_t errlen)
{
    size_t          i;
    mst_gateway_t  *gw;

    if (n > MST_GATEWAY_MAX) {
        mst_err(err, errlen, MST_EINVAL, "at most %d providers",
                MST_GATEWAY_MAX);
        return NULL;
    }

    gw = calloc(1, sizeof(mst_gateway_t));
    if (gw == NULL) {
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        return NULL;
    }

    gw->bc.failures = (bc && bc->failures) ? bc->failures : 5;
    gw->bc.recovery_ms = (bc && bc->recovery_ms) ? bc->recovery_ms : 60000;

    if (breakers == NULL && n > 0) {
        gw->own = calloc(n, sizeof(mst_breaker_t));
        if (gw->own == NULL) {
            free(gw);
            mst_err(err, errlen, MST_ENOMEM, "out of memory");
            return NULL;
        }
        breakers = gw->own;
    }

    for (i = 0; i < n; i++) {
        mst_gateway_member_t  *m = &gw->members[i];

        m->conf = providers[i];
        m->name = strdup(providers[i].provider.name
                         ? providers[i].provider.name : "default");
        m->base_url = strdup(providers[i].provider.base_url
                             ? providers[i].provider.base_url : "");
        m->breaker = &breakers[i];

        if (m->conf.weight < 1) {
            m->conf.weight = 1;
        }

        gw->n++;

        if (m->name == NULL || m->base_url == NULL) {
            mst_gateway_free(gw);
            mst_err(err, errlen, MST_ENOMEM, "out of memory");
            return NULL;
        }

        if (strncmp(m->base_url, "http://", 7) != 0
            && strncmp(m->base_url, "https://", 8) != 0)
        {
            mst_err(err, errlen, MST_EINVAL, "provider \"%s\": base_url "
                    "must start with http:// or https://", m->name);
            mst_gateway_free(gw);
            return NULL;
        }

        m->conf.provider.name = m->name;
        m->conf.provider.base_url = m->base_url;
    }

    return gw;
}


void
mst_gateway_free(mst_gateway_t *gw)
{
    size_t  i;

    if (gw == NULL) {
        return;
    }

    for (i = 0; i < gw->n; i++) {
        free(gw->members[i].name);
        free(gw->members[i].base_url);
    }

    for (i = 0; i < gw->nchains; i++) {
        size_t  j;

        free(gw->chains[i].model);
        for (j = 0; j < gw->chains[i].n; j++) {
            free(gw->chains[i].next[j]);
        }
    }

    free(gw->own);
    free(gw);
}


int
mst_gateway_online(const mst_gateway_t *gw)
{
    return gw != NULL && gw->n > 0;
}


/*
 * May this provider take a request now? Open breakers refuse until their
 * recovery time; then one caller wins the half-open probe.
 */
static int
mst_gateway_admit(mst_gateway_t *gw, mst_breaker_t *b, int64_t now)
{
    uint64_t  state;

    state = __atomic_load_n(&b->state, __ATOMIC_ACQUIRE);

    if (state == MST_BREAKER_CLOSED) {
        return 1;
    }

    if (state == MST_BREAKER_OPEN) {
        if (now - (int64_t) __atomic_load_n(&b->opened_at, __ATOMIC_ACQUIRE)
            < gw->bc.recovery_ms)
        {
            return 0;
        }

        /* recovery time is over: half-open */
        (void) __sync_bool_compare_and_swap(&b->state, MST_BREAKER_OPEN,
                                            MST_BREAKER_HALF_OPEN);
    }

    /* half-open: a single probe at a time */
    return __sync_bool_compare_and_swap(&b->probing, 0, 1);
}


static void
mst_gateway_result(mst_gateway_t *gw, mst_breaker_t *b, int ok,
    int64_t latency)
{
    uint64_t  f, ewma;

    __atomic_add_fetch(&b->requests, 1, __ATOMIC_RELAXED);

    if (ok) {
        ewma = __atomic_load_n(&b->ewma_ms, __ATOMIC_RELAXED);
        ewma = ewma ? (ewma * 7 + (uint64_t) latency) / 8
                    : (uint64_t) latency;
        __atomic_store_n(&b->ewma_ms, ewma, __ATOMIC_RELAXED);

        __atomic_store_n(&b->failures, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&b->state, MST_BREAKER_CLOSED, __ATOMIC_RELEASE);
        __atomic_store_n(&b->probing, 0, __ATOMIC_RELEASE);
        return;
    }

    __atomic_add_fetch(&b->errors, 1, __ATOMIC_RELAXED);

    f = __atomic_add_fetch(&b->failures, 1, __ATOMIC_ACQ_REL);

    if (__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) == MST_BREAKER_HALF_OPEN
        || f >= gw->bc.failures)
    {
        __atomic_store_n(&b->opened_at, (uint64_t) mst_mono_ms(),
                         __ATOMIC_RELEASE);
        __atomic_store_n(&b->state, MST_BREAKER_OPEN, __ATOMIC_RELEASE);
    }

    __atomic_store_n(&b->probing, 0, __ATOMIC_RELEASE);
}


void
mst_gateway_set_balance(mst_gateway_t *gw, int balance)
{
    gw->balance = balance;
}


static uint32_t
mst_gateway_random(void)
{
    /* load spreading needs no cryptographic draws */
    return (uint32_t) (mst_oai_random(NULL) >> 32);
}


/*
 * The members in the order to try: priority, then within a priority a
 * weighted random draw, or with MST_GATEWAY_LATENCY the lowest EWMA of
 * time-to-first-token first. An unmeasured member goes first so that it
 * gets measured, and one call in MST_GATEWAY_EXPLORE takes the weighted
 * draw instead, so a provider that was slow once is measured again.
 */
static size_t
mst_gateway_order(mst_gateway_t *gw, size_t *order)
{
    size_t    i, j, k, n, total, pick;
    uint64_t  e, best;
    int       done[MST_GATEWAY_MAX], fastest;

    memset(done, 0, sizeof(done));
    n = 0;

    while (n < gw->n) {
        /* the lowest priority still left */
        k = gw->n;
        for (i = 0; i < gw->n; i++) {
            if (!done[i] && (k == gw->n
                || gw->members[i].conf.priority
                   < gw->members[k].conf.priority))
            {
                k = i;
            }
        }

        fastest = gw->balance == MST_GATEWAY_LATENCY
                  && mst_gateway_random() % MST_GATEWAY_EXPLORE != 0;

        if (fastest) {
            j = k;
            best = UINT64_MAX;

            for (i = 0; i < gw->n; i++) {
                if (done[i] || gw->members[i].conf.priority
                               != gw->members[k].conf.priority)
                {
                    continue;
                }

                e = __atomic_load_n(&gw->members[i].breaker->ewma_ms,
                                    __ATOMIC_RELAXED);
                if (e < best) {
                    best = e;
                    j = i;
                }
            }

            done[j] = 1;
            order[n++] = j;
            continue;
        }

        /* a weighted draw among the members of that priority */
        total = 0;
        for (i = 0; i < gw->n; i++) {
            if (!done[i] && gw->members[i].conf.priority
                            == gw->members[k].conf.priority)
            {
                total += (size_t) gw->members[i].conf.weight;
            }
        }

        pick = mst_gateway_random() % total;

        for (j = 0; j < gw->n; j++) {
            if (done[j] || gw->members[j].conf.priority
                           != gw->members[k].conf.priority)
            {
                continue;
            }

            if (pick < (size_t) gw->members[j].conf.weight) {
                break;
            }

            pick -= (size_t) gw->members[j].conf.weight;
        }

        done[j] = 1;
        order[n++] = j;
    }

    return n;
}


static int
mst_gateway_serves(const mst_gateway_member_t *m, const char *model)
{
    return m->conf.provider.model != NULL
           && strcmp(m->conf.provider.model, model) == 0;
}


unsigned
mst_gateway_fallback_on(const mst_gateway_t *gw, const char *model)
{
    size_t  i;

    for (i = 0; i < gw->nchains; i++) {
        if (strcmp(gw->chains[i].model, model) == 0) {
            return gw->chains[i].on;
        }
    }

    return MST_FAIL_ALL;
}


int
mst_gateway_fallback(mst_gateway_t *gw, const char *model,
    const char *const *next, size_t n, unsigned on)
{
    size_t                i;
    mst_gateway_chain_t  *c;

    if (gw->nchains == MST_GATEWAY_MAX || n == 0
        || n > MST_GATEWAY_MAX_FALLBACK)
    {
        return MST_EINVAL;
    }

    c = &gw->chains[gw->nchains];
    c->on = on ? on : MST_FAIL_ALL;
    c->model = strdup(model);
    if (c->model == NULL) {
        return MST_ENOMEM;
    }

    gw->nchains++;

    for (i = 0; i < n; i++) {
        c->next[i] = strdup(next[i]);
        if (c->next[i] == NULL) {
            return MST_ENOMEM;
        }
        c->n++;
    }

    return MST_OK;
}


/* the members serving model, in the order all[] gives, not yet in order[] */
static size_t
mst_gateway_plan_model(mst_gateway_t *gw, const char *model,
    const size_t *all, size_t n, size_t *order, size_t k)
{
    size_t  i, j;

    for (i = 0; i < n; i++) {
        if (!mst_gateway_serves(&gw->members[all[i]], model)) {
            continue;
        }

        for (j = 0; j < k; j++) {
            if (order[j] == all[i]) {
                break;
            }
        }

        if (j == k) {
            order[k++] = all[i];
        }
    }

    return k;
}


size_t
mst_gateway_plan(mst_gateway_t *gw, const char *model, size_t *order)
{
    size_t  i, j, n, k, all[MST_GATEWAY_MAX];

    n = mst_gateway_order(gw, all);

    k = mst_gateway_plan_model(gw, model, all, n, order, 0);
    if (k == 0) {
        return 0;
    }

    for (i = 0; i < gw->nchains; i++) {
        if (strcmp(gw->chains[i].model, model) != 0) {
            continue;
        }

        for (j = 0; j < gw->chains[i].n; j++) {
            k = mst_gateway_plan_model(gw, gw->chains[i].next[j], all, n,
                                       order, k);
        }
    }

    return k;
}


size_t
mst_gateway_plan_all(mst_gateway_t *gw, size_t *order)
{
    return mst_gateway_order(gw, order);
}


int
mst_gateway_take(mst_gateway_t *gw, size_t i)
{
    return mst_gateway_admit(gw, gw->members[i].breaker, mst_mono_ms());
}


void
mst_gateway_done(mst_gateway_t *gw, size_t i, int ok, int64_t first_ms)
{
    mst_breaker_t  *b;

    b = gw->members[i].breaker;

    if (ok < 0) {
        __atomic_store_n(&b->probing, 0, __ATOMIC_RELEASE);
        return;
    }

    mst_gateway_result(gw, b, ok, first_ms);
}


const mst_llm_provider_t *
mst_gateway_provider(const mst_gateway_t *gw, size_t i)
{
    return &gw->members[i].conf.provider;
}


json_t *
mst_gateway_models(const mst_gateway_t *gw)
{
    size_t       i, j;
    json_t      *list;
    const char  *m;

    list = json_array();

    for (i = 0; list != NULL && i < gw->n; i++) {
        m = gw->members[i].conf.provider.model;
        if (m == NULL) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (gw->members[j].conf.provider.model != NULL
                && strcmp(gw->members[j].conf.provider.model, m) == 0)
            {
                break;
            }
        }

        if (j == i) {
            json_array_append_new(list, json_pack("{s:s, s:s}", "model", m,
                                                  "provider",
                                                  gw->members[i].name));
        }
    }

    return list;
}


int
mst_gateway_health(mst_gateway_t *gw, size_t i, int ok, const char *error,
    json_t *changes)
{
    uint64_t        was, now;
    mst_breaker_t  *b;

    b = gw->members[i].breaker;
    now = ok ? MST_HEALTH_UP : MST_HEALTH_DOWN;

    was = __atomic_exchange_n(&b->health, now, __ATOMIC_ACQ_REL);

    if (ok) {
        /* reachable again: the next call is the half-open probe, without
           waiting out the recovery time */
        if (__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) == MST_BREAKER_OPEN)
        {
            __atomic_store_n(&b->opened_at, 0, __ATOMIC_RELEASE);
        }

    } else {
        /* no traffic to it until a check or the recovery says so */
        __atomic_store_n(&b->opened_at, (uint64_t) mst_mono_ms(),
                         __ATOMIC_RELEASE);
        __atomic_store_n(&b->state, MST_BREAKER_OPEN, __ATOMIC_RELEASE);
    }

    if (was == now) {
        return 0;
    }

    if (changes != NULL) {
        json_array_append_new(changes, json_pack("{s:s, s:b, s:s}",
            "provider", gw->members[i].name, "healthy", ok,
            "error", (ok || error == NULL) ? "" : error));
    }

    return 1;
}


size_t
mst_gateway_size(const mst_gateway_t *gw)
{
    return gw != NULL ? gw->n : 0;
}


json_t *
mst_gateway_status(const mst_gateway_t *gw)
{
    size_t                       i;
    json_t                      *out;
    const mst_gateway_member_t  *m;

    static const char  *states[] = { "closed", "open", "half_open" };
    static const char  *health[] = { "unknown", "up", "down" };

    out = json_array();

    for (i = 0; gw != NULL && i < gw->n; i++) {
        m = &gw->members[i];

        json_array_append_new(out, json_pack(
            "{s:s, s:s, s:i, s:i, s:{s:s, s:I, s:I}, s:I, s:I, s:I, s:s}",
            "name", m->name,
            "base_url", m->base_url,
            "priority", m->conf.priority,
            "weight", m->conf.weight,
            "breaker",
              "state", states[m->breaker->state <= 2 ? m->breaker->state : 0],
              "failures", (json_int_t) m->breaker->failures,
              "opened_at", (json_int_t) m->breaker->opened_at,
            "requests", (json_int_t) m->breaker->requests,
            "errors", (json_int_t) m->breaker->errors,
            "latency_ms", (json_int_t) m->breaker->ewma_ms,
            "health", health[m->breaker->health <= 2
                             ? m->breaker->health : 0]));
    }

    return out;
}
