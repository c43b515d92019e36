/*
 * Copyright (C) Maestro authors
 */

/*
 * unit tests of mst_store (LMDB), the environment and transactions: open,
 * errors, a full map, a map another process grew, the parse cache,
 * MDB_WRITEMAP, concurrent writers and readers. Each record kind has its
 * own file: test_store_workflow.c, _checkpoint.c, _event.c, _log.c, _kv.c.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "mst_test_store.h"


/* ---- open / close ----------------------------------------------------- */


static void
test_open_close(void **state)
{
    char         *dir, path[512], id[MST_ID_LEN + 1];
    size_t        used, map;
    json_t       *rec;
    mst_txn_t    *txn;
    struct stat   st;
    mst_store_t  *store;

    dir = mst_test_tmpdir();
    snprintf(path, sizeof(path), "%s/a/b/store", dir);

    /* nested directories are created, mode 0700 */
    store = t_open(path, 1u << 20, 0);

    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_int_equal(mst_store_usage(store, &used, &map), MST_OK);
    assert_int_equal(map, 1u << 20);
    assert_true(used > 0 && used <= map);

    mst_store_reader_check(store);

    t_id(id, 7, 1);
    t_put_rec(store, id, json_pack("{s:s}", "status", "queued"));

    mst_store_close(store);
    mst_store_close(NULL);
    mst_txn_abort(NULL);
    assert_int_equal(mst_txn_commit(NULL), MST_EINVAL);

    /* reopen (existing directory, sync on): the data is there */
    store = t_open(path, 1u << 20, 1);

    txn = t_begin(store, 1);
    assert_int_equal(mst_store_wf_get(txn, id, &rec), MST_OK);
    assert_string_equal(json_string_value(json_object_get(rec, "status")),
                        "queued");
    json_decref(rec);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    mst_store_close(store);
    mst_test_rmdir(dir);
}


static void
t_open_fails(const char *path, const char *needle)
{
    int               rc;
    char              err[MST_ERRLEN];
    mst_store_t      *st;
    mst_store_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.map_size = 1u << 20;

    st = (mst_store_t *) 1;
    err[0] = '\0';

    rc = mst_store_open(&st, &conf, err, sizeof(err));

    assert_int_not_equal(rc, MST_OK);
    assert_true(rc < 0);
    assert_null(st);

    if (needle != NULL && strstr(err, needle) == NULL) {
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
    }
}


static void
test_open_errors(void **state)
{
    int               fd;
    char             *dir, file[256], path[512];
    char              err[MST_ERRLEN];
    mst_store_t      *st;
    mst_store_conf_t  conf;

    dir = mst_test_tmpdir();

    snprintf(file, sizeof(file), "%s/file", dir);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);

    /* a parent that is a regular file */
    snprintf(path, sizeof(path), "%s/store", file);
    t_open_fails(path, path);

    /* the path itself is a regular file */
    t_open_fails(file, file);

    /* a parent where nothing can be created, even by root */
    t_open_fails("/proc/mst-test-nonexistent/store",
                 "/proc/mst-test-nonexistent/store");

    /* unwritable parent / unwritable directory (root ignores modes) */
    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/ro", dir);
        assert_int_equal(mkdir(path, 0500), 0);

        snprintf(file, sizeof(file), "%s/ro/sub/store", dir);
        t_open_fails(file, file);

        t_open_fails(path, path);

        chmod(path, 0700);
    }

    /* no path */
    memset(&conf, 0, sizeof(conf));
    assert_int_equal(mst_store_open(&st, &conf, err, sizeof(err)),
                     MST_EINVAL);
    assert_null(st);

    conf.path = "";
    assert_int_equal(mst_store_open(&st, &conf, err, sizeof(err)),
                     MST_EINVAL);

    mst_test_rmdir(dir);
}


/* ---- map full --------------------------------------------------------- */


static json_t *
t_big_rec(unsigned n, size_t size)
{
    char    *pad;
    json_t  *rec;

    pad = malloc(size + 1);
    assert_non_null(pad);
    memset(pad, 'a' + n % 26, size);
    pad[size] = '\0';

    rec = json_pack("{s:i,s:s}", "n", (int) n, "pad", pad);
    free(pad);
    assert_non_null(rec);

    return rec;
}


