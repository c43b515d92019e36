/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_run, the durable workflow runner: sequential, parallel and foreach
 * graphs, retries and failures, the plugins' memory and metrics, prices,
 * and bad submissions. The harness is mst_test_run.h; ownership (crash,
 * fencing, orphans, leases) is in test_run_lease.c, cancellation in
 * test_run_cancel.c, retention in test_run_prune.c.
 */

#include "mst_test_run.h"


static const char *tst_fan_json =
    "{\"name\": \"fan\", \"entry\": \"a\","
    " \"nodes\": {\"a\": {\"agent\": \"echo\"}, \"b\": {\"agent\": \"echo\"},"
    "             \"c\": {\"agent\": \"echo\"}, \"d\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
    "             {\"from\": \"a\", \"to\": \"c\"},"
    "             {\"from\": \"b\", \"to\": \"d\"},"
    "             {\"from\": \"c\", \"to\": \"d\"}]}";

static const char *tst_wide_json =
    "{\"name\": \"wide\", \"entry\": \"a\","
    " \"nodes\": {\"a\": {\"agent\": \"echo\"},"
    "   \"s1\": {\"agent\": \"sleep\", \"config\": {\"ms\": 150}},"
    "   \"s2\": {\"agent\": \"sleep\", \"config\": {\"ms\": 150}},"
    "   \"s3\": {\"agent\": \"sleep\", \"config\": {\"ms\": 150}},"
    "   \"s4\": {\"agent\": \"sleep\", \"config\": {\"ms\": 150}},"
    "   \"d\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"s1\"},"
    "   {\"from\": \"a\", \"to\": \"s2\"}, {\"from\": \"a\", \"to\": \"s3\"},"
    "   {\"from\": \"a\", \"to\": \"s4\"}, {\"from\": \"s1\", \"to\": \"d\"},"
    "   {\"from\": \"s2\", \"to\": \"d\"}, {\"from\": \"s3\", \"to\": \"d\"},"
    "   {\"from\": \"s4\", \"to\": \"d\"}]}";

/* a copy of conf/workflows/default.json, used when it cannot be read */
static const char *tst_default_json =
    "{\"name\": \"default\", \"entry\": \"planner\", \"max_steps\": 60,"
    " \"nodes\": {"
    "  \"planner\": {\"agent\": \"planner\", \"timeout_ms\": 60000,"
    "               \"retry\": {\"max\": 1, \"backoff_ms\": 500}},"
    "  \"llm\": {\"agent\": \"llm\", \"foreach\": \"plan.steps\","
    "           \"timeout_ms\": 120000,"
    "           \"retry\": {\"max\": 2, \"backoff_ms\": 500}},"
    "  \"reviewer\": {\"agent\": \"reviewer\", \"timeout_ms\": 60000,"
    "                \"retry\": {\"max\": 1, \"backoff_ms\": 500}}},"
    " \"edges\": [{\"from\": \"planner\", \"to\": \"llm\"},"
    "  {\"from\": \"llm\", \"to\": \"reviewer\"},"
    "  {\"from\": \"reviewer\", \"to\": \"llm\","
    "   \"when\": {\"path\": \"review.verdict\", \"equals\": \"revise\"}},"
    "  {\"from\": \"reviewer\", \"to\": \"$end\", \"else\": true}]}";


/* tests */

static void
test_lookups(void **state)
{
    mst_graph_t  *g;

    g = tst_named(tst_seq_json);

    assert_ptr_equal(mst_run_agent(&tst.env, "echo"), &tst_agents[0]);
    assert_ptr_equal(mst_run_agent(&tst.env, "reviewer"),
                     &tst_agents[TST_NAGENTS - 1]);
    assert_null(mst_run_agent(&tst.env, "nope"));
    assert_null(mst_run_agent(&tst.env, ""));

    assert_ptr_equal(mst_run_graph(&tst.env, "seq"), g);
    assert_null(mst_run_graph(&tst.env, "fan"));
}


