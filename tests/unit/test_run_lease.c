/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_run's ownership: recovery after a crash (kill -9), the crash-loop
 * guard, fencing of a process that lost its lease, release, force_own,
 * orphans, and steps that failed or were abandoned without completing.
 * The harness is mst_test_run.h.
 */

#include "mst_test_run.h"


static void
test_crash_recovery(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    long             p1, p2;
    json_t          *cp, *rec, *events, *in;
    uint64_t         last;
    mst_graph_t     *g;
    tst_drive_t      dr;
    mst_run_env_t    env1, env2;
    mst_run_next_t   next;

    /* the crash fixture segfaults on attempt 1 and survives attempt 2: it
       is never run on attempt 1 here, the death is simulated */

    g = tst_named("{\"name\": \"crashy\", \"entry\": \"a\","
                  " \"nodes\": {\"a\": {\"agent\": \"crash\","
                  "   \"config\": {\"crash_times\": 1}},"
                  "  \"b\": {\"agent\": \"echo\"}},"
                  " \"edges\": [{\"from\": \"a\", \"to\": \"b\"}]}");

    p1 = TST_PID_BASE + 1;
    p2 = TST_PID_BASE + 2;
    env1 = tst.env;
    env1.pid = p1;
    env2 = tst.env;
    env2.pid = p2;

    tst_create(&env1, g, "survive a crash", id);
    tst_claim(&env1, id, &next);
    assert_int_equal(next.nsteps, 1);
    assert_int_equal(next.steps[0].attempt, 1);

    /* process 1 "dies" with a running: its step never commits */
    mst_run_next_free(&next);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_step_status(cp, "a"), "running");
    json_decref(cp);

    /* while it is alive and its lease valid, nobody else may claim it */
    rc = mst_run_claim(&env2, id, 0, tst_alive, &next, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);
    assert_int_equal(next.nsteps, 0);

    tst_kill(p1);

    last = (uint64_t) tst_nevents(id);

    tst_claim(&env2, id, &next);
    assert_int_equal(next.epoch, 2);
    assert_false(next.finished);
    assert_int_equal(next.nsteps, 1);
    assert_string_equal(next.steps[0].node, "a");

    if (next.steps[0].attempt != 2) {
        mst_run_next_free(&next);
        fail_msg("recovered step on attempt %d, expected 2",
                 next.steps[0].attempt);
    }

    in = json_loads(next.steps[0].input, 0, NULL);
    assert_int_equal(tst_int(in, "attempt"), 2);
    json_decref(in);

    rec = tst_record(id);
    assert_int_equal(tst_int(rec, "owner"), p2);
    assert_int_equal(tst_int(rec, "epoch"), 2);
    assert_string_equal(tst_str(rec, "status"), "running");
    json_decref(rec);

    events = tst_events_after(id, last);
    assert_true(json_array_size(events) >= 2);
    assert_true(tst_log_event(events, "resumed"));
    assert_int_equal(tst_begins(events, "a"), 1);
    json_decref(events);

    assert_true(tst_logged("resumed by process"));
    assert_true(tst_logged("1 step(s) interrupted"));

    tst_drive_init(&dr);
    assert_int_equal(tst_drive(&env2, id, &next, 0, &dr), MST_OK);
    assert_int_equal(tst_ran(&dr, "a"), 1);
    assert_int_equal(tst_ran(&dr, "b"), 1);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "complete");
    json_decref(rec);

    cp = tst_checkpoint(id, NULL);
    assert_true(json_is_true(mst_json_path(cp, "state.outputs.a.survived")));
    json_decref(cp);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    json_decref(events);

    tst_drive_free(&dr);
}


/*
 * Simulated deaths of every worker that runs node a (retry max r): the
 * step must be re-run after a death at least once, and the workflow must
 * fail with "worker died" before the deaths go on forever: its first death
 * is unattributed (it ran as any step), then it runs alone in each new
 * process's suspect lane and r + 2 deaths of its own end it.
 */
