/*
 * Copyright (C) Maestro authors
 */

/* mst_feed: the ordered log of every workflow's status changes */

#include "mst_test.h"
#include "mst_feed.h"


typedef struct {
    char         *dir;
    mst_store_t  *store;
} tf_env_t;


typedef struct {
    uint64_t      seqs[64];
    int           is[64];
    size_t        n;
    size_t        stop_at;
} tf_seen_t;


static int
tf_setup(void **state)
{
    char              err[MST_ERRLEN], path[512];
    tf_env_t         *e;
    mst_store_conf_t  conf;

    e = calloc(1, sizeof(tf_env_t));
    assert_non_null(e);

    e->dir = mst_test_tmpdir();
    snprintf(path, sizeof(path), "%s/db", e->dir);

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.map_size = 16u << 20;
    conf.crypt = mst_test_crypt();

    assert_int_equal(mst_store_open(&e->store, &conf, err, sizeof(err)),
                     MST_OK);

    *state = e;
    return 0;
}


static int
tf_teardown(void **state)
{
    tf_env_t  *e = *state;

    mst_store_close(e->store);
    mst_test_rmdir(e->dir);
    free(e);

    return 0;
}


static int
tf_cb(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    json_t     *j;
    tf_seen_t  *s = arg;

    assert_string_equal(name, "workflow_update");

    j = json_loadb(data, len, 0, NULL);
    assert_non_null(j);

    s->seqs[s->n] = seq;
    s->is[s->n] = (int) json_integer_value(json_object_get(j, "i"));
    s->n++;

    json_decref(j);

    return s->stop_at && s->n == s->stop_at;
}


static void
tf_append(mst_store_t *st, int from, int to, size_t keep)
{
    int         i;
    json_t     *d;
    uint64_t    seq;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(st, 0, &txn), MST_OK);

    for (i = from; i < to; i++) {
        d = json_pack("{s:i}", "i", i);
        assert_int_equal(mst_feed_append(txn, "workflow_update", d, keep,
                                         &seq), MST_OK);
        assert_int_equal(seq, (uint64_t) i + 1);
        json_decref(d);
    }

    assert_int_equal(mst_txn_commit(txn), MST_OK);
}


static void
test_append_range(void **state)
{
    tf_env_t   *e = *state;
    uint64_t    last;
    mst_txn_t  *txn;
    tf_seen_t   s;

    assert_int_equal(mst_txn_begin(e->store, 1, &txn), MST_OK);
    assert_int_equal(mst_feed_last(txn, &last), MST_OK);
    assert_int_equal(last, 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(mst_feed_range(txn, 0, 0, tf_cb, &s), MST_OK);
    assert_int_equal(s.n, 0);
    mst_txn_abort(txn);

    tf_append(e->store, 0, 10, 0);
    tf_append(e->store, 10, 20, 0);

    assert_int_equal(mst_txn_begin(e->store, 1, &txn), MST_OK);
    assert_int_equal(mst_feed_last(txn, &last), MST_OK);
    assert_int_equal(last, 20);

    /* strictly after, in order, bounded */
    memset(&s, 0, sizeof(s));
    assert_int_equal(mst_feed_range(txn, 7, 5, tf_cb, &s), MST_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.seqs[0], 8);
    assert_int_equal(s.is[0], 7);
    assert_int_equal(s.seqs[4], 12);

    /* the callback stops it */
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    assert_int_equal(mst_feed_range(txn, 0, 0, tf_cb, &s), MST_OK);
    assert_int_equal(s.n, 2);

    /* past the end: nothing */
    memset(&s, 0, sizeof(s));
    assert_int_equal(mst_feed_range(txn, 20, 0, tf_cb, &s), MST_OK);
    assert_int_equal(s.n, 0);

    mst_txn_abort(txn);
}


static void
test_keep(void **state)
{
    tf_env_t   *e = *state;
    mst_txn_t  *txn;
    tf_seen_t   s;

    tf_append(e->store, 0, 30, 10);

    assert_int_equal(mst_txn_begin(e->store, 1, &txn), MST_OK);
    memset(&s, 0, sizeof(s));
    assert_int_equal(mst_feed_range(txn, 0, 0, tf_cb, &s), MST_OK);
    mst_txn_abort(txn);

    /* the oldest are gone, the newest 10 are kept, ids unchanged */
    assert_int_equal(s.n, 10);
    assert_int_equal(s.seqs[0], 21);
    assert_int_equal(s.seqs[9], 30);
}


static void
test_bad_input(void **state)
{
    tf_env_t   *e = *state;
    json_t     *d;
    mst_txn_t  *txn;

    d = json_pack("[i]", 1);

    assert_int_equal(mst_txn_begin(e->store, 1, &txn), MST_OK);
    assert_int_equal(mst_feed_append(txn, "x", d, 0, NULL), MST_EINVAL);
    assert_int_equal(mst_feed_range(txn, 0, 0, NULL, NULL), MST_EINVAL);
    mst_txn_abort(txn);

    assert_int_equal(mst_txn_begin(e->store, 0, &txn), MST_OK);
    assert_int_equal(mst_feed_append(txn, "x", d, 0, NULL), MST_EINVAL);
    assert_int_equal(mst_feed_append(txn, NULL, d, 0, NULL), MST_EINVAL);
    mst_txn_abort(txn);

    json_decref(d);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_append_range, tf_setup,
                                        tf_teardown),
        cmocka_unit_test_setup_teardown(test_keep, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, tf_setup,
                                        tf_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