static void
test_sequential(void **state)
{
    int               rc;
    char              id[MST_ID_LEN + 1], err[MST_ERRLEN];
    size_t            i;
    json_t           *rec, *ev, *events, *cps, *cp, *data, *in, *agents, *a;
    const char       *key, *nodes[] = { "a", "b", "c" };
    mst_graph_t      *g;
    tst_drive_t       dr;
    mst_run_next_t    next, other;

    g = tst_named(tst_seq_json);
    tst.env.flush_ms = 0;

    tst_create(&tst.env, g, "hello maestro", id);

    /* queued: one event, one checkpoint, every node idle */

    rec = tst_record(id);
    assert_false(json_is_true(json_object_get(rec, "inline")));
    assert_string_equal(tst_str(rec, "workflow"), "seq");
    assert_string_equal(tst_str(rec, "prompt"), "hello maestro");
    assert_int_equal(tst_int(rec, "owner"), 0);
    assert_int_equal(tst_int(rec, "last_event_id"), 1);
    assert_int_equal(tst_int(rec, "checkpoint_seq"), 1);
    json_object_foreach(json_object_get(rec, "agents"), key, a) {
        assert_string_equal(tst_str(a, "status"), "idle");
    }
    assert_int_equal(json_object_size(json_object_get(rec, "agents")), 3);
    json_decref(rec);

    assert_int_equal(tst.notified, 1);

    tst_claim(&tst.env, id, &next);

    assert_int_equal(next.epoch, 1);
    assert_false(next.finished);
    assert_int_equal(next.nsteps, 1);
    assert_string_equal(next.steps[0].node, "a");
    assert_int_equal(next.steps[0].index, -1);
    assert_int_equal(next.steps[0].attempt, 1);
    assert_int_equal(next.steps[0].timeout_ms, 60000);
    assert_ptr_equal(next.steps[0].agent, &tst_agents[0]);

    in = json_loads(next.steps[0].input, 0, NULL);
    assert_non_null(in);
    assert_string_equal(tst_str(in, "node"), "a");
    assert_string_equal(tst_str(in, "workflow_id"), id);
    assert_string_equal(tst_str(json_object_get(in, "state"), "prompt"),
                        "hello maestro");
    json_decref(in);

    /* claimed: running, owned by us, the step running in the checkpoint */

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "running");
    assert_int_equal(tst_int(rec, "owner"), tst.env.pid);
    assert_int_equal(tst_int(rec, "epoch"), 1);
    assert_true(tst_int(rec, "lease_until") > mst_now_ms());
    assert_true(tst_int(rec, "started_at") > 0);
    json_decref(rec);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_step_status(cp, "a"), "running");
    json_decref(cp);

    /* a second claim by the live owner is refused */

    rc = mst_run_claim(&tst.env, id, 0, tst_alive, &other, err, sizeof(err));
    assert_int_equal(rc, MST_CONFLICT);
    assert_non_null(strstr(err, "owned by process"));
    assert_int_equal(other.nsteps, 0);

    tst_drive_init(&dr);
    assert_int_equal(tst_drive(&tst.env, id, &next, 0, &dr), MST_OK);
    assert_int_equal(dr.status, MST_ENGINE_DONE);
    assert_int_equal(dr.runs, 3);
    assert_int_equal(dr.retries, 0);

    /* the record */

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "complete");
    assert_int_equal(tst_int(rec, "progress"), 100);
    assert_int_equal(tst_int(rec, "owner"), 0);
    assert_int_equal(tst_int(rec, "lease_until"), 0);
    assert_true(tst_int(rec, "finished_at") >= tst_int(rec, "started_at"));
    assert_true(json_is_null(json_object_get(rec, "error")));
    assert_non_null(strstr(tst_str(rec, "result"), "hello maestro"));
    assert_non_null(strstr(tst_str(rec, "result"), "\"node\":\"c\""));
    assert_int_equal(tst_int(json_object_get(rec, "tokens"), "total"), 0);

    agents = json_object_get(rec, "agents");
    for (i = 0; i < 3; i++) {
        a = json_object_get(agents, nodes[i]);
        assert_non_null(a);
        assert_string_equal(tst_str(a, "status"), "complete");
        assert_string_equal(tst_str(a, "agent"), "echo");
        assert_int_equal(tst_int(a, "attempts"), 1);
        assert_int_equal(json_integer_value(json_object_get(a, "progress")), 100);
    }

    /* the events */

    events = tst_events(id);
    tst_assert_contiguous(id, events);

    ev = json_array_get(events, 0);
    assert_string_equal(tst_str(ev, "name"), "workflow_update");
    data = json_object_get(ev, "data");
    assert_string_equal(tst_str(data, "status"), "queued");
    assert_string_equal(tst_str(data, "id"), id);
    assert_string_equal(tst_str(data, "name"), "seq");

    ev = json_array_get(events, 1);
    assert_string_equal(tst_str(ev, "name"), "workflow_update");
    assert_string_equal(tst_str(json_object_get(ev, "data"), "status"),
                        "running");

    for (i = 0; i < 3; i++) {
        assert_int_equal(tst_begins(events, nodes[i]), 1);
        assert_int_equal(tst_node_status(events, nodes[i], "complete"), 1);
        assert_true(tst_status_seq(events, nodes[i], "executing")
                    < tst_status_seq(events, nodes[i], "complete"));
        if (i > 0) {
            assert_true(tst_status_seq(events, nodes[i - 1], "complete")
                        < tst_status_seq(events, nodes[i], "executing"));
        }
    }

    /* echo's log lines, one per step */
    assert_int_equal(tst_count(events, "log_entry", "level", "info"), 3);
    assert_true(tst_log_event(events, "echo: "));
    assert_int_equal(tst_count(events, "error", NULL, NULL), 0);
    assert_int_equal(tst_count(events, "done", NULL, NULL), 1);

    ev = tst_last_event(events);
    assert_string_equal(tst_str(ev, "name"), "done");
    data = json_object_get(ev, "data");
    assert_string_equal(tst_str(data, "status"), "complete");
    assert_string_equal(tst_str(data, "id"), id);
    assert_true(json_equal(json_object_get(data, "result"),
                           json_object_get(rec, "result")));

    /* the workflow_update right before "done" says complete, 100 */
    ev = json_array_get(events, json_array_size(events) - 2);
    assert_string_equal(tst_str(ev, "name"), "workflow_update");
    assert_string_equal(tst_str(json_object_get(ev, "data"), "status"),
                        "complete");
    assert_int_equal(tst_int(json_object_get(ev, "data"), "progress"), 100);

    /* checkpoints: create, claim, one per step; flushes write none */

    cps = tst_checkpoints(id);
    assert_int_equal(json_array_size(cps), 5);
    assert_int_equal(tst_int(rec, "checkpoint_seq"), 5);
    json_array_foreach(cps, i, cp) {
        assert_int_equal(tst_int(cp, "seq"), i + 1);
    }
    cp = json_object_get(tst_last_event(cps), "checkpoint");
    assert_string_equal(tst_str(cp, "status"), "complete");
    assert_int_equal(tst_int(cp, "steps_run"), 3);
    json_decref(cps);

    /* notify: after every commit with events, the last one last */
    assert_true(tst.notified >= 5);
    assert_int_equal(tst.notify_last, tst_int(rec, "last_event_id"));

    assert_true(tst_logged("complete"));
    assert_true(tst_logged(id));

    /* final: cannot be claimed or cancelled again */

    rc = mst_run_claim(&tst.env, id, 1, tst_alive, &other, err, sizeof(err));
    assert_int_equal(rc, MST_EINVAL);
    assert_non_null(strstr(err, "complete"));

    assert_false(mst_run_cancel_requested(&tst.env, id));

    json_decref(events);
    json_decref(rec);
    tst_drive_free(&dr);

    /* unknown workflow */
    rc = mst_run_claim(&tst.env, "wf_0000000000000000beef", 0, tst_alive,
                       &other, err, sizeof(err));
    assert_int_equal(rc, MST_NOTFOUND);
}


