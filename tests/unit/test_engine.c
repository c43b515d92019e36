/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_engine: supersteps, fan-out / fan-in, foreach, loops, step limit,
 * retries, recovery, progress, cancel, and checkpoints that go through
 * json_dumps() / json_loads() between every call.
 */

#include "mst_test.h"

#include "mst_engine.h"


#define TST_MAX  64


static const char *tst_seq =
    "{\"nodes\": {\"a\": {\"agent\": \"echo\"},"
    " \"b\": {\"agent\": \"echo\", \"config\": {\"t\": 2, \"own\": true}},"
    " \"c\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
    " {\"from\": \"b\", \"to\": \"c\"}]}";

static const char *tst_fan =
    "{\"nodes\": {\"a\": {\"agent\": \"echo\"}, \"b\": {\"agent\": \"echo\"},"
    " \"c\": {\"agent\": \"echo\"}, \"d\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
    " {\"from\": \"a\", \"to\": \"c\"}, {\"from\": \"b\", \"to\": \"d\"},"
    " {\"from\": \"c\", \"to\": \"d\"}]}";

static const char *tst_foreach =
    "{\"nodes\": {\"planner\": {\"agent\": \"planner\"},"
    " \"llm\": {\"agent\": \"llm\", \"foreach\": \"plan.steps\","
    "           \"retry\": {\"max\": 1}},"
    " \"reviewer\": {\"agent\": \"reviewer\"}},"
    " \"edges\": [{\"from\": \"planner\", \"to\": \"llm\"},"
    " {\"from\": \"llm\", \"to\": \"reviewer\"}]}";

static const char *tst_loop =
    "{\"entry\": \"llm\", \"nodes\": {\"llm\": {\"agent\": \"llm\"},"
    " \"reviewer\": {\"agent\": \"reviewer\"}},"
    " \"edges\": [{\"from\": \"llm\", \"to\": \"reviewer\"},"
    " {\"from\": \"reviewer\", \"to\": \"llm\","
    "  \"when\": {\"path\": \"passes\", \"lt\": 2}},"
    " {\"from\": \"reviewer\", \"to\": \"$end\", \"else\": true}]}";

static const char *tst_endless =
    "{\"entry\": \"a\", \"max_steps\": 5,"
    " \"nodes\": {\"a\": {\"agent\": \"echo\"}, \"b\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
    " {\"from\": \"b\", \"to\": \"a\","
    "  \"when\": {\"path\": \"stop\", \"exists\": false}},"
    " {\"from\": \"b\", \"to\": \"$end\", \"else\": true}]}";

static const char *tst_retry =
    "{\"nodes\": {\"a\": {\"agent\": \"echo\", \"retry\": {\"max\": 2}},"
    " \"b\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"}]}";


typedef struct {
    json_t      *output;        /* new reference or NULL */
    json_t      *patch;         /* new reference or NULL */
    const char  *error;         /* fails the attempt when set */
    int          retryable;
} tst_result_t;

typedef void (*tst_handler_pt)(json_t *input, tst_result_t *r, void *arg);

typedef struct {
    int          roundtrip;     /* dumps / loads cp between calls */
    int          reverse;       /* complete a superstep last step first */
    int          rc;            /* last engine result */
    int          calls;
    char         log[2048];
    int          progress[TST_MAX * 4];
    int          nprogress;
} tst_run_t;


static mst_graph_t *
tst_graph(const char *text)
{
    char          err[MST_ERRLEN];
    json_t       *def;
    mst_graph_t  *g;

    def = json_loads(text, 0, NULL);
    assert_non_null(def);

    g = mst_graph_parse(def, NULL, NULL, err, sizeof(err));
    json_decref(def);

    if (g == NULL) {
        fail_msg("graph: %s", err);
    }

    return g;
}


static json_t *
tst_rt(json_t *cp, int on)
{
    char          *s;
    json_t        *copy;
    json_error_t   jerr;

    if (!on) {
        return cp;
    }

    s = json_dumps(cp, JSON_COMPACT);
    assert_non_null(s);
    json_decref(cp);

    copy = json_loads(s, 0, &jerr);
    free(s);
    assert_non_null(copy);

    return copy;
}


static const char *
tst_status(json_t *cp)
{
    const char  *s;

    s = json_string_value(json_object_get(cp, "status"));
    assert_non_null(s);

    return s;
}


static const char *
tst_error(json_t *cp)
{
    const char  *s;

    s = json_string_value(json_object_get(cp, "error"));

    return s != NULL ? s : "";
}


static json_int_t
tst_int(json_t *obj, const char *path)
{
    json_t  *v;

    v = mst_json_path(obj, path);
    if (!json_is_integer(v)) {
        fail_msg("no integer at %s", path);
    }

    return json_integer_value(v);
}


/* how many steps are ready */

static size_t
tst_nready(const mst_graph_t *g, json_t *cp)
{
    mst_step_t  steps[TST_MAX];

    return mst_engine_ready(g, cp, steps, TST_MAX);
}


/*
 * Runs a workflow to its end: each round takes every ready step, begins
 * them all (a superstep runs in parallel), then hands each to the handler
 * and folds the result back, in order or reversed.
 */

