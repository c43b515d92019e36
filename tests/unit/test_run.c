/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_run, the durable workflow runner, for real: an LMDB store in a
 * temporary directory, the fixture plugins and the shipped planner / llm /
 * reviewer plugins loaded with mst_agent_load(), the offline LLM.
 *
 * tst_drive() plays the nginx glue's role synchronously: claim, run the
 * steps each commit returns (in turn, or on threads at once), honour
 * retry_in_ms with mst_run_begin_ready(), until the workflow is final.
 * Other "processes" are the same env with another pid; tst_alive() says
 * which pids are dead.
 */

#include "mst_test.h"

#include <pthread.h>
#include <time.h>

#include "mst_run.h"
#include "mst_host.h"


#define TST_PID_BASE   4000000L
#define TST_MAX_DEAD   32


typedef struct {
    const char  *name;
    const char  *file;      /* fixtures/<file>.so or plugins/<file>.so */
    int          shipped;
} tst_agent_def_t;


static const tst_agent_def_t  tst_agent_defs[] = {
    { "echo", "echo", 0 },
    { "sleep", "sleep", 0 },
    { "fail", "fail", 0 },
    { "crash", "crash", 0 },
    { "noop", "noop", 0 },
    { "memory", "memory", 0 },
    { "planner", "planner", 1 },
    { "llm", "llm", 1 },
    { "reviewer", "reviewer", 1 },
};

#define TST_NAGENTS  (sizeof(tst_agent_defs) / sizeof(tst_agent_defs[0]))


typedef struct {
    char             *dir;
    mst_store_t      *store;
    mst_run_env_t     env;
    mst_graph_t      *graphs[4];

    pthread_mutex_t   lock;
    json_t           *logs;         /* ["level:msg", ...] */
    int               notified;
    uint64_t          notify_last;
} tst_t;


static tst_t         tst;
static mst_agent_t   tst_agents[TST_NAGENTS];
static long          tst_dead[TST_MAX_DEAD];
static size_t        tst_ndead;


/* graphs */

static const char *tst_seq_json =
    "{\"name\": \"seq\", \"entry\": \"a\","
    " \"nodes\": {\"a\": {\"agent\": \"echo\"},"
    "             \"b\": {\"agent\": \"echo\", \"config\": {\"k\": 1}},"
    "             \"c\": {\"agent\": \"echo\"}},"
    " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
    "             {\"from\": \"b\", \"to\": \"c\"}]}";

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


/* helpers */

static void
tst_sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}


static int
tst_alive(long pid)
{
    size_t  i;

    for (i = 0; i < tst_ndead; i++) {
        if (tst_dead[i] == pid) {
            return 0;
        }
    }

    return pid > 0;
}


static void
tst_kill(long pid)
{
    assert_true(tst_ndead < TST_MAX_DEAD);
    tst_dead[tst_ndead++] = pid;
}


static void
tst_notify(void *arg, const char *id, uint64_t last)
{
    tst_t  *t = arg;

    pthread_mutex_lock(&t->lock);
    t->notified++;
    if (last > t->notify_last) {
        t->notify_last = last;
    }
    pthread_mutex_unlock(&t->lock);
}


static void
tst_log(void *arg, int level, const char *msg)
{
    char    line[1100];
    tst_t  *t = arg;

    snprintf(line, sizeof(line), "%d:%s", level, msg);

    pthread_mutex_lock(&t->lock);
    json_array_append_new(t->logs, json_string(line));
    pthread_mutex_unlock(&t->lock);
}


/* whether a line logged through env->log contains s */
static int
tst_logged(const char *s)
{
    int      found;
    size_t   i;
    json_t  *v;

    found = 0;

    pthread_mutex_lock(&tst.lock);
    json_array_foreach(tst.logs, i, v) {
        if (strstr(json_string_value(v), s) != NULL) {
            found = 1;
        }
    }
    pthread_mutex_unlock(&tst.lock);

    return found;
}


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


/* a named graph the env knows (freed by the teardown) */
static mst_graph_t *
tst_named(const char *text)
{
    mst_graph_t  *g;

    assert_true(tst.env.ngraphs < 4);

    g = tst_graph(text);
    tst.graphs[tst.env.ngraphs++] = g;

    return g;
}


