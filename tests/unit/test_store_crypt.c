/*
 * Copyright (C) Maestro authors
 */

/*
 * unit tests of mst_store with sealing (mst_crypt): what is written reads
 * back, the LMDB file holds no plain text, plain records of before still
 * read, rotation, a moved or altered value is refused, the parse cache.
 */

#include <fcntl.h>
#include <sys/stat.h>

#include "mst_test_store.h"


#define TSC_PROMPT  "ultramarine-pangolin-7391"


typedef struct {
    char          *dir;
    char           path[512];
    mst_crypt_t   *ring1;       /* key 1 active */
    mst_crypt_t   *ring12;      /* key 1, key 2 active */
    mst_crypt_t   *ring2;       /* key 2 only */
    char           logged[MST_ERRLEN + 64];
    unsigned       nlogged;
} tsc_env_t;


static void
tsc_log(void *arg, const char *msg)
{
    tsc_env_t  *e = arg;

    snprintf(e->logged, sizeof(e->logged), "%s", msg);
    e->nlogged++;
}


static mst_crypt_t *
tsc_ring(unsigned a, unsigned b, unsigned active)
{
    char           err[MST_ERRLEN];
    mst_crypt_t   *c;
    unsigned char  key[MST_CRYPT_KEY_LEN];

    c = mst_crypt_create(err, sizeof(err));
    assert_non_null(c);

    if (a) {
        memset(key, (int) a, sizeof(key));
        assert_int_equal(mst_crypt_add_key(c, a, key, a == active, err,
                                           sizeof(err)),
                         MST_OK);
    }

    if (b) {
        memset(key, (int) b, sizeof(key));
        assert_int_equal(mst_crypt_add_key(c, b, key, b == active, err,
                                           sizeof(err)),
                         MST_OK);
    }

    return c;
}


static int
tsc_setup(void **state)
{
    tsc_env_t  *e;

    e = calloc(1, sizeof(tsc_env_t));
    assert_non_null(e);

    e->dir = mst_test_tmpdir();
    snprintf(e->path, sizeof(e->path), "%s/db", e->dir);

    e->ring1 = tsc_ring(1, 0, 1);
    e->ring12 = tsc_ring(1, 2, 2);
    e->ring2 = tsc_ring(2, 0, 2);

    *state = e;
    return 0;
}


static int
tsc_teardown(void **state)
{
    tsc_env_t  *e = *state;

    mst_crypt_free(e->ring1);
    mst_crypt_free(e->ring12);
    mst_crypt_free(e->ring2);
    mst_test_rmdir(e->dir);
    free(e);

    return 0;
}


static mst_store_t *
tsc_open(tsc_env_t *e, const mst_crypt_t *ring)
{
    char              err[MST_ERRLEN];
    mst_store_t      *st;
    mst_store_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = e->path;
    conf.map_size = 16u << 20;
    conf.crypt = ring;
    conf.errlog = tsc_log;
    conf.errlog_arg = e;

    if (mst_store_open(&st, &conf, err, sizeof(err)) != MST_OK) {
        fail_msg("open: %s", err);
    }

    return st;
}


/* whether the store's data.mdb holds s */
static int
tsc_file_has(tsc_env_t *e, const char *s)
{
    int          fd, found;
    char         file[600], *buf;
    ssize_t      n;
    struct stat  st;

    snprintf(file, sizeof(file), "%s/data.mdb", e->path);

    fd = open(file, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);

    buf = malloc((size_t) st.st_size);
    assert_non_null(buf);

    n = read(fd, buf, (size_t) st.st_size);
    assert_int_equal(n, st.st_size);
    close(fd);

    found = memmem(buf, (size_t) n, s, strlen(s)) != NULL;
    free(buf);

    return found;
}


/* a workflow, a checkpoint, two events, an agent log entry, a kv value */
static void
tsc_write_all(mst_store_t *st, const char *id)
{
    json_t     *rec, *cp, *data, *entry;
    uint64_t    seq;
    mst_txn_t  *txn;

    txn = t_begin(st, 0);

    rec = json_pack("{s:s, s:s, s:b}", "status", "running",
                    "prompt", "plan the " TSC_PROMPT " migration",
                    "cancel_requested", 1);
    cp = json_pack("{s:s, s:i}", "draft", "notes on " TSC_PROMPT, "n", 1);
    entry = json_pack("{s:s}", "msg", "agent saw " TSC_PROMPT);

    assert_int_equal(mst_store_checkpoint_put(txn, id, 1, cp), MST_OK);

    data = json_pack("{s:s}", "token", TSC_PROMPT "-token");
    assert_int_equal(mst_store_event_append(txn, id, rec, "token", data,
                                            &seq),
                     MST_OK);
    json_decref(data);
    assert_int_equal(mst_store_event_append(txn, id, rec, "done", NULL,
                                            NULL),
                     MST_OK);

    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    /* the agent and the kv key are the id: each write has its own */
    assert_int_equal(mst_store_agent_log_append(txn, id, entry, 10),
                     MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "mem", id,
                                      "remember " TSC_PROMPT,
                                      strlen("remember " TSC_PROMPT)),
                     MST_OK);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    json_decref(rec);
    json_decref(cp);
    json_decref(entry);
}