static void
test_map_full(void **state)
{
    int           rc, full, partial, failed_commit;
    char         *dir, path[512], id[MST_ID_LEN + 1], sid[MST_ID_LEN + 1];
    size_t        used, map;
    json_t       *rec, *got;
    unsigned      n, committed, small;
    mst_txn_t    *txn;
    mst_store_t  *store;

    dir = mst_test_tmpdir();
    snprintf(path, sizeof(path), "%s/db", dir);

    store = t_open(path, 256u << 10, 0);

    committed = 0;
    partial = 0;
    full = 0;
    failed_commit = 0;

    /* each transaction: a small record, then a big one */

    for (n = 1; n < 1000; n++) {
        txn = t_begin(store, 0);

        t_id(sid, n, 1);
        rec = json_pack("{s:i}", "n", (int) n);
        rc = mst_store_wf_put(txn, sid, rec);
        json_decref(rec);

        if (rc != MST_OK) {
            assert_int_equal(rc, MST_MAPFULL);
            mst_txn_abort(txn);
            full = 1;
            break;
        }

        t_id(id, n, 0);
        rec = t_big_rec(n, 12000);
        rc = mst_store_wf_put(txn, id, rec);
        json_decref(rec);

        if (rc != MST_OK) {
            assert_int_equal(rc, MST_MAPFULL);
            full = 1;
            partial++;

            if (partial % 2) {
                mst_txn_abort(txn);
            } else {
                /* a commit after a failed put fails, and frees the txn */
                assert_int_not_equal(mst_txn_commit(txn), MST_OK);
                failed_commit++;
            }

            /* the small record of this transaction was not kept */
            txn = t_begin(store, 1);
            assert_int_equal(mst_store_wf_get(txn, sid, &got),
                             MST_NOTFOUND);
            mst_txn_abort(txn);

            if (partial == 3) {
                break;
            }

            continue;
        }

        rc = mst_txn_commit(txn);
        if (rc != MST_OK) {
            assert_int_equal(rc, MST_MAPFULL);
            full = 1;
            break;
        }

        committed = n;
    }

    assert_true(full);
    assert_true(committed >= 5);
    assert_true(partial >= 1);

    /* what was committed is intact and readable */
    txn = t_begin(store, 1);

    for (n = 1; n <= committed; n++) {
        t_id(id, n, 0);
        assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
        rec = t_big_rec(n, 12000);
        assert_true(json_equal(rec, got));
        json_decref(rec);
        json_decref(got);

        t_id(sid, n, 1);
        assert_int_equal(mst_store_wf_get(txn, sid, &got), MST_OK);
        assert_int_equal(json_integer_value(json_object_get(got, "n")), n);
        json_decref(got);
    }

    /* nothing of the failed ones */
    t_id(id, committed + 1, 0);
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_NOTFOUND);

    mst_txn_abort(txn);

    assert_int_equal(mst_store_usage(store, &used, &map), MST_OK);
    assert_int_equal(map, 256u << 10);
    assert_true(used > map / 2 && used <= map);

    /* small writes keep failing cleanly, reads keep working */
    for (small = 0; small < 200; small++) {
        txn = t_begin(store, 0);
        rc = mst_store_kv_put(txn, "ns", "k", "v", 1);
        if (rc == MST_OK) {
            rc = mst_txn_commit(txn);
        } else {
            mst_txn_abort(txn);
        }
        if (rc != MST_OK) {
            assert_int_equal(rc, MST_MAPFULL);
            break;
        }
        rec = t_big_rec(0, 3000);
        txn = t_begin(store, 0);
        t_id(id, 5000 + small, 0);
        rc = mst_store_wf_put(txn, id, rec);
        json_decref(rec);
        if (rc == MST_OK) {
            rc = mst_txn_commit(txn);
        } else {
            mst_txn_abort(txn);
        }
        if (rc != MST_OK) {
            assert_int_equal(rc, MST_MAPFULL);
            break;
        }
    }

    assert_true(small < 200);

    txn = t_begin(store, 1);
    t_id(id, 1, 0);
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    json_decref(got);
    mst_txn_abort(txn);

    mst_store_close(store);

    /* reopened, the committed data is still there */
    store = t_open(path, 256u << 10, 0);
    txn = t_begin(store, 1);
    t_id(id, committed, 0);
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    json_decref(got);
    mst_txn_abort(txn);
    mst_store_close(store);

    mst_test_rmdir(dir);
}