static void
test_inline_graph(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *rec;
    mst_graph_t  *g;
    tst_drive_t   dr;

    /* not among env->graphs: stored with the workflow and parsed again */

    g = tst_graph(tst_seq_json);

    tst_drive_init(&dr);
    tst_run(g, "inline prompt", 0, id, &dr, "complete");

    rec = tst_record(id);
    assert_true(json_is_true(json_object_get(rec, "inline")));
    /* kept apart from the record, which every step rewrites */
    assert_null(json_object_get(rec, "graph"));
    assert_non_null(strstr(tst_str(rec, "result"), "inline prompt"));
    json_decref(rec);

    assert_int_equal(dr.runs, 3);
    tst_drive_free(&dr);
    mst_graph_free(g);
}


static void
test_parallel_fan_in(void **state)
{
    char          id[MST_ID_LEN + 1];
    size_t        i;
    json_t       *events, *rec;
    mst_graph_t  *g;
    tst_drive_t   dr;
    const char   *nodes[] = { "a", "b", "c", "d" };

    g = tst_named(tst_fan_json);
    tst.env.flush_ms = 0;

    tst_drive_init(&dr);
    tst_run(g, "fan out", 1, id, &dr, "complete");

    assert_int_equal(dr.runs, 4);
    for (i = 0; i < 4; i++) {
        assert_int_equal(tst_ran(&dr, nodes[i]), 1);
    }

    events = tst_events(id);
    tst_assert_contiguous(id, events);

    for (i = 0; i < 4; i++) {
        assert_int_equal(tst_begins(events, nodes[i]), 1);
        assert_int_equal(tst_node_status(events, nodes[i], "complete"), 1);
    }

    /* d starts after both b and c completed */
    assert_true(tst_status_seq(events, "d", "executing")
                > tst_status_seq(events, "b", "complete"));
    assert_true(tst_status_seq(events, "d", "executing")
                > tst_status_seq(events, "c", "complete"));

    assert_int_equal(tst_count(events, "done", NULL, NULL), 1);

    rec = tst_record(id);
    assert_non_null(strstr(tst_str(rec, "result"), "\"node\":\"d\""));
    json_decref(rec);

    json_decref(events);
    tst_drive_free(&dr);
}


