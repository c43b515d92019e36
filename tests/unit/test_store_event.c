/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB): events */

#include "mst_test_store.h"


static void
test_events(void **state)
{
    char        a[MST_ID_LEN + 1], b[MST_ID_LEN + 1], c[MST_ID_LEN + 1];
    char        name[16];
    json_t     *rec, *recb, *data, *stale;
    t_env_t    *e;
    t_ev_t      t;
    int64_t     before;
    unsigned    i;
    uint64_t    seq;
    mst_txn_t  *txn;

    e = *state;

    t_id(a, 5, 0);
    t_id(b, 5, 1);
    t_id(c, 6, 0);

    rec = json_pack("{s:s}", "status", "running");
    recb = json_pack("{s:s,s:i}", "status", "running", "last_event_id", 0);

    before = mst_now_ms();

    txn = t_begin(e->store, 0);

    for (i = 1; i <= 10; i++) {
        snprintf(name, sizeof(name), "step.%u", i);

        if (i == 4) {
            data = NULL;                    /* allowed: {} with a ts */
        } else if (i == 5) {
            data = json_pack("{s:i,s:i}", "i", (int) i, "ts", 42);
        } else {
            data = json_pack("{s:i}", "i", (int) i);
        }

        seq = 0;
        assert_int_equal(mst_store_event_append(txn, a, rec, name, data,
                                                &seq),
                         MST_OK);
        assert_true(seq == i);
        assert_int_equal(json_integer_value(
                             json_object_get(rec, "last_event_id")), i);

        if (data != NULL) {
            /* ts was added (or kept) */
            assert_non_null(json_object_get(data, "ts"));
            json_decref(data);
        }

        /* interleave events of the neighbour b */
        if (i % 3 == 0) {
            data = json_pack("{s:i}", "i", 100 + (int) i);
            assert_int_equal(mst_store_event_append(txn, b, recb, "b", data,
                                                    NULL),
                             MST_OK);
            json_decref(data);
        }
    }

    assert_int_equal(mst_store_wf_put(txn, a, rec), MST_OK);
    assert_int_equal(mst_store_wf_put(txn, b, recb), MST_OK);

    /* bad input */
    data = json_array();
    assert_int_equal(mst_store_event_append(txn, a, rec, "x", data, NULL),
                     MST_EINVAL);
    json_decref(data);
    assert_int_equal(mst_store_event_append(txn, a, rec, NULL, NULL, NULL),
                     MST_EINVAL);
    assert_int_equal(mst_store_event_append(txn, "bad", rec, "x", NULL,
                                            NULL),
                     MST_EINVAL);
    assert_int_equal(mst_store_event_append(txn, a, NULL, "x", NULL, NULL),
                     MST_EINVAL);
    stale = json_pack("{s:s}", "last_event_id", "7");
    assert_int_equal(mst_store_event_append(txn, a, stale, "x", NULL, NULL),
                     MST_EINVAL);
    json_decref(stale);

    assert_int_equal(json_integer_value(json_object_get(rec, "last_event_id")),
                     10);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    /* everything, in order, with names and data */
    memset(&t, 0, sizeof(t));
    assert_int_equal(mst_store_event_range(txn, a, 0, 0, t_ev_cb, &t),
                     MST_OK);
    assert_int_equal(t.bad, 0);
    assert_int_equal(t.calls, 10);

    for (i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "step.%u", i + 1);
        assert_true(t.seqs[i] == i + 1);
        assert_string_equal(t.names[i], name);

        if (i + 1 == 5) {
            assert_int_equal(t.ts[i], 42);
        } else {
            assert_true(t.ts[i] >= before && t.ts[i] <= mst_now_ms());
        }

        assert_int_equal(t.is[i], i + 1 == 4 ? 0 : i + 1);
    }

    t_range(txn, a, 4, 0, 0, 5, 6);         /* seq > 4 */
    t_range(txn, a, 4, 3, 0, 5, 3);         /* max */
    t_range(txn, a, 0, 0, 2, 1, 2);         /* the callback stops */
    t_range(txn, a, 9, 0, 0, 10, 1);
    t_range(txn, a, 10, 0, 0, 0, 0);
    t_range(txn, a, 1000, 0, 0, 0, 0);
    t_range(txn, a, UINT64_MAX, 0, 0, 0, 0);
    t_range(txn, a, UINT64_MAX - 1, 0, 0, 0, 0);

    /* the neighbours see only their own */
    t_range(txn, b, 0, 0, 0, 1, 3);
    t_range(txn, c, 0, 0, 0, 0, 0);

    assert_int_equal(mst_store_event_range(txn, "bad", 0, 0, t_ev_cb, &t),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_event_range(txn, a, 0, 0, NULL, NULL),
                     MST_EINVAL);

    /* appends in a read-only transaction */
    assert_int_equal(mst_store_event_append(txn, a, rec, "x", NULL, NULL),
                     MST_EINVAL);

    mst_txn_abort(txn);

    /* a stale last_event_id never overwrites a stored event */
    stale = json_pack("{s:i}", "last_event_id", 3);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_event_append(txn, a, stale, "x", NULL, NULL),
                     MST_EXISTS);
    assert_int_equal(json_integer_value(
                         json_object_get(stale, "last_event_id")), 3);
    mst_txn_abort(txn);

    txn = t_begin(e->store, 1);
    memset(&t, 0, sizeof(t));
    assert_int_equal(mst_store_event_range(txn, a, 3, 1, t_ev_cb, &t),
                     MST_OK);
    assert_int_equal(t.calls, 1);
    assert_string_equal(t.names[0], "step.4");
    mst_txn_abort(txn);

    json_decref(stale);
    json_decref(rec);
    json_decref(recb);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_events, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
