/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB): plugins' key-value namespaces */

#include "mst_test_store.h"


static void
test_kv(void **state)
{
    char        *v, big[600];
    size_t       len;
    t_env_t     *e;
    mst_txn_t   *txn;

    e = *state;

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_kv_put(txn, "mem", "k1", "hello", 5), MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "mem", "bin", "a\0b", 3), MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "a", "bc", "1", 1), MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "ab", "c", "2", 1), MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "mem", "empty", NULL, 0), MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "mem", "", "ek", 2), MST_OK);

    /* bad input */
    assert_int_equal(mst_store_kv_put(txn, "", "k", "v", 1), MST_EINVAL);
    assert_int_equal(mst_store_kv_put(txn, NULL, "k", "v", 1), MST_EINVAL);
    assert_int_equal(mst_store_kv_put(txn, "mem", NULL, "v", 1), MST_EINVAL);
    assert_int_equal(mst_store_kv_put(txn, "mem", "k", NULL, 1), MST_EINVAL);
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(mst_store_kv_put(txn, "mem", big, "v", 1), MST_EINVAL);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_kv_put(txn, "mem", "k1", "world!", 6),
                     MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    assert_int_equal(mst_store_kv_get(txn, "mem", "k1", &v, &len), MST_OK);
    assert_int_equal(len, 6);
    assert_string_equal(v, "world!");
    free(v);

    assert_int_equal(mst_store_kv_get(txn, "mem", "bin", &v, &len), MST_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "a\0b", 4);      /* and NUL-terminated */
    free(v);

    assert_int_equal(mst_store_kv_get(txn, "a", "bc", &v, NULL), MST_OK);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(mst_store_kv_get(txn, "ab", "c", &v, NULL), MST_OK);
    assert_string_equal(v, "2");
    free(v);

    assert_int_equal(mst_store_kv_get(txn, "mem", "empty", &v, &len),
                     MST_OK);
    assert_int_equal(len, 0);
    assert_string_equal(v, "");
    free(v);

    assert_int_equal(mst_store_kv_get(txn, "mem", "", &v, &len), MST_OK);
    assert_string_equal(v, "ek");
    free(v);

    v = (char *) 1;
    assert_int_equal(mst_store_kv_get(txn, "mem", "nope", &v, &len),
                     MST_NOTFOUND);
    assert_null(v);
    assert_int_equal(mst_store_kv_get(txn, "other", "k1", &v, &len),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_kv_get(txn, "", "k1", &v, &len), MST_EINVAL);
    assert_int_equal(mst_store_kv_get(txn, "mem", big, &v, &len),
                     MST_EINVAL);

    assert_int_equal(mst_store_kv_put(txn, "mem", "k2", "v", 1), MST_EINVAL);

    mst_txn_abort(txn);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_kv, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
