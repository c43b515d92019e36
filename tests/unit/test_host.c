/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_host, the services behind maestro_host_t, called directly through
 * the host table on a real step context: a workflow created and claimed in
 * an LMDB store in a temporary directory, the offline LLM. Pending events
 * are written with mst_run_ctx_flush() and read back from the store.
 *
 * Node names differ from agent names on purpose ("writer" runs agent
 * "alpha", "critic" runs agent "beta"): memory is per agent, and so are
 * agent logs (GET /api/v1/agents/{agent}/logs).
 */

#include "mst_test.h"

#include <math.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mst_run.h"
#include "mst_host.h"


typedef struct {
    char             *dir;
    mst_store_t      *store;
    mst_run_env_t     env;
    mst_agent_t       agents[2];
    mst_graph_t      *graphs[2];

    pthread_mutex_t   lock;
    json_t           *logs;
    int               notified;
    uint64_t          notify_last;
} tst_t;


/* one claimed workflow and the context of its running step */
typedef struct {
    char              id[MST_ID_LEN + 1];
    mst_run_next_t    next;
    volatile int      state;
    maestro_ctx_t     ctx;
} tst_step_t;


static tst_t       tst;


static const char *tst_writer_json =
    "{\"name\": \"writing\", \"entry\": \"writer\", \"nodes\":"
    " {\"writer\": {\"agent\": \"alpha\", \"timeout_ms\": 5000}},"
    " \"edges\": []}";

static const char *tst_critic_json =
    "{\"name\": \"critique\", \"entry\": \"critic\", \"nodes\":"
    " {\"critic\": {\"agent\": \"beta\"}}, \"edges\": []}";


static void
tst_notify(void *arg, const char *id, uint64_t last)
{
    pthread_mutex_lock(&tst.lock);
    tst.notified++;
    tst.notify_last = last;
    pthread_mutex_unlock(&tst.lock);
}


static void
tst_log(void *arg, int level, const char *msg)
{
    char  line[1300];

    snprintf(line, sizeof(line), "%d:%s", level, msg);

    pthread_mutex_lock(&tst.lock);
    json_array_append_new(tst.logs, json_string(line));
    pthread_mutex_unlock(&tst.lock);
}


static int
tst_logged(const char *s)
{
    size_t   i;
    json_t  *v;

    json_array_foreach(tst.logs, i, v) {
        if (strstr(json_string_value(v), s) != NULL) {
            return 1;
        }
    }

    return 0;
}


static int
tst_alive(long pid)
{
    return 1;
}


static int
tst_setup(void **state)
{
    char              err[MST_ERRLEN];
    json_t           *def;
    mst_store_conf_t  conf;

    memset(&tst, 0, sizeof(tst_t));
    pthread_mutex_init(&tst.lock, NULL);
    tst.logs = json_array();
    tst.dir = mst_test_tmpdir();

    memset(&conf, 0, sizeof(mst_store_conf_t));
    conf.path = tst.dir;
    conf.map_size = 32 * 1024 * 1024;
    conf.crypt = mst_test_crypt();

    if (mst_store_open(&tst.store, &conf, err, sizeof(err)) != MST_OK) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }

    /* agents without a plugin: the host table is called directly */
    tst.agents[0].name = "alpha";
    tst.agents[1].name = "beta";

    def = json_loads(tst_writer_json, 0, NULL);
    tst.graphs[0] = mst_graph_parse(def, NULL, NULL, err, sizeof(err));
    json_decref(def);

    def = json_loads(tst_critic_json, 0, NULL);
    tst.graphs[1] = mst_graph_parse(def, NULL, NULL, err, sizeof(err));
    json_decref(def);

    if (tst.graphs[0] == NULL || tst.graphs[1] == NULL) {
        fprintf(stderr, "graph: %s\n", err);
        return -1;
    }

    tst.env.store = tst.store;
    tst.env.agents = tst.agents;
    tst.env.nagents = 2;
    tst.env.graphs = tst.graphs;
    tst.env.ngraphs = 2;
    tst.env.pid = (long) getpid();
    tst.env.lease_ms = 2000;
    tst.env.agent_log_keep = 100;
    tst.env.flush_ms = 1000000;     /* flushed by the tests */
    tst.env.notify = tst_notify;
    tst.env.notify_arg = &tst;
    tst.env.log = tst_log;
    tst.env.log_arg = &tst;

    return 0;
}


static int
tst_teardown(void **state)
{
    mst_graph_free(tst.graphs[0]);
    mst_graph_free(tst.graphs[1]);
    mst_store_close(tst.store);
    mst_test_rmdir(tst.dir);
    json_decref(tst.logs);
    pthread_mutex_destroy(&tst.lock);

    return 0;
}


static int
tst_group_setup(void **state)
{
    return 0;
}


static int
tst_group_teardown(void **state)
{
    return 0;
}


/* create + claim a workflow of graph g and open its step's context */
static void
tst_open(tst_step_t *s, mst_graph_t *g)
{
    int      rc;
    char     err[MST_ERRLEN];
    json_t  *rec;

    memset(s, 0, sizeof(tst_step_t));

    rc = mst_run_create(&tst.env, g, mst_graph_name(g), "a prompt", NULL,
                        NULL, s->id, &rec, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("create: %s", err);
    }
    json_decref(rec);

    rc = mst_run_claim(&tst.env, s->id, 0, tst_alive, &s->next, err,
                       sizeof(err));
    if (rc != MST_OK) {
        fail_msg("claim: %s", err);
    }

    assert_int_equal(s->next.nsteps, 1);

    s->state = MST_STEP_RUNNING;

    assert_int_equal(mst_host_ctx_init(&s->ctx, &tst.env, s->id,
                                       s->next.epoch, &s->next.steps[0],
                                       &s->state),
                     MST_OK);
}