static void
tst_crash_loop(int retry_max)
{
    int              i, runs;
    char             id[MST_ID_LEN + 1], text[512];
    json_t          *rec, *events, *ev;
    mst_graph_t     *g;
    mst_run_env_t    env;
    mst_run_next_t   next;

    snprintf(text, sizeof(text),
             "{\"name\": \"loop%d\", \"entry\": \"a\", \"nodes\":"
             " {\"a\": {\"agent\": \"crash\", \"retry\": {\"max\": %d}}},"
             " \"edges\": []}",
             retry_max, retry_max);
    g = tst_graph(text);

    env = tst.env;
    env.pid = TST_PID_BASE + 100;

    tst_create(&env, g, "crash loop", id);

    runs = 0;
    memset(&next, 0, sizeof(mst_run_next_t));

    for (i = 0; i < 10; i++) {
        env = tst.env;          /* a new process, with its own lane */
        env.pid = TST_PID_BASE + 100 + i;
        tst_claim(&env, id, &next);

        if (next.finished) {
            break;
        }

        assert_int_equal(next.nsteps, 1);
        assert_int_equal(next.steps[0].attempt, runs + 1);
        assert_true((next.steps[0].lane != 0) == (runs > 0));
        runs++;

        /* the worker dies running it */
        mst_run_next_free(&next);
        tst_kill(env.pid);
    }

    assert_true(next.finished);
    assert_int_equal(next.nsteps, 0);
    mst_run_next_free(&next);

    /* one death is always survived; more than the policy is a loop */
    if (runs != retry_max + 3) {
        fail_msg("retry max %d: node ran %d times before the guard",
                 retry_max, runs);
    }

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_non_null(strstr(tst_str(rec, "error"), "a: "));
    assert_non_null(strstr(tst_str(rec, "error"), "worker died"));
    assert_non_null(strstr(tst_str(rec, "error"), "crashes its worker"));
    assert_int_equal(tst_int(rec, "owner"), 0);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    ev = tst_last_event(events);
    assert_string_equal(tst_str(ev, "name"), "error");
    assert_non_null(strstr(tst_str(json_object_get(ev, "data"), "error"),
                           "worker died"));

    json_decref(events);
    json_decref(rec);
    mst_graph_free(g);
}


static void
test_crash_loop_guard(void **state)
{
    tst_crash_loop(0);
    tst_crash_loop(1);
}


static void
tst_lost(const char *id, void *arg)
{
    json_array_append_new(arg, json_string(id));
}


