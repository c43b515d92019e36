/*
 * Copyright (C) Maestro authors
 */

/*
 * A store filling up: a small map (1 MB, headroom 256 KB) filled with
 * plugin memory (kv) writes. The levels as the map fills and empties
 * (free pages count as room, unless an old reader pins them), MST_MAPFULL and never MST_ERROR after a
 * failed write, a submission refused past the headroom, a running
 * workflow that ends failed with "store_full" past the reserve (its final
 * write fits), cancel on a full store, and the final write the glue
 * retries after a commit found the map full, and a map another process
 * grew adopted by this one. The harness is mst_test_run.h.
 */

#include "mst_test_run.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>


#define TST_MAP       (1024 * 1024)
#define TST_HEADROOM  (256 * 1024)
#define TST_FILL      6000          /* bytes per filler value */


static int
tst_setup_small(void **state)
{
    char              err[MST_ERRLEN];
    mst_store_conf_t  conf;

    if (tst_setup(state) != 0) {
        return -1;
    }

    /* the same harness, on a small map of its own */
    mst_store_close(tst.store);
    mst_test_rmdir(tst.dir);
    tst.dir = mst_test_tmpdir();

    memset(&conf, 0, sizeof(mst_store_conf_t));
    conf.path = tst.dir;
    conf.map_size = TST_MAP;
    conf.headroom = *state ? 0 : TST_HEADROOM;
    conf.crypt = mst_test_crypt();

    if (mst_store_open(&tst.store, &conf, err, sizeof(err)) != MST_OK) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }

    tst.env.store = tst.store;

    return 0;
}


static int
tst_setup_nohead(void **state)
{
    *state = (void *) 1;
    return tst_setup_small(state);
}


/* one filler value in its own transaction: MST_OK or the failure */
static int
tst_fill_one(unsigned n)
{
    int         rc;
    char        key[32], *val;
    mst_txn_t  *txn;

    val = malloc(TST_FILL);
    assert_non_null(val);
    memset(val, 'a' + n % 26, TST_FILL);
    snprintf(key, sizeof(key), "k%06u", n);

    assert_int_equal(mst_txn_begin(tst.store, 0, &txn), MST_OK);

    rc = mst_store_kv_put(txn, "fill", key, val, TST_FILL);
    free(val);

    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return rc;
    }

    return mst_txn_commit(txn);
}


/* the level now, not the cached one */
static int
tst_level(void)
{
    tst_sleep_ms(MST_STORE_LEVEL_MS + 5);
    return mst_store_level(tst.store);
}


/* fill until the level is at least want; returns the values written */
static unsigned
tst_fill_to(unsigned from, int want)
{
    unsigned           n;
    mst_store_space_t  sp;

    for (n = from; n < from + 400; n++) {
        assert_int_equal(tst_fill_one(n), MST_OK);
        assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);

        if (sp.level >= want) {
            /* and the runner's view (mst_store_level()) says so */
            assert_int_equal(tst_level(), sp.level);
            return n + 1;
        }
    }

    fail_msg("level %d not reached", want);
    return 0;
}


static void
tst_unfill(unsigned from, unsigned to)
{
    char        key[32];
    unsigned    n;
    mst_txn_t  *txn;

    for (n = from; n < to; n++) {
        snprintf(key, sizeof(key), "k%06u", n);
        assert_int_equal(mst_txn_begin(tst.store, 0, &txn), MST_OK);
        assert_int_equal(mst_store_kv_delete(txn, "fill", key), MST_OK);
        assert_int_equal(mst_txn_commit(txn), MST_OK);
    }
}


static void
test_levels(void **state)
{
    int                rc;
    char              *big;
    size_t             used0;
    unsigned           n, closed, reserve;
    mst_txn_t         *txn;
    mst_store_space_t  sp;

    assert_int_equal(tst_level(), MST_STORE_ROOM);
    assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);
    assert_int_equal(sp.map, TST_MAP);
    assert_int_equal(sp.headroom, TST_HEADROOM);
    used0 = sp.used;

    closed = tst_fill_to(0, MST_STORE_CLOSED);
    assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);
    assert_true(sp.used + TST_HEADROOM >= TST_MAP);
    assert_true(sp.used + TST_HEADROOM / 2 < TST_MAP);

    reserve = tst_fill_to(closed, MST_STORE_RESERVE);
    assert_true(reserve > closed);

    /* the reserve still takes writes; the map only ends after it */
    for (n = reserve; n < reserve + 400; n++) {
        rc = tst_fill_one(n);
        if (rc != MST_OK) {
            break;
        }
    }

    assert_int_equal(rc, MST_MAPFULL);
    assert_true(n > reserve);
    assert_int_equal(mst_store_level(tst.store), MST_STORE_RESERVE);

    /*
     * A failed write leaves LMDB's transaction refusing everything
     * (MDB_BAD_TXN): what follows says MST_MAPFULL, never MST_ERROR.
     */
    big = calloc(1, 64 * 1024);
    assert_non_null(big);

    assert_int_equal(mst_txn_begin(tst.store, 0, &txn), MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "fill", "big", big, 64 * 1024),
                     MST_MAPFULL);
    assert_int_equal(mst_txn_failed(txn), MST_MAPFULL);
    assert_int_equal(mst_store_kv_put(txn, "fill", "small", "x", 1),
                     MST_MAPFULL);
    assert_int_equal(mst_txn_commit(txn), MST_MAPFULL);
    free(big);

    /* deletes work on a full map; what they free counts as room */
    tst_unfill(0, n);

    tst_sleep_ms(1000);     /* the hold after a full map */
    assert_int_equal(tst_level(), MST_STORE_ROOM);
    assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);
    assert_true(sp.free > TST_MAP / 2);
    assert_true(sp.used < used0 + TST_MAP / 4);

    /* and is reused: as much fits again */
    assert_true(tst_fill_to(n, MST_STORE_CLOSED) - n + 2 >= closed);
}


