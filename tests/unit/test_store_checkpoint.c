/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB): checkpoints */

#include "mst_test_store.h"
#include "mst_json_delta.h"


static void
test_checkpoints(void **state)
{
    char        a[MST_ID_LEN + 1], b[MST_ID_LEN + 1], c[MST_ID_LEN + 1];
    char        d[MST_ID_LEN + 1], z[MST_ID_LEN + 1], f[MST_ID_LEN + 1];
    size_t      i;
    json_t     *list, *item, *cp;
    t_env_t    *e;
    mst_txn_t  *txn;
    uint64_t    want[] = { 1, 2, 3, 255, 256, 65536 };

    e = *state;

    /* adjacent ids: z < a < b < c < d */
    t_id(z, 0, 0);
    t_id(a, 1, 0);
    t_id(b, 1, 1);
    t_id(c, 2, 0);
    t_id(d, 3, 0);

    txn = t_begin(e->store, 0);

    /* out of order, to check big-endian ordering */
    t_cp_put(txn, a, 256);
    t_cp_put(txn, a, 1);
    t_cp_put(txn, a, 65536);
    t_cp_put(txn, a, 3);
    t_cp_put(txn, a, 255);
    t_cp_put(txn, a, 2);

    t_cp_put(txn, c, 1);
    t_cp_put(txn, c, 2);

    /* bad input */
    cp = json_object();
    assert_int_equal(mst_store_checkpoint_put(txn, "bad", 1, cp), MST_EINVAL);
    assert_int_equal(mst_store_checkpoint_put(txn, a, 1, NULL), MST_EINVAL);
    json_decref(cp);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    t_cp_last(txn, a, MST_OK, 65536);
    t_cp_last(txn, b, MST_NOTFOUND, 0);     /* between a and c, none */
    t_cp_last(txn, c, MST_OK, 2);           /* the last id in the DB */
    t_cp_last(txn, d, MST_NOTFOUND, 0);     /* past the end of the DB */
    t_cp_last(txn, z, MST_NOTFOUND, 0);     /* before the first key */
    t_cp_last(txn, "bad", MST_NOTFOUND, 0);

    /* seq may be NULL */
    assert_int_equal(mst_store_checkpoint_last(txn, c, NULL, &cp), MST_OK);
    json_decref(cp);

    /* list: oldest first */
    assert_int_equal(mst_store_checkpoint_list(txn, a, &list), MST_OK);
    assert_int_equal(json_array_size(list), 6);

    for (i = 0; i < 6; i++) {
        item = json_array_get(list, i);
        assert_int_equal(json_integer_value(json_object_get(item, "seq")),
                         want[i]);
        cp = json_object_get(item, "checkpoint");
        assert_int_equal(json_integer_value(json_object_get(cp, "n")),
                         want[i]);
        assert_string_equal(json_string_value(json_object_get(cp, "id")), a);
    }

    json_decref(list);

    assert_int_equal(mst_store_checkpoint_list(txn, b, &list), MST_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    assert_int_equal(mst_store_checkpoint_list(txn, d, &list), MST_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    assert_int_equal(mst_store_checkpoint_list(txn, c, &list), MST_OK);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);

    assert_int_equal(mst_store_checkpoint_list(txn, "bad", &list),
                     MST_NOTFOUND);
    assert_null(list);

    /* writes in a read-only transaction */
    cp = json_object();
    assert_int_equal(mst_store_checkpoint_put(txn, a, 9, cp), MST_EINVAL);
    json_decref(cp);

    mst_txn_abort(txn);

    /* the largest seq (key == the search key) and an overwrite */
    t_id(f, 9, 0);

    txn = t_begin(e->store, 0);
    t_cp_put(txn, f, UINT64_MAX);
    t_cp_put(txn, f, 5);
    cp = json_pack("{s:i,s:s}", "n", 99, "id", c);
    assert_int_equal(mst_store_checkpoint_put(txn, c, 2, cp), MST_OK);
    json_decref(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);
    t_cp_last(txn, f, MST_OK, UINT64_MAX);
    t_cp_last(txn, d, MST_NOTFOUND, 0);     /* between c and f now */
    assert_int_equal(mst_store_checkpoint_last(txn, c, NULL, &cp), MST_OK);
    assert_int_equal(json_integer_value(json_object_get(cp, "n")), 99);
    json_decref(cp);
    mst_txn_abort(txn);
}


/*
 * A workflow's checkpoints as deltas: each step changes one frontier
 * entry and adds an output; the last one (read without the cache) and
 * every page of the list are the whole checkpoints written, and a step's
 * stored value is small next to the whole checkpoint. Run sealed too
 * (MST_TEST_CRYPT=1).
 */
static void
test_checkpoint_deltas(void **state)
{
    int         i, full;
    char        id[MST_ID_LEN + 1], name[32];
    size_t      total, pages, seen, len;
    json_t     *cp, *prev, *hist[200], *list, *item, *out, *f;
    MDB_val     k, v;
    t_env_t    *e;
    uint64_t    seq, from, next;
    mst_txn_t  *txn;
    unsigned char  key[MST_STORE_SEQ_KEY_LEN];

    e = *state;
    t_id(id, 7, 3);

    cp = json_pack("{s:i, s:s, s:{s:s, s:{}}, s:[]}", "superstep", 1,
                   "status", "running", "state", "prompt",
                   "a long prompt, stored once in the chain's base ...",
                   "outputs", "frontier");
    f = json_object_get(cp, "frontier");
    for (i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        json_array_append_new(f, json_pack("{s:s, s:s, s:i}", "node", name,
                                           "status", "pending",
                                           "attempts", 0));
    }

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_put_delta(txn, id, 1, cp, NULL),
                     MST_OK);
    hist[1] = json_deep_copy(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    full = 0;

    for (seq = 2; seq < 200; seq++) {
        txn = t_begin(e->store, 0);

        /* every other step reads it back (cache or rebuild) */
        json_decref(cp);
        assert_int_equal(mst_store_checkpoint_last(txn, id, &from, &cp),
                         MST_OK);
        assert_int_equal(from, seq - 1);
        assert_true(json_equal(cp, hist[seq - 1]));

        prev = mst_json_tree_copy(cp);
        i = (int) (seq % 100);
        json_object_set_new(json_array_get(json_object_get(cp, "frontier"),
                                           i),
                            "status", json_string("done"));
        snprintf(name, sizeof(name), "n%d", i);
        json_object_set_new(json_object_get(json_object_get(cp, "state"),
                                            "outputs"),
                            name, json_pack("{s:I}", "seq", (json_int_t) seq));

        assert_int_equal(mst_store_checkpoint_put_delta(txn, id, seq, cp,
                                                        prev),
                         MST_OK);
        json_decref(prev);
        hist[seq] = json_deep_copy(cp);

        mst_store_seq_key(key, id, seq);
        k.mv_size = sizeof(key);
        k.mv_data = key;
        assert_int_equal(mdb_get(txn->txn, e->store->cp, &k, &v), 0);
        len = v.mv_size;
        if (len > 1000) {
            full++;
        }

        assert_int_equal(mst_txn_commit(txn), MST_OK);

        if (seq % 7 == 0) {
            /* a reader with no cache: rebuilt from its base and deltas */
            txn = t_begin(e->store, 1);
            assert_int_equal(mst_store_checkpoint_last(txn, id, &from, &out),
                             MST_OK);
            assert_int_equal(from, seq);
            assert_true(json_equal(out, cp));
            json_decref(out);
            mst_txn_abort(txn);
        }
    }

    /* whole ones only to bound a chain: 198 steps, 64 deltas at most */
    assert_true(full >= 2);
    assert_true(full <= 8);

    /* the list, in pages of 7, from the start and from inside a chain */

    txn = t_begin(e->store, 1);

    for (from = 0, pages = 0, seen = 0; ; from = next, pages++) {
        assert_int_equal(mst_store_checkpoint_page(txn, id, from, 7,
                                                   SIZE_MAX, &list, &next),
                         MST_OK);

        json_array_foreach(list, total, item) {
            seq = (uint64_t) json_integer_value(json_object_get(item, "seq"));
            assert_int_equal(seq, seen + 1);
            assert_true(json_equal(json_object_get(item, "checkpoint"),
                                   hist[seq]));
            seen++;
        }

        json_decref(list);

        if (next == 0) {
            break;
        }

        assert_int_equal(next, seen + 1);
    }

    assert_int_equal(seen, 199);
    assert_int_equal(pages, 28);

    /* a byte bound: one per page when each passes it */
    assert_int_equal(mst_store_checkpoint_page(txn, id, 50, 100, 1, &list,
                                               &next), MST_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(next, 51);
    assert_true(json_equal(json_object_get(json_array_get(list, 0),
                                           "checkpoint"), hist[50]));
    json_decref(list);

    assert_int_equal(mst_store_checkpoint_page(txn, id, 0, 0, 1, &list,
                                               &next), MST_EINVAL);

    mst_txn_abort(txn);

    for (seq = 1; seq < 200; seq++) {
        json_decref(hist[seq]);
    }
    json_decref(cp);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoints, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_deltas, t_setup,
                                        t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