static void
test_fencing(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    size_t           nev;
    json_t          *rec, *lost;
    int64_t          lease;
    uint64_t         seq0, seq1, epochs[2];
    const char      *ids[2];
    mst_graph_t     *g;
    tst_drive_t      dr;
    volatile int     st;
    mst_run_env_t    env1, env2;
    mst_run_next_t   old, next, out;

    g = tst_named(tst_seq_json);

    env1 = tst.env;
    env1.pid = TST_PID_BASE + 11;
    env1.flush_ms = 0;          /* the old owner's flushes are fenced too */
    env2 = tst.env;
    env2.pid = TST_PID_BASE + 12;

    tst_create(&env1, g, "fenced", id);
    tst_claim(&env1, id, &old);
    assert_int_equal(old.epoch, 1);

    /* process 1 is presumed dead (it is only slow): process 2 claims */
    tst_kill(env1.pid);
    tst_claim(&env2, id, &next);
    assert_int_equal(next.epoch, 2);

    nev = tst_nevents(id);
    json_decref(tst_checkpoint(id, &seq0));

    /* the old owner finishes its step: refused, nothing written */

    st = MST_STEP_RUNNING;
    err[0] = '\0';
    rc = mst_run_step_exec(&env1, id, old.epoch, &old.steps[0], &st, &out,
                           err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);
    assert_non_null(strstr(err, "lease lost"));
    assert_int_equal(out.nsteps, 0);
    assert_false(out.finished);

    assert_int_equal(tst_nevents(id), nev);
    json_decref(tst_checkpoint(id, &seq1));
    assert_int_equal(seq1, seq0);

    rec = tst_record(id);
    assert_int_equal(tst_int(rec, "owner"), env2.pid);
    assert_int_equal(tst_int(rec, "epoch"), 2);
    json_decref(rec);

    /* every other write of the old epoch is refused as well */

    rc = mst_run_begin_ready(&env1, id, 1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);
    rc = mst_run_step_failed(&env1, id, 1, "a", -1, "timed out", 1, &out,
                             err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);
    assert_int_equal(mst_run_release(&env1, id, 1), MST_CONFLICT);

    /* the right pid with an old epoch is fenced too */
    rc = mst_run_begin_ready(&env2, id, 1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);

    assert_int_equal(tst_nevents(id), nev);

    /* renew: the old owner learns it lost the workflow */

    lost = json_array();
    ids[0] = id;
    epochs[0] = 1;
    assert_int_equal(mst_run_renew(&env1, ids, epochs, 1, tst_lost, lost),
                     MST_OK);
    assert_int_equal(json_array_size(lost), 1);
    assert_string_equal(json_string_value(json_array_get(lost, 0)), id);
    json_array_clear(lost);

    rec = tst_record(id);
    lease = tst_int(rec, "lease_until");
    json_decref(rec);

    tst_sleep_ms(5);

    ids[1] = "wf_00000000000000000bad";
    epochs[0] = 2;
    epochs[1] = 1;
    assert_int_equal(mst_run_renew(&env2, ids, epochs, 2, tst_lost, lost),
                     MST_OK);
    assert_int_equal(json_array_size(lost), 1);
    assert_string_equal(json_string_value(json_array_get(lost, 0)), ids[1]);
    assert_int_equal(mst_run_renew(&env2, ids, epochs, 0, tst_lost, lost),
                     MST_OK);
    json_decref(lost);

    rec = tst_record(id);
    assert_true(tst_int(rec, "lease_until") > lease);
    json_decref(rec);

    /* the new owner goes on to the end */

    tst_drive_init(&dr);
    assert_int_equal(tst_drive(&env2, id, &next, 0, &dr), MST_OK);
    assert_int_equal(dr.runs, 3);
    tst_drive_free(&dr);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "complete");
    json_decref(rec);

    mst_run_next_free(&old);
}


static void
test_release(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t          *rec;
    mst_graph_t     *g;
    tst_drive_t      dr;
    mst_run_env_t    env1, env2;
    mst_run_next_t   next;

    g = tst_named(tst_seq_json);

    env1 = tst.env;
    env1.pid = TST_PID_BASE + 21;
    env2 = tst.env;
    env2.pid = TST_PID_BASE + 22;

    tst_create(&env1, g, "handed over", id);
    tst_claim(&env1, id, &next);
    mst_run_next_free(&next);

    rc = mst_run_claim(&env2, id, 0, tst_alive, &next, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);

    /* graceful exit: the live process gives it up, another claims it */
    assert_int_equal(mst_run_release(&env1, id, 1), MST_OK);
    assert_int_equal(mst_run_release(&env1, id, 1), MST_CONFLICT);
    assert_int_equal(mst_run_release(&env1, "wf_0000000000000000dead", 1),
                     MST_NOTFOUND);

    rec = tst_record(id);
    assert_int_equal(tst_int(rec, "owner"), 0);
    json_decref(rec);

    tst_claim(&env2, id, &next);
    assert_int_equal(next.epoch, 2);
    assert_int_equal(next.nsteps, 1);
    assert_int_equal(next.steps[0].attempt, 2);

    tst_drive_init(&dr);
    assert_int_equal(tst_drive(&env2, id, &next, 0, &dr), MST_OK);
    tst_drive_free(&dr);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "complete");
    json_decref(rec);
}