typedef struct {
    unsigned  n;
    char      names[4][16];
    char      data[4][128];
} tsc_ev_t;


static int
tsc_ev_cb(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    tsc_ev_t  *t = arg;

    if (t->n < 4) {
        snprintf(t->names[t->n], sizeof(t->names[0]), "%s", name);
        snprintf(t->data[t->n], sizeof(t->data[0]), "%.*s", (int) len, data);
    }

    t->n++;

    return 0;
}


/* everything tsc_write_all() wrote reads back as written */
static void
tsc_read_all(mst_store_t *st, const char *id, int readonly)
{
    char        *v, next[MST_ID_LEN + 1];
    size_t       len;
    json_t      *rec, *cp, *list;
    uint64_t     seq;
    tsc_ev_t     ev;
    mst_txn_t   *txn;
    mst_wf_filter_t  f;

    txn = t_begin(st, readonly);

    assert_int_equal(mst_store_wf_get(txn, id, &rec), MST_OK);
    assert_string_equal(json_string_value(json_object_get(rec, "prompt")),
                        "plan the " TSC_PROMPT " migration");
    assert_int_equal(json_integer_value(json_object_get(rec,
                                                        "last_event_id")),
                     2);
    json_decref(rec);

    /* the raw "key":true match reads the plain text */
    assert_int_equal(mst_store_wf_flag(txn, id, "cancel_requested"), 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "prompt"), 0);

    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_true(seq == 1);
    assert_string_equal(json_string_value(json_object_get(cp, "draft")),
                        "notes on " TSC_PROMPT);
    json_decref(cp);

    assert_int_equal(mst_store_checkpoint_list(txn, id, &list), MST_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);

    memset(&ev, 0, sizeof(ev));
    assert_int_equal(mst_store_event_range(txn, id, 0, 0, tsc_ev_cb, &ev),
                     MST_OK);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.names[0], "token");
    assert_non_null(strstr(ev.data[0], TSC_PROMPT "-token"));
    assert_string_equal(ev.names[1], "done");

    assert_int_equal(mst_store_agent_log_list(txn, id, 0, &list),
                     MST_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, 0), "msg")),
                        "agent saw " TSC_PROMPT);
    json_decref(list);

    assert_int_equal(mst_store_kv_get(txn, "mem", id, &v, &len), MST_OK);
    assert_string_equal(v, "remember " TSC_PROMPT);
    free(v);

    memset(&f, 0, sizeof(f));
    f.limit = 10;
    assert_int_equal(mst_store_wf_list(txn, &f, &list, next), MST_OK);
    assert_true(json_array_size(list) >= 1);
    json_decref(list);

    mst_txn_abort(txn);
}


static void
test_sealed_at_rest(void **state)
{
    char          id[MST_ID_LEN + 1];
    tsc_env_t    *e = *state;
    mst_store_t  *st;

    t_id(id, 1, 1);

    st = tsc_open(e, e->ring1);
    tsc_write_all(st, id);
    tsc_read_all(st, id, 1);
    tsc_read_all(st, id, 0);
    mst_store_close(st);

    /* nothing of it in the file, in any record kind */
    assert_false(tsc_file_has(e, TSC_PROMPT));
    assert_false(tsc_file_has(e, "cancel_requested"));
    assert_int_equal(e->nlogged, 0);

    /* and it reads back after a restart */
    st = tsc_open(e, e->ring1);
    tsc_read_all(st, id, 1);
    mst_store_close(st);
}


static void
test_plain_without_key(void **state)
{
    char          id[MST_ID_LEN + 1];
    tsc_env_t    *e = *state;
    mst_store_t  *st;

    t_id(id, 1, 1);

    /* the same writes with sealing off: the file does hold the prompt */
    st = tsc_open(e, NULL);
    tsc_write_all(st, id);
    tsc_read_all(st, id, 1);
    mst_store_close(st);

    assert_true(tsc_file_has(e, TSC_PROMPT));
}