/*
 * Pages freed while an old reader is open cannot be reused: they are not
 * counted as room, so the levels still come before the map ends.
 */
static void
test_reader_pins_pages(void **state)
{
    int                rc, seen;
    unsigned           n;
    mst_txn_t         *reader;
    mst_store_space_t  sp;

    assert_int_equal(tst_fill_one(0), MST_OK);
    assert_int_equal(mst_txn_begin(tst.store, 1, &reader), MST_OK);

    seen = MST_STORE_ROOM;
    rc = MST_OK;

    for (n = 1; n < 400 && rc == MST_OK; n++) {
        assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);
        assert_int_equal(sp.free, 0);
        seen = sp.level > seen ? sp.level : seen;

        /* overwrite the same few keys: every commit frees pages */
        rc = tst_fill_one(n % 4);
    }

    mst_txn_abort(reader);

    assert_int_equal(rc, MST_MAPFULL);
    assert_int_equal(seen, MST_STORE_RESERVE);

    /* the reader gone, its pinned pages are room again */
    assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);
    assert_int_equal(sp.level, MST_STORE_ROOM);
    assert_true(sp.free > TST_MAP / 2);
}


static void
test_submit_refused(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t          *rec, *ids;
    unsigned         n;
    mst_graph_t     *g;
    mst_run_next_t   next;

    g = tst_named(tst_seq_json);

    n = tst_fill_to(0, MST_STORE_CLOSED);

    rec = NULL;
    err[0] = '\0';
    rc = mst_run_submit(&tst.env, g, "seq", "no room", NULL, NULL, NULL,
                        NULL, id, &rec, &next, err, sizeof(err));
    assert_int_equal(rc, MST_MAPFULL);
    assert_null(rec);
    assert_non_null(strstr(err, "maestro_store_size"));
    assert_int_equal(next.nsteps, 0);

    /* nothing stored */
    assert_int_equal(mst_run_orphans(&tst.env, tst_alive, NULL, 0, 10, &ids),
                     MST_OK);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);

    /* room again after deletes: accepted */
    tst_unfill(0, n);
    tst_sleep_ms(1000);
    tst_level();

    rc = mst_run_submit(&tst.env, g, "seq", "room", NULL, NULL, NULL, NULL,
                        id, &rec, &next, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("submit: %s", err);
    }
    json_decref(rec);
    mst_run_next_free(&next);
}


/* runs the one step of next; returns the commit's rc, next replaced */
static int
tst_step(const char *id, mst_run_next_t *next, char *err, size_t errlen)
{
    int             rc;
    volatile int    st;
    mst_run_step_t  step;

    assert_int_equal(next->nsteps, 1);

    step = next->steps[0];
    next->steps[0].input = NULL;
    mst_run_next_free(next);

    st = MST_STEP_RUNNING;
    rc = mst_run_step_exec(&tst.env, id, next->epoch, &step, &st, next, err,
                           errlen);
    free(step.input);

    return rc;
}


