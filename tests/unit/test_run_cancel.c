/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_run's cancellation: a queued workflow, a running one (its plugin
 * sees cancelled()), the state it leaves, and one whose owner is dead.
 * The harness is mst_test_run.h.
 */

#include "mst_test_run.h"


static void
test_cancel_queued(void **state)
{
    int           rc, final;
    char          id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t       *rec, *events, *ev, *cp;
    mst_graph_t  *g;
    mst_run_next_t  next;

    g = tst_named(tst_seq_json);
    tst_create(&tst.env, g, "never run", id);

    rc = mst_run_cancel(&tst.env, id, tst_alive, &rec, &final, err,
                        sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(final, 1);
    assert_string_equal(tst_str(rec, "status"), "cancelled");
    assert_true(json_is_true(json_object_get(rec, "cancel_requested")));
    json_decref(rec);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "cancelled");
    assert_true(tst_int(rec, "finished_at") > 0);
    json_decref(rec);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    ev = tst_last_event(events);
    assert_string_equal(tst_str(ev, "name"), "done");
    assert_string_equal(tst_str(json_object_get(ev, "data"), "status"),
                        "cancelled");
    assert_true(json_is_null(json_object_get(json_object_get(ev, "data"),
                                             "result")));
    json_decref(events);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_str(cp, "status"), "cancelled");
    json_decref(cp);

    assert_true(mst_run_cancel_requested(&tst.env, id));

    /* final: no claim, no second cancel */

    rc = mst_run_claim(&tst.env, id, 0, tst_alive, &next, err, sizeof(err));
    assert_int_equal(rc, MST_EINVAL);
    assert_int_equal(next.nsteps, 0);

    rc = mst_run_cancel(&tst.env, id, tst_alive, &rec, &final, err,
                        sizeof(err));
    assert_int_equal(rc, MST_EXISTS);
    assert_int_equal(final, 0);
    assert_non_null(strstr(err, "already finished"));
    assert_non_null(rec);
    assert_string_equal(tst_str(rec, "status"), "cancelled");
    json_decref(rec);

    rc = mst_run_cancel(&tst.env, "wf_000000000000000000aa", tst_alive, &rec,
                        &final, err, sizeof(err));
    assert_int_equal(rc, MST_NOTFOUND);
    assert_null(rec);

    assert_false(mst_run_cancel_requested(&tst.env,
                                          "wf_000000000000000000aa"));
}


/*
 * A running sleep step (2 s) cancelled from another thread 150 ms in:
 * the plugin sees cancelled() (the host polls the store) and the commit
 * finalizes the workflow as cancelled. Returns the elapsed ms from the
 * cancel request to the end of the step.
 */