static json_t *
tst_run(const mst_graph_t *g, json_t *cp, tst_handler_pt h, void *arg,
    tst_run_t *run)
{
    int           idx[TST_MAX], rc;
    char          names[TST_MAX][80], entry[100];
    size_t        n, i, k;
    json_t       *inputs[TST_MAX];
    mst_step_t    steps[TST_MAX];
    tst_result_t  r;

    run->rc = MST_ENGINE_CONTINUE;

    for ( ;; ) {
        run->progress[run->nprogress++] = mst_engine_progress(g, cp);

        n = mst_engine_ready(g, cp, steps, TST_MAX);
        if (n == 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            snprintf(names[i], sizeof(names[i]), "%s", steps[i].node->name);
            idx[i] = steps[i].index;

            assert_int_equal(mst_engine_begin(cp, names[i], idx[i]), MST_OK);

            inputs[i] = mst_engine_input(g, cp, &steps[i], NULL, "wf_test");
            assert_non_null(inputs[i]);
        }

        cp = tst_rt(cp, run->roundtrip);

        for (k = 0; k < n; k++) {
            i = run->reverse ? n - 1 - k : k;

            memset(&r, 0, sizeof(r));
            h(inputs[i], &r, arg);
            run->calls++;

            if (idx[i] >= 0) {
                snprintf(entry, sizeof(entry), "%s%s[%d]",
                         run->log[0] ? "," : "", names[i], idx[i]);
            } else {
                snprintf(entry, sizeof(entry), "%s%s",
                         run->log[0] ? "," : "", names[i]);
            }

            strncat(run->log, entry, sizeof(run->log) - strlen(run->log) - 1);

            if (r.error != NULL) {
                rc = mst_engine_fail(g, cp, names[i], idx[i], r.error,
                                     r.retryable);
            } else {
                rc = mst_engine_complete(g, cp, names[i], idx[i], r.output,
                                         r.patch);
            }

            json_decref(r.output);
            json_decref(r.patch);
            json_decref(inputs[i]);
            inputs[i] = NULL;

            cp = tst_rt(cp, run->roundtrip);

            assert_true(rc >= 0);
            run->rc = rc;

            if (rc == MST_ENGINE_DONE || rc == MST_ENGINE_FAILED) {
                for (i = 0; i < n; i++) {
                    json_decref(inputs[i]);
                }

                run->progress[run->nprogress++] = mst_engine_progress(g, cp);
                return cp;
            }
        }
    }

    return cp;
}


/* output {"by": node, "attempt": n}; node b patches state */

static void
tst_h_echo(json_t *in, tst_result_t *r, void *arg)
{
    const char  *node;

    node = json_string_value(json_object_get(in, "node"));

    r->output = json_pack("{s:s, s:O}", "by", node,
                          "attempt", json_object_get(in, "attempt"));

    if (strcmp(node, "b") == 0) {
        r->patch = json_pack("{s:i, s:s, s:i, s:n}", "x", 1,
                             "prompt", "hacked", "outputs", 5, "context");
    }
}


static void
tst_sequential(int roundtrip, json_t **final, char *log)
{
    json_t       *cp, *input;
    tst_run_t     run;
    mst_graph_t  *g;

    memset(&run, 0, sizeof(run));
    run.roundtrip = roundtrip;

    g = tst_graph(tst_seq);

    input = json_pack("{s:s, s:[s], s:i}", "prompt", "hello",
                      "context", "c1", "outputs", 9);
    cp = mst_engine_start(g, input);
    json_decref(input);
    assert_non_null(cp);

    cp = tst_run(g, cp, tst_h_echo, NULL, &run);

    assert_int_equal(run.rc, MST_ENGINE_DONE);
    assert_string_equal(run.log, "a,b,c");
    assert_string_equal(tst_status(cp), "complete");
    assert_int_equal(tst_int(cp, "steps_run"), 3);
    assert_int_equal(tst_int(cp, "superstep"), 3);
    assert_int_equal(tst_int(cp, "visits.a"), 1);
    assert_int_equal(tst_int(cp, "visits.c"), 1);
    assert_true(json_is_null(json_object_get(cp, "error")));

    /* outputs by node, patch merged without the reserved keys */
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.outputs.a.by")), "a");
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.outputs.c.by")), "c");
    assert_int_equal(tst_int(cp, "state.x"), 1);
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.prompt")), "hello");
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.context.0")), "c1");
    assert_int_equal(json_object_size(
        mst_json_path(cp, "state.outputs")), 3);

    assert_int_equal(mst_engine_progress(g, cp), 100);

    /* nothing more to do */
    assert_int_equal(tst_nready(g, cp), 0);

    if (final != NULL) {
        *final = json_incref(cp);
        strcpy(log, run.log);
    }

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_sequential(void **ctx)
{
    tst_sequential(0, NULL, NULL);
}


static void
test_start(void **ctx)
{
    json_t       *cp, *input, *v;
    mst_step_t    steps[4];
    mst_graph_t  *g;

    g = tst_graph(tst_seq);

    /* input is copied, "outputs" replaced */

    input = json_pack("{s:s, s:{s:i}}", "prompt", "p", "outputs", "x", 1);
    cp = mst_engine_start(g, input);
    assert_non_null(cp);

    json_object_set_new(input, "prompt", json_string("changed"));
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.prompt")), "p");
    json_decref(input);

    assert_int_equal(json_object_size(mst_json_path(cp, "state.outputs")), 0);
    assert_string_equal(tst_status(cp), "running");
    assert_int_equal(tst_int(cp, "superstep"), 1);
    assert_int_equal(tst_int(cp, "steps_run"), 0);
    assert_int_equal(tst_int(cp, "visits.a"), 1);
    assert_null(mst_json_path(cp, "visits.b"));
    assert_true(json_is_null(json_object_get(cp, "error")));

    v = json_object_get(cp, "frontier");
    assert_int_equal(json_array_size(v), 1);
    v = json_array_get(v, 0);
    assert_string_equal(json_string_value(json_object_get(v, "node")), "a");
    assert_string_equal(json_string_value(json_object_get(v, "status")),
                        "pending");
    assert_int_equal(json_integer_value(json_object_get(v, "attempts")), 0);
    assert_null(json_object_get(v, "index"));
    assert_null(json_object_get(v, "item"));

    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 1);
    assert_string_equal(steps[0].node->name, "a");
    assert_int_equal(steps[0].index, -1);
    assert_null(steps[0].item);
    assert_int_equal(steps[0].attempts, 0);

    /* max 0: nothing filled */
    assert_int_equal(mst_engine_ready(g, cp, steps, 0), 0);

    assert_int_equal(mst_engine_progress(g, cp), 0);

    json_decref(cp);

    /* NULL input: empty state; a non-object input is refused */

    cp = mst_engine_start(g, NULL);
    assert_non_null(cp);
    assert_true(json_is_object(mst_json_path(cp, "state.outputs")));
    json_decref(cp);

    input = json_string("x");
    assert_null(mst_engine_start(g, input));
    json_decref(input);

    mst_graph_free(g);
}


