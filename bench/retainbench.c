/*
 * Copyright (C) Maestro authors
 */

/*
 * retainbench: corebench's loop (the 5-step noop workflow run by mst_run
 * on this thread) with workflow retention on, as a worker runs it: a
 * retention pass (mst_retain_run, the module's defaults) every 100 ms of
 * wall time, its cost in the time measured. Three stores:
 *
 *   empty      a fresh store
 *   full       FILL finished workflows (copies of a real one: record,
 *              checkpoints, events), made in bulk transactions; limits
 *              not reached: what the store's size costs a step
 *   at_cap     the same store with maestro_workflow_retention_count at
 *              what it holds: every workflow that finishes makes the
 *              oldest go
 *
 *   retainbench BUILD_DIR [N] [FILL]        (2000 and 1000000)
 *
 * Prints one JSON line per store and the ratios. RB_DIR: where the
 * stores go (default /tmp); they are removed at the end. RB_WRITEMAP=1:
 * the stores with MDB_WRITEMAP (maestro_store_writemap on).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <openssl/rand.h>

#include "mst_run.h"
#include "mst_host.h"
#include "mst_retain.h"
#include "corebench.h"


typedef struct {
    mst_store_t        *store;
    mst_run_env_t       env;
    mst_retain_conf_t   rc;
    mst_retain_state_t  rs;
    size_t              expired;
    double              retain_us;
} rb_run_t;


static void
rb_retain_conf(mst_retain_conf_t *c, size_t max_count)
{
    /* the module's defaults (ngx_http_maestro_retain.c) */
    memset(c, 0, sizeof(mst_retain_conf_t));
    c->max_age_ms = 7 * 86400 * 1000LL;
    c->max_count = max_count;
    c->max_per_user = 100000;
    c->pressure_pct = 80;
    c->pressure_min_age_ms = 10000;
    c->batch = 64;
    c->max_txns = 8;
    c->users_per_pass = 64;
    c->backfill = 2000;
}


static mst_store_t *
rb_open(const char *dir)
{
    char              err[MST_ERRLEN];
    mst_store_t      *store;
    mst_store_conf_t  conf;

    memset(&conf, 0, sizeof(mst_store_conf_t));
    conf.path = dir;
    conf.map_size = (size_t) 64 << 30;
    conf.writemap = getenv("RB_WRITEMAP") != NULL;

    if (mst_store_open(&store, &conf, err, sizeof(err)) != MST_OK) {
        fprintf(stderr, "retainbench: %s\n", err);
        exit(1);
    }

    return store;
}


static int
rb_event_copy(uint64_t seq, const char *name, const char *data, size_t len,
    void *arg)
{
    json_t  *events = arg;

    json_array_append_new(events, json_pack("{s:s, s:s%}", "name", name,
                                            "data", data, len));
    return 0;
}


/* FILL copies of the finished workflow id, finished over the last 6 days */
static void
rb_fill(mst_store_t *store, const char *id, long fill)
{
    int          rc;
    long         i;
    char         nid[MST_ID_LEN + 1], user[32];
    size_t       k;
    json_t      *rec, *cps, *events, *r, *e, *data;
    int64_t      now, t;
    double       t0;
    mst_txn_t   *txn;

    rc = mst_txn_begin(store, 1, &txn);
    if (rc == MST_OK) {
        rc = mst_store_wf_get(txn, id, &rec);
    }
    if (rc == MST_OK) {
        rc = mst_store_checkpoint_list(txn, id, &cps);
    }
    events = json_array();
    if (rc == MST_OK) {
        rc = mst_store_event_range(txn, id, 0, 0, rb_event_copy, events);
    }
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        fprintf(stderr, "retainbench: read: %s\n", mst_strerror(rc));
        exit(1);
    }

    now = mst_now_ms();
    t0 = cb_now_us();
    txn = NULL;

    for (i = 0; i < fill; i++) {
        if (txn == NULL && mst_txn_begin(store, 0, &txn) != MST_OK) {
            exit(1);
        }

        t = now - 6 * 86400 * 1000LL + i * (5 * 86400 * 1000LL / fill);
        snprintf(nid, sizeof(nid), "wf_%012llx%08x",
                 (unsigned long long) t & 0xffffffffffffULL,
                 (unsigned) i & 0xffffffffu);

        r = json_deep_copy(rec);
        json_object_set_new(r, "id", json_string(nid));
        json_object_set_new(r, "created_at", json_integer(t));
        json_object_set_new(r, "finished_at", json_integer(t + 10));
        json_object_set_new(r, "last_event_id", json_integer(0));

        /* 10,000 users of 100 each: no user count is reached */
        snprintf(user, sizeof(user), "user-%ld", i % 10000);
        json_object_set_new(r, "user_id", json_string(user));

        rc = MST_OK;

        json_array_foreach(cps, k, e) {
            if (rc == MST_OK) {
                rc = mst_store_checkpoint_put(txn, nid,
                         json_integer_value(json_object_get(e, "seq")),
                         json_object_get(e, "checkpoint"));
            }
        }

        json_array_foreach(events, k, e) {
            if (rc == MST_OK) {
                data = json_loads(json_string_value(json_object_get(e,
                                                                    "data")),
                                  0, NULL);
                rc = mst_store_event_append(txn, nid, r,
                         json_string_value(json_object_get(e, "name")),
                         data, NULL);
                json_decref(data);
            }
        }

        if (rc == MST_OK) {
            rc = mst_store_wf_put(txn, nid, r);
        }

        json_decref(r);

        if (rc != MST_OK) {
            fprintf(stderr, "retainbench: fill: %s\n", mst_strerror(rc));
            exit(1);
        }

        if (i % 10000 == 9999 || i == fill - 1) {
            if (mst_txn_commit(txn) != MST_OK) {
                fprintf(stderr, "retainbench: fill commit failed\n");
                exit(1);
            }
            txn = NULL;
        }
    }

    fprintf(stderr, "retainbench: %ld finished workflows stored in %.1f s "
            "(%zu checkpoints, %zu events each)\n", fill,
            (cb_now_us() - t0) / 1e6, json_array_size(cps),
            json_array_size(events));

    json_decref(rec);
    json_decref(cps);
    json_decref(events);
}