static void
tst_create(mst_run_env_t *env, const mst_graph_t *g, const char *prompt,
    char *id)
{
    int      rc;
    char     err[MST_ERRLEN];
    json_t  *rec;

    err[0] = '\0';
    rc = mst_run_create(env, g, mst_graph_name(g), prompt, NULL, NULL, id,
                        &rec, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("create: %s", err);
    }

    assert_true(mst_id_valid(id, strlen(id)));
    assert_string_equal(json_string_value(json_object_get(rec, "status")),
                        "queued");
    json_decref(rec);
}


static void
tst_claim(mst_run_env_t *env, const char *id, mst_run_next_t *next)
{
    int   rc;
    char  err[MST_ERRLEN];

    err[0] = '\0';
    rc = mst_run_claim(env, id, 0, tst_alive, next, err, sizeof(err));
    if (rc != MST_OK) {
        fail_msg("claim: %s (%s)", err, mst_strerror(rc));
    }
}


static json_t *
tst_record(const char *id)
{
    json_t     *rec;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_wf_get(txn, id, &rec), MST_OK);
    mst_txn_abort(txn);

    return rec;
}


static const char *
tst_str(json_t *o, const char *key)
{
    const char  *s;

    s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}


static int64_t
tst_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}


static int
tst_event_cb(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    json_t  *d;

    d = json_loadb(data, len, 0, NULL);
    if (d == NULL) {
        fail_msg("event %llu \"%s\": data is not JSON",
                 (unsigned long long) seq, name);
    }

    json_array_append_new(arg, json_pack("{s:I, s:s, s:o}",
                                         "seq", (json_int_t) seq,
                                         "name", name, "data", d));
    return 0;
}


/* events after id "after": [{"seq", "name", "data"}] */
static json_t *
tst_events_after(const char *id, uint64_t after)
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


static json_t *
tst_events(const char *id)
{
    return tst_events_after(id, 0);
}


static size_t
tst_nevents(const char *id)
{
    size_t   n;
    json_t  *ev;

    ev = tst_events(id);
    n = json_array_size(ev);
    json_decref(ev);

    return n;
}


/* events ids 1..n with no gap and no duplicate, n = last_event_id */
static void
tst_assert_contiguous(const char *id, json_t *events)
{
    size_t   i;
    json_t  *ev, *rec;

    json_array_foreach(events, i, ev) {
        if (tst_int(ev, "seq") != (int64_t) i + 1) {
            fail_msg("event #%zu has id %lld", i + 1,
                     (long long) tst_int(ev, "seq"));
        }
    }

    rec = tst_record(id);
    assert_int_equal(tst_int(rec, "last_event_id"), json_array_size(events));
    json_decref(rec);
}


/* events named name whose data[field] is value (field NULL: any) */
static size_t
tst_count(json_t *events, const char *name, const char *field,
    const char *value)
{
    size_t   i, n;
    json_t  *ev, *data;

    n = 0;

    json_array_foreach(events, i, ev) {
        if (strcmp(tst_str(ev, "name"), name) != 0) {
            continue;
        }

        data = json_object_get(ev, "data");

        if (field == NULL || strcmp(tst_str(data, field), value) == 0) {
            n++;
        }
    }

    return n;
}


/* the seq of the first agent_status of node with that status, or 0 */
static int64_t
tst_status_seq(json_t *events, const char *node, const char *status)
{
    size_t   i;
    json_t  *ev, *data;

    json_array_foreach(events, i, ev) {
        data = json_object_get(ev, "data");

        if (strcmp(tst_str(ev, "name"), "agent_status") == 0
            && strcmp(tst_str(data, "id"), node) == 0
            && strcmp(tst_str(data, "status"), status) == 0)
        {
            return tst_int(ev, "seq");
        }
    }

    return 0;
}


static size_t
tst_node_status(json_t *events, const char *node, const char *status)
{
    size_t   i, n;
    json_t  *ev, *data;

    n = 0;

    json_array_foreach(events, i, ev) {
        data = json_object_get(ev, "data");

        if (strcmp(tst_str(ev, "name"), "agent_status") == 0
            && strcmp(tst_str(data, "id"), node) == 0
            && strcmp(tst_str(data, "status"), status) == 0)
        {
            n++;
        }
    }

    return n;
}


