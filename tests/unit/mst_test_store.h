/*
 * Copyright (C) Maestro authors
 */

/*
 * Helpers shared by the unit tests of mst_store (test_store*.c): a fresh
 * store in a temporary directory per test, transactions that must begin,
 * records and checkpoints that must be written.
 */

#ifndef _MST_TEST_STORE_H_INCLUDED_
#define _MST_TEST_STORE_H_INCLUDED_

#include "mst_test.h"
#include "mst_store.h"
#include "mst_store_int.h"      /* the parse cache's counters */


#define T_MAP_DEFAULT  (64u << 20)  /* room for the concurrency test, whose
                                       reader pins old pages */


typedef struct {
    char        *dir;
    char         path[512];
    mst_store_t *store;
} t_env_t;


/* deterministic ids that sort by n */
static inline void
t_id(char *buf, unsigned n, unsigned rnd)
{
    snprintf(buf, MST_ID_LEN + 1, "wf_%012x%08x", n, rnd);
    assert_true(mst_id_valid(buf, strlen(buf)));
}


static inline mst_store_t *
t_open(const char *path, size_t map_size, int sync)
{
    int               rc;
    char              err[MST_ERRLEN];
    mst_store_t      *st;
    mst_store_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.map_size = map_size;
    conf.sync = sync;
    conf.crypt = mst_test_crypt();

    err[0] = '\0';
    rc = mst_store_open(&st, &conf, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("open %s: %s (%s)", path, err, mst_strerror(rc));
    }
    assert_non_null(st);

    return st;
}


static inline int
t_setup(void **state)
{
    t_env_t  *e;

    e = calloc(1, sizeof(t_env_t));
    assert_non_null(e);

    e->dir = mst_test_tmpdir();
    snprintf(e->path, sizeof(e->path), "%s/db", e->dir);
    e->store = t_open(e->path, T_MAP_DEFAULT, 0);

    *state = e;
    return 0;
}


static inline int
t_teardown(void **state)
{
    t_env_t  *e;

    e = *state;
    mst_store_close(e->store);
    mst_test_rmdir(e->dir);
    free(e);

    return 0;
}


static inline mst_txn_t *
t_begin(mst_store_t *st, int readonly)
{
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(st, readonly, &txn), MST_OK);
    assert_non_null(txn);

    return txn;
}


static inline void
t_put_rec(mst_store_t *st, const char *id, json_t *rec)
{
    mst_txn_t  *txn;

    txn = t_begin(st, 0);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    json_decref(rec);
}


static inline void
t_cp_put(mst_txn_t *txn, const char *id, uint64_t seq)
{
    json_t  *cp;

    cp = json_pack("{s:I,s:s}", "n", (json_int_t) (seq & 0xffffffff),
                   "id", id);
    assert_int_equal(mst_store_checkpoint_put(txn, id, seq, cp), MST_OK);
    json_decref(cp);
}


static inline void
t_cp_last(mst_txn_t *txn, const char *id, int rc, uint64_t want)
{
    json_t    *cp;
    uint64_t   seq;

    seq = 12345;
    cp = (json_t *) 1;

    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), rc);

    if (rc != MST_OK) {
        assert_null(cp);
        return;
    }

    assert_true(seq == want);
    assert_string_equal(json_string_value(json_object_get(cp, "id")), id);
    assert_int_equal(json_integer_value(json_object_get(cp, "n")),
                     want & 0xffffffff);
    json_decref(cp);
}


typedef struct {
    unsigned   calls;
    unsigned   stop_after;
    uint64_t   seqs[64];
    json_int_t is[64];
    json_int_t ts[64];
    char       names[64][16];
    int        bad;
} t_ev_t;


static inline int
t_ev_cb(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    t_ev_t        *t;
    json_t        *j;
    json_error_t   jerr;

    t = arg;

    if (t->calls >= 64) {
        t->bad++;
        return 1;
    }

    /* zero-copy layout: name '\0' data */
    if (data != name + strlen(name) + 1) {
        t->bad++;
    }

    j = json_loadb(data, len, 0, &jerr);
    if (!json_is_object(j)) {
        t->bad++;
    }

    t->seqs[t->calls] = seq;
    t->is[t->calls] = json_integer_value(json_object_get(j, "i"));
    t->ts[t->calls] = json_integer_value(json_object_get(j, "ts"));
    snprintf(t->names[t->calls], sizeof(t->names[0]), "%s", name);
    json_decref(j);

    t->calls++;

    return t->stop_after && t->calls == t->stop_after;
}


static inline void
t_range(mst_txn_t *txn, const char *id, uint64_t after, size_t max,
    unsigned stop_after, uint64_t first, unsigned count)
{
    unsigned  i;
    t_ev_t    t;

    memset(&t, 0, sizeof(t));
    t.stop_after = stop_after;

    assert_int_equal(mst_store_event_range(txn, id, after, max, t_ev_cb, &t),
                     MST_OK);
    assert_int_equal(t.bad, 0);
    assert_int_equal(t.calls, count);

    for (i = 0; i < count; i++) {
        assert_true(t.seqs[i] == first + i);
    }
}

#endif /* _MST_TEST_STORE_H_INCLUDED_ */
