/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_usage.h */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mst_json.h"
#include "mst_limit.h"
#include "mst_usage.h"


#define MST_USAGE_USERS  "maestro.usage"        /* user id -> usage */
#define MST_USAGE_ALL    "maestro.usage_all"    /* "all" -> everyone's */
#define MST_USAGE_KEYS   "maestro.usage_keys"   /* key id '/' period bucket
                                                   -> the key's usage */
#define MST_USAGE_TEAMS  "maestro.usage_teams"  /* team '/' period bucket */


static json_int_t
mst_usage_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}


/* to[key] += n */
static void
mst_usage_inc(json_t *to, const char *key, json_int_t n)
{
    json_object_set_new(to, key, json_integer(mst_usage_int(to, key) + n));
}


double
mst_usage_price(const mst_price_t *prices, size_t nprices, const char *model,
    long pt, long ct)
{
    size_t        i, len;
    const char   *p;

    for (i = 0; i < nprices; i++) {
        p = prices[i].model;
        len = strlen(p);

        if ((len > 0 && p[len - 1] == '*' && strncmp(model, p, len - 1) == 0)
            || strcmp(model, p) == 0)
        {
            return (pt * prices[i].input + ct * prices[i].output) / 1e6;
        }
    }

    return -1;
}


void
mst_usage_merge(json_t *into, json_t *all, json_t *by_model)
{
    double       total;
    json_t      *m, *cur, *c;
    const char  *model;

    json_object_foreach(by_model, model, m) {
        cur = json_object_get(all, model);
        if (cur == NULL) {
            json_object_set_new(all, model, json_deep_copy(m));
            continue;
        }

        mst_usage_inc(cur, "prompt", mst_usage_int(m, "prompt"));
        mst_usage_inc(cur, "completion", mst_usage_int(m, "completion"));
        mst_usage_inc(cur, "calls", mst_usage_int(m, "calls"));

        c = json_object_get(m, "cost_usd");
        if (json_is_number(c)) {
            json_object_set_new(cur, "cost_usd", json_real(
                json_number_value(json_object_get(cur, "cost_usd"))
                + json_number_value(c)));
        }
    }

    total = 0;
    c = NULL;

    json_object_foreach(all, model, m) {
        if (json_is_number(json_object_get(m, "cost_usd"))) {
            total += json_number_value(json_object_get(m, "cost_usd"));
            c = m;
        }
    }

    json_object_set_new(into, "cost_usd", c ? json_real(total)
                                            : json_null());
}


/* the usage record before the first call */
static json_t *
mst_usage_new(const char *user)
{
    return json_pack("{s:s?, s:i, s:i, s:i, s:n, s:i, s:{}}", "user_id",
                     user, "prompt", 0, "completion", 0, "total", 0,
                     "cost_usd", "calls", 0, "by_model");
}


static int
mst_usage_put_one(mst_txn_t *txn, const char *ns, const char *key,
    const char *user, json_t *by_model, long calls)
{
    int          rc;
    char        *text;
    size_t       len;
    json_t      *u, *all, *m;
    const char  *model;

    rc = mst_store_kv_get(txn, ns, key, &text, &len);

    if (rc == MST_OK) {
        u = json_loadb(text, len, 0, NULL);
        free(text);

    } else if (rc == MST_NOTFOUND) {
        u = NULL;

    } else {
        return rc;
    }

    if (!json_is_object(u)) {
        json_decref(u);
        u = mst_usage_new(user);
        if (u == NULL) {
            return MST_ENOMEM;
        }
    }

    json_object_foreach(by_model, model, m) {
        mst_usage_inc(u, "prompt", mst_usage_int(m, "prompt"));
        mst_usage_inc(u, "completion", mst_usage_int(m, "completion"));
    }

    json_object_set_new(u, "total", json_integer(
        mst_usage_int(u, "prompt") + mst_usage_int(u, "completion")));
    mst_usage_inc(u, "calls", calls);

    all = json_object_get(u, "by_model");
    if (!json_is_object(all)) {
        all = json_object();
        json_object_set_new(u, "by_model", all);
    }

    mst_usage_merge(u, all, by_model);

    text = mst_json_dump(u, &len);
    json_decref(u);

    if (text == NULL) {
        return MST_ENOMEM;
    }

    rc = mst_store_kv_put(txn, ns, key, text, len);
    free(text);

    return rc;
}


/* a key's or a team's usage this day, month and in total: budgets */
static int
mst_usage_put_periods(mst_txn_t *txn, const char *ns, const char *id,
    json_t *by_model, long calls)
{
    int           rc;
    char          k[192], bucket[32];
    size_t        i;
    int64_t       now, reset;
    static const char  *periods[] = { "day", "month", "total" };

    now = mst_now_ms();

    for (i = 0; i < 3; i++) {
        (void) mst_limit_period(periods[i], now, bucket, sizeof(bucket),
                                &reset);
        snprintf(k, sizeof(k), "%s/%s", id, bucket);

        rc = mst_usage_put_one(txn, ns, k, NULL, by_model, calls);
        if (rc != MST_OK) {
            return rc;
        }
    }

    return MST_OK;
}


