/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_run's suspect lane (mst_run_lane.c): the steps recovered after a
 * worker's death run one at a time per process, isolated; only deaths
 * while a step runs alone count against it; the lane is given back on
 * every way a step ends. The harness is mst_test_run.h; "processes" are
 * copies of its env (each with its own lane) and another pid.
 */

#include "mst_test_run.h"


static const char *tst_one_json =
    "{\"name\": \"one\", \"entry\": \"s\","
    " \"nodes\": {\"s\": {\"agent\": \"echo\"}}, \"edges\": []}";


static mst_run_env_t
tst_process(long n)
{
    mst_run_env_t  env;

    env = tst.env;
    env.pid = TST_PID_BASE + 300 + n;

    return env;
}


/* a workflow whose first steps were running in process p when it died */
static void
tst_interrupted(mst_run_env_t *p, const mst_graph_t *g, const char *prompt,
    char *id)
{
    mst_run_next_t  next;

    tst_create(p, g, prompt, id);
    tst_claim(p, id, &next);
    assert_true(next.nsteps > 0);
    mst_run_next_free(&next);
    tst_kill(p->pid);
}


/* a step of the checkpoint's frontier (the first of node) */
static json_t *
tst_cp_step(json_t *cp, const char *node)
{
    size_t   i;
    json_t  *step;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(tst_str(step, "node"), node) == 0) {
            return step;
        }
    }

    fail_msg("no step %s", node);
    return NULL;
}


/* the last checkpoint's step field, as an integer (0 when absent) */
static int64_t
tst_step_int(const char *id, const char *node, const char *key)
{
    json_t   *cp;
    int64_t   n;

    cp = tst_checkpoint(id, NULL);
    n = tst_int(tst_cp_step(cp, node), key);
    json_decref(cp);

    return n;
}


static int
tst_step_true(const char *id, const char *node, const char *key)
{
    int      yes;
    json_t  *cp;

    cp = tst_checkpoint(id, NULL);
    yes = json_is_true(json_object_get(tst_cp_step(cp, node), key));
    json_decref(cp);

    return yes;
}


static int
tst_exec(mst_run_env_t *env, const char *id, mst_run_next_t *from,
    mst_run_next_t *out)
{
    char          err[MST_ERRLEN];
    volatile int  st;

    st = MST_STEP_RUNNING;
    err[0] = '\0';

    return mst_run_step_exec(env, id, from->epoch, &from->steps[0], &st, out,
                             err, sizeof(err));
}


static void
tst_complete(mst_run_env_t *env, const char *id, mst_run_next_t *next)
{
    json_t       *rec;
    tst_drive_t   dr;

    tst_drive_init(&dr);
    if (tst_drive(env, id, next, 0, &dr) != MST_OK) {
        fail_msg("drive: %s", dr.err);
    }
    tst_drive_free(&dr);

    rec = tst_record(id);
    if (strcmp(tst_str(rec, "status"), "complete") != 0) {
        fail_msg("%s: %s", tst_str(rec, "status"), tst_str(rec, "error"));
    }
    json_decref(rec);
}


