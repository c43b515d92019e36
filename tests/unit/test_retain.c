/*
 * Copyright (C) Maestro authors
 */

/*
 * Workflow retention: the decisions (mst_retain_why), the finished index
 * (mst_store_fin_*) kept by wf_put / wf_delete, and mst_retain_run()
 * expiring by age, count, user count and store pressure.
 */

#include "mst_test_store.h"
#include "mst_retain.h"


#define T_NOW  ((int64_t) 1800000000000LL)


static void
t_fin(mst_store_t *st, unsigned n, const char *status, int64_t fin,
    const char *user, char *id)
{
    json_t  *rec;

    t_id(id, n, 0);

    rec = json_pack("{s:s, s:s, s:I, s:s?}", "id", id, "status", status,
                    "finished_at", (json_int_t) fin, "user_id", user);
    assert_non_null(rec);
    t_put_rec(st, id, rec);
}


static size_t
t_count(mst_store_t *st, const char *user)
{
    size_t         n;
    mst_txn_t     *txn;
    unsigned char  h[MST_FIN_USER_LEN];

    if (user != NULL) {
        assert_int_equal(mst_store_fin_user_hash(user, h), MST_OK);
    }

    txn = t_begin(st, 1);
    assert_int_equal(mst_store_fin_count(txn, user ? h : NULL, &n), MST_OK);
    mst_txn_abort(txn);

    return n;
}


static int
t_exists(mst_store_t *st, const char *id)
{
    int         rc;
    json_t     *rec;
    mst_txn_t  *txn;

    txn = t_begin(st, 1);
    rc = mst_store_wf_get(txn, id, &rec);
    json_decref(rec);
    mst_txn_abort(txn);

    return rc == MST_OK;
}


static void
t_conf(mst_retain_conf_t *c)
{
    memset(c, 0, sizeof(mst_retain_conf_t));
    c->batch = 3;
    c->max_txns = 2;
    c->users_per_pass = 16;
    c->backfill = 4;
}


static void
test_why(void **state)
{
    mst_retain_conf_t  c;

    t_conf(&c);

    /* nothing configured: everything stays */
    assert_int_equal(mst_retain_why(&c, T_NOW, 1, 1000000, 99, 100),
                     MST_RETAIN_KEEP);
    assert_false(mst_retain_enabled(&c));

    c.max_age_ms = 1000;
    assert_true(mst_retain_enabled(&c));
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW - 1001, 0, 0, 0),
                     MST_RETAIN_AGE);
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW - 1000, 0, 0, 0),
                     MST_RETAIN_KEEP);

    c.max_count = 10;
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW, 11, 0, 0),
                     MST_RETAIN_COUNT);
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW, 10, 0, 0),
                     MST_RETAIN_KEEP);

    /* pressure: at the mark and past the minimum age only */
    c.max_age_ms = 0;
    c.max_count = 0;
    c.pressure_pct = 80;
    c.pressure_min_age_ms = 60000;
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW - 60000, 0, 80, 100),
                     MST_RETAIN_PRESSURE);
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW - 60000, 0, 79, 100),
                     MST_RETAIN_KEEP);
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW - 59999, 0, 99, 100),
                     MST_RETAIN_KEEP);
    assert_int_equal(mst_retain_why(&c, T_NOW, T_NOW - 60000, 0, 99, 0),
                     MST_RETAIN_KEEP);

    assert_int_equal(mst_retain_user_excess(&c, 5), 0);
    c.max_per_user = 3;
    assert_int_equal(mst_retain_user_excess(&c, 3), 0);
    assert_int_equal(mst_retain_user_excess(&c, 5), 2);
}


