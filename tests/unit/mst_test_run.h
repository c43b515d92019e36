/*
 * Copyright (C) Maestro authors
 */

/*
 * The harness of the runner's unit tests (test_run*.c): mst_run, the
 * durable workflow runner, for real: an LMDB store in a temporary
 * directory, the fixture plugins and the shipped planner / llm /
 * reviewer plugins loaded with mst_agent_load(), the offline LLM.
 *
 * tst_drive() plays the nginx glue's role synchronously: claim, run the
 * steps each commit returns (in turn, or on threads at once), honour
 * retry_in_ms with mst_run_begin_ready(), until the workflow is final.
 * Other "processes" are the same env with another pid; tst_alive() says
 * which pids are dead.
 */

#ifndef _MST_TEST_RUN_H_INCLUDED_
#define _MST_TEST_RUN_H_INCLUDED_

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
    { "alloc", "alloc", 0 },
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


/* helpers */

static inline void
tst_sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}


static inline int
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


static inline void
tst_kill(long pid)
{
    assert_true(tst_ndead < TST_MAX_DEAD);
    tst_dead[tst_ndead++] = pid;
}


static inline void
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


static inline void
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
static inline int
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


static inline mst_graph_t *
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
static inline mst_graph_t *
tst_named(const char *text)
{
    mst_graph_t  *g;

    assert_true(tst.env.ngraphs < 4);

    g = tst_graph(text);
    tst.graphs[tst.env.ngraphs++] = g;

    return g;
}


static inline void
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


static inline void
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


static inline json_t *
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


static inline const char *
tst_str(json_t *o, const char *key)
{
    const char  *s;

    s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}


static inline int64_t
tst_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}


static inline int
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
static inline json_t *
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


static inline json_t *
tst_events(const char *id)
{
    return tst_events_after(id, 0);
}


static inline size_t
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
static inline void
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
static inline size_t
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
static inline int64_t
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


static inline size_t
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
static inline size_t
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
static inline int
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


static inline json_t *
tst_last_event(json_t *events)
{
    return json_array_get(events, json_array_size(events) - 1);
}


static inline json_t *
tst_checkpoints(const char *id)
{
    json_t     *list;
    mst_txn_t  *txn;

    assert_int_equal(mst_txn_begin(tst.store, 1, &txn), MST_OK);
    assert_int_equal(mst_store_checkpoint_list(txn, id, &list), MST_OK);
    mst_txn_abort(txn);

    return list;
}


static inline json_t *
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
static inline const char *
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


static inline void *
tst_job_run(void *arg)
{
    tst_job_t  *job = arg;

    job->err[0] = '\0';
    job->rc = mst_run_step_exec(job->env, job->id, job->epoch, job->step,
                                &job->state, &job->next, job->err,
                                sizeof(job->err));
    return NULL;
}


static inline void
tst_drive_init(tst_drive_t *dr)
{
    memset(dr, 0, sizeof(tst_drive_t));
    dr->ran = json_object();
}


static inline void
tst_drive_free(tst_drive_t *dr)
{
    json_decref(dr->ran);
}


static inline int
tst_ran(tst_drive_t *dr, const char *node)
{
    return (int) tst_int(dr->ran, node);
}


/*
 * Runs a claimed workflow to its end from the steps of *first (taken).
 * Returns MST_OK when it reached a final state, or the first error.
 */
static inline int
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
static inline void
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

static inline int
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


static inline int
tst_group_teardown(void **state)
{
    size_t  i;

    for (i = 0; i < TST_NAGENTS; i++) {
        mst_agent_unload(&tst_agents[i]);
    }

    return 0;
}


static inline int
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
    conf.crypt = mst_test_crypt();

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


static inline int
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

#endif /* _MST_TEST_RUN_H_INCLUDED_ */