/* ---- another process grows the map ------------------------------------ */


static int
t_child_grow(const char *path)
{
    int               rc;
    char              id[MST_ID_LEN + 1], err[MST_ERRLEN], big[10000];
    json_t           *rec;
    unsigned          n;
    mst_txn_t        *txn;
    mst_store_t      *st;
    mst_store_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.map_size = 4u << 20;

    if (mst_store_open(&st, &conf, err, sizeof(err)) != MST_OK) {
        return 1;
    }

    if (mst_txn_begin(st, 0, &txn) != MST_OK) {
        return 2;
    }

    rc = MST_OK;

    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    /* about 1 MiB: far beyond the parent's 256 KiB map */
    for (n = 100; n < 200 && rc == MST_OK; n++) {
        snprintf(id, sizeof(id), "wf_%012x%08x", n, 0);
        rec = json_pack("{s:i,s:s}", "n", (int) n, "big", big);
        rc = (rec == NULL) ? MST_ENOMEM : mst_store_wf_put(txn, id, rec);
        json_decref(rec);
    }

    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return 3;
    }

    if (mst_txn_commit(txn) != MST_OK) {
        return 4;
    }

    mst_store_close(st);

    return 0;
}


static void
test_map_resized(void **state)
{
    int           status;
    char         *dir, path[512], id[MST_ID_LEN + 1];
    pid_t         pid;
    size_t        used, map;
    json_t       *got;
    mst_txn_t    *txn;
    mst_store_t  *store;

    dir = mst_test_tmpdir();
    snprintf(path, sizeof(path), "%s/db", dir);

    store = t_open(path, 256u << 10, 0);

    t_id(id, 1, 0);
    t_put_rec(store, id, json_pack("{s:i}", "n", 1));

    fflush(NULL);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        _exit(t_child_grow(path));
    }

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* the map is adopted on the next begin */
    txn = t_begin(store, 1);
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    json_decref(got);
    t_id(id, 150, 0);
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 150);
    json_decref(got);
    mst_txn_abort(txn);

    assert_int_equal(mst_store_usage(store, &used, &map), MST_OK);
    assert_int_equal(map, 4u << 20);
    assert_true(used > (256u << 10));

    /* and writes work beyond the old size */
    t_id(id, 300, 0);
    t_put_rec(store, id, json_pack("{s:i}", "n", 300));

    mst_store_close(store);
    mst_test_rmdir(dir);
}


/* ---- concurrency ------------------------------------------------------ */


#define T_WRITERS   4
#define T_EVENTS    250


typedef struct {
    mst_store_t  *store;
    char          id[MST_ID_LEN + 1];
    int           t;
    int           errors;
} t_writer_t;


typedef struct {
    mst_store_t  *store;
    t_writer_t   *writers;
    int           done;         /* atomic */
    int           errors;
    unsigned      rounds;
} t_reader_t;


typedef struct {
    uint64_t  next;
    int       bad;
} t_seq_t;


static int
t_seq_cb(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    t_seq_t       *s;
    json_t        *j;
    json_error_t   jerr;

    s = arg;

    if (seq != s->next || strcmp(name, "tick") != 0) {
        s->bad++;
    }

    j = json_loadb(data, len, 0, &jerr);
    if (j == NULL
        || json_integer_value(json_object_get(j, "i")) != (json_int_t) seq - 1)
    {
        s->bad++;
    }
    json_decref(j);

    s->next++;

    return 0;
}


static void *
t_writer(void *arg)
{
    int          i, rc;
    json_t      *rec, *data;
    t_writer_t  *w;
    mst_txn_t   *txn;

    w = arg;

    for (i = 0; i < T_EVENTS; i++) {
        if (mst_txn_begin(w->store, 0, &txn) != MST_OK) {
            w->errors++;
            continue;
        }

        if (mst_store_wf_get(txn, w->id, &rec) != MST_OK) {
            w->errors++;
            mst_txn_abort(txn);
            continue;
        }

        data = json_pack("{s:i,s:i}", "t", w->t, "i", i);
        rc = mst_store_event_append(txn, w->id, rec, "tick", data, NULL);
        json_decref(data);

        if (rc == MST_OK) {
            rc = mst_store_wf_put(txn, w->id, rec);
        }

        json_decref(rec);

        if (rc != MST_OK) {
            w->errors++;
            mst_txn_abort(txn);
            continue;
        }

        if (mst_txn_commit(txn) != MST_OK) {
            w->errors++;
        }
    }

    return NULL;
}