static void
test_input(void **ctx)
{
    json_t       *cp, *in, *agent_config, *expect;
    mst_step_t    steps[4];
    mst_graph_t  *g;

    g = tst_graph(tst_seq);

    in = json_pack("{s:s}", "prompt", "hi");
    cp = mst_engine_start(g, in);
    json_decref(in);

    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 1);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);

    /* a's output was NULL: stored as null */
    assert_true(json_is_null(mst_json_path(cp, "state.outputs.a")));

    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 1);
    assert_string_equal(steps[0].node->name, "b");
    assert_int_equal(mst_engine_begin(cp, "b", -1), MST_OK);

    agent_config = json_pack("{s:s, s:i}", "model", "m", "t", 1);
    in = mst_engine_input(g, cp, &steps[0], agent_config, "wf_1");
    assert_non_null(in);

    assert_string_equal(json_string_value(json_object_get(in, "node")), "b");
    assert_string_equal(json_string_value(json_object_get(in, "agent")),
                        "echo");
    assert_string_equal(json_string_value(json_object_get(in,
                        "workflow_id")), "wf_1");
    assert_int_equal(tst_int(in, "attempt"), 1);
    assert_null(json_object_get(in, "item"));
    assert_null(json_object_get(in, "index"));

    /* node config wins over the agent's */
    expect = json_pack("{s:s, s:i, s:b}", "model", "m", "t", 2, "own", 1);
    assert_true(json_equal(json_object_get(in, "config"), expect));
    json_decref(expect);

    /* the state is a copy: changing it does not touch the checkpoint */
    assert_true(json_equal(json_object_get(in, "state"),
                           json_object_get(cp, "state")));
    json_object_set_new(json_object_get(in, "state"), "prompt",
                        json_string("changed"));
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.prompt")), "hi");
    json_decref(in);

    /* no configs at all, no workflow id */
    json_decref(agent_config);
    assert_int_equal(mst_engine_complete(g, cp, "b", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 1);
    assert_int_equal(mst_engine_begin(cp, "c", -1), MST_OK);

    in = mst_engine_input(g, cp, &steps[0], NULL, NULL);
    assert_non_null(in);
    assert_int_equal(json_object_size(json_object_get(in, "config")), 0);
    assert_true(json_is_null(json_object_get(in, "workflow_id")));
    json_decref(in);

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_fan_in(void **ctx)
{
    json_t       *cp;
    mst_step_t    steps[4];
    mst_graph_t  *g;

    g = tst_graph(tst_fan);
    cp = mst_engine_start(g, NULL);

    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);

    /* b and c in one superstep */
    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 2);
    assert_string_equal(steps[0].node->name, "b");
    assert_string_equal(steps[1].node->name, "c");
    assert_int_equal(tst_int(cp, "superstep"), 2);

    assert_int_equal(mst_engine_begin(cp, "b", -1), MST_OK);
    assert_int_equal(mst_engine_begin(cp, "c", -1), MST_OK);
    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 0);

    /* c done first; d waits for b */
    assert_int_equal(mst_engine_complete(g, cp, "c", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 0);
    assert_null(mst_json_path(cp, "visits.d"));

    assert_int_equal(mst_engine_complete(g, cp, "b", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);

    /* d once */
    assert_int_equal(mst_engine_ready(g, cp, steps, 4), 1);
    assert_string_equal(steps[0].node->name, "d");
    assert_int_equal(json_array_size(json_object_get(cp, "frontier")), 1);
    assert_int_equal(tst_int(cp, "visits.d"), 1);
    assert_int_equal(tst_int(cp, "superstep"), 3);

    assert_int_equal(mst_engine_begin(cp, "d", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "d", -1, NULL, NULL),
                     MST_ENGINE_DONE);
    assert_int_equal(tst_int(cp, "steps_run"), 4);
    assert_string_equal(tst_status(cp), "complete");

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_progress(void **ctx)
{
    int           i;
    json_t       *cp;
    tst_run_t     run;
    mst_graph_t  *g;

    memset(&run, 0, sizeof(run));

    g = tst_graph(tst_fan);
    cp = mst_engine_start(g, NULL);

    cp = tst_run(g, cp, tst_h_echo, NULL, &run);
    assert_int_equal(run.rc, MST_ENGINE_DONE);
    assert_string_equal(run.log, "a,b,c,d");

    /* 0 first, 100 only at the end, never going back */
    assert_true(run.nprogress >= 4);
    assert_int_equal(run.progress[0], 0);
    assert_int_equal(run.progress[run.nprogress - 1], 100);

    for (i = 1; i < run.nprogress; i++) {
        assert_true(run.progress[i] >= run.progress[i - 1]);
        if (i < run.nprogress - 1) {
            assert_true(run.progress[i] < 100);
        }
    }

    /* strictly between: some progress was reported mid-way */
    assert_true(run.progress[1] > 0 && run.progress[1] < 100);

    json_decref(cp);
    mst_graph_free(g);
}


/* planner: plan from arg; llm: "done:<item>"; reviewer: counts outputs */

static void
tst_h_plan(json_t *in, tst_result_t *r, void *arg)
{
    const char  *node;
    char         buf[128];

    node = json_string_value(json_object_get(in, "node"));

    if (strcmp(node, "planner") == 0) {
        r->patch = json_loads((const char *) arg, 0, NULL);
        assert_non_null(r->patch);
        return;
    }

    if (strcmp(node, "llm") == 0) {
        assert_true(json_is_integer(json_object_get(in, "index")));
        snprintf(buf, sizeof(buf), "done:%s",
                 json_string_value(json_object_get(in, "item")));
        r->output = json_string(buf);
        return;
    }

    r->output = json_integer((json_int_t) json_array_size(
                    mst_json_path(in, "state.outputs.llm")));
}


static void
tst_foreach_run(int roundtrip, json_t **final, char *log)
{
    json_t       *cp, *expect;
    tst_run_t     run;
    mst_graph_t  *g;

    memset(&run, 0, sizeof(run));
    run.roundtrip = roundtrip;
    run.reverse = 1;

    g = tst_graph(tst_foreach);
    cp = mst_engine_start(g, NULL);

    cp = tst_run(g, cp, tst_h_plan,
                 "{\"plan\": {\"steps\": [\"s0\", \"s1\", \"s2\"]}}", &run);

    assert_int_equal(run.rc, MST_ENGINE_DONE);

    /* out of order completion, outputs in item order */
    assert_string_equal(run.log, "planner,llm[2],llm[1],llm[0],reviewer");

    expect = json_pack("[s, s, s]", "done:s0", "done:s1", "done:s2");
    assert_true(json_equal(mst_json_path(cp, "state.outputs.llm"), expect));
    json_decref(expect);

    assert_int_equal(tst_int(cp, "state.outputs.reviewer"), 3);
    assert_int_equal(tst_int(cp, "steps_run"), 5);
    assert_int_equal(tst_int(cp, "visits.llm"), 1);
    assert_int_equal(tst_int(cp, "superstep"), 3);

    if (final != NULL) {
        *final = json_incref(cp);
        strcpy(log, run.log);
    }

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_foreach(void **ctx)
{
    json_t       *cp, *in, *v;
    mst_step_t    steps[8];
    mst_graph_t  *g;

    tst_foreach_run(0, NULL, NULL);

    /* step by step: the steps, their items, partial outputs */

    g = tst_graph(tst_foreach);
    cp = mst_engine_start(g, NULL);

    assert_int_equal(mst_engine_begin(cp, "planner", -1), MST_OK);
    v = json_loads("{\"plan\": {\"steps\": [{\"q\": 1}, {\"q\": 2}]}}", 0,
                   NULL);
    assert_int_equal(mst_engine_complete(g, cp, "planner", -1, NULL, v),
                     MST_ENGINE_CONTINUE);

    /* the item is a copy, not the patch's value */
    json_object_set_new(json_array_get(mst_json_path(v, "plan.steps"), 0),
                        "q", json_integer(99));
    json_decref(v);

    assert_int_equal(mst_engine_ready(g, cp, steps, 8), 2);
    assert_int_equal(steps[0].index, 0);
    assert_int_equal(steps[1].index, 1);
    assert_int_equal(tst_int(steps[0].item, "q"), 1);
    assert_int_equal(tst_int(steps[1].item, "q"), 2);
    assert_int_equal(tst_int(cp, "state.plan.steps.0.q"), 1);

    assert_int_equal(mst_engine_begin(cp, "llm", 1), MST_OK);
    in = mst_engine_input(g, cp, &steps[1], NULL, "wf");
    assert_int_equal(tst_int(in, "index"), 1);
    assert_int_equal(tst_int(in, "item.q"), 2);
    json_decref(in);

    /* a non-foreach index does not name a foreach step */
    assert_int_equal(mst_engine_begin(cp, "llm", -1), MST_NOTFOUND);
    assert_int_equal(mst_engine_begin(cp, "llm", 2), MST_NOTFOUND);

    v = json_string("B");
    assert_int_equal(mst_engine_complete(g, cp, "llm", 1, v, NULL),
                     MST_ENGINE_CONTINUE);
    json_decref(v);

    /* slot 0 still null */
    assert_int_equal(json_array_size(mst_json_path(cp, "state.outputs.llm")),
                     2);
    assert_true(json_is_null(mst_json_path(cp, "state.outputs.llm.0")));
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.outputs.llm.1")), "B");

    assert_int_equal(mst_engine_begin(cp, "llm", 0), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "llm", 0, NULL, NULL),
                     MST_ENGINE_CONTINUE);

    assert_int_equal(mst_engine_ready(g, cp, steps, 8), 1);
    assert_string_equal(steps[0].node->name, "reviewer");

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_foreach_empty(void **ctx)
{
    json_t       *cp, *in;
    tst_run_t     run;
    mst_graph_t  *g;

    /* planner produces an empty plan: llm runs 0 times, reviewer runs */

    memset(&run, 0, sizeof(run));
    g = tst_graph(tst_foreach);
    cp = mst_engine_start(g, NULL);

    cp = tst_run(g, cp, tst_h_plan, "{\"plan\": {\"steps\": []}}", &run);
    assert_int_equal(run.rc, MST_ENGINE_DONE);
    assert_string_equal(run.log, "planner,reviewer");
    assert_int_equal(tst_int(cp, "visits.llm"), 1);
    assert_true(json_is_array(mst_json_path(cp, "state.outputs.llm")));
    assert_int_equal(tst_int(cp, "state.outputs.reviewer"), 0);
    assert_int_equal(tst_int(cp, "steps_run"), 2);

    json_decref(cp);

    /* no plan at all: same */

    memset(&run, 0, sizeof(run));
    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_plan, "{\"other\": 1}", &run);
    assert_int_equal(run.rc, MST_ENGINE_DONE);
    assert_string_equal(run.log, "planner,reviewer");
    json_decref(cp);

    /* a plan that is not an array fails the workflow */

    memset(&run, 0, sizeof(run));
    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_plan, "{\"plan\": {\"steps\": \"s\"}}", &run);
    assert_int_equal(run.rc, MST_ENGINE_FAILED);
    assert_string_equal(tst_status(cp), "failed");
    assert_string_equal(tst_error(cp),
                        "llm: \"foreach\" path \"plan.steps\" is not an array");
    json_decref(cp);

    mst_graph_free(g);

    /* the entry itself has nothing to do: complete at start */

    g = tst_graph("{\"nodes\": {\"x\": {\"agent\": \"e\", \"foreach\": \"l\"}},"
                  " \"edges\": []}");
    in = json_pack("{s:[]}", "l");
    cp = mst_engine_start(g, in);
    json_decref(in);
    assert_non_null(cp);
    assert_string_equal(tst_status(cp), "complete");
    assert_int_equal(mst_engine_progress(g, cp), 100);
    assert_int_equal(tst_nready(g, cp), 0);
    json_decref(cp);
    mst_graph_free(g);

    /* an empty entry fires its edges at once */

    g = tst_graph("{\"nodes\": {\"x\": {\"agent\": \"e\", \"foreach\": \"l\"},"
                  " \"y\": {\"agent\": \"e\"}},"
                  " \"edges\": [{\"from\": \"x\", \"to\": \"y\"}]}");
    cp = mst_engine_start(g, NULL);
    assert_string_equal(tst_status(cp), "running");
    assert_int_equal(json_array_size(json_object_get(cp, "frontier")), 1);
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.node")), "y");
    assert_int_equal(tst_int(cp, "visits.x"), 1);
    assert_int_equal(tst_int(cp, "visits.y"), 1);
    json_decref(cp);
    mst_graph_free(g);

    /* an empty node looping on itself terminates */

    g = tst_graph("{\"entry\": \"x\","
                  " \"nodes\": {\"x\": {\"agent\": \"e\", \"foreach\": \"l\"}},"
                  " \"edges\": [{\"from\": \"x\", \"to\": \"x\","
                  " \"when\": {\"path\": \"l\", \"exists\": false}},"
                  " {\"from\": \"x\", \"to\": \"$end\", \"else\": true}]}");
    cp = mst_engine_start(g, NULL);
    assert_non_null(cp);
    assert_string_equal(tst_status(cp), "complete");
    json_decref(cp);
    mst_graph_free(g);
}


/* reviewer counts passes in the state */

static void
tst_h_review(json_t *in, tst_result_t *r, void *arg)
{
    json_t      *v;
    const char  *node;

    node = json_string_value(json_object_get(in, "node"));

    if (strcmp(node, "reviewer") != 0) {
        r->output = json_string("draft");
        return;
    }

    v = mst_json_path(in, "state.passes");
    r->patch = json_pack("{s:I}", "passes",
                         (json_int_t) (json_is_integer(v)
                                       ? json_integer_value(v) + 1 : 1));
}


static void
tst_loop_run(int roundtrip, json_t **final, char *log)
{
    json_t       *cp;
    tst_run_t     run;
    mst_graph_t  *g;

    memset(&run, 0, sizeof(run));
    run.roundtrip = roundtrip;

    g = tst_graph(tst_loop);
    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_review, NULL, &run);

    assert_int_equal(run.rc, MST_ENGINE_DONE);
    assert_string_equal(run.log, "llm,reviewer,llm,reviewer");
    assert_int_equal(tst_int(cp, "state.passes"), 2);
    assert_int_equal(tst_int(cp, "visits.llm"), 2);
    assert_int_equal(tst_int(cp, "visits.reviewer"), 2);
    assert_int_equal(tst_int(cp, "superstep"), 4);

    if (final != NULL) {
        *final = json_incref(cp);
        strcpy(log, run.log);
    }

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_loop(void **ctx)
{
    tst_loop_run(0, NULL, NULL);
}


static void
test_max_steps(void **ctx)
{
    json_t       *cp, *in;
    tst_run_t     run;
    mst_graph_t  *g;

    memset(&run, 0, sizeof(run));

    g = tst_graph(tst_endless);
    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_echo, NULL, &run);

    assert_int_equal(run.rc, MST_ENGINE_FAILED);
    assert_string_equal(run.log, "a,b,a,b,a");
    assert_string_equal(tst_status(cp), "failed");
    assert_string_equal(tst_error(cp), "step limit reached (max_steps 5)");
    assert_int_equal(tst_int(cp, "steps_run"), 5);

    /* a failed workflow takes nothing more */
    assert_int_equal(tst_nready(g, cp), 0);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_EINVAL);

    json_decref(cp);
    mst_graph_free(g);

    /* a foreach wider than the budget fails at start */

    g = tst_graph("{\"max_steps\": 2, \"nodes\": {\"x\": {\"agent\": \"e\","
                  " \"foreach\": \"l\"}}, \"edges\": []}");
    in = json_pack("{s:[i, i, i]}", "l", 1, 2, 3);
    cp = mst_engine_start(g, in);
    json_decref(in);
    assert_non_null(cp);
    assert_string_equal(tst_status(cp), "failed");
    assert_string_equal(tst_error(cp), "step limit reached (max_steps 2)");

    json_decref(cp);

    /* exactly the budget is fine */

    in = json_pack("{s:[i, i]}", "l", 1, 2);
    cp = mst_engine_start(g, in);
    json_decref(in);
    assert_string_equal(tst_status(cp), "running");
    json_decref(cp);

    mst_graph_free(g);
}


