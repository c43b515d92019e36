/*
 * Copyright (C) Maestro authors
 */

/*
 * Erasure on request: a user's workflows, usage and keys go, another
 * user's stay; a key's workflows and usage go, its user's other data
 * stays; a running workflow refuses the whole erasure.
 */

#include "mst_test_store.h"
#include "mst_erase.h"
#include "mst_usage.h"


/* a finished workflow of user, submitted with key (may be NULL) */
static void
t_wf(mst_store_t *st, unsigned n, const char *user, const char *key,
    const char *status)
{
    char             id[MST_ID_LEN + 1];
    json_t          *rec, *by;
    mst_txn_t       *txn;
    mst_usage_who_t  who;

    t_id(id, n, 7);
    rec = json_pack("{s:s, s:s, s:s}", "id", id, "status", status,
                    "user_id", user);
    if (key != NULL) {
        json_object_set_new(rec, "key_id", json_string(key));
    }
    t_put_rec(st, id, rec);         /* takes rec */

    txn = t_begin(st, 0);
    t_cp_put(txn, id, 1);

    by = json_pack("{s:{s:i, s:i, s:i}}", "m", "prompt", 3, "completion", 4,
                   "calls", 1);
    who.user = user;
    who.key_id = key;
    who.team = NULL;
    assert_int_equal(mst_usage_put(txn, &who, by), MST_OK);
    json_decref(by);

    assert_int_equal(mst_txn_commit(txn), MST_OK);
}


static void
t_key(mst_store_t *st, const char *id, const char *user)
{
    json_t     *rec;
    mst_txn_t  *txn;

    rec = json_pack("{s:s, s:s}", "id", id, "user_id", user);
    txn = t_begin(st, 0);
    assert_int_equal(mst_store_key_put(txn, id, rec, 1), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    json_decref(rec);
}


static int
t_exists(mst_store_t *st, unsigned n)
{
    int         rc;
    char        id[MST_ID_LEN + 1];
    json_t     *rec;
    mst_txn_t  *txn;

    t_id(id, n, 7);
    txn = t_begin(st, 1);
    rc = mst_store_wf_get(txn, id, &rec);
    json_decref(rec);
    mst_txn_abort(txn);

    return rc == MST_OK;
}


static json_int_t
t_user_total(mst_store_t *st, const char *user)
{
    char        err[MST_ERRLEN];
    json_t     *u;
    json_int_t  n;

    assert_int_equal(mst_usage_get(st, user, &u, err, sizeof(err)), MST_OK);
    n = json_integer_value(json_object_get(u, "total"));
    json_decref(u);

    return n;
}


static json_int_t
t_key_total(mst_store_t *st, const char *key)
{
    char        err[MST_ERRLEN];
    json_t     *u;
    json_int_t  n;

    assert_int_equal(mst_usage_period_get(st, 0, key, "total", mst_now_ms(),
                                          &u, err, sizeof(err)), MST_OK);
    n = json_integer_value(json_object_get(u, "total"));
    json_decref(u);

    return n;
}


static void
test_erase_user(void **state)
{
    t_env_t      *e = *state;
    json_t       *rec;
    mst_txn_t    *txn;
    mst_erase_t   r;

    t_key(e->store, "key_aaaaaaaaaaaaaaaa", "alice");
    t_key(e->store, "key_bbbbbbbbbbbbbbbb", "bob");
    t_key(e->store, "key_cccccccccccccccc", "alice");

    t_wf(e->store, 1, "alice", "key_aaaaaaaaaaaaaaaa", "complete");
    t_wf(e->store, 2, "bob", "key_bbbbbbbbbbbbbbbb", "complete");
    t_wf(e->store, 3, "alice", NULL, "failed");
    t_wf(e->store, 4, "alicia", NULL, "complete");    /* a prefix only */

    assert_int_equal(t_user_total(e->store, "alice"), 14);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_erase_user(txn, "alice", &r), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    assert_int_equal(r.workflows, 2);
    assert_int_equal(r.keys, 2);
    assert_int_equal(r.active, 0);

    assert_false(t_exists(e->store, 1));
    assert_true(t_exists(e->store, 2));
    assert_false(t_exists(e->store, 3));
    assert_true(t_exists(e->store, 4));

    assert_int_equal(t_user_total(e->store, "alice"), 0);
    assert_int_equal(t_user_total(e->store, "alicia"), 7);
    assert_int_equal(t_user_total(e->store, "bob"), 7);
    assert_int_equal(t_key_total(e->store, "key_aaaaaaaaaaaaaaaa"), 0);
    assert_int_equal(t_key_total(e->store, "key_bbbbbbbbbbbbbbbb"), 7);

    /* everyone's total keeps what was spent */
    assert_int_equal(t_user_total(e->store, NULL), 28);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_key_get(txn, "key_aaaaaaaaaaaaaaaa", &rec),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_key_get(txn, "key_cccccccccccccccc", &rec),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_key_get(txn, "key_bbbbbbbbbbbbbbbb", &rec),
                     MST_OK);
    json_decref(rec);
    mst_txn_abort(txn);
}