static void
test_parallel_concurrent(void **state)
{
    char          id[MST_ID_LEN + 1], node[8];
    size_t        i;
    json_t       *events, *rec, *a;
    int64_t       t0, elapsed;
    mst_graph_t  *g;
    tst_drive_t   dr;

    /* four 150 ms sleeps at once, each flushing a progress event every
       10 ms: many writers, one event sequence */

    g = tst_named(tst_wide_json);
    tst.env.flush_ms = 0;

    tst_drive_init(&dr);
    t0 = mst_mono_ms();
    tst_run(g, "wide", 1, id, &dr, "complete");
    elapsed = mst_mono_ms() - t0;

    assert_int_equal(dr.runs, 6);
    assert_int_equal(tst_ran(&dr, "d"), 1);

    /* they ran at the same time, not one after another (600 ms) */
    if (elapsed >= 500) {
        fail_msg("4 x 150 ms in parallel took %lld ms", (long long) elapsed);
    }

    events = tst_events(id);
    tst_assert_contiguous(id, events);

    rec = tst_record(id);

    for (i = 1; i <= 4; i++) {
        snprintf(node, sizeof(node), "s%zu", i);
        assert_int_equal(tst_begins(events, node), 1);
        assert_int_equal(tst_node_status(events, node, "complete"), 1);

        a = json_object_get(json_object_get(rec, "agents"), node);
        assert_true(tst_int(json_object_get(a, "metrics"), "execution_ms")
                    >= 140);
    }

    /* progress events flushed while running (data.current_task) */
    assert_true(tst_count(events, "agent_status", "current_task",
                          "sleeping") >= 8);

    assert_int_equal(tst_begins(events, "d"), 1);
    assert_string_equal(tst_str(tst_last_event(events), "name"), "done");

    json_decref(rec);
    json_decref(events);
    tst_drive_free(&dr);
}


static mst_graph_t *
tst_load_default(void)
{
    char          err[MST_ERRLEN];
    mst_graph_t  *g;

    if (access("conf/workflows/default.json", R_OK) == 0) {
        g = mst_graph_load("conf/workflows/default.json", NULL, NULL, err,
                           sizeof(err));
        if (g == NULL) {
            fail_msg("%s", err);
        }

    } else {
        g = tst_graph(tst_default_json);
    }

    assert_true(tst.env.ngraphs < 4);
    tst.graphs[tst.env.ngraphs++] = g;

    return g;
}