typedef struct {
    const char  *node;
    int          fail_times;    /* attempts that fail */
    int          retryable;
    int          seen[8];       /* "attempt" of each call */
    int          nseen;
} tst_flaky_t;


static void
tst_h_flaky(json_t *in, tst_result_t *r, void *arg)
{
    int           attempt;
    tst_flaky_t  *f;

    f = arg;

    if (strcmp(json_string_value(json_object_get(in, "node")), f->node)
        != 0)
    {
        return;
    }

    attempt = (int) tst_int(in, "attempt");
    f->seen[f->nseen++] = attempt;

    if (attempt <= f->fail_times) {
        r->error = "boom";
        r->retryable = f->retryable;
        return;
    }

    r->output = json_string("ok");
}


static void
tst_retry_run(int roundtrip, json_t **final, char *log)
{
    json_t       *cp;
    tst_run_t     run;
    tst_flaky_t   f;
    mst_graph_t  *g;

    memset(&run, 0, sizeof(run));
    memset(&f, 0, sizeof(f));
    run.roundtrip = roundtrip;
    f.node = "a";
    f.fail_times = 2;
    f.retryable = 1;

    g = tst_graph(tst_retry);
    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_flaky, &f, &run);

    assert_int_equal(run.rc, MST_ENGINE_DONE);
    assert_string_equal(run.log, "a,a,a,b");
    assert_int_equal(f.nseen, 3);
    assert_int_equal(f.seen[0], 1);
    assert_int_equal(f.seen[1], 2);
    assert_int_equal(f.seen[2], 3);
    assert_string_equal(json_string_value(
        mst_json_path(cp, "state.outputs.a")), "ok");
    assert_int_equal(tst_int(cp, "steps_run"), 2);

    if (final != NULL) {
        *final = json_incref(cp);
        strcpy(log, run.log);
    }

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_retry(void **ctx)
{
    json_t       *cp;
    mst_step_t    steps[2];
    mst_graph_t  *g;

    tst_retry_run(0, NULL, NULL);

    /* the RETRY result and the step's state in between */

    g = tst_graph(tst_retry);
    cp = mst_engine_start(g, NULL);

    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "timeout", 1),
                     MST_ENGINE_RETRY);
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.status")), "pending");
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.error")), "timeout");
    assert_string_equal(tst_status(cp), "running");

    assert_int_equal(mst_engine_ready(g, cp, steps, 2), 1);
    assert_int_equal(steps[0].attempts, 1);

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_retry_exhausted(void **ctx)
{
    json_t       *cp;
    tst_run_t     run;
    tst_flaky_t   f;
    mst_graph_t  *g;

    /* retry.max 2: three attempts, then the workflow fails */

    memset(&run, 0, sizeof(run));
    memset(&f, 0, sizeof(f));
    f.node = "a";
    f.fail_times = 100;
    f.retryable = 1;

    g = tst_graph(tst_retry);
    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_flaky, &f, &run);

    assert_int_equal(run.rc, MST_ENGINE_FAILED);
    assert_string_equal(run.log, "a,a,a");
    assert_string_equal(tst_status(cp), "failed");
    assert_string_equal(tst_error(cp), "a: boom");
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.status")), "failed");
    assert_int_equal(tst_int(cp, "frontier.0.attempts"), 3);

    /* late results are refused */
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_EINVAL);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "x", 1), MST_EINVAL);
    json_decref(cp);

    /* not retryable: fails at once despite retry.max */

    memset(&run, 0, sizeof(run));
    memset(&f, 0, sizeof(f));
    f.node = "a";
    f.fail_times = 100;

    cp = mst_engine_start(g, NULL);
    cp = tst_run(g, cp, tst_h_flaky, &f, &run);
    assert_int_equal(run.rc, MST_ENGINE_FAILED);
    assert_string_equal(run.log, "a");
    assert_string_equal(tst_error(cp), "a: boom");
    json_decref(cp);

    mst_graph_free(g);

    /* a foreach step names its index; retry.max 1 there */

    memset(&run, 0, sizeof(run));
    memset(&f, 0, sizeof(f));
    f.node = "llm";
    f.fail_times = 100;
    f.retryable = 1;

    g = tst_graph(tst_foreach);
    cp = mst_engine_start(g, NULL);
    json_object_set_new(json_object_get(cp, "state"), "plan",
                        json_pack("{s:[s]}", "steps", "only"));
    cp = tst_run(g, cp, tst_h_flaky, &f, &run);
    assert_int_equal(run.rc, MST_ENGINE_FAILED);
    assert_string_equal(run.log, "planner,llm[0],llm[0]");
    assert_string_equal(tst_error(cp), "llm[0]: boom");
    json_decref(cp);

    mst_graph_free(g);
}


