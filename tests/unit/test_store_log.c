/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB): agent logs */

#include "mst_test_store.h"


static void
t_log_check(mst_txn_t *txn, const char *agent, size_t limit,
    int first, size_t count)
{
    size_t   i;
    json_t  *list;

    assert_int_equal(mst_store_agent_log_list(txn, agent, limit, &list),
                     MST_OK);
    assert_int_equal(json_array_size(list), count);

    for (i = 0; i < count; i++) {
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(list, i), "agent")), agent);
        assert_int_equal(json_integer_value(json_object_get(
                             json_array_get(list, i), "i")), first + i);
    }

    json_decref(list);
}


static void
t_log(mst_txn_t *txn, const char *agent, int i, size_t keep)
{
    json_t  *entry;

    entry = json_pack("{s:s,s:i}", "agent", agent, "i", i);
    assert_int_equal(mst_store_agent_log_append(txn, agent, entry, keep),
                     MST_OK);
    json_decref(entry);
}


static void
test_agent_logs(void **state)
{
    int         i;
    char        big[600];
    json_t     *entry, *list;
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;

    txn = t_begin(e->store, 0);

    /* "ab" sorts right after "a": the trim of "a" must not touch it */
    for (i = 0; i < 3; i++) {
        t_log(txn, "ab", i, 5);
    }

    for (i = 0; i < 12; i++) {
        t_log(txn, "a", i, 5);
    }

    for (i = 0; i < 7; i++) {
        t_log(txn, "c", i, 0);              /* 0: no limit */
    }

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);
    t_log_check(txn, "a", 0, 7, 5);         /* newest 5, newest last */
    t_log_check(txn, "a", 2, 10, 2);        /* the newest 2 */
    t_log_check(txn, "a", 100, 7, 5);
    t_log_check(txn, "ab", 0, 0, 3);
    t_log_check(txn, "c", 0, 0, 7);
    t_log_check(txn, "b", 0, 0, 0);
    t_log_check(txn, "zzz", 0, 0, 0);       /* past the end of the DB */

    entry = json_object();
    assert_int_equal(mst_store_agent_log_append(txn, "a", entry, 5),
                     MST_EINVAL);
    json_decref(entry);
    mst_txn_abort(txn);

    /* in separate transactions, and a lower keep trims more */
    for (i = 12; i < 14; i++) {
        txn = t_begin(e->store, 0);
        t_log(txn, "a", i, 5);
        assert_int_equal(mst_txn_commit(txn), MST_OK);
    }

    txn = t_begin(e->store, 0);
    t_log(txn, "c", 7, 3);
    t_log_check(txn, "a", 0, 9, 5);
    t_log_check(txn, "c", 0, 5, 3);
    t_log_check(txn, "ab", 0, 0, 3);

    /* bad input */
    entry = json_object();
    assert_int_equal(mst_store_agent_log_append(txn, "", entry, 5),
                     MST_EINVAL);
    assert_int_equal(mst_store_agent_log_append(txn, NULL, entry, 5),
                     MST_EINVAL);
    assert_int_equal(mst_store_agent_log_append(txn, "a", NULL, 5),
                     MST_EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(mst_store_agent_log_append(txn, big, entry, 5),
                     MST_EINVAL);
    assert_int_equal(mst_store_agent_log_list(txn, big, 0, &list),
                     MST_EINVAL);
    assert_int_equal(mst_store_agent_log_list(txn, "", 0, &list),
                     MST_EINVAL);
    assert_null(list);
    json_decref(entry);

    assert_int_equal(mst_txn_commit(txn), MST_OK);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_logs, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