/* agent_status events that began a step of node (task "attempt N" or
   "step I of N") */
static size_t
tst_begins(json_t *events, const char *node)
{
    size_t       i, n;
    json_t      *ev, *data;
    const char  *task;

    n = 0;

    json_array_foreach(events, i, ev) {
        data = json_object_get(ev, "data");
        task = tst_str(data, "current_task");

        if (strcmp(tst_str(ev, "name"), "agent_status") == 0
            && strcmp(tst_str(data, "id"), node) == 0
            && (strncmp(task, "attempt ", 8) == 0
                || strncmp(task, "step ", 5) == 0))
        {
            n++;
        }
    }

    return n;
}


/* whether a log_entry event's message contains s */
static int
tst_log_event(json_t *events, const char *s)
{
    size_t   i;
    json_t  *ev;

    json_array_foreach(events, i, ev) {
        if (strcmp(tst_str(ev, "name"), "log_entry") == 0
            && strstr(tst_str(json_object_get(ev, "data"), "message"), s)
               != NULL)
        {
            return 1;
        }
    }

    return 0;
}


static json_t *
tst_last_event(json_t *events)
{
    return json_array_get(events, json_array_size(events) - 1);
}


static json_t *
tst_checkpoints(const char *id)
{
    json_t     *list;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_checkpoint_list(txn, id, &list), MST_OK);
    mst_txn_abort(txn);

    return list;
}


static json_t *
tst_checkpoint(const char *id, uint64_t *seq)
{
    json_t     *cp;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_checkpoint_last(txn, id, seq, &cp), MST_OK);
    mst_txn_abort(txn);

    return cp;
}


/* the status of a step in the last checkpoint */
static const char *
tst_step_status(json_t *cp, const char *node)
{
    size_t   i;
    json_t  *step;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(tst_str(step, "node"), node) == 0) {
            return tst_str(step, "status");
        }
    }

    return "";
}


/* the driver */

typedef struct {
    mst_run_env_t    *env;
    const char       *id;
    uint64_t          epoch;
    mst_run_step_t   *step;
    volatile int      state;
    mst_run_next_t    next;
    int               rc;
    char              err[MST_ERRLEN];
} tst_job_t;


typedef struct {
    json_t           *ran;          /* node -> runs */
    int               runs;
    int               retries;      /* begin_ready() calls */
    int64_t           first_retry_ms;
    int64_t           max_retry_ms;
    int               status;       /* MST_ENGINE_* of the last commit */
    int               rc;           /* first failure of a call */
    char              err[MST_ERRLEN];
} tst_drive_t;


static void *
tst_job_run(void *arg)
{
    tst_job_t  *job = arg;

    job->err[0] = '\0';
    job->rc = mst_run_step_exec(job->env, job->id, job->epoch, job->step,
                                &job->state, &job->next, job->err,
                                sizeof(job->err));
    return NULL;
}


static void
tst_drive_init(tst_drive_t *dr)
{
    memset(dr, 0, sizeof(tst_drive_t));
    dr->ran = json_object();
}


static void
tst_drive_free(tst_drive_t *dr)
{
    json_decref(dr->ran);
}


static int
tst_ran(tst_drive_t *dr, const char *node)
{
    return (int) tst_int(dr->ran, node);
}


/*
 * Runs a claimed workflow to its end from the steps of *first (taken).
 * Returns MST_OK when it reached a final state, or the first error.
 */