/* a frontier step's field, or NULL */
static json_t *
tst_step_field(json_t *cp, size_t i, const char *key)
{
    return json_object_get(json_array_get(json_object_get(cp, "frontier"),
                                          i), key);
}


/* a running step dies with its worker, isolated or not */
static int
tst_die(const mst_graph_t *g, json_t *cp, const char *node, int index,
    int isolated)
{
    assert_int_equal(mst_engine_begin(cp, node, index), MST_OK);

    if (isolated) {
        assert_int_equal(mst_engine_isolate(cp, node, index), MST_OK);
    }

    return mst_engine_recover(g, cp);
}


static void
test_recover(void **ctx)
{
    json_t       *cp;
    mst_step_t    steps[2];
    mst_graph_t  *g;

    g = tst_graph(tst_retry);       /* a: retry.max 2; b: 0 */
    cp = mst_engine_start(g, NULL);

    /* nothing running: nothing to recover */
    assert_int_equal(mst_engine_recover(g, cp), 0);
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.status")), "pending");
    assert_int_equal(mst_engine_ready(g, cp, steps, 2), 1);
    assert_false(steps[0].suspect);

    /* a death while it ran beside others: a suspect, not its fault */
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    cp = tst_rt(cp, 1);
    assert_int_equal(mst_engine_recover(g, cp), 1);
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.status")), "pending");
    assert_true(json_is_true(tst_step_field(cp, 0, "suspect")));
    assert_int_equal(tst_int(cp, "frontier.0.unattributed"), 1);
    assert_null(tst_step_field(cp, 0, "deaths"));
    assert_int_equal(mst_engine_ready(g, cp, steps, 2), 1);
    assert_int_equal(steps[0].attempts, 1);
    assert_true(steps[0].suspect);

    /* isolating needs a running step */
    assert_int_equal(mst_engine_isolate(cp, "a", -1), MST_EINVAL);
    assert_int_equal(mst_engine_isolate(cp, "zz", -1), MST_NOTFOUND);

    /* alone: the death is its own; begin forgets a past isolation */
    assert_int_equal(tst_die(g, cp, "a", -1, 1), 1);
    assert_int_equal(tst_int(cp, "frontier.0.deaths"), 1);
    assert_null(tst_step_field(cp, 0, "isolated"));
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_null(tst_step_field(cp, 0, "isolated"));
    assert_int_equal(mst_engine_isolate(cp, "a", -1), MST_OK);
    cp = tst_rt(cp, 1);
    assert_true(json_is_true(tst_step_field(cp, 0, "isolated")));

    /* attempt 3 succeeds: no longer a suspect */
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_string_equal(tst_status(cp), "running");

    /* b has no retries: unattributed deaths never fail it; of its own
       one is survived, a second fails the workflow and says why */

    assert_int_equal(tst_die(g, cp, "b", -1, 0), 1);
    assert_int_equal(tst_die(g, cp, "b", -1, 0), 1);
    assert_int_equal(tst_die(g, cp, "b", -1, 1), 1);
    cp = tst_rt(cp, 1);
    assert_string_equal(tst_status(cp), "running");
    assert_int_equal(tst_int(cp, "frontier.0.unattributed"), 2);
    assert_int_equal(tst_int(cp, "frontier.0.deaths"), 1);
    assert_int_equal(tst_die(g, cp, "b", -1, 1), 0);
    assert_string_equal(tst_status(cp), "failed");
    assert_string_equal(tst_error(cp),
                        "b: worker died while running the step alone, "
                        "2 times (retry.max 0): the step crashes its worker");
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.status")), "failed");
    assert_int_equal(mst_engine_ready(g, cp, steps, 2), 0);

    /* a finished checkpoint: nothing */
    assert_int_equal(mst_engine_recover(g, cp), 0);

    json_decref(cp);

    /* a crashes its worker every time: its first death is unattributed,
       then retry.max 2 + 1 of its own are survived, the 4th is not */

    cp = mst_engine_start(g, NULL);
    assert_int_equal(tst_die(g, cp, "a", -1, 0), 1);
    assert_int_equal(tst_die(g, cp, "a", -1, 1), 1);
    assert_int_equal(tst_die(g, cp, "a", -1, 1), 1);
    assert_int_equal(tst_die(g, cp, "a", -1, 1), 1);
    assert_int_equal(tst_die(g, cp, "a", -1, 1), 0);
    assert_string_equal(tst_error(cp),
                        "a: worker died while running the step alone, "
                        "4 times (retry.max 2): the step crashes its worker");
    assert_int_equal(tst_int(cp, "frontier.0.attempts"), 5);
    json_decref(cp);

    /* unattributed deaths do not use a step's retries: a (max 2) still
       has its 1 + 2 failing attempts after a death next to a crasher */

    cp = mst_engine_start(g, NULL);
    assert_int_equal(tst_die(g, cp, "a", -1, 0), 1);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_isolate(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "x", 1),
                     MST_ENGINE_RETRY);
    assert_null(tst_step_field(cp, 0, "isolated"));
    assert_true(json_is_true(tst_step_field(cp, 0, "suspect")));
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "x", 1),
                     MST_ENGINE_RETRY);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "x", 1),
                     MST_ENGINE_FAILED);
    assert_string_equal(tst_error(cp), "a: x");
    json_decref(cp);

    mst_graph_free(g);

    /* several running foreach steps come back together; the isolated
       one takes the blame, the one beside it does not */

    g = tst_graph(tst_foreach);
    cp = mst_engine_start(g, NULL);
    json_object_set_new(json_object_get(cp, "state"), "plan",
                        json_pack("{s:[i, i, i]}", "steps", 1, 2, 3));
    assert_int_equal(mst_engine_begin(cp, "planner", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "planner", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_int_equal(mst_engine_begin(cp, "llm", 0), MST_OK);
    assert_int_equal(mst_engine_begin(cp, "llm", 2), MST_OK);
    assert_int_equal(mst_engine_isolate(cp, "llm", 2), MST_OK);
    cp = tst_rt(cp, 1);
    assert_int_equal(mst_engine_recover(g, cp), 2);
    assert_int_equal(tst_nready(g, cp), 3);
    assert_int_equal(tst_int(cp, "frontier.0.unattributed"), 1);
    assert_null(tst_step_field(cp, 0, "deaths"));
    assert_int_equal(tst_int(cp, "frontier.2.deaths"), 1);
    assert_null(tst_step_field(cp, 2, "unattributed"));
    assert_null(tst_step_field(cp, 1, "suspect"));
    assert_true(json_is_true(tst_step_field(cp, 2, "suspect")));
    json_decref(cp);
    mst_graph_free(g);
}


static void
test_cancel(void **ctx)
{
    json_t       *cp;
    mst_step_t    steps[2];
    mst_graph_t  *g;

    g = tst_graph(tst_fan);
    cp = mst_engine_start(g, NULL);

    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    mst_engine_cancel(cp);

    assert_string_equal(tst_status(cp), "cancelled");
    assert_string_equal(json_string_value(
        mst_json_path(cp, "frontier.0.status")), "running");

    assert_int_equal(mst_engine_ready(g, cp, steps, 2), 0);
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_ECANCELLED);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "x", 1),
                     MST_ECANCELLED);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_ECANCELLED);
    assert_int_equal(mst_engine_recover(g, cp), 0);
    assert_int_equal(tst_int(cp, "steps_run"), 0);

    json_decref(cp);
    mst_graph_free(g);

    /* a completed workflow stays complete */

    g = tst_graph(tst_seq);
    cp = mst_engine_start(g, NULL);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_int_equal(mst_engine_begin(cp, "b", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "b", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_int_equal(mst_engine_begin(cp, "c", -1), MST_OK);
    assert_int_equal(mst_engine_complete(g, cp, "c", -1, NULL, NULL),
                     MST_ENGINE_DONE);
    mst_engine_cancel(cp);
    assert_string_equal(tst_status(cp), "complete");

    json_decref(cp);
    mst_graph_free(g);
}


static void
test_bad_calls(void **ctx)
{
    json_t       *cp, *bad;
    mst_graph_t  *g;

    g = tst_graph(tst_seq);
    cp = mst_engine_start(g, NULL);

    /* unknown steps */
    assert_int_equal(mst_engine_begin(cp, "zz", -1), MST_NOTFOUND);
    assert_int_equal(mst_engine_begin(cp, "b", -1), MST_NOTFOUND);
    assert_int_equal(mst_engine_begin(cp, "a", 0), MST_NOTFOUND);
    assert_int_equal(mst_engine_begin(cp, NULL, -1), MST_NOTFOUND);
    assert_int_equal(mst_engine_complete(g, cp, "zz", -1, NULL, NULL),
                     MST_NOTFOUND);
    assert_int_equal(mst_engine_complete(g, cp, "b", -1, NULL, NULL),
                     MST_NOTFOUND);
    assert_int_equal(mst_engine_fail(g, cp, "zz", -1, "x", 1), MST_NOTFOUND);

    /* a step that has not begun cannot complete or fail */
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_EINVAL);
    assert_int_equal(mst_engine_fail(g, cp, "a", -1, "x", 1), MST_EINVAL);

    /* nor begin twice */
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_OK);
    assert_int_equal(mst_engine_begin(cp, "a", -1), MST_EINVAL);
    assert_int_equal(tst_int(cp, "frontier.0.attempts"), 1);

    /* nor complete twice */
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_ENGINE_CONTINUE);
    assert_int_equal(mst_engine_complete(g, cp, "a", -1, NULL, NULL),
                     MST_NOTFOUND);
    assert_int_equal(tst_int(cp, "steps_run"), 1);

    /* a malformed checkpoint */
    bad = json_pack("{s:s}", "status", "running");
    assert_int_equal(mst_engine_begin(bad, "a", -1), MST_EINVAL);
    assert_int_equal(mst_engine_complete(g, bad, "a", -1, NULL, NULL),
                     MST_EINVAL);
    assert_int_equal(tst_nready(g, bad), 0);
    assert_int_equal(mst_engine_recover(g, bad), 0);
    json_decref(bad);

    /* a failure message that is not UTF-8 still lands in the checkpoint */
    assert_int_equal(mst_engine_begin(cp, "b", -1), MST_OK);
    assert_int_equal(mst_engine_fail(g, cp, "b", -1, "bad \xff byte", 0),
                     MST_ENGINE_FAILED);
    assert_string_equal(tst_error(cp), "b: bad ? byte");

    json_decref(cp);
    mst_graph_free(g);
}


