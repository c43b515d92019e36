/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB) */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

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


/* ---- helpers ---------------------------------------------------------- */


/* deterministic ids that sort by n */
static void
t_id(char *buf, unsigned n, unsigned rnd)
{
    snprintf(buf, MST_ID_LEN + 1, "wf_%012x%08x", n, rnd);
    assert_true(mst_id_valid(buf, strlen(buf)));
}


static mst_store_t *
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

    err[0] = '\0';
    rc = mst_store_open(&st, &conf, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("open %s: %s (%s)", path, err, mst_strerror(rc));
    }
    assert_non_null(st);

    return st;
}


static int
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


static int
t_teardown(void **state)
{
    t_env_t  *e;

    e = *state;
    mst_store_close(e->store);
    mst_test_rmdir(e->dir);
    free(e);

    return 0;
}


static mst_txn_t *
t_begin(mst_store_t *st, int readonly)
{
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(st, readonly, &txn), MST_OK);
    assert_non_null(txn);

    return txn;
}


static void
t_put_rec(mst_store_t *st, const char *id, json_t *rec)
{
    mst_txn_t  *txn;

    txn = t_begin(st, 0);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);
    json_decref(rec);
}


/* records 1..25: status by n % 3, user by n % 2, each with a "graph" */
static void
t_populate(mst_store_t *st)
{
    char         id[MST_ID_LEN + 1];
    unsigned     n;
    json_t      *rec;
    mst_txn_t   *txn;
    const char  *status;

    txn = t_begin(st, 0);

    for (n = 1; n <= 25; n++) {
        t_id(id, n, 0);

        status = (n % 3 == 0) ? "done" : (n % 3 == 1) ? "running" : "queued";

        rec = json_pack("{s:s,s:s,s:s,s:i,s:{s:[s,s,s]}}", "id", id,
                        "status", status, "user_id", n % 2 ? "u1" : "u0",
                        "n", (int) n, "graph", "nodes", "a", "b", "c");
        assert_non_null(rec);
        assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
        json_decref(rec);
    }

    /* a record without user_id or status */
    t_id(id, 26, 0);
    rec = json_pack("{s:i}", "n", 26);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    json_decref(rec);

    assert_int_equal(mst_txn_commit(txn), MST_OK);
}


/*
 * Pages through wf_list with the filter, checks each page is newest first
 * and that the concatenation of pages is exactly want[0..nwant).
 */
static void
t_list_all(mst_store_t *st, mst_wf_filter_t *f, const unsigned *want,
    size_t nwant, size_t want_pages)
{
    char        cursor[MST_ID_LEN + 1], next[MST_ID_LEN + 1];
    size_t      got, pages, i;
    json_t     *items, *rec;
    mst_txn_t  *txn;

    got = 0;
    pages = 0;
    cursor[0] = '\0';

    txn = t_begin(st, 1);

    for ( ;; ) {
        f->cursor = cursor[0] ? cursor : NULL;

        assert_int_equal(mst_store_wf_list(txn, f, &items, next), MST_OK);
        assert_non_null(items);
        pages++;

        assert_true(json_array_size(items) <= f->limit);

        for (i = 0; i < json_array_size(items); i++) {
            rec = json_array_get(items, i);

            assert_true(got < nwant);
            assert_int_equal(json_integer_value(json_object_get(rec, "n")),
                             want[got]);
            assert_null(json_object_get(rec, "graph"));
            got++;
        }

        if (next[0] == '\0') {
            json_decref(items);
            break;
        }

        /* the cursor is the id of the last item returned */
        assert_int_equal(json_array_size(items), f->limit);
        assert_string_equal(next, json_string_value(json_object_get(
            json_array_get(items, f->limit - 1), "id")));

        memcpy(cursor, next, sizeof(cursor));
        json_decref(items);

        assert_true(pages < 100);
    }

    mst_txn_abort(txn);

    assert_int_equal(got, nwant);
    assert_int_equal(pages, want_pages);
}


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


/* ---- workflow records ------------------------------------------------- */