static void
test_foreach_default(void **state)
{
    char          id[MST_ID_LEN + 1];
    size_t        nsteps;
    json_t       *events, *rec, *cp, *st, *tokens, *ev;
    mst_graph_t  *g;
    tst_drive_t   dr;

    g = tst_load_default();
    assert_string_equal(mst_graph_name(g), "default");

    tst_drive_init(&dr);
    tst_run(g, "Explain how nginx handles many concurrent connections, "
            "then compare its event loop with Apache's process model.",
            1, id, &dr, "complete");

    rec = tst_record(id);

    assert_true(json_string_length(json_object_get(rec, "result")) > 0);
    if (strstr(tst_str(rec, "result"), "[maestro-offline]") == NULL) {
        fail_msg("result without the offline label: %s",
                 tst_str(rec, "result"));
    }

    tokens = json_object_get(rec, "tokens");
    assert_true(tst_int(tokens, "total") > 0);
    assert_int_equal(tst_int(tokens, "total"),
                     tst_int(tokens, "prompt")
                     + tst_int(tokens, "completion"));
    assert_true(tst_int(json_object_get(json_object_get(json_object_get(
        rec, "agents"), "llm"), "metrics"), "tokens") > 0);

    assert_string_equal(tst_str(json_object_get(json_object_get(rec,
        "agents"), "llm"), "status"), "complete");
    assert_string_equal(tst_str(json_object_get(json_object_get(rec,
        "agents"), "reviewer"), "status"), "complete");

    /* the plan fanned out: one llm step per plan step */

    cp = tst_checkpoint(id, NULL);
    st = json_object_get(cp, "state");
    nsteps = json_array_size(mst_json_path(st, "plan.steps"));
    assert_true(nsteps >= 1);
    assert_int_equal(json_array_size(mst_json_path(st, "outputs.llm")),
                     nsteps);
    assert_true(tst_ran(&dr, "llm") >= (int) nsteps);
    assert_true(tst_ran(&dr, "planner") == 1);
    assert_true(tst_ran(&dr, "reviewer") >= 1);
    json_decref(cp);

    events = tst_events(id);
    tst_assert_contiguous(id, events);

    /* streamed tokens, merged per batch, carried by "token" events */
    assert_true(tst_count(events, "token", "agent", "llm") > 0);

    /* a planning agent shows as "planning" while it runs */
    assert_int_equal(tst_begins(events, "planner"), 1);
    assert_true(tst_status_seq(events, "planner", "planning") > 0);

    ev = tst_last_event(events);
    assert_string_equal(tst_str(ev, "name"), "done");
    assert_true(json_equal(json_object_get(json_object_get(ev, "data"),
                                           "result"),
                           json_object_get(rec, "result")));

    json_decref(events);
    json_decref(rec);
    tst_drive_free(&dr);
}


static mst_graph_t *
tst_fail_graph(const char *config, int retry_max)
{
    char  text[512];

    snprintf(text, sizeof(text),
             "{\"name\": \"failing\", \"entry\": \"f\","
             " \"nodes\": {\"f\": {\"agent\": \"fail\", \"config\": %s,"
             "  \"retry\": {\"max\": %d, \"backoff_ms\": 10}},"
             "  \"after\": {\"agent\": \"noop\"}},"
             " \"edges\": [{\"from\": \"f\", \"to\": \"after\"}]}",
             config, retry_max);

    return tst_graph(text);
}


static void
test_fail_retry_succeeds(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *rec, *events, *a, *cp;
    mst_graph_t  *g;
    tst_drive_t   dr;

    g = tst_fail_graph("{\"fail_times\": 2}", 2);

    tst_drive_init(&dr);
    tst_run(g, "retry me", 0, id, &dr, "complete");

    assert_int_equal(tst_ran(&dr, "f"), 3);
    assert_int_equal(tst_ran(&dr, "after"), 1);
    assert_int_equal(dr.retries, 2);

    /* exponential backoff: 10 ms, then 20 ms */
    assert_int_equal(dr.first_retry_ms, 10);
    assert_int_equal(dr.max_retry_ms, 20);

    rec = tst_record(id);
    a = json_object_get(json_object_get(rec, "agents"), "f");
    assert_string_equal(tst_str(a, "status"), "complete");
    assert_int_equal(tst_int(a, "attempts"), 3);

    cp = tst_checkpoint(id, NULL);
    assert_int_equal(tst_int(mst_json_path(cp, "state.outputs.f"),
                             "attempt"), 3);
    json_decref(cp);

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    assert_int_equal(tst_node_status(events, "f", "waiting"), 2);
    assert_int_equal(tst_begins(events, "f"), 3);
    assert_int_equal(tst_node_status(events, "f", "complete"), 1);
    assert_true(tst_count(events, "log_entry", "level", "error") >= 2);
    assert_true(tst_log_event(events, "failing attempt 1"));
    assert_true(tst_log_event(events, "failing attempt 2"));
    assert_false(tst_log_event(events, "failing attempt 3"));
    assert_string_equal(tst_str(tst_last_event(events), "name"), "done");

    json_decref(events);
    json_decref(rec);
    tst_drive_free(&dr);
    mst_graph_free(g);
}