/* N workflows with a retention pass every 100 ms; us per step */
static double
rb_measure(rb_run_t *rb, mst_graph_t *graph, long n, const char *label,
    char *last_id)
{
    int                   rc;
    long                  i, steps;
    char                  id[MST_ID_LEN + 1], err[MST_ERRLEN];
    size_t                used, map, r;
    double                t0, c0, wall, cpu, tick, t1;
    json_t               *rec;
    mst_txn_t            *txn;
    mst_run_next_t        next;
    mst_retain_result_t   res;

    steps = 0;
    t0 = cb_now_us();
    c0 = cb_cpu_us();
    tick = t0;

    for (i = 0; i < n; i++) {
        memset(&next, 0, sizeof(mst_run_next_t));

        rc = mst_run_submit(&rb->env, graph, "bench5", "benchmark prompt",
                            NULL, "bench-user", NULL, NULL, id, &rec, &next,
                            err, sizeof(err));
        if (rc != MST_OK) {
            fprintf(stderr, "retainbench: submit: %s\n", err);
            exit(1);
        }

        json_decref(rec);
        steps += cb_drive(&rb->env, id, &next);

        if (cb_now_us() - tick >= 100000) {
            t1 = cb_now_us();
            rc = mst_retain_run(rb->store, &rb->rc, mst_now_ms(), &rb->rs,
                                &res);
            if (rc != MST_OK) {
                fprintf(stderr, "retainbench: retain: %s\n",
                        mst_strerror(rc));
                exit(1);
            }
            for (r = 0; r < MST_RETAIN_NREASONS; r++) {
                rb->expired += res.expired[r];
            }
            tick = cb_now_us();
            rb->retain_us += tick - t1;
        }
    }

    wall = cb_now_us() - t0;
    cpu = cb_cpu_us() - c0;

    if (last_id != NULL) {
        memcpy(last_id, id, MST_ID_LEN + 1);
    }

    (void) mst_txn_begin(rb->store, 1, &txn);
    (void) mst_store_live(txn, &used, &map);
    r = 0;
    (void) mst_store_fin_count(txn, NULL, &r);
    mst_txn_abort(txn);

    printf("{\"store\": \"%s\", \"finished_stored\": %zu, \"data_mb\": %zu,"
           " \"workflows\": %ld, \"steps\": %ld, \"us_per_step\": %.2f,"
           " \"cpu_us_per_step\": %.2f, \"retention_us_per_step\": %.2f,"
           " \"expired\": %zu}\n", label, r, used >> 20, n, steps,
           wall / steps, cpu / steps, rb->retain_us / steps, rb->expired);
    fflush(stdout);

    return wall / steps;
}


static void
rb_env(rb_run_t *rb, mst_store_t *store, mst_agent_t *agent,
    mst_graph_t **graph, size_t max_count)
{
    memset(rb, 0, sizeof(rb_run_t));
    rb->store = store;
    rb->env.store = store;
    rb->env.agents = agent;
    rb->env.nagents = 1;
    rb->env.graphs = graph;
    rb->env.ngraphs = 1;
    rb->env.pid = (long) getpid();
    rb->env.lease_ms = 30000;
    rb->env.agent_log_keep = 100;
    rb->env.flush_ms = 20;
    rb_retain_conf(&rb->rc, max_count);
}