static void
test_wf_roundtrip(void **state)
{
    char        id[MST_ID_LEN + 1], other[MST_ID_LEN + 1];
    json_t     *rec, *got, *bad;
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;

    mst_id_new(id);
    t_id(other, 1, 2);

    rec = json_pack("{s:s,s:s,s:{s:[i,i]},s:s,s:n}", "id", id,
                    "status", "queued", "graph", "x", 1, 2,
                    "prompt", "h\xc3\xa9llo \"q\"", "none");
    assert_non_null(rec);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);

    /* visible inside the same write transaction */
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    assert_true(json_equal(rec, got));
    json_decref(got);

    /* bad input */
    assert_int_equal(mst_store_wf_put(txn, "wf_nothex!", rec), MST_EINVAL);
    assert_int_equal(mst_store_wf_put(txn, NULL, rec), MST_EINVAL);
    bad = json_array();
    assert_int_equal(mst_store_wf_put(txn, other, bad), MST_EINVAL);
    json_decref(bad);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    got = (json_t *) 1;
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    assert_true(json_equal(rec, got));
    json_decref(got);

    /* unknown and invalid ids */
    got = (json_t *) 1;
    assert_int_equal(mst_store_wf_get(txn, other, &got), MST_NOTFOUND);
    assert_null(got);
    assert_int_equal(mst_store_wf_get(txn, "bogus", &got), MST_NOTFOUND);
    assert_int_equal(mst_store_wf_get(txn, "wf_0123456789abcdef0123X", &got),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_wf_get(txn, "wf_0123456789abcdef01234",
                                      &got),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_wf_get(txn, NULL, &got), MST_NOTFOUND);
    assert_null(got);

    /* writes in a read-only transaction */
    assert_int_equal(mst_store_wf_put(txn, other, rec), MST_EINVAL);

    mst_txn_abort(txn);

    /* an aborted write leaves nothing */
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_put(txn, other, rec), MST_OK);
    mst_txn_abort(txn);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_get(txn, other, &got), MST_NOTFOUND);
    mst_txn_abort(txn);

    json_decref(rec);
}


static void
test_wf_list(void **state)
{
    char             id[MST_ID_LEN + 1], next[MST_ID_LEN + 1];
    size_t           n;
    json_t          *items;
    t_env_t         *e;
    unsigned         want[32];
    mst_txn_t       *txn;
    mst_wf_filter_t  f;

    e = *state;

    t_populate(e->store);

    /* no filter: 26..1, pages of 7: 7 + 7 + 7 + 5 */
    for (n = 0; n < 26; n++) {
        want[n] = 26 - n;
    }

    memset(&f, 0, sizeof(f));
    f.limit = 7;
    t_list_all(e->store, &f, want, 26, 4);

    /* an exact multiple: the last full page has no next cursor */
    f.limit = 13;
    t_list_all(e->store, &f, want, 26, 2);

    f.limit = 1000;
    t_list_all(e->store, &f, want, 26, 1);

    /* status "done": 24, 21, ..., 3 (8 records), pages of 3 */
    for (n = 0; n < 8; n++) {
        want[n] = 24 - 3 * n;
    }

    memset(&f, 0, sizeof(f));
    f.status = "done";
    f.limit = 3;
    t_list_all(e->store, &f, want, 8, 3);

    f.limit = 4;
    t_list_all(e->store, &f, want, 8, 2);

    /* running and user u1: n % 3 == 1 and odd: 25, 19, 13, 7, 1 */
    want[0] = 25; want[1] = 19; want[2] = 13; want[3] = 7; want[4] = 1;

    memset(&f, 0, sizeof(f));
    f.status = "running";
    f.user_id = "u1";
    f.limit = 2;
    t_list_all(e->store, &f, want, 5, 3);

    /* user u0 only: even n 24..2 */
    for (n = 0; n < 12; n++) {
        want[n] = 24 - 2 * n;
    }

    memset(&f, 0, sizeof(f));
    f.user_id = "u0";
    f.limit = 5;
    t_list_all(e->store, &f, want, 12, 3);

    /* no match */
    memset(&f, 0, sizeof(f));
    f.status = "nonesuch";
    f.limit = 5;
    t_list_all(e->store, &f, want, 0, 1);

    txn = t_begin(e->store, 1);

    /* a cursor that is not a stored id: starts at the next older one */
    memset(&f, 0, sizeof(f));
    t_id(id, 10, 1);
    f.cursor = id;
    f.limit = 2;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(items, 0), "n")), 10);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(items, 1), "n")), 9);
    t_id(id, 9, 0);
    assert_string_equal(next, id);
    json_decref(items);

    /* a cursor newer than everything */
    t_id(id, 1000, 0);
    f.cursor = id;
    f.limit = 1;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(items, 0), "n")), 26);
    json_decref(items);

    /* a cursor older than everything */
    t_id(id, 1, 0);
    f.cursor = id;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 0);
    assert_string_equal(next, "");
    json_decref(items);

    /* bad input */
    f.cursor = NULL;
    f.limit = 0;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_EINVAL);
    assert_null(items);
    f.limit = 1001;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_EINVAL);
    f.limit = 10;
    f.cursor = "not-an-id";
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_EINVAL);

    mst_txn_abort(txn);
}