static void
test_fail_retry_exhausted(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *rec, *events, *ev, *data;
    mst_graph_t  *g;
    tst_drive_t   dr;

    g = tst_fail_graph("{\"fail_times\": 5}", 2);

    tst_drive_init(&dr);
    tst_run(g, "always failing", 0, id, &dr, "failed");

    assert_int_equal(tst_ran(&dr, "f"), 3);
    assert_int_equal(tst_ran(&dr, "after"), 0);
    assert_int_equal(dr.retries, 2);
    assert_int_equal(dr.status, MST_ENGINE_FAILED);

    rec = tst_record(id);
    assert_non_null(strstr(tst_str(rec, "error"), "f: "));
    assert_non_null(strstr(tst_str(rec, "error"), "failure"));
    assert_int_equal(tst_int(rec, "owner"), 0);
    assert_true(json_is_null(json_object_get(rec, "result")));
    assert_string_equal(tst_str(json_object_get(json_object_get(rec,
        "agents"), "f"), "status"), "error");
    assert_string_equal(tst_str(json_object_get(json_object_get(rec,
        "agents"), "after"), "status"), "idle");

    events = tst_events(id);
    tst_assert_contiguous(id, events);
    assert_int_equal(tst_node_status(events, "f", "waiting"), 2);
    assert_int_equal(tst_count(events, "done", NULL, NULL), 0);
    assert_int_equal(tst_count(events, "error", NULL, NULL), 1);

    ev = tst_last_event(events);
    data = json_object_get(ev, "data");
    assert_string_equal(tst_str(ev, "name"), "error");
    assert_string_equal(tst_str(data, "status"), "failed");
    assert_string_equal(tst_str(data, "error"), tst_str(rec, "error"));

    assert_true(tst_logged("failed"));

    json_decref(events);
    json_decref(rec);
    tst_drive_free(&dr);
    mst_graph_free(g);
}


static void
test_fail_permanent(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *rec, *events;
    mst_graph_t  *g;
    tst_drive_t   dr;

    g = tst_fail_graph("{\"fail_times\": 5, \"permanent\": true}", 2);

    tst_drive_init(&dr);
    tst_run(g, "permanent", 0, id, &dr, "failed");

    assert_int_equal(tst_ran(&dr, "f"), 1);
    assert_int_equal(dr.retries, 0);

    rec = tst_record(id);
    assert_non_null(strstr(tst_str(rec, "error"), "f: "));
    assert_non_null(strstr(tst_str(rec, "error"), "permanent"));

    events = tst_events(id);
    assert_int_equal(tst_node_status(events, "f", "waiting"), 0);
    assert_string_equal(tst_str(tst_last_event(events), "name"), "error");

    json_decref(events);
    json_decref(rec);
    tst_drive_free(&dr);
    mst_graph_free(g);
}


static void
test_memory_plugin(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *cp;
    mst_graph_t  *g;
    tst_drive_t   dr;

    /* the memory fixture counts its runs in its namespace: it persists
       across workflows */

    g = tst_named("{\"name\": \"mem\", \"entry\": \"m\", \"nodes\":"
                  " {\"m\": {\"agent\": \"memory\"}}, \"edges\": []}");

    tst_drive_init(&dr);
    tst_run(g, "one", 0, id, &dr, "complete");
    tst_drive_free(&dr);

    tst_drive_init(&dr);
    tst_run(g, "two", 0, id, &dr, "complete");
    tst_drive_free(&dr);

    cp = tst_checkpoint(id, NULL);
    assert_int_equal(tst_int(mst_json_path(cp, "state.outputs.m"), "count"),
                     2);
    json_decref(cp);
}


/* an agent's metrics.memory_bytes: what its plugin held at its peak */
static void
tst_memory_bytes(json_t *rec, const char *node, json_int_t *bytes)
{
    json_t  *metrics;

    metrics = mst_json_path(rec, "agents");
    metrics = json_object_get(json_object_get(metrics, node), "metrics");
    assert_non_null(json_object_get(metrics, "memory_bytes"));

    *bytes = tst_int(metrics, "memory_bytes");
}