static void
tst_close(tst_step_t *s)
{
    mst_host_ctx_free(&s->ctx);
    mst_run_next_free(&s->next);
}


static int
tst_flush(tst_step_t *s)
{
    int  rc;

    pthread_mutex_lock(&s->ctx.lock);
    rc = mst_run_ctx_flush(&s->ctx);
    pthread_mutex_unlock(&s->ctx.lock);

    return rc;
}


static int
tst_event_cb(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    json_t  *d;

    d = json_loadb(data, len, 0, NULL);
    assert_non_null(d);

    json_array_append_new(arg, json_pack("{s:I, s:s, s:o}",
                                         "seq", (json_int_t) seq,
                                         "name", name, "data", d));
    return 0;
}


static json_t *
tst_events(const char *id, uint64_t after)
{
    json_t     *list;
    mst_txn_t  *txn;

    list = json_array();

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_event_range(txn, id, after, 0, tst_event_cb,
                                           list),
                     MST_OK);
    mst_txn_abort(txn);

    return list;
}


static size_t
tst_nevents(const char *id)
{
    size_t   n;
    json_t  *ev;

    ev = tst_events(id, 0);
    n = json_array_size(ev);
    json_decref(ev);

    return n;
}


static json_t *
tst_record(const char *id)
{
    json_t     *rec;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_wf_get(txn, id, &rec), MST_OK);
    /* as the API shows it: with its agents and prompt (parts) */
    assert_int_equal(mst_store_wf_attach(txn, id, rec), MST_OK);
    mst_txn_abort(txn);

    return rec;
}


static json_t *
tst_agent_logs(const char *agent)
{
    json_t     *list;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_agent_log_list(txn, agent, 1000, &list),
                     MST_OK);
    mst_txn_abort(txn);

    return list;
}


static const char *
tst_str(json_t *o, const char *key)
{
    const char  *s;

    s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}


static json_t *
tst_data(json_t *ev)
{
    return json_object_get(ev, "data");
}


/* tests */

static void
test_ctx_init(void **state)
{
    tst_step_t  s;

    tst_open(&s, tst.graphs[0]);

    assert_ptr_equal(s.ctx.env, &tst.env);
    assert_string_equal(s.ctx.id, s.id);
    assert_int_equal(s.ctx.epoch, 1);
    assert_string_equal(s.ctx.step->node, "writer");
    assert_string_equal(s.ctx.step->agent->name, "alpha");
    assert_int_equal(s.ctx.deadline - s.ctx.started, 5000);
    assert_int_equal(json_array_size(s.ctx.events), 0);
    assert_null(s.ctx.output);
    assert_null(s.ctx.patch);
    assert_false(s.ctx.progress_dirty);

    /* nothing pending: a flush writes nothing */
    assert_int_equal(tst_nevents(s.id), 3);
    assert_int_equal(tst_flush(&s), MST_OK);
    assert_int_equal(tst_nevents(s.id), 3);

    tst_close(&s);

    /* the table */
    assert_ptr_equal(mst_host_config_table(), &mst_host);
    assert_int_equal(mst_host.abi_version, MAESTRO_PLUGIN_ABI_VERSION);
    assert_int_equal(mst_host.size, sizeof(maestro_host_t));
    assert_non_null(mst_host.llm_online);
}