static void
test_plain_then_sealed(void **state)
{
    char          a[MST_ID_LEN + 1], b[MST_ID_LEN + 1];
    json_t       *rec;
    tsc_env_t    *e = *state;
    mst_txn_t    *txn;
    mst_store_t  *st;

    t_id(a, 1, 1);
    t_id(b, 2, 1);

    /* written before sealing was turned on */
    st = tsc_open(e, NULL);
    tsc_write_all(st, a);
    mst_store_close(st);

    /* turned on: the old records still read, new ones are sealed */
    st = tsc_open(e, e->ring1);
    tsc_read_all(st, a, 1);
    tsc_write_all(st, b);
    tsc_read_all(st, b, 1);
    tsc_read_all(st, a, 1);
    mst_store_close(st);
    assert_int_equal(e->nlogged, 0);

    /* turned off again: a sealed record is an error, never its bytes */
    st = tsc_open(e, NULL);

    txn = t_begin(st, 1);
    assert_int_equal(mst_store_wf_get(txn, b, &rec), MST_ECRYPT);
    assert_null(rec);
    assert_int_equal(mst_store_wf_flag(txn, b, "cancel_requested"),
                     MST_ECRYPT);
    assert_non_null(strstr(e->logged, "no maestro_store_encryption_key"));

    /* the plain one is still there */
    assert_int_equal(mst_store_wf_get(txn, a, &rec), MST_OK);
    json_decref(rec);
    mst_txn_abort(txn);

    mst_store_close(st);
}


static void
test_rotation(void **state)
{
    char           a[MST_ID_LEN + 1], b[MST_ID_LEN + 1];
    json_t        *rec;
    MDB_val        k, v;
    tsc_env_t     *e = *state;
    mst_txn_t     *txn;
    mst_store_t   *st;

    t_id(a, 1, 1);
    t_id(b, 2, 1);

    st = tsc_open(e, e->ring1);
    tsc_write_all(st, a);
    mst_store_close(st);

    /* key 2 becomes active, key 1 is kept for reading */
    st = tsc_open(e, e->ring12);
    tsc_read_all(st, a, 1);
    tsc_write_all(st, b);
    tsc_read_all(st, b, 1);

    txn = t_begin(st, 1);

    k.mv_size = MST_ID_LEN;
    k.mv_data = a;
    assert_int_equal(mdb_get(txn->txn, st->wf, &k, &v), MDB_SUCCESS);
    assert_int_equal(((unsigned char *) v.mv_data)[2], 1);

    k.mv_data = b;
    assert_int_equal(mdb_get(txn->txn, st->wf, &k, &v), MDB_SUCCESS);
    assert_int_equal(((unsigned char *) v.mv_data)[2], 2);

    mst_txn_abort(txn);
    mst_store_close(st);

    /* key 1 dropped too early: a's records say so, b's still read */
    st = tsc_open(e, e->ring2);
    txn = t_begin(st, 1);
    assert_int_equal(mst_store_wf_get(txn, a, &rec), MST_ECRYPT);
    assert_non_null(strstr(e->logged, "key id 1"));
    assert_non_null(strstr(e->logged, "not configured"));
    assert_int_equal(mst_store_wf_get(txn, b, &rec), MST_OK);
    json_decref(rec);
    mst_txn_abort(txn);
    mst_store_close(st);
}


static int
tsc_scan_cb(const char *id, json_t *rec, void *arg)
{
    (*(unsigned *) arg)++;
    return 0;
}