/* the same runs with the checkpoint serialised between every call */

static void
test_roundtrip(void **ctx)
{
    char     log1[2048], log2[2048];
    json_t  *cp1, *cp2;

    tst_sequential(0, &cp1, log1);
    tst_sequential(1, &cp2, log2);
    assert_string_equal(log1, log2);
    assert_true(json_equal(cp1, cp2));
    json_decref(cp1);
    json_decref(cp2);

    tst_foreach_run(0, &cp1, log1);
    tst_foreach_run(1, &cp2, log2);
    assert_string_equal(log1, log2);
    assert_true(json_equal(cp1, cp2));
    json_decref(cp1);
    json_decref(cp2);

    tst_loop_run(0, &cp1, log1);
    tst_loop_run(1, &cp2, log2);
    assert_string_equal(log1, log2);
    assert_true(json_equal(cp1, cp2));
    json_decref(cp1);
    json_decref(cp2);

    tst_retry_run(0, &cp1, log1);
    tst_retry_run(1, &cp2, log2);
    assert_string_equal(log1, log2);
    assert_true(json_equal(cp1, cp2));
    json_decref(cp1);
    json_decref(cp2);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_input),
        cmocka_unit_test(test_sequential),
        cmocka_unit_test(test_fan_in),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_foreach_empty),
        cmocka_unit_test(test_loop),
        cmocka_unit_test(test_max_steps),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_retry_exhausted),
        cmocka_unit_test(test_recover),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