static void
test_memory_bytes(void **state)
{
    char          id[MST_ID_LEN + 1];
    json_t       *rec;
    json_int_t    small, big, rounds;
    mst_graph_t  *g;
    tst_drive_t   dr;

    g = tst_named("{\"name\": \"memb\", \"entry\": \"s\", \"nodes\": {"
                  " \"s\": {\"agent\": \"alloc\","
                  "        \"config\": {\"bytes\": 16384}},"
                  " \"b\": {\"agent\": \"alloc\","
                  "        \"config\": {\"bytes\": 2097152}},"
                  " \"r\": {\"agent\": \"alloc\","
                  "        \"config\": {\"bytes\": 1048576, \"rounds\": 4}}},"
                  " \"edges\": [{\"from\": \"s\", \"to\": \"b\"},"
                  "  {\"from\": \"b\", \"to\": \"r\"}]}");

    tst_drive_init(&dr);
    tst_run(g, "memory", 0, id, &dr, "complete");
    tst_drive_free(&dr);

    rec = tst_record(id);
    tst_memory_bytes(rec, "s", &small);
    tst_memory_bytes(rec, "b", &big);
    tst_memory_bytes(rec, "r", &rounds);
    json_decref(rec);

    /* at least what the plugin held, not much more (1 KB pieces plus
       jansson's and malloc's overhead) */
    assert_true(small >= 16384);
    assert_true(small < 4 * 16384);
    assert_true(big >= 2097152);
    assert_true(big < 4 * 2097152);
    assert_true(big > small);

    /* the peak: four rounds of 1 MB held one at a time are not 4 MB */
    assert_true(rounds >= 1048576);
    assert_true(rounds < 2 * 1048576);
}


/* maestro_llm_price: exact names and "prefix*" */
static void
test_price(void **state)
{
    mst_run_env_t      env;
    const mst_price_t  prices[] = {
        { "gpt-4o", 2.5, 10.0 },
        { "claude-*", 3.0, 15.0 },
    };

    memset(&env, 0, sizeof(env));
    env.prices = prices;
    env.nprices = 2;

    assert_true(mst_run_price(&env, "gpt-4o", 1000000, 0) == 2.5);
    assert_true(mst_run_price(&env, "gpt-4o", 0, 2000000) == 20.0);
    assert_true(mst_run_price(&env, "claude-3-5-sonnet", 1000, 1000)
                == (3.0 * 1000 + 15.0 * 1000) / 1e6);
    /* no price: unknown, not free */
    assert_true(mst_run_price(&env, "gpt-4o-mini", 10, 10) < 0);
    assert_true(mst_run_price(&env, "maestro-offline", 10, 10) < 0);
}


static void
test_create_errors(void **state)
{
    int           rc;
    char          id[MST_ID_LEN + 1], err[MST_ERRLEN];
    json_t       *rec, *ctx, *cp;
    mst_graph_t  *g;
    mst_run_next_t  next;

    g = tst_named(tst_seq_json);

    /* context and user are kept in the state */
    ctx = json_pack("[{s:s, s:s}]", "name", "doc", "content", "text");
    rc = mst_run_create(&tst.env, g, "seq", "with context", ctx, "u-42", id,
                        &rec, err, sizeof(err));
    json_decref(ctx);
    assert_int_equal(rc, MST_OK);
    assert_string_equal(tst_str(rec, "user_id"), "u-42");
    json_decref(rec);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_str(mst_json_path(cp, "state.context.0"),
                                "content"), "text");
    assert_string_equal(tst_str(json_object_get(cp, "state"), "user_id"),
                        "u-42");
    json_decref(cp);

    /* an inline graph naming an agent that is not configured: the claim
       cannot build it and says why */
    g = tst_graph("{\"name\": \"ghost\", \"entry\": \"x\", \"nodes\":"
                  " {\"x\": {\"agent\": \"ghost\"}}, \"edges\": []}");
    rc = mst_run_create(&tst.env, g, "ghost", "p", NULL, NULL, id, &rec,
                        err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    json_decref(rec);

    err[0] = '\0';
    rc = mst_run_claim(&tst.env, id, 0, tst_alive, &next, err, sizeof(err));
    assert_int_not_equal(rc, MST_OK);
    assert_int_equal(next.nsteps, 0);
    assert_non_null(strstr(err, "ghost"));
    mst_graph_free(g);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_lookups, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_sequential, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_inline_graph, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_parallel_fan_in, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_parallel_concurrent, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_foreach_default, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_fail_retry_succeeds, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_fail_retry_exhausted, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_fail_permanent, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_memory_plugin, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_memory_bytes, tst_setup,
                                        tst_teardown),
        cmocka_unit_test(test_price),
        cmocka_unit_test_setup_teardown(test_create_errors, tst_setup,
                                        tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
