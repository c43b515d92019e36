/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Token usage and cost, kept in the store (kv namespaces): a user's
 * running total (GET /api/v1/users/{id}/usage) and everyone's
 * (GET /api/v1/usage), each {prompt, completion, total, cost_usd, calls,
 * by_model: {model: {prompt, completion, cost_usd?, calls}}}. A model
 * without a price has no cost_usd, and a total over only such models is
 * null: unknown is not free.
 *
 * A call made with an API key, or by a team's member, also goes to the
 * key's and the team's usage of this day (UTC), month and in total,
 * which budgets read.
 *
 * Workflows add their calls in the transaction of the step that made them
 * (mst_run); calls outside workflows (the /v1 pass-through) are summed in
 * memory by the caller and added in batches with mst_usage_add(), one
 * transaction per batch.
 */

#ifndef _MST_USAGE_H_INCLUDED_
#define _MST_USAGE_H_INCLUDED_

#include "mst_store.h"

/* maestro_llm_price: USD per million tokens of a model ("name*": prefix) */
typedef struct {
    const char         *model;
    double              input;
    double              output;
} mst_price_t;

/* whose a call is: each may be NULL */
typedef struct {
    const char         *user;
    const char         *key_id;         /* the API key's */
    const char         *team;
} mst_usage_who_t;

typedef struct {
    mst_usage_who_t     who;            /* none: only everyone's */
    const char         *model;
    long                prompt;
    long                completion;
    long                calls;
} mst_usage_delta_t;

/* the cost in USD of tokens of a model; < 0 when it has no price */
double mst_usage_price(const mst_price_t *prices, size_t nprices,
    const char *model, long prompt_tokens, long completion_tokens);

/* adds by_model ({model: {prompt, completion, cost_usd?, calls}}) into all and
   sets into's cost_usd to the priced total, or null */
void mst_usage_merge(json_t *into, json_t *all, json_t *by_model);

/*
 * by_model into the user's total, everyone's and the key's and team's
 * day, month and total (budgets)
 */
int mst_usage_put(mst_txn_t *txn, const mst_usage_who_t *who,
    json_t *by_model);

/* n deltas in one write transaction */
int mst_usage_add(mst_store_t *store, const mst_price_t *prices,
    size_t nprices, const mst_usage_delta_t *d, size_t n);

/* a user's total (NULL: everyone's); zeros when nothing was spent */
int mst_usage_get(mst_store_t *store, const char *user, json_t **usage,
    char *err, size_t errlen);

/*
 * A key's (team 0) or a team's usage in the budget period ("day",
 * "month", "total") that holds now_ms; its "period" names the bucket;
 * zeros when nothing was spent
 */
int mst_usage_period_get(mst_store_t *store, int team, const char *id,
    const char *period, int64_t now_ms, json_t **usage, char *err,
    size_t errlen);

/*
 * Erasure: a user's usage record (user may be NULL) and an API key's
 * (key_id may be NULL); everyone's total keeps what they spent
 */
int mst_usage_erase(mst_txn_t *txn, const char *user, const char *key_id);

#endif /* _MST_USAGE_H_INCLUDED_ */
