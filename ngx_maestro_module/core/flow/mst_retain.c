/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_retain.h */

#include <string.h>

#include "mst_retain.h"


#define MST_RETAIN_USERS_MAX  256


int
mst_retain_why(const mst_retain_conf_t *conf, int64_t now,
    int64_t finished_at, size_t count, size_t live, size_t map)
{
    if (conf->max_age_ms > 0 && finished_at < now - conf->max_age_ms) {
        return MST_RETAIN_AGE;
    }

    if (conf->max_count > 0 && count > conf->max_count) {
        return MST_RETAIN_COUNT;
    }

    if (conf->pressure_pct > 0 && map > 0
        && (double) live * 100 >= (double) map * conf->pressure_pct
        && finished_at <= now - conf->pressure_min_age_ms)
    {
        return MST_RETAIN_PRESSURE;
    }

    return MST_RETAIN_KEEP;
}


size_t
mst_retain_user_excess(const mst_retain_conf_t *conf, size_t count)
{
    if (conf->max_per_user == 0 || count <= conf->max_per_user) {
        return 0;
    }

    return count - conf->max_per_user;
}


int
mst_retain_enabled(const mst_retain_conf_t *conf)
{
    return conf->max_age_ms > 0 || conf->max_count > 0
           || conf->max_per_user > 0 || conf->pressure_pct > 0;
}


/* why the oldest of all goes, read in txn; KEEP also when there is none */
static int
mst_retain_next(mst_txn_t *txn, const mst_retain_conf_t *conf, int64_t now,
    mst_fin_t *f, int *why)
{
    int     rc;
    size_t  count, live, map;

    *why = MST_RETAIN_KEEP;

    rc = mst_store_fin_oldest(txn, NULL, f);
    if (rc == MST_NOTFOUND) {
        return MST_OK;
    }

    if (rc == MST_OK) {
        rc = mst_store_fin_count(txn, NULL, &count);
    }

    live = 0;
    map = 0;

    /* the sizes only when age and count keep it */
    if (rc == MST_OK && conf->pressure_pct > 0
        && mst_retain_why(conf, now, f->finished_at, count, 0, 0)
           == MST_RETAIN_KEEP)
    {
        rc = mst_store_live(txn, &live, &map);
    }

    if (rc == MST_OK) {
        *why = mst_retain_why(conf, now, f->finished_at, count, live, map);
    }

    return rc;
}


/* f's workflow goes (why), or its stale entry */
static int
mst_retain_expire(mst_txn_t *txn, const mst_fin_t *f, int why,
    mst_retain_result_t *res)
{
    int  rc;

    rc = mst_store_fin_expire(txn, f);

    if (rc == MST_OK) {
        res->expired[why]++;

    } else if (rc == MST_NOTFOUND) {
        res->stale++;
        rc = MST_OK;
    }

    return rc;
}