static int
mst_usage_put_calls(mst_txn_t *txn, const mst_usage_who_t *who,
    json_t *by_model, long calls)
{
    int  rc;

    if (who->key_id != NULL && who->key_id[0] != '\0') {
        rc = mst_usage_put_periods(txn, MST_USAGE_KEYS, who->key_id,
                                   by_model, calls);
        if (rc != MST_OK) {
            return rc;
        }
    }

    if (who->team != NULL && who->team[0] != '\0') {
        rc = mst_usage_put_periods(txn, MST_USAGE_TEAMS, who->team,
                                   by_model, calls);
        if (rc != MST_OK) {
            return rc;
        }
    }

    if (who->user != NULL && who->user[0] != '\0') {
        rc = mst_usage_put_one(txn, MST_USAGE_USERS, who->user, who->user,
                               by_model, calls);
        if (rc != MST_OK) {
            return rc;
        }
    }

    return mst_usage_put_one(txn, MST_USAGE_ALL, "all", NULL, by_model,
                             calls);
}


int
mst_usage_put(mst_txn_t *txn, const mst_usage_who_t *who, json_t *by_model)
{
    long         calls;
    json_t      *m;
    const char  *model;

    calls = 0;
    json_object_foreach(by_model, model, m) {
        calls += (long) mst_usage_int(m, "calls");
    }

    return mst_usage_put_calls(txn, who, by_model, calls);
}


int
mst_usage_add(mst_store_t *store, const mst_price_t *prices, size_t nprices,
    const mst_usage_delta_t *d, size_t n)
{
    int         rc;
    size_t      i;
    double      cost;
    json_t     *by_model, *m;
    mst_txn_t  *txn;

    rc = mst_txn_begin(store, 0, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    for (i = 0; i < n; i++) {
        m = json_pack("{s:I, s:I, s:I}", "prompt", (json_int_t) d[i].prompt,
                      "completion", (json_int_t) d[i].completion,
                      "calls", (json_int_t) d[i].calls);
        by_model = json_object();

        if (m == NULL || by_model == NULL) {
            json_decref(m);
            json_decref(by_model);
            mst_txn_abort(txn);
            return MST_ENOMEM;
        }

        cost = mst_usage_price(prices, nprices, d[i].model, d[i].prompt,
                               d[i].completion);
        if (cost >= 0) {
            json_object_set_new(m, "cost_usd", json_real(cost));
        }

        json_object_set_new(by_model, d[i].model, m);

        rc = mst_usage_put_calls(txn, &d[i].who, by_model, d[i].calls);
        json_decref(by_model);

        if (rc != MST_OK) {
            mst_txn_abort(txn);
            return rc;
        }
    }

    return mst_txn_commit(txn);
}


/* the usage record at ns/key; a new one when nothing was spent yet */
static int
mst_usage_read(mst_store_t *store, const char *ns, const char *key,
    const char *user, json_t **usage, char *err, size_t errlen)
{
    int         rc;
    char       *text;
    size_t      len;
    mst_txn_t  *txn;

    *usage = NULL;

    rc = mst_txn_begin(store, 1, &txn);
    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "store: cannot begin a transaction");
    }

    rc = mst_store_kv_get(txn, ns, key, &text, &len);
    mst_txn_abort(txn);

    if (rc == MST_NOTFOUND) {
        *usage = mst_usage_new(user);
        return *usage ? MST_OK : mst_err(err, errlen, MST_ENOMEM,
                                         "out of memory");
    }

    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "store: cannot read usage");
    }

    *usage = json_loadb(text, len, 0, NULL);
    free(text);

    if (*usage == NULL) {
        return mst_err(err, errlen, MST_EINVAL, "usage record \"%s\" is "
                       "not JSON", key);
    }

    return MST_OK;
}


int
mst_usage_get(mst_store_t *store, const char *user, json_t **usage,
    char *err, size_t errlen)
{
    return mst_usage_read(store, user ? MST_USAGE_USERS : MST_USAGE_ALL,
                          user ? user : "all", user, usage, err, errlen);
}


int
mst_usage_period_get(mst_store_t *store, int team, const char *id,
    const char *period, int64_t now_ms, json_t **usage, char *err,
    size_t errlen)
{
    int      rc;
    char     k[192], bucket[32];
    int64_t  reset;

    *usage = NULL;

    rc = mst_limit_period(period, now_ms, bucket, sizeof(bucket), &reset);
    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "\"%s\" is not a budget period",
                       period);
    }

    snprintf(k, sizeof(k), "%s/%s", id, bucket);

    rc = mst_usage_read(store, team ? MST_USAGE_TEAMS : MST_USAGE_KEYS, k,
                        NULL, usage, err, errlen);
    if (rc == MST_OK) {
        json_object_set_new(*usage, "period", json_string(bucket));
    }

    return rc;
}


int
mst_usage_erase(mst_txn_t *txn, const char *user, const char *key_id)
{
    int   rc;
    char  prefix[160];

    if (user != NULL) {
        rc = mst_store_kv_delete(txn, MST_USAGE_USERS, user);
        if (rc != MST_OK) {
            return rc;
        }
    }

    if (key_id != NULL) {
        snprintf(prefix, sizeof(prefix), "%s/", key_id);

        rc = mst_store_kv_delete_prefix(txn, MST_USAGE_KEYS, prefix);
        if (rc != MST_OK) {
            return rc;
        }
    }

    return MST_OK;
}