static void
test_force_own(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    volatile int     st;
    mst_graph_t     *g;
    tst_drive_t      dr;
    mst_run_next_t   first, next, out;

    g = tst_named(tst_seq_json);

    tst_create(&tst.env, g, "own", id);
    tst_claim(&tst.env, id, &first);

    rc = mst_run_claim(&tst.env, id, 0, tst_alive, &next, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);

    /* owned by this pid but not running here (a restarted thread pool) */
    rc = mst_run_claim(&tst.env, id, 1, tst_alive, &next, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(next.epoch, 2);
    assert_int_equal(next.nsteps, 1);

    /* same pid, old epoch: fenced */
    st = MST_STEP_RUNNING;
    rc = mst_run_step_exec(&tst.env, id, first.epoch, &first.steps[0], &st,
                           &out, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);
    mst_run_next_free(&first);

    tst_drive_init(&dr);
    assert_int_equal(tst_drive(&tst.env, id, &next, 0, &dr), MST_OK);
    assert_int_equal(dr.runs, 3);
    tst_drive_free(&dr);
}


static void
test_step_failed_timeout(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], id2[MST_ID_LEN + 1];
    char             err[MST_ERRLEN];
    size_t           nev;
    json_t          *rec, *events;
    mst_graph_t     *g;
    mst_run_next_t   next, out;

    g = tst_named("{\"name\": \"timeouts\", \"entry\": \"t\", \"nodes\":"
                  " {\"t\": {\"agent\": \"echo\","
                  "   \"retry\": {\"max\": 1, \"backoff_ms\": 10}}},"
                  " \"edges\": []}");

    tst_create(&tst.env, g, "times out", id);
    tst_claim(&tst.env, id, &next);
    assert_int_equal(next.nsteps, 1);

    /* not a running step: refused, nothing written */
    nev = tst_nevents(id);
    rc = mst_run_step_failed(&tst.env, id, next.epoch, "nope", -1,
                             "timed out", 1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_NOTFOUND);
    rc = mst_run_step_failed(&tst.env, id, next.epoch, "t", 3,
                             "timed out", 1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_NOTFOUND);
    assert_int_equal(tst_nevents(id), nev);

    /* the event loop timed the step out: retried per policy */
    rc = mst_run_step_failed(&tst.env, id, next.epoch, "t", -1, "timed out",
                             1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(out.status, MST_ENGINE_RETRY);
    assert_int_equal(out.retry_in_ms, 10);
    assert_int_equal(out.nsteps, 0);
    assert_false(out.finished);

    /* twice for the same attempt: it is pending now */
    rc = mst_run_step_failed(&tst.env, id, next.epoch, "t", -1, "timed out",
                             1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_EINVAL);

    mst_run_next_free(&next);

    /* still backing off: not begun yet */
    rc = mst_run_begin_ready(&tst.env, id, out.epoch, &next, err,
                             sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(next.nsteps, 0);
    mst_run_next_free(&next);

    usleep(20 * 1000);

    rc = mst_run_begin_ready(&tst.env, id, out.epoch, &next, err,
                             sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(next.nsteps, 1);
    assert_int_equal(next.steps[0].attempt, 2);
    mst_run_next_free(&next);

    /* again: nothing pending, nothing begun */
    rc = mst_run_begin_ready(&tst.env, id, out.epoch, &next, err,
                             sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(next.nsteps, 0);

    rc = mst_run_step_failed(&tst.env, id, out.epoch, "t", -1, "timed out",
                             1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(out.status, MST_ENGINE_FAILED);
    assert_true(out.finished);
    assert_int_equal(out.retry_in_ms, 0);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_string_equal(tst_str(rec, "error"), "t: timed out");
    json_decref(rec);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    assert_int_equal(tst_node_status(events, "t", "waiting"), 1);
    assert_int_equal(tst_node_status(events, "t", "error"), 1);
    assert_true(tst_log_event(events, "timed out"));
    assert_string_equal(tst_str(tst_last_event(events), "name"), "error");
    json_decref(events);

    /* not retryable: failed at once */

    tst_create(&tst.env, g, "times out for good", id2);
    tst_claim(&tst.env, id2, &next);
    rc = mst_run_step_failed(&tst.env, id2, next.epoch, "t", -1, "timed out",
                             0, &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_true(out.finished);
    assert_int_equal(out.retry_in_ms, 0);
    mst_run_next_free(&next);

    rec = tst_record(id2);
    assert_string_equal(tst_str(rec, "status"), "failed");
    json_decref(rec);
}


static void
test_step_abandoned(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    size_t           nev;
    json_t          *rec, *cp;
    int64_t          t0;
    uint64_t         seq0, seq1;
    pthread_t        thread;
    tst_job_t        job;
    mst_graph_t     *g;
    mst_run_next_t   next, out;

    g = tst_named("{\"name\": \"abandon\", \"entry\": \"s\", \"nodes\":"
                  " {\"s\": {\"agent\": \"sleep\", \"config\": {\"ms\": 3000},"
                  "   \"timeout_ms\": 100}}, \"edges\": []}");

    tst.env.flush_ms = 1000000;     /* no flush during the run */

    tst_create(&tst.env, g, "abandoned", id);
    tst_claim(&tst.env, id, &next);

    memset(&job, 0, sizeof(tst_job_t));
    job.env = &tst.env;
    job.id = id;
    job.epoch = next.epoch;
    job.step = &next.steps[0];
    job.state = MST_STEP_RUNNING;

    nev = tst_nevents(id);
    json_decref(tst_checkpoint(id, &seq0));

    t0 = mst_mono_ms();
    assert_int_equal(pthread_create(&thread, NULL, tst_job_run, &job), 0);

    /* the event loop's timer: it takes the step away from the thread */
    tst_sleep_ms(50);
    assert_true(__sync_bool_compare_and_swap(&job.state, MST_STEP_RUNNING,
                                             MST_STEP_ABANDONED));
    pthread_join(thread, NULL);

    assert_true(mst_mono_ms() - t0 < 1000);
    assert_int_equal(job.rc, MST_ETIMEDOUT);
    assert_non_null(strstr(job.err, "abandoned"));
    assert_int_equal(job.next.nsteps, 0);

    /* its result is dropped: nothing written */
    assert_int_equal(tst_nevents(id), nev);
    json_decref(tst_checkpoint(id, &seq1));
    assert_int_equal(seq1, seq0);

    /* the loop records the failure (no retry in this node's policy) */
    rc = mst_run_step_failed(&tst.env, id, next.epoch, "s", -1, "timed out",
                             1, &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_true(out.finished);

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_string_equal(tst_str(rec, "error"), "s: timed out");
    json_decref(rec);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_str(cp, "status"), "failed");
    json_decref(cp);

    mst_run_next_free(&next);
}


static int
tst_has(json_t *ids, const char *id)
{
    size_t   i;
    json_t  *v;

    json_array_foreach(ids, i, v) {
        if (strcmp(json_string_value(v), id) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
test_orphans(void **state)
{
    char             queued[MST_ID_LEN + 1], live[MST_ID_LEN + 1];
    char             dead[MST_ID_LEN + 1], expired[MST_ID_LEN + 1];
    char             mine[MST_ID_LEN + 1], adopting[MST_ID_LEN + 1];
    char             dropped[MST_ID_LEN + 1], done[MST_ID_LEN + 1];
    json_t          *ids;
    const char      *mine_ids[1];
    mst_graph_t     *g;
    tst_drive_t      dr;
    mst_run_env_t    other, gone, brief, self_brief;
    mst_run_next_t   next;

    g = tst_named(tst_seq_json);

    other = tst.env;
    other.pid = TST_PID_BASE + 41;
    gone = tst.env;
    gone.pid = TST_PID_BASE + 42;
    brief = tst.env;
    brief.pid = TST_PID_BASE + 43;
    brief.lease_ms = 1;
    self_brief = tst.env;
    self_brief.lease_ms = 1;

    /* unowned */
    tst_create(&tst.env, g, "queued", queued);

    /* a live owner with a valid lease */
    tst_create(&tst.env, g, "live", live);
    tst_claim(&other, live, &next);
    mst_run_next_free(&next);

    /* a dead owner, lease still valid */
    tst_create(&tst.env, g, "dead", dead);
    tst_claim(&gone, dead, &next);
    mst_run_next_free(&next);
    tst_kill(gone.pid);

    /* a live owner whose lease expired */
    tst_create(&tst.env, g, "expired", expired);
    tst_claim(&brief, expired, &next);
    mst_run_next_free(&next);

    /* ours, running here (in mine[]) */
    tst_create(&tst.env, g, "mine", mine);
    tst_claim(&tst.env, mine, &next);
    mst_run_next_free(&next);

    /* ours, valid lease, not in mine[]: being adopted on another thread */
    tst_create(&tst.env, g, "adopting", adopting);
    tst_claim(&tst.env, adopting, &next);
    mst_run_next_free(&next);

    /* ours, not in mine[], lease expired: dropped after an error */
    tst_create(&tst.env, g, "dropped", dropped);
    tst_claim(&self_brief, dropped, &next);
    mst_run_next_free(&next);

    /* final */
    tst_drive_init(&dr);
    tst_run(g, "done", 0, done, &dr, "complete");
    tst_drive_free(&dr);

    tst_sleep_ms(5);            /* the 1 ms leases are over */

    mine_ids[0] = mine;
    assert_int_equal(mst_run_orphans(&tst.env, tst_alive, mine_ids, 1, 100,
                                     &ids),
                     MST_OK);

    assert_true(tst_has(ids, queued));
    assert_true(tst_has(ids, dead));
    assert_true(tst_has(ids, expired));
    assert_true(tst_has(ids, dropped));
    assert_false(tst_has(ids, live));
    assert_false(tst_has(ids, mine));
    assert_false(tst_has(ids, adopting));
    assert_false(tst_has(ids, done));
    assert_int_equal(json_array_size(ids), 4);
    json_decref(ids);

    /* from the other live process: ours are held by a live owner */
    mine_ids[0] = live;
    assert_int_equal(mst_run_orphans(&other, tst_alive, mine_ids, 1, 100,
                                     &ids),
                     MST_OK);
    assert_true(tst_has(ids, queued));
    assert_true(tst_has(ids, dead));
    assert_true(tst_has(ids, expired));
    assert_true(tst_has(ids, dropped));
    assert_false(tst_has(ids, live));
    assert_false(tst_has(ids, mine));
    assert_false(tst_has(ids, adopting));
    assert_int_equal(json_array_size(ids), 4);
    json_decref(ids);
    mine_ids[0] = mine;

    /* max */
    assert_int_equal(mst_run_orphans(&tst.env, tst_alive, mine_ids, 1, 2,
                                     &ids),
                     MST_OK);
    assert_int_equal(json_array_size(ids), 2);
    json_decref(ids);

    assert_int_equal(mst_run_orphans(&tst.env, tst_alive, mine_ids, 1, 0,
                                     &ids),
                     MST_OK);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);

    /* orphans are claimable; claimed, they are not orphans any more */
    tst_claim(&other, expired, &next);
    mst_run_next_free(&next);
    tst_claim(&other, dead, &next);
    mst_run_next_free(&next);

    assert_int_equal(mst_run_orphans(&tst.env, tst_alive, mine_ids, 1, 100,
                                     &ids),
                     MST_OK);
    assert_false(tst_has(ids, expired));
    assert_false(tst_has(ids, dead));
    assert_true(tst_has(ids, queued));
    assert_true(tst_has(ids, dropped));
    assert_int_equal(json_array_size(ids), 2);
    json_decref(ids);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_recovery, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop_guard, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_fencing, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_release, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_force_own, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_step_failed_timeout, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_step_abandoned, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_orphans, tst_setup, tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