static int64_t
tst_cancel_sleep(char *id)
{
    int              rc, final;
    char             err[MST_ERRLEN];
    json_t          *rec;
    int64_t          t0, elapsed;
    pthread_t        thread;
    tst_job_t        job;
    mst_graph_t     *g;
    mst_run_next_t   next;

    g = tst_named("{\"name\": \"slow\", \"entry\": \"s\", \"nodes\":"
                  " {\"s\": {\"agent\": \"sleep\", \"config\": {\"ms\": 2000},"
                  "   \"retry\": {\"max\": 2, \"backoff_ms\": 10}},"
                  "  \"after\": {\"agent\": \"echo\"}},"
                  " \"edges\": [{\"from\": \"s\", \"to\": \"after\"}]}");

    tst_create(&tst.env, g, "cancel me", id);
    tst_claim(&tst.env, id, &next);
    assert_int_equal(next.nsteps, 1);

    memset(&job, 0, sizeof(tst_job_t));
    job.env = &tst.env;
    job.id = id;
    job.epoch = next.epoch;
    job.step = &next.steps[0];
    job.state = MST_STEP_RUNNING;

    assert_int_equal(pthread_create(&thread, NULL, tst_job_run, &job), 0);

    tst_sleep_ms(150);

    /* the owner is alive: marked, and its plugin sees cancelled() */

    t0 = mst_mono_ms();
    rc = mst_run_cancel(&tst.env, id, tst_alive, &rec, &final, err,
                        sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(final, 0);
    assert_string_equal(tst_str(rec, "status"), "running");
    assert_true(json_is_true(json_object_get(rec, "cancel_requested")));
    json_decref(rec);

    assert_true(mst_run_cancel_requested(&tst.env, id));

    pthread_join(thread, NULL);
    elapsed = mst_mono_ms() - t0;

    /* final, not retried although the node has a retry policy */
    assert_int_equal(job.rc, MST_OK);
    assert_true(job.next.finished);
    assert_int_equal(job.next.nsteps, 0);
    assert_int_equal(job.next.retry_in_ms, 0);
    mst_run_next_free(&job.next);
    mst_run_next_free(&next);

    return elapsed;
}


static void
test_cancel_running(void **state)
{
    int           rc, final;
    char          id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t       *rec, *events, *ev;
    int64_t       elapsed;

    elapsed = tst_cancel_sleep(id);

    if (elapsed >= 1000) {
        fail_msg("the step stopped %lld ms after the cancel",
                 (long long) elapsed);
    }

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "cancelled");
    assert_int_equal(tst_int(rec, "owner"), 0);
    assert_true(json_is_null(json_object_get(rec, "error")));
    json_decref(rec);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    assert_true(tst_log_event(events, "cancellation requested"));
    assert_true(tst_log_event(events, "sleep: cancelled after"));
    assert_int_equal(tst_begins(events, "s"), 1);
    assert_int_equal(tst_begins(events, "after"), 0);
    assert_int_equal(tst_node_status(events, "s", "waiting"), 0);
    assert_int_equal(tst_count(events, "error", NULL, NULL), 0);
    assert_int_equal(tst_count(events, "done", NULL, NULL), 1);

    ev = tst_last_event(events);
    assert_string_equal(tst_str(ev, "name"), "done");
    assert_string_equal(tst_str(json_object_get(ev, "data"), "status"),
                        "cancelled");
    json_decref(events);

    rc = mst_run_cancel(&tst.env, id, tst_alive, &rec, &final, err,
                        sizeof(err));
    assert_int_equal(rc, MST_EXISTS);
    assert_int_equal(final, 0);
    json_decref(rec);
}


/*
 * A cancelled workflow reads as cancelled everywhere: its last checkpoint
 * and the agent that was stopped, not "failed" / "error".
 */
static void
test_cancel_running_consistent(void **state)
{
    char     id[MST_ID_LEN + 1], agent[256], cps[256];
    size_t   nerr;
    json_t  *rec, *cp, *events, *a;

    (void) tst_cancel_sleep(id);

    /* gathered first: a failure must not leak */

    rec = tst_record(id);
    a = json_object_get(json_object_get(rec, "agents"), "s");
    snprintf(agent, sizeof(agent), "%s (%s)", tst_str(a, "status"),
             tst_str(a, "current_task"));
    json_decref(rec);

    events = tst_events(id);
    nerr = tst_node_status(events, "s", "error");
    json_decref(events);

    cp = tst_checkpoint(id, NULL);
    snprintf(cps, sizeof(cps), "%s (%s)", tst_str(cp, "status"),
             tst_str(cp, "error"));
    json_decref(cp);

    if (strncmp(agent, "error ", 6) == 0 || nerr != 0) {
        fail_msg("the agent of the cancelled step shows %s", agent);
    }

    if (strncmp(cps, "cancelled ", 10) != 0) {
        fail_msg("last checkpoint of a cancelled workflow: %s", cps);
    }
}


static void
test_cancel_dead_owner(void **state)
{
    int              rc, final;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t          *rec, *cp;
    mst_graph_t     *g;
    mst_run_env_t    env1;
    mst_run_next_t   next;

    g = tst_named(tst_seq_json);

    env1 = tst.env;
    env1.pid = TST_PID_BASE + 31;

    tst_create(&env1, g, "orphaned", id);
    tst_claim(&env1, id, &next);
    mst_run_next_free(&next);
    tst_kill(env1.pid);

    /* nobody would see the flag: cancelled at once */
    rc = mst_run_cancel(&tst.env, id, tst_alive, &rec, &final, err,
                        sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(final, 1);
    assert_string_equal(tst_str(rec, "status"), "cancelled");
    json_decref(rec);

    /* its agents are parts of the record, as stored */
    rec = tst_record(id);
    assert_string_equal(tst_str(json_object_get(json_object_get(rec,
        "agents"), "a"), "status"), "idle");
    json_decref(rec);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_str(cp, "status"), "cancelled");
    json_decref(cp);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_queued, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_running, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_running_consistent,
                                        tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_dead_owner, tst_setup,
                                        tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