static void
test_erase_key(void **state)
{
    t_env_t      *e = *state;
    json_t       *rec;
    mst_txn_t    *txn;
    mst_erase_t   r;

    t_key(e->store, "key_aaaaaaaaaaaaaaaa", "alice");
    t_wf(e->store, 1, "alice", "key_aaaaaaaaaaaaaaaa", "complete");
    t_wf(e->store, 2, "alice", NULL, "complete");

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_erase_key(txn, "key_aaaaaaaaaaaaaaaa", &r), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    assert_int_equal(r.workflows, 1);
    assert_int_equal(r.keys, 1);
    assert_false(t_exists(e->store, 1));
    assert_true(t_exists(e->store, 2));
    assert_int_equal(t_key_total(e->store, "key_aaaaaaaaaaaaaaaa"), 0);

    /* the user's own total is the user's: it stays */
    assert_int_equal(t_user_total(e->store, "alice"), 14);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_key_get(txn, "key_aaaaaaaaaaaaaaaa", &rec),
                     MST_NOTFOUND);
    assert_int_equal(mst_erase_key(txn, "key_aaaaaaaaaaaaaaaa", &r),
                     MST_NOTFOUND);
    mst_txn_abort(txn);
}


static void
test_erase_running(void **state)
{
    t_env_t      *e = *state;
    unsigned      i;
    mst_txn_t    *txn;
    mst_erase_t   r;

    /* more than a scan page, one of them running */
    for (i = 1; i <= 300; i++) {
        t_wf(e->store, i, "carol", NULL, i == 290 ? "running" : "complete");
    }

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_erase_user(txn, "carol", &r), MST_CONFLICT);
    mst_txn_abort(txn);

    assert_int_equal(r.active, 1);
    assert_int_equal(r.workflows, 0);
    assert_true(t_exists(e->store, 1));
    assert_true(t_exists(e->store, 300));

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_erase_user(txn, "", &r), MST_EINVAL);
    mst_txn_abort(txn);
}


/* one workflow: refused while running, gone with its checkpoints */
static void
test_erase_workflow(void **state)
{
    t_env_t      *e = *state;
    char          id[MST_ID_LEN + 1];
    mst_txn_t    *txn;
    mst_erase_t   r;

    t_wf(e->store, 1, "alice", NULL, "complete");
    t_wf(e->store, 2, "alice", NULL, "running");

    txn = t_begin(e->store, 0);

    t_id(id, 2, 7);
    assert_int_equal(mst_erase_workflow(txn, id, &r), MST_CONFLICT);
    assert_int_equal(r.active, 1);
    assert_string_equal(r.active_id, id);

    t_id(id, 1, 7);
    assert_int_equal(mst_erase_workflow(txn, id, &r), MST_OK);
    assert_int_equal(r.workflows, 1);
    t_cp_last(txn, id, MST_NOTFOUND, 0);

    assert_int_equal(mst_erase_workflow(txn, id, &r), MST_NOTFOUND);
    assert_int_equal(mst_erase_workflow(txn, "nope", &r), MST_NOTFOUND);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    assert_false(t_exists(e->store, 1));
    assert_true(t_exists(e->store, 2));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_erase_user, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_erase_key, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_erase_workflow, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_erase_running, t_setup,
                                        t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