static int
mst_retain_oldest(mst_store_t *store, const mst_retain_conf_t *conf,
    int64_t now, mst_retain_result_t *res)
{
    int         rc, why;
    size_t      t, n;
    mst_fin_t   f;
    mst_txn_t  *txn;

    /* a read first: most passes have nothing to do */
    rc = mst_txn_begin(store, 1, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_retain_next(txn, conf, now, &f, &why);
    mst_txn_abort(txn);

    if (rc != MST_OK || why == MST_RETAIN_KEEP) {
        return rc;
    }

    for (t = 0; t < conf->max_txns; t++) {

        rc = mst_txn_begin(store, 0, &txn);
        if (rc != MST_OK) {
            return rc;
        }

        for (n = 0; n < conf->batch; n++) {
            rc = mst_retain_next(txn, conf, now, &f, &why);
            if (rc != MST_OK || why == MST_RETAIN_KEEP) {
                break;
            }

            rc = mst_retain_expire(txn, &f, why, res);
            if (rc != MST_OK) {
                break;
            }
        }

        if (rc != MST_OK) {
            mst_txn_abort(txn);
            return rc;
        }

        rc = mst_txn_commit(txn);
        if (rc != MST_OK) {
            return rc;
        }

        if (n < conf->batch) {
            return MST_OK;
        }
    }

    res->more = 1;

    return MST_OK;
}


static int
mst_retain_users(mst_store_t *store, const mst_retain_conf_t *conf,
    mst_retain_state_t *state, mst_retain_result_t *res)
{
    int            rc;
    size_t         i, nover, count, excess, left, u;
    mst_fin_t      f;
    mst_txn_t     *txn;
    unsigned char  cur[MST_FIN_USER_LEN];
    unsigned char  over[MST_RETAIN_USERS_MAX][MST_FIN_USER_LEN];
    size_t         over_n[MST_RETAIN_USERS_MAX];
    int            cur_set;

    rc = mst_txn_begin(store, 1, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    nover = 0;
    cur_set = state->user_set;
    memcpy(cur, state->user, MST_FIN_USER_LEN);

    for (i = 0; i < conf->users_per_pass && nover < MST_RETAIN_USERS_MAX;
         i++)
    {
        rc = mst_store_fin_next_user(txn, cur_set ? cur : NULL, cur, &count);

        if (rc == MST_NOTFOUND) {
            cur_set = 0;            /* the end: from the first next time */
            rc = MST_OK;
            break;
        }

        if (rc != MST_OK) {
            break;
        }

        cur_set = 1;
        excess = mst_retain_user_excess(conf, count);

        if (excess > 0) {
            memcpy(over[nover], cur, MST_FIN_USER_LEN);
            over_n[nover++] = excess;
        }
    }

    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return rc;
    }

    if (nover == 0) {
        state->user_set = cur_set;
        memcpy(state->user, cur, MST_FIN_USER_LEN);
        return MST_OK;
    }

    rc = mst_txn_begin(store, 0, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    left = conf->batch * conf->max_txns;

    for (u = 0; u < nover && left > 0 && rc == MST_OK; u++) {
        while (over_n[u] > 0 && left > 0) {
            rc = mst_store_fin_oldest(txn, over[u], &f);
            if (rc != MST_OK) {
                rc = (rc == MST_NOTFOUND) ? MST_OK : rc;
                break;
            }

            rc = mst_retain_expire(txn, &f, MST_RETAIN_USER, res);
            if (rc != MST_OK) {
                break;
            }

            over_n[u]--;
            left--;
        }
    }

    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return rc;
    }

    rc = mst_txn_commit(txn);
    if (rc != MST_OK) {
        return rc;
    }

    if (left == 0) {
        /* out of budget: the same users again next time */
        res->more = 1;
        return MST_OK;
    }

    state->user_set = cur_set;
    memcpy(state->user, cur, MST_FIN_USER_LEN);

    return MST_OK;
}


static int
mst_retain_backfill(mst_store_t *store, const mst_retain_conf_t *conf,
    mst_retain_result_t *res)
{
    int         rc, done;
    mst_txn_t  *txn;

    rc = mst_txn_begin(store, 1, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_fin_backfill(txn, 0, &done);
    mst_txn_abort(txn);

    if (rc != MST_OK || done) {
        return rc;
    }

    rc = mst_txn_begin(store, 0, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_fin_backfill(txn, conf->backfill, &done);
    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return rc;
    }

    rc = mst_txn_commit(txn);

    if (rc == MST_OK && !done) {
        res->backfilling = 1;
        res->more = 1;
    }

    return rc;
}


int
mst_retain_run(mst_store_t *store, const mst_retain_conf_t *conf,
    int64_t now, mst_retain_state_t *state, mst_retain_result_t *res)
{
    int  rc;

    memset(res, 0, sizeof(mst_retain_result_t));

    if (!mst_retain_enabled(conf) || conf->batch == 0
        || conf->max_txns == 0)
    {
        return MST_OK;
    }

    rc = mst_retain_backfill(store, conf, res);

    if (rc == MST_OK) {
        rc = mst_retain_oldest(store, conf, now, res);
    }

    if (rc == MST_OK && conf->max_per_user > 0) {
        rc = mst_retain_users(store, conf, state, res);
    }

    return rc;
}