static void *
t_reader(void *arg)
{
    int          i;
    json_t      *rec;
    t_seq_t      s;
    mst_txn_t   *txn;
    t_reader_t  *r;

    r = arg;

    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) || r->rounds == 0) {

        if (mst_txn_begin(r->store, 1, &txn) != MST_OK) {
            r->errors++;
            continue;
        }

        /* in one snapshot, the event count is the record's last id */
        for (i = 0; i < T_WRITERS; i++) {
            if (mst_store_wf_get(txn, r->writers[i].id, &rec) != MST_OK) {
                r->errors++;
                continue;
            }

            s.next = 1;
            s.bad = 0;

            if (mst_store_event_range(txn, r->writers[i].id, 0, 0,
                                      t_seq_cb, &s)
                != MST_OK
                || s.bad
                || (json_int_t) s.next - 1
                   != json_integer_value(json_object_get(rec,
                                                         "last_event_id")))
            {
                r->errors++;
            }

            json_decref(rec);
        }

        mst_txn_abort(txn);
        r->rounds++;
    }

    return NULL;
}


/*
 * The parse cache: a write transaction gets back the JSON the previous one
 * wrote, but never a stale one (another process wrote since, the writing
 * transaction was aborted), and never one a caller still holds.
 */
static int
t_rec_n(mst_store_t *st, const char *id, int readonly, json_t **out)
{
    int         n;
    json_t     *rec;
    mst_txn_t  *txn;

    txn = t_begin(st, readonly);
    assert_int_equal(mst_store_wf_get(txn, id, &rec), MST_OK);
    n = (int) json_integer_value(json_object_get(rec, "n"));
    mst_txn_abort(txn);

    if (out != NULL) {
        *out = rec;

    } else {
        json_decref(rec);
    }

    return n;
}