static void
test_emit(void **state)
{
    size_t       i;
    json_t      *events, *ev, *rec;
    tst_step_t   s;
    char         long_name[40];
    const char  *bad_names[] = {
        "", "Bad", "a-b", "a b", "a.b", "n4me", "caf\xc3\xa9", "event\n",
    };
    const char  *bad_json[] = {
        "", "{", "[1]", "\"text\"", "42", "null", "{} {}", "{\"a\": }",
        "{\"a\": \"\xff\"}",
    };

    tst_open(&s, tst.graphs[0]);

    for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        if (mst_host.emit(&s.ctx, bad_names[i], "{}") != MAESTRO_EINVAL) {
            fail_msg("event name \"%s\" accepted", bad_names[i]);
        }
    }

    memset(long_name, 'a', 33);
    long_name[33] = '\0';
    assert_int_equal(mst_host.emit(&s.ctx, long_name, "{}"), MAESTRO_EINVAL);
    long_name[32] = '\0';
    assert_int_equal(mst_host.emit(&s.ctx, long_name, "{}"), MAESTRO_OK);

    for (i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        if (mst_host.emit(&s.ctx, "custom", bad_json[i]) != MAESTRO_EINVAL) {
            fail_msg("event data '%s' accepted", bad_json[i]);
        }
    }

    /* the host's own: they end SSE, WebSocket and /v1 streams */
    assert_int_equal(mst_host.emit(&s.ctx, "done", "{}"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.emit(&s.ctx, "error", "{\"error\": \"x\"}"),
                     MAESTRO_EINVAL);

    assert_int_equal(mst_host.emit(NULL, "custom", "{}"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.emit(&s.ctx, NULL, "{}"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.emit(&s.ctx, "custom", NULL), MAESTRO_EINVAL);

    /* only the two good ones are pending */
    assert_int_equal(json_array_size(s.ctx.events), 1);

    assert_int_equal(mst_host.emit(&s.ctx, "first_event",
                                   "{\"x\": 1, \"s\": \"\xc3\xa9\"}"),
                     MAESTRO_OK);
    mst_host.log(&s.ctx, MAESTRO_LOG_INFO, "between");
    assert_int_equal(mst_host.emit(&s.ctx, "second_event", "{\"x\": 2}"),
                     MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 4);

    /* nothing written before the flush (flush_ms is huge) */
    assert_int_equal(tst_nevents(s.id), 3);
    tst.notified = 0;

    assert_int_equal(tst_flush(&s), MST_OK);
    assert_int_equal(json_array_size(s.ctx.events), 0);

    events = tst_events(s.id, 3);
    assert_int_equal(json_array_size(events), 4);

    ev = json_array_get(events, 0);
    assert_int_equal(json_integer_value(json_object_get(ev, "seq")), 4);
    assert_string_equal(tst_str(ev, "name"), long_name);

    ev = json_array_get(events, 1);
    assert_string_equal(tst_str(ev, "name"), "first_event");
    assert_int_equal(json_integer_value(json_object_get(tst_data(ev), "x")),
                     1);
    assert_string_equal(tst_str(tst_data(ev), "s"), "\xc3\xa9");
    assert_non_null(json_object_get(tst_data(ev), "ts"));

    ev = json_array_get(events, 2);
    assert_string_equal(tst_str(ev, "name"), "log_entry");
    assert_string_equal(tst_str(tst_data(ev), "message"), "between");

    ev = json_array_get(events, 3);
    assert_string_equal(tst_str(ev, "name"), "second_event");
    assert_int_equal(json_integer_value(json_object_get(ev, "seq")), 7);

    json_decref(events);

    rec = tst_record(s.id);
    assert_int_equal(json_integer_value(json_object_get(rec,
                                                        "last_event_id")),
                     7);
    json_decref(rec);

    assert_int_equal(tst.notified, 1);
    assert_int_equal(tst.notify_last, 7);

    /* only those two names: others that start or end alike are the
       plugin's */
    assert_int_equal(mst_host.emit(&s.ctx, "done_", "{}"), MAESTRO_OK);
    assert_int_equal(mst_host.emit(&s.ctx, "errors", "{}"), MAESTRO_OK);
    assert_int_equal(mst_host.emit(&s.ctx, "done", "{}"), MAESTRO_EINVAL);
    assert_int_equal(json_array_size(s.ctx.events), 2);

    tst_close(&s);
}


static void
test_token(void **state)
{
    size_t       i;
    json_t      *events, *ev;
    tst_step_t   s;
    const char  *expect[] = {
        "Hello world",
        "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd",
        NULL,       /* the emitted event */
        "y",
        "abc",
    };

    tst_open(&s, tst.graphs[0]);

    assert_int_equal(mst_host.token(NULL, "x", 1), MAESTRO_EINVAL);
    assert_int_equal(mst_host.token(&s.ctx, NULL, 1), MAESTRO_EINVAL);
    assert_int_equal(mst_host.token(&s.ctx, "", 0), MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 0);

    /* consecutive tokens of one batch: one event */
    assert_int_equal(mst_host.token(&s.ctx, "Hel", 3), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, "lo", 2), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, " world!!!", 6), MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 1);

    assert_int_equal(tst_flush(&s), MST_OK);

    /* an invalid UTF-8 fragment is replaced by U+FFFD, not dropped (a
       euro sign cut in two gives two of them) */
    assert_int_equal(mst_host.token(&s.ctx, "a", 1), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, "\xff", 1), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, "b", 1), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, "\xe2\x82", 2), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, "\xac", 1), MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 1);

    /* another event in between: not merged across it */
    assert_int_equal(mst_host.emit(&s.ctx, "marker", "{}"), MAESTRO_OK);
    assert_int_equal(mst_host.token(&s.ctx, "y", 1), MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 3);

    assert_int_equal(tst_flush(&s), MST_OK);

    /* a new batch starts a new event; len is what counts */
    assert_int_equal(mst_host.token(&s.ctx, "abcdef", 3), MAESTRO_OK);
    assert_int_equal(tst_flush(&s), MST_OK);

    events = tst_events(s.id, 3);
    assert_int_equal(json_array_size(events), 5);

    for (i = 0; i < 5; i++) {
        ev = json_array_get(events, i);

        if (expect[i] == NULL) {
            assert_string_equal(tst_str(ev, "name"), "marker");
            continue;
        }

        assert_string_equal(tst_str(ev, "name"), "token");
        assert_string_equal(tst_str(tst_data(ev), "agent"), "alpha");
        assert_string_equal(tst_str(tst_data(ev), "node"), "writer");
        assert_string_equal(tst_str(tst_data(ev), "text"), expect[i]);
    }

    json_decref(events);

    /* flush_ms 0: every token is written at once */
    tst.env.flush_ms = 0;
    assert_int_equal(mst_host.token(&s.ctx, "now", 3), MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 0);
    assert_int_equal(tst_nevents(s.id), 9);

    tst_close(&s);
}