static int
tst_drive(mst_run_env_t *env, const char *id, mst_run_next_t *first,
    int parallel, tst_drive_t *dr)
{
    int              rc, finished, rounds;
    size_t           i, n;
    int64_t          retry;
    uint64_t         epoch;
    pthread_t       *threads;
    tst_job_t       *jobs;
    mst_run_next_t   cur, agg;

    cur = *first;
    memset(first, 0, sizeof(mst_run_next_t));

    epoch = cur.epoch;
    finished = cur.finished;
    retry = cur.retry_in_ms;
    dr->status = cur.status;
    rc = MST_OK;

    for (rounds = 0; !finished && rc == MST_OK && rounds < 500; rounds++) {

        if (cur.nsteps == 0) {
            if (retry <= 0) {
                snprintf(dr->err, sizeof(dr->err), "stuck: no step, no retry");
                rc = MST_ERROR;
                break;
            }

            if (dr->first_retry_ms == 0) {
                dr->first_retry_ms = retry;
            }
            if (retry > dr->max_retry_ms) {
                dr->max_retry_ms = retry;
            }

            dr->retries++;
            tst_sleep_ms((long) retry);

            mst_run_next_free(&cur);
            rc = mst_run_begin_ready(env, id, epoch, &cur, dr->err,
                                     sizeof(dr->err));
            finished = cur.finished;
            retry = cur.retry_in_ms;
            continue;
        }

        jobs = calloc(cur.nsteps, sizeof(tst_job_t));
        threads = calloc(cur.nsteps, sizeof(pthread_t));
        assert_non_null(jobs);
        assert_non_null(threads);

        for (i = 0; i < cur.nsteps; i++) {
            jobs[i].env = env;
            jobs[i].id = id;
            jobs[i].epoch = epoch;
            jobs[i].step = &cur.steps[i];
            jobs[i].state = MST_STEP_RUNNING;

            json_object_set_new(dr->ran, cur.steps[i].node,
                json_integer(tst_int(dr->ran, cur.steps[i].node) + 1));
            dr->runs++;

            if (parallel) {
                assert_int_equal(pthread_create(&threads[i], NULL,
                                                tst_job_run, &jobs[i]), 0);
            } else {
                tst_job_run(&jobs[i]);
            }
        }

        if (parallel) {
            for (i = 0; i < cur.nsteps; i++) {
                pthread_join(threads[i], NULL);
            }
        }

        /* the union of what the commits returned */

        memset(&agg, 0, sizeof(mst_run_next_t));
        agg.epoch = epoch;
        retry = 0;
        n = 0;

        for (i = 0; i < cur.nsteps; i++) {
            n += jobs[i].next.nsteps;
        }

        agg.steps = n ? calloc(n, sizeof(mst_run_step_t)) : NULL;

        for (i = 0; i < cur.nsteps; i++) {
            if (jobs[i].rc != MST_OK && rc == MST_OK) {
                rc = jobs[i].rc;
                snprintf(dr->err, sizeof(dr->err), "%s: %s",
                         cur.steps[i].node, jobs[i].err);
            }

            if (jobs[i].next.finished) {
                finished = 1;
                dr->status = jobs[i].next.status;
            }

            if (jobs[i].next.retry_in_ms > retry) {
                retry = jobs[i].next.retry_in_ms;
            }

            if (jobs[i].next.nsteps) {
                memcpy(&agg.steps[agg.nsteps], jobs[i].next.steps,
                       jobs[i].next.nsteps * sizeof(mst_run_step_t));
                agg.nsteps += jobs[i].next.nsteps;
                free(jobs[i].next.steps);
            }
        }

        mst_run_next_free(&cur);
        cur = agg;

        free(jobs);
        free(threads);
    }

    mst_run_next_free(&cur);

    if (rc == MST_OK && !finished) {
        snprintf(dr->err, sizeof(dr->err), "not finished after %d rounds",
                 rounds);
        rc = MST_ERROR;
    }

    dr->rc = rc;

    return rc;
}


/* create + claim + drive; the workflow must end with status */
static void
tst_run(const mst_graph_t *g, const char *prompt, int parallel, char *id,
    tst_drive_t *dr, const char *status)
{
    int              rc;
    json_t          *rec;
    mst_run_next_t   next;

    tst_create(&tst.env, g, prompt, id);
    tst_claim(&tst.env, id, &next);

    rc = tst_drive(&tst.env, id, &next, parallel, dr);
    if (rc != MST_OK) {
        fail_msg("drive: %s (%s)", dr->err, mst_strerror(rc));
    }

    rec = tst_record(id);
    if (strcmp(tst_str(rec, "status"), status) != 0) {
        fail_msg("workflow %s: expected \"%s\", error \"%s\"",
                 tst_str(rec, "status"), status, tst_str(rec, "error"));
    }
    json_decref(rec);
}


/* group and test fixtures */

