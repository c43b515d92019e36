/*
 * Copyright (C) Maestro authors
 */

/*
 * stepbytes: what a step costs the store, by the size of its workflow.
 * The runner alone (as corebench), on one thread, against LMDB in a
 * temporary directory, for two workflows:
 *
 *   chain   a 3-node chain (n1 -> n2 -> n3), run W times
 *   fan     a fan-out: "start" -> N nodes -> $end; "start" and then S of
 *           the N steps are measured (the others are left running)
 *
 * For each: us per step (wall) and bytes written per step (wchar of
 * /proc/self/io: what LMDB hands to write(2) per commit, sync off), and
 * the store's size at the end. With a prompt size P, the submission's
 * prompt is P bytes (the store then holds it as many times as it is
 * written: store_bytes / P).
 *
 *   stepbytes BUILD_DIR [N=10000] [S=200] [W=2000] [P=16]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "mst_run.h"
#include "mst_host.h"


static double
sb_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


static long long
sb_wchar(void)
{
    char        line[256];
    FILE       *f;
    long long   v;

    v = -1;
    f = fopen("/proc/self/io", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "wchar: %lld", &v) == 1) {
            break;
        }
    }

    if (f != NULL) {
        fclose(f);
    }

    return v;
}


static long long
sb_store_bytes(const char *dir)
{
    char         path[4096];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);

    return stat(path, &st) == 0 ? (long long) st.st_blocks * 512 : -1;
}


static int
sb_agent_exists(const char *agent, void *arg)
{
    return strcmp(agent, "noop") == 0;
}


static void
sb_step(mst_run_env_t *env, const char *id, uint64_t epoch,
    const mst_run_step_t *step, mst_run_next_t *more)
{
    char          err[MST_ERRLEN];
    volatile int  state;

    state = MST_STEP_RUNNING;
    memset(more, 0, sizeof(mst_run_next_t));

    if (mst_run_step_exec(env, id, epoch, step, &state, more, err,
                          sizeof(err))
        != MST_OK)
    {
        fprintf(stderr, "stepbytes: step: %s\n", err);
        exit(1);
    }
}


static mst_graph_t *
sb_graph(const char *text)
{
    char          err[MST_ERRLEN];
    json_t       *def;
    mst_graph_t  *g;

    def = json_loads(text, 0, NULL);
    g = def ? mst_graph_parse(def, sb_agent_exists, NULL, err, sizeof(err))
            : NULL;
    json_decref(def);

    if (g == NULL) {
        fprintf(stderr, "stepbytes: graph: %s\n", def ? err : "not JSON");
        exit(1);
    }

    return g;
}


static char *
sb_fan_json(long n)
{
    long    i;
    char   *p, *s;

    s = malloc((size_t) n * 120 + 256);
    p = s;

    p += sprintf(p, "{\"name\":\"fan\",\"entry\":\"start\","
                 "\"max_steps\":%ld,\"nodes\":{\"start\":{\"agent\":"
                 "\"noop\"}", n + 10);

    for (i = 0; i < n; i++) {
        p += sprintf(p, ",\"n%ld\":{\"agent\":\"noop\"}", i);
    }

    p += sprintf(p, "},\"edges\":[");

    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s{\"from\":\"start\",\"to\":\"n%ld\"}",
                     i ? "," : "", i);
    }

    sprintf(p, "]}");

    return s;
}


int
main(int argc, char **argv)
{
    long               n, s, w, i, j, steps;
    char               dir[] = "/tmp/maestro-stepbytes-XXXXXX";
    char               path[4096], id[MST_ID_LEN + 1], err[MST_ERRLEN];
    char              *fan, *prompt;
    size_t             plen;
    double             t0, chain_us, fan_us, start_us;
    json_t            *rec;
    long long          b0, chain_b, fan_b, start_b, chain_store;
    mst_agent_t        agent;
    mst_graph_t       *graphs[2];
    mst_store_t       *store;
    mst_run_env_t      env;
    mst_run_next_t     next, more;
    mst_store_conf_t   conf;

    if (argc < 2) {
        fprintf(stderr, "usage: stepbytes BUILD_DIR [N] [S] [W] [P]\n");
        return 2;
    }

    n = argc > 2 ? atol(argv[2]) : 10000;
    s = argc > 3 ? atol(argv[3]) : 200;
    w = argc > 4 ? atol(argv[4]) : 2000;
    plen = argc > 5 ? (size_t) atol(argv[5]) : 16;

    if (s > n) {
        s = n;
    }

    prompt = malloc(plen + 1);
    memset(prompt, 'p', plen);
    prompt[plen] = '\0';

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    memset(&conf, 0, sizeof(mst_store_conf_t));
    conf.path = dir;
    conf.map_size = (size_t) 8 << 30;

    if (mst_store_open(&store, &conf, err, sizeof(err)) != MST_OK) {
        fprintf(stderr, "stepbytes: %s\n", err);
        return 1;
    }

    snprintf(path, sizeof(path), "%s/fixtures/noop.so", argv[1]);

    if (mst_agent_load(&agent, "noop", path, NULL, mst_host_config_table(),
                       err, sizeof(err))
        != MST_OK)
    {
        fprintf(stderr, "stepbytes: %s\n", err);
        return 1;
    }

    graphs[0] = sb_graph("{\"name\":\"chain\",\"entry\":\"n1\","
                         "\"nodes\":{\"n1\":{\"agent\":\"noop\"},"
                         "\"n2\":{\"agent\":\"noop\"},"
                         "\"n3\":{\"agent\":\"noop\"}},"
                         "\"edges\":[{\"from\":\"n1\",\"to\":\"n2\"},"
                         "{\"from\":\"n2\",\"to\":\"n3\"}]}");
    fan = sb_fan_json(n);
    graphs[1] = sb_graph(fan);

    memset(&env, 0, sizeof(mst_run_env_t));
    env.store = store;
    env.agents = &agent;
    env.nagents = 1;
    env.graphs = graphs;
    env.ngraphs = 1;        /* the fan-out is submitted inline */
    env.pid = (long) getpid();
    env.lease_ms = 30000;
    env.agent_log_keep = 100;
    env.flush_ms = 20;

    /* the 3-node chain */

    steps = 0;
    b0 = sb_wchar();
    t0 = sb_now_us();

    for (i = 0; i < w; i++) {
        memset(&next, 0, sizeof(mst_run_next_t));

        if (mst_run_submit(&env, graphs[0], "chain", prompt, NULL, NULL,
                           NULL, NULL, id, &rec, &next, err, sizeof(err))
            != MST_OK)
        {
            fprintf(stderr, "stepbytes: submit: %s\n", err);
            return 1;
        }

        json_decref(rec);

        while (!next.finished && next.nsteps > 0) {
            sb_step(&env, id, next.epoch, &next.steps[0], &more);
            steps++;
            mst_run_next_free(&next);
            next = more;
        }

        mst_run_next_free(&next);
    }

    chain_us = (sb_now_us() - t0) / steps;
    chain_b = (sb_wchar() - b0) / steps;
    chain_store = sb_store_bytes(dir);

    /* the fan-out: its first step, then s of its n steps */

    memset(&next, 0, sizeof(mst_run_next_t));

    if (mst_run_submit(&env, graphs[1], "fan", prompt, NULL, NULL, NULL,
                       NULL, id, &rec, &next, err, sizeof(err))
        != MST_OK)
    {
        fprintf(stderr, "stepbytes: submit fan: %s\n", err);
        return 1;
    }

    json_decref(rec);

    b0 = sb_wchar();
    t0 = sb_now_us();
    sb_step(&env, id, next.epoch, &next.steps[0], &more);
    start_us = sb_now_us() - t0;
    start_b = sb_wchar() - b0;
    mst_run_next_free(&next);
    next = more;

    /* a commit begins at most MST_RUN_MAX_READY steps at once */
    if (next.nsteps == 0) {
        fprintf(stderr, "stepbytes: no step ready after \"start\"\n");
        return 1;
    }

    if ((long) next.nsteps < s) {
        s = (long) next.nsteps;
    }

    b0 = sb_wchar();
    t0 = sb_now_us();

    for (j = 0; j < s; j++) {
        sb_step(&env, id, next.epoch, &next.steps[j], &more);
        mst_run_next_free(&more);
    }

    fan_us = (sb_now_us() - t0) / s;
    fan_b = (sb_wchar() - b0) / s;

    printf("{\"chain\": {\"workflows\": %ld, \"us_per_step\": %.1f,"
           " \"bytes_per_step\": %lld, \"store_bytes\": %lld},"
           " \"fan\": {\"nodes\": %ld, \"graph_bytes\": %zu,"
           " \"first_step_us\": %.0f, \"first_step_bytes\": %lld,"
           " \"steps\": %ld, \"us_per_step\": %.1f, \"bytes_per_step\": %lld},"
           " \"prompt_bytes\": %zu, \"store_bytes\": %lld}\n",
           w, chain_us, chain_b, chain_store, n, strlen(fan), start_us,
           start_b, s, fan_us, fan_b, plen, sb_store_bytes(dir));

    mst_run_next_free(&next);
    mst_graph_free(graphs[0]);
    mst_graph_free(graphs[1]);
    mst_agent_unload(&agent);
    mst_store_close(store);
    free(fan);
    free(prompt);

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);

    return system(path) == 0 ? 0 : 1;
}