static void
test_running_ends_store_full(void **state)
{
    int              rc, final;
    char             id[MST_ID_LEN + 1], id2[MST_ID_LEN + 1];
    char             err[MST_ERRLEN];
    json_t          *rec, *events, *ev;
    mst_graph_t     *g;
    mst_run_next_t   next, next2;

    g = tst_named(tst_seq_json);

    tst_create(&tst.env, g, "in flight", id);
    tst_claim(&tst.env, id, &next);
    tst_create(&tst.env, g, "to cancel", id2);
    tst_claim(&tst.env, id2, &next2);
    mst_run_next_free(&next2);

    /* step a commits at room */
    assert_int_equal(tst_step(id, &next, err, sizeof(err)), MST_OK);
    assert_int_equal(next.nsteps, 1);

    (void) tst_fill_to(0, MST_STORE_RESERVE);

    /* step b's commit ends the workflow: failed, store_full */
    rc = tst_step(id, &next, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("step b: %s", err);
    }
    assert_true(next.finished);
    assert_int_equal(next.nsteps, 0);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_string_equal(tst_str(rec, "error_code"), "store_full");
    assert_non_null(strstr(tst_str(rec, "error"), "maestro_store_size"));
    assert_int_equal(tst_int(rec, "owner"), 0);
    json_decref(rec);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    ev = tst_last_event(events);
    assert_string_equal(tst_str(ev, "name"), "error");
    assert_string_equal(tst_str(json_object_get(ev, "data"), "code"),
                        "store_full");
    json_decref(events);

    /* cancel works on a full store */
    rc = mst_run_cancel(&tst.env, id2, tst_alive, &rec, &final, err,
                        sizeof(err));
    if (rc != MST_OK) {
        fail_msg("cancel: %s", err);
    }
    json_decref(rec);

    assert_false(tst_logged("worker died"));
}


/*
 * With no headroom the map ends under a commit: nothing of it is kept,
 * the workflow is still the runner's (not dropped for a claimer), and the
 * final write the glue retries ends it once there is room.
 */
static void
test_final_write_after_mapfull(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t          *rec;
    unsigned         n;
    uint64_t         epoch;
    mst_graph_t     *g;
    mst_run_next_t   next;

    g = tst_named(tst_seq_json);

    tst_create(&tst.env, g, "in flight", id);
    tst_claim(&tst.env, id, &next);
    epoch = next.epoch;

    for (n = 0; n < 400; n++) {
        if (tst_fill_one(n) != MST_OK) {
            break;
        }
    }
    assert_true(n < 400);

    rc = tst_step(id, &next, err, sizeof(err));
    assert_int_equal(rc, MST_MAPFULL);
    assert_false(next.finished);
    assert_int_equal(next.nsteps, 0);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "running");
    assert_int_equal(tst_int(rec, "owner"), tst.env.pid);
    json_decref(rec);

    /* a little room: the glue's retry */
    tst_unfill(0, 8);

    rc = mst_run_full(&tst.env, id, epoch, &next, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("full: %s", err);
    }
    assert_true(next.finished);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_string_equal(tst_str(rec, "error_code"), "store_full");
    json_decref(rec);

    assert_false(tst_logged("worker died"));
}


static void *
tst_hold_reader(void *arg)
{
    tst_sleep_ms(30);
    mst_txn_abort(arg);
    return NULL;
}


/*
 * Another process (a new worker after a reload with a bigger
 * maestro_store_size) grows the map past this one's: this process's next
 * write adopts it, once its own open transaction (here a reader on
 * another thread) has ended, instead of failing.
 */
static void
test_map_grown_elsewhere(void **state)
{
    int                rc, status;
    char               err[MST_ERRLEN];
    pid_t              pid;
    unsigned           n;
    pthread_t          th;
    mst_txn_t         *reader, *txn;
    mst_store_t       *big;
    mst_store_conf_t   conf;
    mst_store_space_t  sp;

    assert_int_equal(tst_fill_one(0), MST_OK);
    assert_int_equal(mst_txn_begin(tst.store, 1, &reader), MST_OK);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        memset(&conf, 0, sizeof(mst_store_conf_t));
        conf.path = tst.dir;
        conf.map_size = 8 * TST_MAP;
        conf.crypt = mst_test_crypt();

        if (mst_store_open(&big, &conf, err, sizeof(err)) != MST_OK) {
            _exit(2);
        }

        tst.store = big;

        for (n = 1; n < 200; n++) {
            if ((rc = tst_fill_one(n)) != MST_OK) {
                (void) mst_store_space(big, &sp);
                fprintf(stderr, "child: fill %u: %s map %zu used %zu\n", n,
                        mst_strerror(rc), sp.map, sp.used);
                _exit(3);
            }
        }

        mst_store_close(big);
        _exit(0);
    }

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_int_equal(pthread_create(&th, NULL, tst_hold_reader, reader), 0);

    rc = mst_txn_begin(tst.store, 0, &txn);
    assert_int_equal(rc, MST_OK);
    assert_int_equal(mst_store_kv_put(txn, "fill", "after", "x", 1), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    pthread_join(th, NULL);

    assert_int_equal(mst_store_space(tst.store, &sp), MST_OK);
    assert_int_equal(sp.map, 8 * TST_MAP);
    assert_true(sp.used > TST_MAP);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_levels, tst_setup_small,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_reader_pins_pages,
                                        tst_setup_small, tst_teardown),
        cmocka_unit_test_setup_teardown(test_submit_refused, tst_setup_small,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_running_ends_store_full,
                                        tst_setup_small, tst_teardown),
        cmocka_unit_test_setup_teardown(test_final_write_after_mapfull,
                                        tst_setup_nohead, tst_teardown),
        cmocka_unit_test_setup_teardown(test_map_grown_elsewhere,
                                        tst_setup_small, tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