static int
tst_group_setup(void **state)
{
    int                      rc;
    char                     path[512], err[MST_ERRLEN];
    size_t                   i;
    const tst_agent_def_t   *d;

    for (i = 0; i < TST_NAGENTS; i++) {
        d = &tst_agent_defs[i];
        snprintf(path, sizeof(path), "%s/%s/%s.so", mst_test_build_dir(),
                 d->shipped ? "plugins" : "fixtures", d->file);

        rc = mst_agent_load(&tst_agents[i], d->name, path, NULL,
                            mst_host_config_table(), err, sizeof(err));
        if (rc != MST_OK) {
            fprintf(stderr, "%s (run `make fixtures plugins` first)\n", err);
            return -1;
        }
    }

    return 0;
}


static int
tst_group_teardown(void **state)
{
    size_t  i;

    for (i = 0; i < TST_NAGENTS; i++) {
        mst_agent_unload(&tst_agents[i]);
    }

    return 0;
}


static int
tst_setup(void **state)
{
    char              err[MST_ERRLEN];
    mst_store_conf_t  conf;

    memset(&tst, 0, sizeof(tst_t));
    pthread_mutex_init(&tst.lock, NULL);
    tst.logs = json_array();
    tst.dir = mst_test_tmpdir();
    tst_ndead = 0;

    memset(&conf, 0, sizeof(mst_store_conf_t));
    conf.path = tst.dir;
    conf.map_size = 64 * 1024 * 1024;

    if (mst_store_open(&tst.store, &conf, err, sizeof(err)) != MST_OK) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }

    tst.env.store = tst.store;
    tst.env.agents = tst_agents;
    tst.env.nagents = TST_NAGENTS;
    tst.env.graphs = tst.graphs;
    tst.env.ngraphs = 0;
    tst.env.pid = (long) getpid();
    tst.env.lease_ms = 2000;
    tst.env.agent_log_keep = 100;
    tst.env.flush_ms = 20;
    tst.env.notify = tst_notify;
    tst.env.notify_arg = &tst;
    tst.env.log = tst_log;
    tst.env.log_arg = &tst;

    return 0;
}


static int
tst_teardown(void **state)
{
    size_t  i;

    for (i = 0; i < tst.env.ngraphs; i++) {
        mst_graph_free(tst.graphs[i]);
    }

    mst_store_close(tst.store);
    mst_test_rmdir(tst.dir);
    json_decref(tst.logs);
    pthread_mutex_destroy(&tst.lock);

    return 0;
}


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
 * fail with "worker died" before the deaths go on forever.
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
        env.pid = TST_PID_BASE + 100 + i;
        tst_claim(&env, id, &next);

        if (next.finished) {
            break;
        }

        assert_int_equal(next.nsteps, 1);
        assert_int_equal(next.steps[0].attempt, runs + 1);
        runs++;

        /* the worker dies running it */
        mst_run_next_free(&next);
        tst_kill(env.pid);
    }

    assert_true(next.finished);
    assert_int_equal(next.nsteps, 0);
    mst_run_next_free(&next);

    /* one death is always survived; more than the policy is a loop */
    if (runs < 2 || runs > retry_max + 2) {
        fail_msg("retry max %d: node ran %d times before the guard",
                 retry_max, runs);
    }

    rec = tst_record(id);
    assert_string_equal(tst_str(rec, "status"), "failed");
    assert_non_null(strstr(tst_str(rec, "error"), "a: "));
    assert_non_null(strstr(tst_str(rec, "error"), "worker died"));
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
    assert_string_equal(tst_str(json_object_get(json_object_get(rec,
        "agents"), "a"), "status"), "idle");
    json_decref(rec);

    cp = tst_checkpoint(id, NULL);
    assert_string_equal(tst_str(cp, "status"), "cancelled");
    json_decref(cp);
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
        cmocka_unit_test_setup_teardown(test_lookups, tst_setup,
                                        tst_teardown),
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
        cmocka_unit_test_setup_teardown(test_crash_recovery, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop_guard, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_fencing, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_release, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_force_own, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_queued, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_running, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_running_consistent,
                                        tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_dead_owner, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_step_failed_timeout, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_step_abandoned, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_orphans, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_memory_plugin, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_prune, tst_setup, tst_teardown),
        cmocka_unit_test(test_price),
        cmocka_unit_test_setup_teardown(test_create_errors, tst_setup,
                                        tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