/* wf_put indexes a final record once; wf_delete takes it out */
static void
test_index(void **state)
{
    t_env_t       *e = *state;
    char           a[MST_ID_LEN + 1], b[MST_ID_LEN + 1], c[MST_ID_LEN + 1];
    char           d[MST_ID_LEN + 1];
    size_t         n, users;
    json_t        *rec;
    mst_fin_t      f;
    mst_txn_t     *txn;
    unsigned char  u[MST_FIN_USER_LEN], h[MST_FIN_USER_LEN];
    int            rc, first;

    t_fin(e->store, 1, "complete", 3000, "alice", a);
    t_fin(e->store, 2, "failed", 1000, "bob", b);
    t_fin(e->store, 3, "cancelled", 2000, "alice", c);
    t_fin(e->store, 4, "running", 0, "alice", d);

    assert_int_equal(t_count(e->store, NULL), 3);
    assert_int_equal(t_count(e->store, "alice"), 2);
    assert_int_equal(t_count(e->store, "bob"), 1);
    assert_int_equal(t_count(e->store, "carol"), 0);

    /* a second put of a final record (events_pruned) adds nothing */
    rec = json_pack("{s:s, s:s, s:I, s:s, s:b}", "id", a, "status",
                    "complete", "finished_at", (json_int_t) 3000,
                    "user_id", "alice", "events_pruned", 1);
    t_put_rec(e->store, a, rec);
    assert_int_equal(t_count(e->store, "alice"), 2);

    txn = t_begin(e->store, 1);

    assert_int_equal(mst_store_fin_oldest(txn, NULL, &f), MST_OK);
    assert_string_equal(f.id, b);
    assert_int_equal(f.finished_at, 1000);

    assert_int_equal(mst_store_fin_user_hash("alice", h), MST_OK);
    assert_int_equal(mst_store_fin_oldest(txn, h, &f), MST_OK);
    assert_string_equal(f.id, c);

    /* two users, each once, with their counts */
    users = 0;
    first = 1;
    for ( ;; ) {
        rc = mst_store_fin_next_user(txn, first ? NULL : u, u, &n);
        if (rc == MST_NOTFOUND) {
            break;
        }
        assert_int_equal(rc, MST_OK);
        assert_int_equal(n, memcmp(u, h, MST_FIN_USER_LEN) == 0 ? 2 : 1);
        first = 0;
        users++;
    }
    assert_int_equal(users, 2);

    mst_txn_abort(txn);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_delete(txn, c), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    assert_int_equal(t_count(e->store, NULL), 2);
    assert_int_equal(t_count(e->store, "alice"), 1);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_fin_oldest(txn, h, &f), MST_OK);
    assert_string_equal(f.id, a);
    mst_txn_abort(txn);
}


static void
test_age_count(void **state)
{
    t_env_t              *e = *state;
    char                  id[10][MST_ID_LEN + 1], run[MST_ID_LEN + 1];
    unsigned              i;
    mst_retain_conf_t     c;
    mst_retain_state_t    rs;
    mst_retain_result_t   res;

    /* ten finished a second apart, the oldest 10 s ago, one running */
    for (i = 0; i < 10; i++) {
        t_fin(e->store, i, "complete", T_NOW - 10000 + i * 1000, NULL,
              id[i]);
    }
    t_fin(e->store, 100, "running", 0, NULL, run);

    memset(&rs, 0, sizeof(rs));
    t_conf(&c);

    /* older than 7.5 s: three go */
    c.max_age_ms = 7500;
    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.expired[MST_RETAIN_AGE], 3);
    assert_false(res.more);
    assert_false(t_exists(e->store, id[2]));
    assert_true(t_exists(e->store, id[3]));

    /* at most 4: the budget (3 a transaction, 2 of them) stops at 6 */
    c.max_age_ms = 0;
    c.max_count = 1;
    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.expired[MST_RETAIN_COUNT], 6);
    assert_true(res.more);
    assert_int_equal(t_count(e->store, NULL), 1);
    assert_true(t_exists(e->store, id[9]));
    assert_true(t_exists(e->store, run));

    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.expired[MST_RETAIN_COUNT], 0);

    /* a running one is never a candidate */
    c.max_count = 0;
    c.max_age_ms = 1;
    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.expired[MST_RETAIN_AGE], 1);
    assert_true(t_exists(e->store, run));
}


static void
test_user(void **state)
{
    t_env_t              *e = *state;
    char                  id[MST_ID_LEN + 1];
    unsigned              i;
    mst_retain_conf_t     c;
    mst_retain_state_t    rs;
    mst_retain_result_t   res;

    for (i = 0; i < 5; i++) {
        t_fin(e->store, i, "complete", T_NOW - 100 + i, "alice", id);
    }
    t_fin(e->store, 10, "complete", T_NOW - 1000, "bob", id);
    t_fin(e->store, 11, "complete", T_NOW - 1000, NULL, id);

    memset(&rs, 0, sizeof(rs));
    t_conf(&c);
    c.max_per_user = 2;

    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.expired[MST_RETAIN_USER], 3);
    assert_int_equal(t_count(e->store, "alice"), 2);
    assert_int_equal(t_count(e->store, "bob"), 1);
    assert_int_equal(t_count(e->store, NULL), 4);

    /* alice's newest two stay */
    t_id(id, 4, 0);
    assert_true(t_exists(e->store, id));
    t_id(id, 2, 0);
    assert_false(t_exists(e->store, id));
}


static size_t
t_live(mst_store_t *st)
{
    size_t      live, map;
    mst_txn_t  *txn;

    txn = t_begin(st, 1);
    assert_int_equal(mst_store_live(txn, &live, &map), MST_OK);
    mst_txn_abort(txn);

    return live * 100 / map;
}