static void
test_progress(void **state)
{
    char         task[400];
    json_t      *events, *ev, *rec, *entry;
    tst_step_t   s;

    tst_open(&s, tst.graphs[0]);

    mst_host.progress(NULL, 0.5, "nothing");     /* no crash */

    mst_host.progress(&s.ctx, -0.5, "negative");
    assert_true(s.ctx.progress == 0.0);
    assert_string_equal(s.ctx.current_task, "negative");
    assert_true(s.ctx.progress_dirty);

    mst_host.progress(&s.ctx, 2.0, "too much");
    assert_true(s.ctx.progress == 1.0);

    mst_host.progress(&s.ctx, NAN, "not a number");
    assert_true(s.ctx.progress == 0.0);

    mst_host.progress(&s.ctx, INFINITY, NULL);
    assert_true(s.ctx.progress == 1.0);
    assert_string_equal(s.ctx.current_task, "not a number");

    /* an invalid task is ignored, the fraction is kept */
    mst_host.progress(&s.ctx, 0.25, "bad \xc0\x80 task");
    assert_true(s.ctx.progress == 0.25);
    assert_string_equal(s.ctx.current_task, "not a number");

    mst_host.progress(&s.ctx, 0.25, "a quarter");

    /* no event until the flush, then one agent_status */
    assert_int_equal(json_array_size(s.ctx.events), 0);
    assert_int_equal(tst_flush(&s), MST_OK);
    assert_false(s.ctx.progress_dirty);

    events = tst_events(s.id, 3);
    assert_int_equal(json_array_size(events), 1);
    ev = json_array_get(events, 0);
    assert_string_equal(tst_str(ev, "name"), "agent_status");
    assert_string_equal(tst_str(tst_data(ev), "id"), "writer");
    assert_string_equal(tst_str(tst_data(ev), "workflow_id"), s.id);
    assert_string_equal(tst_str(tst_data(ev), "status"), "executing");
    assert_string_equal(tst_str(tst_data(ev), "current_task"), "a quarter");
    /* agents' progress is in percent, as the workflow's */
    assert_int_equal(json_integer_value(json_object_get(tst_data(ev),
                                                        "progress")), 25);
    json_decref(events);

    rec = tst_record(s.id);
    entry = json_object_get(json_object_get(rec, "agents"), "writer");
    assert_int_equal(json_integer_value(json_object_get(entry, "progress")),
                     25);
    assert_string_equal(tst_str(entry, "current_task"), "a quarter");
    json_decref(rec);

    /* a long task is cut */
    memset(task, 't', sizeof(task) - 1);
    task[sizeof(task) - 1] = '\0';
    mst_host.progress(&s.ctx, 0.5, task);
    assert_int_equal(strlen(s.ctx.current_task),
                     sizeof(s.ctx.current_task) - 1);

    tst_close(&s);
}