/* two workflows interrupted by one death: their steps run one by one */
static void
test_one_suspect_at_a_time(void **state)
{
    int              rc;
    char             w1[MST_ID_LEN + 1], w2[MST_ID_LEN + 1];
    char             err[MST_ERRLEN];
    json_t          *rec, *agent, *cp;
    size_t           nev;
    uint64_t         seq0, seq1, token;
    mst_graph_t     *g;
    mst_run_env_t    p1, p2;
    mst_run_next_t   n1, n2, out;

    g = tst_named(tst_one_json);
    p1 = tst_process(1);
    p2 = tst_process(2);

    /* process 1 runs both steps side by side, then dies */
    tst_create(&p1, g, "first", w1);
    tst_create(&p1, g, "second", w2);
    tst_claim(&p1, w1, &n1);
    tst_claim(&p1, w2, &n2);
    assert_int_equal(n1.steps[0].lane, 0);
    assert_int_equal(n2.steps[0].lane, 0);
    mst_run_next_free(&n1);
    mst_run_next_free(&n2);
    tst_kill(p1.pid);

    /* process 2: the first suspect takes its lane, isolated */
    tst_claim(&p2, w1, &n1);
    assert_int_equal(n1.nsteps, 1);
    assert_int_equal(n1.steps[0].attempt, 2);
    token = n1.steps[0].lane;
    assert_true(token != 0);
    assert_true(p2.lane.holder == token);
    assert_true(tst_step_true(w1, "s", "isolated"));
    assert_true(tst_step_true(w1, "s", "suspect"));
    assert_int_equal(tst_step_int(w1, "s", "unattributed"), 1);
    assert_int_equal(tst_step_int(w1, "s", "deaths"), 0);
    assert_true(tst_logged("1 step(s) interrupted"));

    /* the second waits, pending, and its workflow is asked back soon */
    tst_claim(&p2, w2, &n2);
    assert_int_equal(n2.nsteps, 0);
    assert_false(n2.finished);
    assert_true(n2.retry_in_ms > 0 && n2.retry_in_ms <= 250);
    assert_true(n2.lane_wait);
    assert_false(n1.lane_wait);
    cp = tst_checkpoint(w2, NULL);
    assert_string_equal(tst_step_status(cp, "s"), "pending");
    json_decref(cp);

    rec = tst_record(w2);
    agent = json_object_get(json_object_get(rec, "agents"), "s");
    assert_string_equal(tst_str(agent, "status"), "waiting");
    assert_non_null(strstr(tst_str(agent, "current_task"), "alone"));
    json_decref(rec);

    /* asking again while the lane is busy writes nothing */
    nev = tst_nevents(w2);
    json_decref(tst_checkpoint(w2, &seq0));
    rc = mst_run_begin_ready(&p2, w2, n2.epoch, &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(out.nsteps, 0);
    assert_true(out.retry_in_ms > 0);
    json_decref(tst_checkpoint(w2, &seq1));
    assert_int_equal(seq1, seq0);
    assert_int_equal(tst_nevents(w2), nev);

    /* the first completes: no longer a suspect, the lane is free */
    assert_int_equal(tst_exec(&p2, w1, &n1, &out), MST_OK);
    assert_true(out.finished);
    assert_true(p2.lane.holder == 0);
    mst_run_next_free(&out);
    mst_run_next_free(&n1);

    /* now the second one runs, alone */
    rc = mst_run_begin_ready(&p2, w2, n2.epoch, &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(out.nsteps, 1);
    assert_true(out.steps[0].lane != 0 && out.steps[0].lane != token);
    assert_true(tst_step_true(w2, "s", "isolated"));
    tst_complete(&p2, w2, &out);
    assert_true(p2.lane.holder == 0);

    mst_run_next_free(&n2);
}


/*
 * The lone suspect's process dies with a healthy step beside it: the
 * suspect's death is its own, the healthy one's is not. Two deaths while
 * the same step runs alone fail it (retry.max 0); the healthy step, killed
 * twice too, completes.
 */
static void
test_neighbours(void **state)
{
    char             w1[MST_ID_LEN + 1], w3[MST_ID_LEN + 1];
    json_t          *rec;
    mst_graph_t     *g;
    mst_run_env_t    p1, p2, p3, p4;
    mst_run_next_t   n1, n3;

    g = tst_named(tst_one_json);
    p1 = tst_process(11);
    p2 = tst_process(12);
    p3 = tst_process(13);
    p4 = tst_process(14);

    tst_interrupted(&p1, g, "the crasher", w1);

    /* w1's suspect runs alone in process 2, w3 (healthy) beside it */
    tst_claim(&p2, w1, &n1);
    assert_true(n1.steps[0].lane != 0);
    tst_create(&p2, g, "a neighbour", w3);
    tst_claim(&p2, w3, &n3);
    assert_int_equal(n3.steps[0].lane, 0);
    assert_false(tst_step_true(w3, "s", "isolated"));
    mst_run_next_free(&n1);
    mst_run_next_free(&n3);
    tst_kill(p2.pid);

    /* process 3: w1 dies a death of its own, w3 one that is not */
    tst_claim(&p3, w1, &n1);
    assert_int_equal(tst_step_int(w1, "s", "deaths"), 1);
    assert_int_equal(tst_step_int(w1, "s", "unattributed"), 1);
    assert_true(n1.steps[0].lane != 0);

    tst_claim(&p3, w3, &n3);
    assert_int_equal(n3.nsteps, 0);
    assert_int_equal(tst_step_int(w3, "s", "unattributed"), 1);
    assert_int_equal(tst_step_int(w3, "s", "deaths"), 0);
    assert_true(tst_step_true(w3, "s", "suspect"));
    mst_run_next_free(&n1);
    mst_run_next_free(&n3);
    tst_kill(p3.pid);

    /* process 4: w1 died twice running alone: a crash loop */
    tst_claim(&p4, w1, &n1);
    assert_true(n1.finished);
    rec = tst_record(w1);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_string_equal(tst_str(rec, "error"),
                        "s: worker died while running the step alone, "
                        "2 times (retry.max 0): the step crashes its worker");
    json_decref(rec);
    mst_run_next_free(&n1);

    /* w3 was waiting for the lane, not running: no new death */
    tst_claim(&p4, w3, &n3);
    assert_int_equal(n3.nsteps, 1);
    assert_true(n3.steps[0].lane != 0);
    assert_int_equal(tst_step_int(w3, "s", "unattributed"), 1);
    assert_int_equal(tst_step_int(w3, "s", "deaths"), 0);
    tst_complete(&p4, w3, &n3);
}


/* a healthy step killed twice, the second time while alone: survives */
static void
test_two_kills(void **state)
{
    char             id[MST_ID_LEN + 1];
    mst_graph_t     *g;
    mst_run_env_t    p1, p2, p3;
    mst_run_next_t   next;

    g = tst_named(tst_one_json);
    p1 = tst_process(21);
    p2 = tst_process(22);
    p3 = tst_process(23);

    tst_interrupted(&p1, g, "killed twice", id);

    tst_claim(&p2, id, &next);
    assert_true(next.steps[0].lane != 0);
    mst_run_next_free(&next);
    tst_kill(p2.pid);

    tst_claim(&p3, id, &next);
    assert_int_equal(next.nsteps, 1);
    assert_int_equal(next.steps[0].attempt, 3);
    assert_int_equal(tst_step_int(id, "s", "deaths"), 1);
    tst_complete(&p3, id, &next);
}


/* the suspects of one workflow: the lane passes from one to the next in
   the commit that ends the first */
static void
test_handoff(void **state)
{
    int              rc, i;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t          *rec, *context;
    mst_graph_t     *g;
    mst_run_env_t    p1, p2;
    mst_run_next_t   next, out;

    g = tst_named("{\"name\": \"fan\", \"entry\": \"f\","
                  " \"nodes\": {\"f\": {\"agent\": \"echo\","
                  "   \"foreach\": \"context\"}}, \"edges\": []}");
    p1 = tst_process(31);
    p2 = tst_process(32);

    context = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
                        "name", "a", "content", "1", "name", "b",
                        "content", "2", "name", "c", "content", "3");
    rc = mst_run_create(&p1, g, "fan", "three", context, NULL, id, &rec,
                        err, sizeof(err));
    json_decref(context);
    assert_int_equal(rc, MST_OK);
    json_decref(rec);

    tst_claim(&p1, id, &next);
    assert_int_equal(next.nsteps, 3);
    mst_run_next_free(&next);
    tst_kill(p1.pid);

    tst_claim(&p2, id, &next);
    assert_int_equal(next.nsteps, 1);
    assert_true(next.retry_in_ms > 0);

    for (i = 0; i < 2; i++) {
        assert_int_equal(tst_exec(&p2, id, &next, &out), MST_OK);
        assert_int_equal(out.nsteps, 1);
        assert_true(out.steps[0].lane != 0);
        assert_true(out.steps[0].lane != next.steps[0].lane);
        assert_true(p2.lane.holder == out.steps[0].lane);
        mst_run_next_free(&next);
        next = out;
    }

    tst_complete(&p2, id, &next);
    assert_true(p2.lane.holder == 0);
}


/* every way a suspect's run ends gives the lane back */
static void
test_release_paths(void **state)
{
    int              rc, final;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t          *rec, *cp;
    uint64_t         token;
    mst_graph_t     *g, *fan;
    tst_job_t        job;
    mst_run_env_t    p1, p2, p3;
    mst_run_next_t   next, out, other;

    g = tst_named(tst_one_json);

    /* abandoned (timeout): the host gives it back, the late end of the
       plugin's run does not take it from the next holder */

    p1 = tst_process(41);
    p2 = tst_process(42);
    tst_interrupted(&p1, g, "abandoned", id);

    tst_claim(&p2, id, &next);
    token = next.steps[0].lane;
    assert_true(token != 0);
    mst_run_lane_release(&p2, token);
    assert_true(p2.lane.holder == 0);
    p2.lane.holder = 777;       /* another suspect took it */

    memset(&job, 0, sizeof(tst_job_t));
    job.env = &p2;
    job.id = id;
    job.epoch = next.epoch;
    job.step = &next.steps[0];
    job.state = MST_STEP_ABANDONED;
    tst_job_run(&job);
    assert_int_equal(job.rc, MST_ETIMEDOUT);
    assert_true(p2.lane.holder == 777);
    mst_run_lane_release(&p2, token);
    assert_true(p2.lane.holder == 777);
    p2.lane.holder = 0;

    rc = mst_run_step_failed(&p2, id, next.epoch, "s", -1, "timed out", 1,
                             &out, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_true(out.finished);
    assert_false(tst_step_true(id, "s", "isolated"));
    mst_run_next_free(&next);
    mst_run_next_free(&out);

    /* lease lost: the old owner's commit is fenced, its lane freed */

    p1 = tst_process(43);
    p2 = tst_process(44);
    p3 = tst_process(45);
    tst_interrupted(&p1, g, "lost", id);

    p2.lease_ms = 1;
    tst_claim(&p2, id, &next);
    assert_true(next.steps[0].lane != 0);
    tst_sleep_ms(5);
    tst_claim(&p3, id, &other);     /* p2 is alive, its lease expired */
    assert_true(other.steps[0].lane != 0);
    assert_int_equal(tst_exec(&p2, id, &next, &out), MST_CONFLICT);
    assert_true(p2.lane.holder == 0);
    assert_true(p3.lane.holder == other.steps[0].lane);
    mst_run_next_free(&next);
    mst_run_next_free(&other);

    /* cancelled while it runs (the first of three steps) */

    p1 = tst_process(46);
    p2 = tst_process(47);
    tst_interrupted(&p1, tst_named(tst_seq_json), "cancelled", id);

    tst_claim(&p2, id, &next);
    assert_true(p2.lane.holder != 0);
    rc = mst_run_cancel(&p2, id, tst_alive, &rec, &final, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(final, 0);
    json_decref(rec);
    assert_int_equal(tst_exec(&p2, id, &next, &out), MST_OK);
    assert_true(out.finished);
    assert_true(p2.lane.holder == 0);
    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "cancelled");
    json_decref(rec);
    mst_run_next_free(&next);

    /* a transaction that took the lane and did not commit: given back
       (here the claimer does not know the second step's agent) */

    fan = tst_named("{\"name\": \"two\", \"entry\": \"a\", \"nodes\":"
                    " {\"a\": {\"agent\": \"echo\"},"
                    "  \"b\": {\"agent\": \"echo\"},"
                    "  \"c\": {\"agent\": \"sleep\", \"config\":"
                    "          {\"ms\": 1}}},"
                    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
                    "             {\"from\": \"a\", \"to\": \"c\"}]}");
    p1 = tst_process(48);
    p2 = tst_process(49);
    p2.nagents = 1;                 /* echo only */

    tst_create(&p1, fan, "aborted", id);
    tst_claim(&p1, id, &next);
    assert_int_equal(tst_exec(&p1, id, &next, &out), MST_OK);
    assert_int_equal(out.nsteps, 2);
    mst_run_next_free(&next);
    mst_run_next_free(&out);
    tst_kill(p1.pid);

    rc = mst_run_claim(&p2, id, 0, tst_alive, &next, err, sizeof(err));
    assert_int_not_equal(rc, MST_OK);
    assert_int_equal(next.nsteps, 0);
    assert_true(p2.lane.holder == 0);
    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_step_status(cp, "b"), "running");
    json_decref(cp);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_one_suspect_at_a_time,
                                        tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_neighbours, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_two_kills, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_handoff, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_release_paths, tst_setup,
                                        tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