/* a small map filled past the mark: the oldest go until it is under */
static void
test_pressure(void **state)
{
    t_env_t              *e = *state;
    char                  id[MST_ID_LEN + 1], big[3000];
    unsigned              i, n;
    json_t               *rec;
    mst_store_t          *st;
    mst_txn_t            *txn;
    mst_retain_conf_t     c;
    mst_retain_state_t    rs;
    mst_retain_result_t   res;

    mst_store_close(e->store);
    e->store = t_open(e->path, 1u << 20, 0);       /* 1 MB */
    st = e->store;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    for (n = 0; t_live(st) < 60; n++) {
        t_id(id, n, 0);
        rec = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "status",
                        "complete", "finished_at",
                        (json_int_t) (T_NOW - 100000 + n), "prompt", big);
        t_put_rec(st, id, rec);
    }

    /* the newest, too young to go */
    t_fin(st, n, "complete", T_NOW, NULL, id);

    memset(&rs, 0, sizeof(rs));
    t_conf(&c);
    c.batch = 8;
    c.max_txns = 1000;
    c.pressure_min_age_ms = 60000;

    /* a mark over what it takes: nothing goes */
    c.pressure_pct = 90;
    assert_int_equal(mst_retain_run(st, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.expired[MST_RETAIN_PRESSURE], 0);

    c.pressure_pct = 30;
    assert_int_equal(mst_retain_run(st, &c, T_NOW, &rs, &res), MST_OK);
    assert_true(res.expired[MST_RETAIN_PRESSURE] > 0);
    assert_true(res.expired[MST_RETAIN_PRESSURE] < n);
    assert_true(t_live(st) < 30);

    /* oldest first: the first went, the last old one and the young stay */
    t_id(id, 0, 0);
    assert_false(t_exists(st, id));
    t_id(id, n - 1, 0);
    assert_true(t_exists(st, id));
    t_id(id, n, 0);
    assert_true(t_exists(st, id));

    /* and what is freed is written again: the map does not fill */
    for (i = 0; i < 3 * n; i++) {
        t_id(id, 1000 + i, 0);
        rec = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "status",
                        "complete", "finished_at",
                        (json_int_t) (T_NOW - 90000 + i), "prompt", big);
        txn = t_begin(st, 0);
        assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
        assert_int_equal(mst_txn_commit(txn), MST_OK);
        json_decref(rec);

        assert_int_equal(mst_retain_run(st, &c, T_NOW, &rs, &res), MST_OK);
    }

    assert_true(t_live(st) <= 31);
}


/* records written before the index: backfilled, a slice at a time */
static void
test_backfill(void **state)
{
    t_env_t              *e = *state;
    char                  id[MST_ID_LEN + 1];
    unsigned              i;
    MDB_val               k;
    mst_txn_t            *txn;
    mst_retain_conf_t     c;
    mst_retain_state_t    rs;
    mst_retain_result_t   res;

    for (i = 0; i < 10; i++) {
        t_fin(e->store, i, "complete", T_NOW - 100000 + i, "u", id);
    }

    /* as an old store: no index, no mark */
    txn = t_begin(e->store, 0);
    assert_int_equal(mdb_drop(txn->txn, txn->store->fin, 0), 0);
    assert_int_equal(mdb_drop(txn->txn, txn->store->finu, 0), 0);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    assert_int_equal(t_count(e->store, NULL), 0);

    memset(&rs, 0, sizeof(rs));
    t_conf(&c);
    c.max_age_ms = 1;

    /* 4 records a pass: 3 passes to index the 10 */
    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_true(res.backfilling);
    assert_int_equal(res.expired[MST_RETAIN_AGE], 4);

    for (i = 0; i < 4 && res.more; i++) {
        assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res),
                         MST_OK);
    }

    assert_false(res.backfilling);
    assert_int_equal(t_count(e->store, NULL), 0);

    for (i = 0; i < 10; i++) {
        t_id(id, i, 0);
        assert_false(t_exists(e->store, id));
    }

    /* done: marked, the next pass reads no record */
    txn = t_begin(e->store, 1);
    k.mv_size = 8;
    k.mv_data = "backfill";
    assert_int_equal(mdb_get(txn->txn, txn->store->finu, &k, &k), 0);
    assert_int_equal(k.mv_size, 4);
    mst_txn_abort(txn);
}


/* an entry whose record went another way is dropped alone */
static void
test_stale(void **state)
{
    t_env_t              *e = *state;
    char                  id[MST_ID_LEN + 1];
    MDB_val               k;
    mst_txn_t            *txn;
    mst_retain_conf_t     c;
    mst_retain_state_t    rs;
    mst_retain_result_t   res;

    t_fin(e->store, 1, "complete", T_NOW - 5000, "u", id);

    txn = t_begin(e->store, 0);
    k.mv_size = MST_ID_LEN;
    k.mv_data = id;
    assert_int_equal(mdb_del(txn->txn, txn->store->wf, &k, NULL), 0);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    memset(&rs, 0, sizeof(rs));
    t_conf(&c);
    c.max_age_ms = 1000;

    assert_int_equal(mst_retain_run(e->store, &c, T_NOW, &rs, &res), MST_OK);
    assert_int_equal(res.stale, 1);
    assert_int_equal(res.expired[MST_RETAIN_AGE], 0);
    assert_int_equal(t_count(e->store, NULL), 0);
    assert_int_equal(t_count(e->store, "u"), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_why),
        cmocka_unit_test_setup_teardown(test_index, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_age_count, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_user, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_pressure, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_backfill, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_stale, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