static void
test_output_state(void **state)
{
    size_t       i;
    tst_step_t   s;
    const char  *reserved[] = { "prompt", "context", "outputs", "" };

    tst_open(&s, tst.graphs[0]);

    assert_int_equal(mst_host.set_output(NULL, "{}"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.set_output(&s.ctx, NULL), MAESTRO_EINVAL);
    assert_int_equal(mst_host.set_output(&s.ctx, "{"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.set_output(&s.ctx, ""), MAESTRO_EINVAL);
    assert_null(s.ctx.output);

    /* any JSON value, replaced by the next call */
    assert_int_equal(mst_host.set_output(&s.ctx, "42"), MAESTRO_OK);
    assert_int_equal(json_integer_value(s.ctx.output), 42);
    assert_int_equal(mst_host.set_output(&s.ctx, "\"text\""), MAESTRO_OK);
    assert_string_equal(json_string_value(s.ctx.output), "text");
    assert_int_equal(mst_host.set_output(&s.ctx, "{\"content\": \"c\"}"),
                     MAESTRO_OK);
    assert_string_equal(tst_str(s.ctx.output, "content"), "c");

    /* state keys: reserved ones refused */
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (mst_host.set_state(&s.ctx, reserved[i], "1") != MAESTRO_EINVAL) {
            fail_msg("state key \"%s\" accepted", reserved[i]);
        }
    }

    assert_int_equal(mst_host.set_state(NULL, "plan", "1"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.set_state(&s.ctx, NULL, "1"), MAESTRO_EINVAL);
    assert_int_equal(mst_host.set_state(&s.ctx, "plan", NULL),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.set_state(&s.ctx, "plan", "{bad"),
                     MAESTRO_EINVAL);
    assert_null(s.ctx.patch);

    assert_int_equal(mst_host.set_state(&s.ctx, "plan",
                                        "{\"steps\": [1, 2]}"),
                     MAESTRO_OK);
    assert_int_equal(mst_host.set_state(&s.ctx, "score", "0.5"), MAESTRO_OK);
    assert_int_equal(mst_host.set_state(&s.ctx, "score", "0.75"),
                     MAESTRO_OK);

    assert_int_equal(json_object_size(s.ctx.patch), 2);
    assert_int_equal(json_array_size(mst_json_path(s.ctx.patch,
                                                   "plan.steps")), 2);
    assert_true(json_real_value(json_object_get(s.ctx.patch, "score"))
                == 0.75);

    tst_close(&s);
}


static void
test_memory(void **state)
{
    char        *value;
    size_t       len;
    tst_step_t   a, b;

    tst_open(&a, tst.graphs[0]);     /* agent alpha */
    tst_open(&b, tst.graphs[1]);     /* agent beta */

    value = NULL;

    assert_int_equal(mst_host.memory_get(&a.ctx, "k", &value, &len),
                     MAESTRO_ENOTFOUND);

    assert_int_equal(mst_host.memory_put(&a.ctx, "k", "v1", 2), MAESTRO_OK);

    /* beta does not see alpha's key */
    assert_int_equal(mst_host.memory_get(&b.ctx, "k", &value, &len),
                     MAESTRO_ENOTFOUND);
    assert_int_equal(mst_host.memory_put(&b.ctx, "k", "value two", 9),
                     MAESTRO_OK);

    assert_int_equal(mst_host.memory_get(&a.ctx, "k", &value, &len),
                     MAESTRO_OK);
    assert_int_equal(len, 2);
    assert_string_equal(value, "v1");
    mst_host.free(value);

    assert_int_equal(mst_host.memory_get(&b.ctx, "k", &value, &len),
                     MAESTRO_OK);
    assert_int_equal(len, 9);
    assert_string_equal(value, "value two");
    mst_host.free(value);

    /* overwrite; binary values keep their length */
    assert_int_equal(mst_host.memory_put(&a.ctx, "k", "a\0b", 3),
                     MAESTRO_OK);
    assert_int_equal(mst_host.memory_get(&a.ctx, "k", &value, &len),
                     MAESTRO_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(value, "a\0b", 4);
    mst_host.free(value);

    /* empty value */
    assert_int_equal(mst_host.memory_put(&a.ctx, "empty", "", 0),
                     MAESTRO_OK);
    assert_int_equal(mst_host.memory_get(&a.ctx, "empty", &value, &len),
                     MAESTRO_OK);
    assert_int_equal(len, 0);
    assert_string_equal(value, "");
    mst_host.free(value);

    /* bad arguments */
    assert_int_equal(mst_host.memory_put(&a.ctx, "", "x", 1),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.memory_put(&a.ctx, NULL, "x", 1),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.memory_put(&a.ctx, "k", NULL, 1),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.memory_put(NULL, "k", "x", 1),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.memory_get(&a.ctx, NULL, &value, &len),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.memory_get(&a.ctx, "k", NULL, &len),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.memory_get(NULL, "k", &value, &len),
                     MAESTRO_EINVAL);

    /* persistent: another step of the same agent sees it */
    tst_close(&a);
    tst_open(&a, tst.graphs[0]);
    assert_int_equal(mst_host.memory_get(&a.ctx, "k", &value, &len),
                     MAESTRO_OK);
    assert_int_equal(len, 3);
    mst_host.free(value);

    tst_close(&a);
    tst_close(&b);
}


static void
test_remaining_cancelled(void **state)
{
    int          rc, final;
    char         err[MST_ERRLEN];
    json_t      *rec;
    int64_t      left, deadline;
    tst_step_t   s;

    tst_open(&s, tst.graphs[0]);

    left = mst_host.remaining_ms(&s.ctx);
    assert_true(left > 4000 && left <= 5000);
    assert_int_equal(mst_host.remaining_ms(NULL), 0);

    assert_false(mst_host.cancelled(&s.ctx));
    assert_false(mst_host.cancelled(NULL));

    /* the event loop abandoned the step (timeout) */
    s.state = MST_STEP_ABANDONED;
    assert_true(mst_host.cancelled(&s.ctx));
    assert_int_equal(mst_host.emit(&s.ctx, "custom", "{}"),
                     MAESTRO_ECANCELLED);
    assert_int_equal(mst_host.token(&s.ctx, "x", 1), MAESTRO_ECANCELLED);
    assert_int_equal(json_array_size(s.ctx.events), 0);

    s.state = MST_STEP_COMMITTING;
    assert_true(mst_host.cancelled(&s.ctx));
    s.state = MST_STEP_RUNNING;
    assert_false(mst_host.cancelled(&s.ctx));

    /* the deadline passed */
    deadline = s.ctx.deadline;
    s.ctx.deadline = mst_mono_ms() - 1;
    assert_int_equal(mst_host.remaining_ms(&s.ctx), 0);
    assert_true(mst_host.cancelled(&s.ctx));
    s.ctx.deadline = deadline;
    assert_false(mst_host.cancelled(&s.ctx));

    /* cancellation requested in the store: seen at the next poll, and
       for good */
    rc = mst_run_cancel(&tst.env, s.id, tst_alive, &rec, &final, err,
                        sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(final, 0);
    json_decref(rec);

    s.ctx.cancel_checked = 0;
    assert_true(mst_host.cancelled(&s.ctx));
    assert_true(s.ctx.cancel_seen);
    assert_true(mst_host.cancelled(&s.ctx));
    assert_int_equal(mst_host.emit(&s.ctx, "custom", "{}"),
                     MAESTRO_ECANCELLED);

    tst_close(&s);
}


static void
test_fenced(void **state)
{
    int              rc;
    char             err[MST_ERRLEN];
    size_t           n;
    tst_step_t       s;
    mst_run_next_t   next;

    tst_open(&s, tst.graphs[0]);

    /* the workflow is taken over (same pid, force_own): epoch 2 */
    rc = mst_run_claim(&tst.env, s.id, 1, tst_alive, &next, err,
                       sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(next.epoch, 2);
    mst_run_next_free(&next);

    n = tst_nevents(s.id);

    assert_int_equal(mst_host.emit(&s.ctx, "custom", "{}"), MAESTRO_OK);
    mst_host.progress(&s.ctx, 0.5, "half");

    assert_int_equal(tst_flush(&s), MST_CONFLICT);
    assert_true(s.ctx.fenced);
    assert_int_equal(tst_nevents(s.id), n);

    /* from now on the plugin is told to stop; flushes are no-ops */
    assert_true(mst_host.cancelled(&s.ctx));
    assert_int_equal(tst_flush(&s), MST_OK);
    assert_int_equal(tst_nevents(s.id), n);

    tst_close(&s);
}


static void
test_strerror(void **state)
{
    size_t       i, j;
    const char  *s;
    struct {
        int          rc;
        const char  *text;
    } codes[] = {
        { MAESTRO_OK, "success" },
        { MAESTRO_ERROR, "failure" },
        { MAESTRO_EINVAL, "invalid argument" },
        { MAESTRO_ENOMEM, "out of memory" },
        { MAESTRO_ECANCELLED, "cancelled" },
        { MAESTRO_ETIMEDOUT, "timed out" },
        { MAESTRO_ENOTFOUND, "not found" },
        { MAESTRO_EIO, "storage error" },
        { MAESTRO_ELLM, "LLM provider failed" },
        { MAESTRO_EHTTP, "HTTP request failed" },
        { MAESTRO_EPERMANENT, "permanent failure" },
    };

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        s = mst_host.strerror(codes[i].rc);
        assert_non_null(s);
        assert_string_equal(s, codes[i].text);

        for (j = 0; j < i; j++) {
            assert_string_not_equal(s, codes[j].text);
        }
    }

    assert_string_equal(mst_host.strerror(1), "unknown error");
    assert_string_equal(mst_host.strerror(MAESTRO_EPERMANENT - 1),
                        "unknown error");
    assert_string_equal(mst_host.strerror(MST_NOTFOUND), "unknown error");

    /* MST_* codes as plugins see them */
    assert_int_equal(mst_host_code(MST_OK), MAESTRO_OK);
    assert_int_equal(mst_host_code(MST_NOTFOUND), MAESTRO_ENOTFOUND);
    assert_int_equal(mst_host_code(MST_EINVAL), MAESTRO_EINVAL);
    assert_int_equal(mst_host_code(MST_ENOMEM), MAESTRO_ENOMEM);
    assert_int_equal(mst_host_code(MST_ECANCELLED), MAESTRO_ECANCELLED);
    assert_int_equal(mst_host_code(MST_ETIMEDOUT), MAESTRO_ETIMEDOUT);
    assert_int_equal(mst_host_code(MST_EUPSTREAM), MAESTRO_ELLM);
    assert_int_equal(mst_host_code(MST_MAPFULL), MAESTRO_EIO);
    assert_int_equal(mst_host_code(MST_EIO), MAESTRO_EIO);
    assert_int_equal(mst_host_code(MST_ERROR), MAESTRO_ERROR);
    assert_int_equal(mst_host_code(MST_CONFLICT), MAESTRO_ERROR);
    assert_int_equal(mst_host_code(MST_EXISTS), MAESTRO_ERROR);
}


typedef struct {
    char    buf[4096];
    size_t  len;
    int     calls;
} tst_chunks_t;


static int
tst_on_chunk(const char *text, size_t len, void *arg)
{
    tst_chunks_t  *c = arg;

    if (c->len + len < sizeof(c->buf)) {
        memcpy(c->buf + c->len, text, len);
        c->len += len;
    }

    c->calls++;

    return 0;
}


static void
test_llm(void **state)
{
    char          *resp;
    long           total;
    json_t        *r, *rec, *usage, *content;
    tst_step_t     s;
    tst_chunks_t   chunks;
    const char    *req;

    req = "{\"messages\": [{\"role\": \"user\", \"content\":"
          " \"How does nginx handle many connections?\"}]}";

    tst_open(&s, tst.graphs[0]);

    assert_false(mst_host.llm_online(&s.ctx));
    assert_false(mst_host.llm_online(NULL));

    resp = (char *) "untouched";
    assert_int_equal(mst_host.llm_chat(&s.ctx, "{", NULL, NULL, &resp),
                     MAESTRO_EINVAL);
    assert_null(resp);
    assert_int_equal(mst_host.llm_chat(&s.ctx, "[]", NULL, NULL, &resp),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.llm_chat(&s.ctx, req, NULL, NULL, NULL),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.llm_chat(NULL, req, NULL, NULL, &resp),
                     MAESTRO_EINVAL);
    assert_int_equal(mst_host.llm_chat(&s.ctx, NULL, NULL, NULL, &resp),
                     MAESTRO_EINVAL);
    assert_int_equal(s.ctx.prompt_tokens + s.ctx.completion_tokens, 0);

    /* offline: a chat.completion from maestro-offline, tokens counted */

    assert_int_equal(mst_host.llm_chat(&s.ctx, req, NULL, NULL, &resp),
                     MAESTRO_OK);
    assert_non_null(resp);
    r = json_loads(resp, 0, NULL);
    mst_host.free(resp);
    assert_non_null(r);

    assert_string_equal(tst_str(r, "object"), "chat.completion");
    assert_string_equal(tst_str(r, "model"), "maestro-offline");
    content = mst_json_path(r, "choices.0.message.content");
    assert_true(json_string_length(content) > 0);
    assert_non_null(strstr(json_string_value(content), "[maestro-offline]"));

    usage = json_object_get(r, "usage");
    assert_true(s.ctx.prompt_tokens > 0);
    assert_true(s.ctx.completion_tokens > 0);
    assert_int_equal(s.ctx.prompt_tokens,
        json_integer_value(json_object_get(usage, "prompt_tokens")));
    assert_int_equal(s.ctx.completion_tokens,
        json_integer_value(json_object_get(usage, "completion_tokens")));
    total = s.ctx.prompt_tokens + s.ctx.completion_tokens;
    json_decref(r);

    /* streaming: the chunks add up to the answer */

    memset(&chunks, 0, sizeof(tst_chunks_t));
    assert_int_equal(mst_host.llm_chat(&s.ctx, req, tst_on_chunk, &chunks,
                                       &resp),
                     MAESTRO_OK);
    r = json_loads(resp, 0, NULL);
    mst_host.free(resp);
    assert_non_null(r);

    assert_true(chunks.calls >= 1);
    content = mst_json_path(r, "choices.0.message.content");
    assert_int_equal(chunks.len, json_string_length(content));
    assert_memory_equal(chunks.buf, json_string_value(content), chunks.len);
    assert_true(s.ctx.prompt_tokens + s.ctx.completion_tokens > total);
    total = s.ctx.prompt_tokens + s.ctx.completion_tokens;
    json_decref(r);

    /* add_tokens: usage the host cannot see; negative is ignored */
    mst_host.add_tokens(&s.ctx, 5, 7);
    mst_host.add_tokens(&s.ctx, -5, 7);
    mst_host.add_tokens(NULL, 5, 7);
    total += 12;
    assert_int_equal(s.ctx.prompt_tokens + s.ctx.completion_tokens, total);

    /* tokens are written with the next flush that has something to write
       (or with the step's commit) */
    mst_host.progress(&s.ctx, 0.5, "thinking");
    assert_int_equal(tst_flush(&s), MST_OK);

    rec = tst_record(s.id);
    assert_int_equal(json_integer_value(mst_json_path(rec, "tokens.total")),
                     total);
    assert_int_equal(json_integer_value(mst_json_path(rec,
                                                      "agents.writer."
                                                      "metrics.tokens")),
                     total);
    json_decref(rec);

    assert_int_equal(s.ctx.prompt_tokens + s.ctx.completion_tokens, 0);

    tst_close(&s);
}


static void
test_http_errors(void **state)
{
    int                       fd, rc;
    char                      url[64];
    socklen_t                 alen;
    tst_step_t                s;
    struct sockaddr_in        addr;
    maestro_http_request_t    req;
    maestro_http_response_t   resp;

    tst_open(&s, tst.graphs[0]);

    memset(&req, 0, sizeof(req));
    assert_int_equal(mst_host.http(&s.ctx, NULL, &resp), MAESTRO_EINVAL);
    assert_int_equal(mst_host.http(&s.ctx, &req, &resp), MAESTRO_EINVAL);
    req.url = "ftp://127.0.0.1/";
    assert_int_equal(mst_host.http(&s.ctx, &req, &resp), MAESTRO_EINVAL);
    req.url = "file:///etc/passwd";
    assert_int_equal(mst_host.http(&s.ctx, &req, &resp), MAESTRO_EINVAL);
    assert_int_equal(mst_host.http(&s.ctx, &req, NULL), MAESTRO_EINVAL);
    assert_int_equal(mst_host.http(NULL, &req, &resp), MAESTRO_EINVAL);

    /* a port nobody listens on: refused, logged as a warning */

    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
    alen = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &addr, &alen), 0);
    close(fd);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
             (int) ntohs(addr.sin_port));
    req.url = url;
    req.timeout_ms = 2000;

    rc = mst_host.http(&s.ctx, &req, &resp);
    assert_int_equal(rc, MAESTRO_EHTTP);
    assert_null(resp.body);
    assert_int_equal(json_array_size(s.ctx.events), 1);
    assert_true(tst_logged("http GET"));

    /* no time left */
    s.ctx.deadline = mst_mono_ms() - 1;
    assert_int_equal(mst_host.http(&s.ctx, &req, &resp), MAESTRO_ETIMEDOUT);

    tst_close(&s);
}


static void
test_log(void **state)
{
    int          i;
    size_t       n;
    json_t      *events, *ev, *logs;
    tst_step_t   s;

    tst_open(&s, tst.graphs[0]);

    mst_host.log(NULL, MAESTRO_LOG_INFO, "at configuration time");
    assert_int_equal(json_array_size(tst.logs), 0);

    mst_host.log(&s.ctx, MAESTRO_LOG_INFO, "hello %d", 42);
    mst_host.log(&s.ctx, MAESTRO_LOG_ERROR, "broken");
    mst_host.log(&s.ctx, 99, "odd level");
    mst_host.log(&s.ctx, MAESTRO_LOG_WARN, "bad \xff utf-8");

    /* the host's error log got them at once, named */
    assert_true(tst_logged("1:workflow \""));
    assert_true(tst_logged("agent \"writer\": hello 42"));
    assert_true(tst_logged("3:"));

    assert_int_equal(json_array_size(s.ctx.events), 4);
    assert_int_equal(tst_flush(&s), MST_OK);

    events = tst_events(s.id, 3);
    assert_int_equal(json_array_size(events), 4);

    ev = json_array_get(events, 0);
    assert_string_equal(tst_str(ev, "name"), "log_entry");
    assert_string_equal(tst_str(tst_data(ev), "level"), "info");
    assert_string_equal(tst_str(tst_data(ev), "message"), "hello 42");
    assert_string_equal(tst_str(tst_data(ev), "agent"), "alpha");
    assert_string_equal(tst_str(tst_data(ev), "node"), "writer");
    assert_string_equal(tst_str(tst_data(ev), "workflow_id"), s.id);
    assert_true(json_integer_value(json_object_get(tst_data(ev),
                                                   "timestamp")) > 0);

    ev = json_array_get(events, 1);
    assert_string_equal(tst_str(tst_data(ev), "level"), "error");

    ev = json_array_get(events, 2);
    assert_string_equal(tst_str(tst_data(ev), "level"), "info");
    assert_string_equal(tst_str(tst_data(ev), "message"), "odd level");

    ev = json_array_get(events, 3);
    assert_string_equal(tst_str(tst_data(ev), "level"), "warn");
    assert_non_null(strstr(tst_str(tst_data(ev), "message"),
                           "invalid UTF-8"));
    json_decref(events);

    /* and the agent's log: kept per agent (maestro_agent NAME, as
       GET /api/v1/agents/{name}/logs reads it), oldest first */

    logs = tst_agent_logs("alpha");
    if (json_array_size(logs) != 4) {
        n = json_array_size(logs);
        json_decref(logs);
        logs = tst_agent_logs("writer");
        i = (int) json_array_size(logs);
        json_decref(logs);
        tst_close(&s);
        fail_msg("agent \"alpha\" has %zu log entries (node \"writer\" has "
                 "%d): agent logs are keyed by node, not by agent", n, i);
    }

    assert_string_equal(tst_str(json_array_get(logs, 0), "message"),
                        "hello 42");
    assert_string_equal(tst_str(json_array_get(logs, 1), "message"),
                        "broken");
    assert_string_equal(tst_str(json_array_get(logs, 0), "workflow_id"),
                        s.id);
    json_decref(logs);

    logs = tst_agent_logs("beta");
    assert_int_equal(json_array_size(logs), 0);
    json_decref(logs);

    /* agent_log_keep: the newest are kept */
    tst.env.agent_log_keep = 3;
    for (i = 0; i < 6; i++) {
        mst_host.log(&s.ctx, MAESTRO_LOG_DEBUG, "line %d", i);
    }
    assert_int_equal(tst_flush(&s), MST_OK);

    logs = tst_agent_logs("alpha");
    assert_int_equal(json_array_size(logs), 3);
    assert_string_equal(tst_str(json_array_get(logs, 0), "message"),
                        "line 3");
    assert_string_equal(tst_str(json_array_get(logs, 2), "message"),
                        "line 5");
    assert_string_equal(tst_str(json_array_get(logs, 2), "level"), "debug");
    json_decref(logs);

    tst_close(&s);
}


static void
test_flush_order(void **state)
{
    json_t      *events;
    tst_step_t   s;
    const char  *names[] = { "custom", "log_entry", "token", "agent_status" };
    size_t       i;

    tst_open(&s, tst.graphs[0]);

    /* queued events in call order; progress last, from the context */
    mst_host.progress(&s.ctx, 0.1, "start");
    assert_int_equal(mst_host.emit(&s.ctx, "custom", "{\"n\": 1}"),
                     MAESTRO_OK);
    mst_host.log(&s.ctx, MAESTRO_LOG_INFO, "working");
    assert_int_equal(mst_host.token(&s.ctx, "tok", 3), MAESTRO_OK);

    assert_int_equal(tst_flush(&s), MST_OK);

    events = tst_events(s.id, 3);
    assert_int_equal(json_array_size(events), 4);
    for (i = 0; i < 4; i++) {
        assert_string_equal(tst_str(json_array_get(events, i), "name"),
                            names[i]);
        assert_int_equal(json_integer_value(json_object_get(
                             json_array_get(events, i), "seq")), 4 + i);
    }
    json_decref(events);

    /* flush_ms passed: the next event flushes by itself */
    tst.env.flush_ms = 20;
    s.ctx.last_flush = mst_mono_ms() - 21;
    assert_int_equal(mst_host.emit(&s.ctx, "custom", "{\"n\": 2}"),
                     MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 0);
    assert_int_equal(tst_nevents(s.id), 8);

    /* within flush_ms: kept */
    assert_int_equal(mst_host.emit(&s.ctx, "custom", "{\"n\": 3}"),
                     MAESTRO_OK);
    assert_int_equal(json_array_size(s.ctx.events), 1);
    assert_int_equal(tst_nevents(s.id), 8);

    tst_close(&s);
}


typedef struct {
    tst_step_t  *s;
    int          n;
} tst_thread_t;


static void *
tst_token_thread(void *arg)
{
    int            i;
    tst_thread_t  *t = arg;

    for (i = 0; i < t->n; i++) {
        mst_host.token(&t->s->ctx, "x", 1);
        mst_host.log(&t->s->ctx, MAESTRO_LOG_DEBUG, "l");
    }

    return NULL;
}


static void
test_threads(void **state)
{
    int           i;
    size_t        j, total, n;
    json_t       *events, *ev;
    pthread_t     th[4];
    tst_step_t    s;
    tst_thread_t  t;

    /* a plugin may call the host from threads of its own: nothing lost,
       ids contiguous */

    tst_open(&s, tst.graphs[0]);
    tst.env.flush_ms = 1;

    t.s = &s;
    t.n = 100;

    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, tst_token_thread, &t),
                         0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }

    assert_int_equal(tst_flush(&s), MST_OK);

    events = tst_events(s.id, 0);
    total = 0;
    n = 0;

    json_array_foreach(events, j, ev) {
        assert_int_equal(json_integer_value(json_object_get(ev, "seq")),
                         j + 1);
        if (strcmp(tst_str(ev, "name"), "token") == 0) {
            total += json_string_length(json_object_get(tst_data(ev),
                                                        "text"));
        }
        if (strcmp(tst_str(ev, "name"), "log_entry") == 0) {
            n++;
        }
    }

    assert_int_equal(total, 400);
    assert_int_equal(n, 400);
    json_decref(events);

    tst_close(&s);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_ctx_init, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_emit, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_token, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_progress, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_output_state, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_memory, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_remaining_cancelled, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_fenced, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_strerror, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_llm, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_log, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_flush_order, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_threads, tst_setup,
                                        tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