static void
test_wf_list_empty(void **state)
{
    char             next[MST_ID_LEN + 1];
    json_t          *items;
    t_env_t         *e;
    mst_txn_t       *txn;
    mst_wf_filter_t  f;

    e = *state;

    memset(&f, 0, sizeof(f));
    f.limit = 10;
    next[0] = 'x';

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 0);
    assert_string_equal(next, "");
    json_decref(items);
    mst_txn_abort(txn);
}


typedef struct {
    unsigned  calls;
    unsigned  stop_after;
    unsigned  seen[32];
    int       bad;
} t_scan_t;


static int
t_scan_cb(const char *id, json_t *rec, void *arg)
{
    const char  *status;
    t_scan_t    *s;
    json_int_t   n;

    s = arg;

    status = json_string_value(json_object_get(rec, "status"));
    n = json_integer_value(json_object_get(rec, "n"));

    if (status == NULL
        || (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
        || strcmp(id, json_string_value(json_object_get(rec, "id"))) != 0
        || n < 1 || n > 31)
    {
        s->bad++;
    } else {
        s->seen[n]++;
    }

    s->calls++;

    return s->stop_after && s->calls == s->stop_after;
}


static void
test_wf_scan_active(void **state)
{
    unsigned    n;
    t_env_t    *e;
    t_scan_t    s;
    mst_txn_t  *txn;

    e = *state;

    t_populate(e->store);

    txn = t_begin(e->store, 1);

    memset(&s, 0, sizeof(s));
    assert_int_equal(mst_store_wf_scan_active(txn, t_scan_cb, &s), MST_OK);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.calls, 17);      /* 25 - 8 done */

    for (n = 1; n <= 26; n++) {
        assert_int_equal(s.seen[n], (n <= 25 && n % 3 != 0) ? 1 : 0);
    }

    /* the callback stops the scan */
    memset(&s, 0, sizeof(s));
    s.stop_after = 3;
    assert_int_equal(mst_store_wf_scan_active(txn, t_scan_cb, &s), MST_OK);
    assert_int_equal(s.calls, 3);

    assert_int_equal(mst_store_wf_scan_active(txn, NULL, NULL), MST_EINVAL);

    mst_txn_abort(txn);
}


/* ---- checkpoints ------------------------------------------------------ */


static void
t_cp_put(mst_txn_t *txn, const char *id, uint64_t seq)
{
    json_t  *cp;

    cp = json_pack("{s:I,s:s}", "n", (json_int_t) (seq & 0xffffffff),
                   "id", id);
    assert_int_equal(mst_store_checkpoint_put(txn, id, seq, cp), MST_OK);
    json_decref(cp);
}


static void
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


/* ---- events ----------------------------------------------------------- */


typedef struct {
    unsigned   calls;
    unsigned   stop_after;
    uint64_t   seqs[64];
    json_int_t is[64];
    json_int_t ts[64];
    char       names[64][16];
    int        bad;
} t_ev_t;


static int
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


static void
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