static void
test_moved_or_altered(void **state)
{
    char             a[MST_ID_LEN + 1], b[MST_ID_LEN + 1], next[64];
    void            *copy;
    json_t          *rec, *list;
    MDB_val          k, v;
    unsigned         n;
    tsc_env_t       *e = *state;
    mst_txn_t       *txn;
    mst_store_t     *st;
    mst_wf_filter_t  f;
    unsigned char    key[MST_STORE_SEQ_KEY_LEN];

    t_id(a, 1, 1);
    t_id(b, 2, 1);

    st = tsc_open(e, e->ring1);
    tsc_write_all(st, a);

    /* a's sealed record copied under b's key */
    txn = t_begin(st, 0);
    k.mv_size = MST_ID_LEN;
    k.mv_data = a;
    assert_int_equal(mdb_get(txn->txn, st->wf, &k, &v), MDB_SUCCESS);
    copy = malloc(v.mv_size);
    assert_non_null(copy);
    memcpy(copy, v.mv_data, v.mv_size);
    k.mv_data = b;
    v.mv_data = copy;
    assert_int_equal(mdb_put(txn->txn, st->wf, &k, &v, 0), MDB_SUCCESS);
    assert_int_equal(mdb_put(txn->txn, st->act, &k, &v, 0), MDB_SUCCESS);

    /* and a's checkpoint copied into the events at the same key */
    mst_store_seq_key(key, a, 1);
    k.mv_size = sizeof(key);
    k.mv_data = key;
    assert_int_equal(mdb_get(txn->txn, st->cp, &k, &v), MDB_SUCCESS);
    assert_int_equal(mdb_put(txn->txn, st->ev, &k, &v, 0), MDB_SUCCESS);
    free(copy);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(st, 1);

    rec = (json_t *) 1;
    assert_int_equal(mst_store_wf_get(txn, b, &rec), MST_ECRYPT);
    assert_null(rec);
    assert_non_null(strstr(e->logged, "authentication"));
    assert_int_equal(mst_store_wf_get(txn, a, &rec), MST_OK);
    json_decref(rec);

    /* a listing does not hide it; a scan skips it (and logs) */
    memset(&f, 0, sizeof(f));
    f.limit = 10;
    assert_int_equal(mst_store_wf_list(txn, &f, &list, next), MST_ECRYPT);

    n = 0;
    e->nlogged = 0;
    assert_int_equal(mst_store_wf_scan_active(txn, tsc_scan_cb, &n), MST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(e->nlogged, 1);

    n = 0;
    assert_int_equal(mst_store_wf_scan(txn, NULL, 10, tsc_scan_cb, &n),
                     MST_OK);
    assert_int_equal(n, 1);

    {
        tsc_ev_t  ev;

        memset(&ev, 0, sizeof(ev));
        assert_int_equal(mst_store_event_range(txn, a, 0, 0, tsc_ev_cb, &ev),
                         MST_ECRYPT);
        assert_int_equal(ev.n, 0);
    }

    mst_txn_abort(txn);

    /* one flipped byte of a's record */
    txn = t_begin(st, 0);
    k.mv_size = MST_ID_LEN;
    k.mv_data = a;
    assert_int_equal(mdb_get(txn->txn, st->wf, &k, &v), MDB_SUCCESS);
    copy = malloc(v.mv_size);
    assert_non_null(copy);
    memcpy(copy, v.mv_data, v.mv_size);
    ((unsigned char *) copy)[v.mv_size / 2] ^= 0x20;
    v.mv_data = copy;
    assert_int_equal(mdb_put(txn->txn, st->wf, &k, &v, 0), MDB_SUCCESS);
    free(copy);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(st, 0);
    assert_int_equal(mst_store_wf_get(txn, a, &rec), MST_ECRYPT);
    mst_txn_abort(txn);

    mst_store_close(st);
}


static void
test_parse_cache(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *cp;
    uint64_t      seq, hits;
    tsc_env_t    *e = *state;
    mst_txn_t    *txn;
    mst_store_t  *st;

    t_id(id, 1, 1);

    st = tsc_open(e, e->ring1);
    tsc_write_all(st, id);

    /* the cache compares the sealed bytes: the step after a write hits */
    hits = st->cp_cache.hits;

    txn = t_begin(st, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_true(st->cp_cache.hits == hits + 1);
    assert_string_equal(json_string_value(json_object_get(cp, "draft")),
                        "notes on " TSC_PROMPT);

    /* unchanged and kept: the next one hits again */
    mst_store_checkpoint_keep(txn, id, seq, cp, NULL);
    json_decref(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(st, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_true(st->cp_cache.hits == hits + 2);

    /* changed and kept (not written): only a miss, the stored one reads */
    json_object_set_new(cp, "draft", json_string("changed"));
    mst_store_checkpoint_keep(txn, id, seq, cp, NULL);
    json_decref(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(st, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_true(st->cp_cache.hits == hits + 2);
    assert_string_equal(json_string_value(json_object_get(cp, "draft")),
                        "notes on " TSC_PROMPT);
    json_decref(cp);
    mst_txn_abort(txn);

    mst_store_close(st);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_sealed_at_rest, tsc_setup,
                                        tsc_teardown),
        cmocka_unit_test_setup_teardown(test_plain_without_key, tsc_setup,
                                        tsc_teardown),
        cmocka_unit_test_setup_teardown(test_plain_then_sealed, tsc_setup,
                                        tsc_teardown),
        cmocka_unit_test_setup_teardown(test_rotation, tsc_setup,
                                        tsc_teardown),
        cmocka_unit_test_setup_teardown(test_moved_or_altered, tsc_setup,
                                        tsc_teardown),
        cmocka_unit_test_setup_teardown(test_parse_cache, tsc_setup,
                                        tsc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
