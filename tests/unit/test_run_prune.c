/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_run_prune(): event retention. The harness is mst_test_run.h.
 */

#include "mst_test_run.h"


/* maestro_event_retention: logs of old finished workflows go, ids stay */
static void
test_prune(void **state)
{
    int            rc;
    char           done_id[MST_ID_LEN + 1], live_id[MST_ID_LEN + 1];
    char           cursor[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t        *rec;
    size_t         pruned;
    mst_graph_t   *g;
    tst_drive_t    dr;
    mst_run_next_t next;

    g = tst_named(tst_seq_json);

    tst_drive_init(&dr);
    tst_run(g, "finished long ago", 0, done_id, &dr, "complete");
    tst_drive_free(&dr);

    tst_create(&tst.env, g, "still running", live_id);
    tst_claim(&tst.env, live_id, &next);
    mst_run_next_free(&next);

    assert_true(tst_nevents(done_id) > 0);

    /* a ttl longer than their age: nothing goes */
    cursor[0] = '\0';
    rc = mst_run_prune(&tst.env, 3600 * 1000, 100, cursor, &pruned);
    assert_int_equal(rc, MST_OK);
    assert_int_equal(pruned, 0);
    assert_string_equal(cursor, "");    /* the scan reached the end */

    usleep(20 * 1000);

    /* a ttl shorter: the finished one loses its events, only it */
    rc = mst_run_prune(&tst.env, 5, 100, cursor, &pruned);
    assert_int_equal(rc, MST_OK);
    assert_int_equal(pruned, 1);
    assert_int_equal(tst_nevents(done_id), 0);
    assert_true(tst_nevents(live_id) > 0);

    rec = tst_record(done_id);
    assert_true(json_is_true(json_object_get(rec, "events_pruned")));
    assert_string_equal(tst_str(rec, "status"), "complete");
    assert_non_null(json_object_get(rec, "result"));
    json_decref(rec);

    /* once is enough */
    rc = mst_run_prune(&tst.env, 5, 100, cursor, &pruned);
    assert_int_equal(rc, MST_OK);
    assert_int_equal(pruned, 0);

    /* a small slice leaves a cursor to go on from */
    rc = mst_run_prune(&tst.env, 5, 1, cursor, &pruned);
    assert_int_equal(rc, MST_OK);
    assert_int_equal(strlen(cursor), MST_ID_LEN);

    (void) err;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_prune, tst_setup, tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