/* ---- agent logs ------------------------------------------------------- */


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


/* ---- key-value -------------------------------------------------------- */


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


/* ---- delete ----------------------------------------------------------- */


static void
t_fill_wf(mst_txn_t *txn, const char *id)
{
    int      i;
    json_t  *rec;

    rec = json_pack("{s:s}", "status", "done");

    for (i = 1; i <= 3; i++) {
        t_cp_put(txn, id, (uint64_t) i);
    }

    for (i = 0; i < 4; i++) {
        assert_int_equal(mst_store_event_append(txn, id, rec, "e", NULL,
                                                NULL),
                         MST_OK);
    }

    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    json_decref(rec);
}


static void
test_wf_delete(void **state)
{
    char        a[MST_ID_LEN + 1], b[MST_ID_LEN + 1], z[MST_ID_LEN + 1];
    json_t     *rec, *list;
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;

    t_id(z, 7, 0);
    t_id(a, 8, 0);
    t_id(b, 8, 1);

    txn = t_begin(e->store, 0);
    t_fill_wf(txn, z);
    t_fill_wf(txn, a);
    t_fill_wf(txn, b);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_delete(txn, a), MST_OK);
    assert_int_equal(mst_store_wf_delete(txn, "bad"), MST_EINVAL);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    assert_int_equal(mst_store_wf_get(txn, a, &rec), MST_NOTFOUND);
    t_cp_last(txn, a, MST_NOTFOUND, 0);
    assert_int_equal(mst_store_checkpoint_list(txn, a, &list), MST_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    t_range(txn, a, 0, 0, 0, 0, 0);

    /* the neighbours on both sides are intact */
    assert_int_equal(mst_store_wf_get(txn, b, &rec), MST_OK);
    assert_int_equal(json_integer_value(json_object_get(rec, "last_event_id")),
                     4);
    json_decref(rec);
    t_cp_last(txn, b, MST_OK, 3);
    t_range(txn, b, 0, 0, 0, 1, 4);
    t_cp_last(txn, z, MST_OK, 3);
    t_range(txn, z, 0, 0, 0, 1, 4);

    assert_int_equal(mst_store_wf_delete(txn, b), MST_EINVAL);

    mst_txn_abort(txn);

    /* deleting again: nothing left */
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_delete(txn, a), MST_NOTFOUND);
    mst_txn_abort(txn);
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
    mst_store_checkpoint_keep(txn, id, seq, cp);
    held = cp;
    json_decref(cp);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_checkpoint_last(txn, id, &seq, &cp), MST_OK);
    assert_ptr_equal(cp, held);

    /* given back changed (a bug elsewhere): only a miss, never stale */
    json_object_set_new(cp, "n", json_integer(99));
    mst_store_checkpoint_keep(txn, id, seq, cp);
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


/* mst_store_wf_flag: "key":true in the record's text, never in a string */
static void
test_wf_flag(void **state)
{
    char        id[MST_ID_LEN + 1], other[MST_ID_LEN + 1];
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;
    t_id(id, 5, 5);
    t_id(other, 6, 6);

    t_put_rec(e->store, id, json_pack("{s:s, s:b, s:s}", "prompt",
                                      "say \"cancel_requested\":true",
                                      "cancel_requested", 0,
                                      "status", "running"));

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "cancel_requested"), 0);
    assert_int_equal(mst_store_wf_flag(txn, other, "cancel_requested"),
                     MST_NOTFOUND);
    mst_txn_abort(txn);

    t_put_rec(e->store, id, json_pack("{s:s, s:b}", "prompt", "x",
                                      "cancel_requested", 1));

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "cancel_requested"), 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "prompt"), 0);
    mst_txn_abort(txn);
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
        cmocka_unit_test_setup_teardown(test_wf_roundtrip, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_list, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_list_empty, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_scan_active, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_events, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_agent_logs, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_kv, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_delete, t_setup, t_teardown),
        cmocka_unit_test(test_map_full),
        cmocka_unit_test(test_map_resized),
        cmocka_unit_test_setup_teardown(test_parse_cache, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_writemap, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_flag, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, t_setup,
                                        t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