static void
test_parse_cache(void **state)
{
    int           n;
    char          id[MST_ID_LEN + 1];
    json_t       *rec, *cp, *held, *got;
    t_env_t      *e;
    uint64_t      seq, hits;
    mst_txn_t    *txn;
    mst_store_t  *other;

    e = *state;
    t_id(id, 7, 1);

    /* the next write transaction takes the very object written */

    rec = json_pack("{s:i, s:s}", "n", 1, "status", "running");
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    held = rec;                 /* still referenced here */

    assert_int_equal(t_rec_n(e->store, id, 0, &got), 1);
    assert_ptr_not_equal(got, held);    /* held by the caller: parsed */
    json_decref(got);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_put(txn, id, held), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    json_decref(held);          /* the cache holds the only reference */

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    assert_ptr_equal(got, held);
    mst_txn_abort(txn);
    json_decref(got);

    /* an aborted write leaves the cache ahead of the database */

    rec = json_pack("{s:i, s:s}", "n", 2, "status", "running");
    t_put_rec(e->store, id, rec);

    txn = t_begin(e->store, 0);
    rec = json_pack("{s:i, s:s}", "n", 3, "status", "running");
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    json_decref(rec);
    mst_txn_abort(txn);

    assert_int_equal(t_rec_n(e->store, id, 0, NULL), 2);
    assert_int_equal(t_rec_n(e->store, id, 1, NULL), 2);

    /* another process (another environment on the same files) writes */

    rec = json_pack("{s:i, s:s}", "n", 4, "status", "running");
    t_put_rec(e->store, id, rec);

    other = t_open(e->path, T_MAP_DEFAULT, 0);
    rec = json_pack("{s:i, s:s}", "n", 5, "status", "running");
    t_put_rec(other, id, rec);
    mst_store_close(other);

    assert_int_equal(t_rec_n(e->store, id, 0, NULL), 5);

    /* a finished workflow is not kept */

    rec = json_pack("{s:i, s:s}", "n", 6, "status", "complete");
    t_put_rec(e->store, id, rec);

    hits = e->store->wf_cache.hits;
    assert_int_equal(t_rec_n(e->store, id, 0, NULL), 6);
    assert_int_equal(e->store->wf_cache.hits, hits);

    /* checkpoints: the same, keyed by sequence */

    cp = json_pack("{s:i}", "n", 10);
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_put(txn, id, 1, cp), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    held = cp;
    json_decref(cp);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_int_equal(seq, 1);
    assert_ptr_equal(cp, held);
    json_object_set_new(cp, "n", json_integer(11));
    assert_int_equal(mst_store_checkpoint_put(txn, id, 2, cp), MST_OK);
    json_decref(cp);
    mst_txn_abort(txn);         /* seq 2 never happened */

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_int_equal(seq, 1);
    n = (int) json_integer_value(json_object_get(cp, "n"));
    assert_int_equal(n, 10);

    /* read, not written: given back, the next transaction takes it */
    mst_store_checkpoint_keep(txn, id, seq, cp, NULL);
    held = cp;
    json_decref(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_ptr_equal(cp, held);

    /* given back changed (a bug elsewhere): only a miss, never stale */
    json_object_set_new(cp, "n", json_integer(99));
    mst_store_checkpoint_keep(txn, id, seq, cp, NULL);
    json_decref(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    hits = e->store->cp_cache.hits;
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_int_equal(json_integer_value(json_object_get(cp, "n")), 10);
    assert_int_equal(e->store->cp_cache.hits, hits);
    json_decref(cp);
    mst_txn_abort(txn);
}


/* maestro_store_writemap: the same data, written through the map */
static void
test_writemap(void **state)
{
    char              id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t           *rec;
    t_env_t          *e;
    mst_store_t      *st;
    mst_store_conf_t  conf;

    e = *state;
    mst_store_close(e->store);

    memset(&conf, 0, sizeof(conf));
    conf.path = e->path;
    conf.map_size = T_MAP_DEFAULT;
    conf.writemap = 1;
    assert_int_equal(mst_store_open(&st, &conf, err, sizeof(err)), MST_OK);

    t_id(id, 3, 3);
    t_put_rec(st, id, json_pack("{s:i, s:s}", "n", 42, "status", "queued"));
    assert_int_equal(t_rec_n(st, id, 1, NULL), 42);
    mst_store_close(st);

    /* and read back without it */
    e->store = t_open(e->path, T_MAP_DEFAULT, 0);
    assert_int_equal(t_rec_n(e->store, id, 1, &rec), 42);
    assert_string_equal(json_string_value(json_object_get(rec, "status")),
                        "queued");
    json_decref(rec);
}


static void
test_concurrency(void **state)
{
    int          i;
    json_t      *rec;
    t_seq_t      s;
    t_env_t     *e;
    pthread_t    wt[T_WRITERS], rt;
    mst_txn_t   *txn;
    t_reader_t   r;
    t_writer_t   w[T_WRITERS];

    e = *state;

    memset(w, 0, sizeof(w));
    memset(&r, 0, sizeof(r));

    for (i = 0; i < T_WRITERS; i++) {
        w[i].store = e->store;
        w[i].t = i;
        t_id(w[i].id, 40, (unsigned) i);    /* adjacent keys */
        t_put_rec(e->store, w[i].id, json_pack("{s:s}", "status", "running"));
    }

    r.store = e->store;
    r.writers = w;

    assert_int_equal(pthread_create(&rt, NULL, t_reader, &r), 0);

    for (i = 0; i < T_WRITERS; i++) {
        assert_int_equal(pthread_create(&wt[i], NULL, t_writer, &w[i]), 0);
    }

    for (i = 0; i < T_WRITERS; i++) {
        assert_int_equal(pthread_join(wt[i], NULL), 0);
    }

    __atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(rt, NULL), 0);

    assert_int_equal(r.errors, 0);
    assert_true(r.rounds > 0);

    txn = t_begin(e->store, 1);

    for (i = 0; i < T_WRITERS; i++) {
        assert_int_equal(w[i].errors, 0);

        assert_int_equal(mst_store_wf_get(txn, w[i].id, &rec), MST_OK);
        assert_int_equal(json_integer_value(json_object_get(rec,
                                                            "last_event_id")),
                         T_EVENTS);
        json_decref(rec);

        s.next = 1;
        s.bad = 0;
        assert_int_equal(mst_store_event_range(txn, w[i].id, 0, 0, t_seq_cb,
                                               &s),
                         MST_OK);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.next - 1, T_EVENTS);
    }

    mst_txn_abort(txn);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_open_close),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_map_full),
        cmocka_unit_test(test_map_resized),
        cmocka_unit_test_setup_teardown(test_parse_cache, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_writemap, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
