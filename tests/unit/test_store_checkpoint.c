/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB): checkpoints */

#include "mst_test_store.h"


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


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoints, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