int
main(int argc, char **argv)
{
    long          n, fill;
    char          dir1[1024], dir2[1024], path[4096], err[MST_ERRLEN];
    char          seed[MST_ID_LEN + 1];
    const char   *base;
    double        empty, full, cap;
    json_t       *def;
    rb_run_t      rb;
    mst_agent_t   agent;
    mst_graph_t  *graph;
    mst_store_t  *s1, *s2;

    if (argc < 2) {
        fprintf(stderr, "usage: retainbench BUILD_DIR [N] [FILL]\n");
        return 2;
    }

    n = argc > 2 ? atol(argv[2]) : 2000;
    fill = argc > 3 ? atol(argv[3]) : 1000000;
    base = getenv("RB_DIR") ? getenv("RB_DIR") : "/tmp";

    snprintf(dir1, sizeof(dir1), "%s/maestro-retainbench-XXXXXX", base);
    snprintf(dir2, sizeof(dir2), "%s/maestro-retainbench-XXXXXX", base);

    if (mkdtemp(dir1) == NULL || mkdtemp(dir2) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    snprintf(path, sizeof(path), "%s/fixtures/noop.so", argv[1]);

    if (mst_agent_load(&agent, "noop", path, NULL, mst_host_config_table(),
                       err, sizeof(err))
        != MST_OK)
    {
        fprintf(stderr, "retainbench: %s\n", err);
        return 1;
    }

    def = json_loads(cb_graph_json, 0, NULL);
    graph = mst_graph_parse(def, cb_agent_exists, NULL, err, sizeof(err));
    json_decref(def);

    if (graph == NULL) {
        fprintf(stderr, "retainbench: graph: %s\n", err);
        return 1;
    }

    /* an empty store (a short warm-up first: the allocator, the cache) */
    s1 = rb_open(dir1);
    rb_env(&rb, s1, &agent, &graph, 1000000);
    (void) rb_measure(&rb, graph, n / 10 + 1, "warmup", NULL);
    mst_store_close(s1);
    snprintf(path, sizeof(path), "rm -rf '%s'/*", dir1);
    if (system(path) != 0) {
        return 1;
    }

    s1 = rb_open(dir1);
    rb_env(&rb, s1, &agent, &graph, 1000000);
    empty = rb_measure(&rb, graph, n, "empty", NULL);
    mst_store_close(s1);

    /* FILL copies of a real finished one, run in that store */
    s2 = rb_open(dir2);
    rb_env(&rb, s2, &agent, &graph, 2 * fill + 2 * n);
    (void) rb_measure(&rb, graph, 1, "seed", seed);
    rb_fill(s2, seed, fill);

    /* written back first: the kernel's writeback of the fill is not the
       steps' cost (the empty store had none pending) */
    if (system("sync") != 0) {
        return 1;
    }

    /* limits not reached: the size of the store alone */
    rb_env(&rb, s2, &agent, &graph, 2 * fill + 2 * n);
    full = rb_measure(&rb, graph, n, "full", NULL);

    /* at the cap: each finished workflow makes the oldest go */
    {
        size_t      stored;
        mst_txn_t  *txn;

        stored = 0;
        (void) mst_txn_begin(s2, 1, &txn);
        (void) mst_store_fin_count(txn, NULL, &stored);
        mst_txn_abort(txn);

        rb_env(&rb, s2, &agent, &graph, stored);
    }
    cap = rb_measure(&rb, graph, n, "at_cap", NULL);

    /* the empty store again: the mean of before and after, as the
       machine's load drifts */
    snprintf(path, sizeof(path), "rm -rf '%s'/*", dir1);
    if (system(path) != 0) {
        return 1;
    }
    s1 = rb_open(dir1);
    rb_env(&rb, s1, &agent, &graph, 1000000);
    empty = (empty + rb_measure(&rb, graph, n, "empty_again", NULL)) / 2;
    mst_store_close(s1);

    printf("{\"fill\": %ld, \"us_per_step_empty\": %.2f,"
           " \"us_per_step_full\": %.2f, \"us_per_step_at_cap\": %.2f,"
           " \"full_over_empty\": %.3f, \"at_cap_over_empty\": %.3f}\n",
           fill, empty, full, cap, full / empty, cap / empty);

    mst_graph_free(graph);
    mst_agent_unload(&agent);
    mst_store_close(s2);

    snprintf(path, sizeof(path), "rm -rf '%s' '%s'", dir1, dir2);

    return system(path) == 0 ? 0 : 1;
}
