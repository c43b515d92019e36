/*
 * Copyright (C) Maestro authors
 */

/*
 * corebench: the durable runner (mst_run) alone, in one process, with no
 * HTTP and no thread pool: submit the 5-step noop workflow and run its
 * steps on this thread with mst_run_step_exec(), N times, against an LMDB
 * store in a temporary directory. Prints one JSON line: workflows/s, us per
 * step, and us of CPU per step. It is the floor under the HTTP numbers of
 * bench.mjs and the quickest loop for profiling the runner.
 *
 *   corebench BUILD_DIR [N] [sync 0|1] [writemap 0|1] [crypt 0|1]
 *
 * crypt 1 seals every value (maestro_store_encryption_key) with a random
 * key made for the run.
 *
 * CB_KEEP=1 keeps the store and prints its directory (to inspect it).
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
#include "corebench.h"


int
main(int argc, char **argv)
{
    int                rc;
    long               n, i, steps;
    char               dir[] = "/tmp/maestro-corebench-XXXXXX";
    char               path[4096], id[MST_ID_LEN + 1], err[MST_ERRLEN];
    double             t0, c0, wall, cpu;
    json_t            *def, *rec;
    mst_agent_t        agent;
    mst_graph_t       *graph;
    mst_store_t       *store;
    mst_run_env_t      env;
    mst_crypt_t       *ring;
    mst_run_next_t     next;
    mst_store_conf_t   conf;
    unsigned char      key[MST_CRYPT_KEY_LEN];

    if (argc < 2) {
        fprintf(stderr, "usage: corebench BUILD_DIR [N] [sync] [writemap]"
                " [crypt]\n");
        return 2;
    }

    n = argc > 2 ? atol(argv[2]) : 2000;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    memset(&conf, 0, sizeof(mst_store_conf_t));
    conf.path = dir;
    conf.map_size = (size_t) 4 << 30;
    conf.sync = argc > 3 ? atoi(argv[3]) : 0;
    conf.writemap = argc > 4 ? atoi(argv[4]) : 0;

    ring = NULL;

    if (argc > 5 && atoi(argv[5]) != 0) {
        ring = mst_crypt_create(err, sizeof(err));

        if (ring == NULL || RAND_bytes(key, sizeof(key)) != 1
            || mst_crypt_add_key(ring, 1, key, 1, err, sizeof(err)) != MST_OK)
        {
            fprintf(stderr, "corebench: key ring: %s\n", err);
            return 1;
        }

        conf.crypt = ring;
    }

    if (mst_store_open(&store, &conf, err, sizeof(err)) != MST_OK) {
        fprintf(stderr, "corebench: %s\n", err);
        return 1;
    }

    snprintf(path, sizeof(path), "%s/fixtures/noop.so", argv[1]);

    if (mst_agent_load(&agent, "noop", path, NULL, mst_host_config_table(),
                       err, sizeof(err))
        != MST_OK)
    {
        fprintf(stderr, "corebench: %s\n", err);
        return 1;
    }

    def = json_loads(cb_graph_json, 0, NULL);
    graph = mst_graph_parse(def, cb_agent_exists, NULL, err, sizeof(err));
    json_decref(def);

    if (graph == NULL) {
        fprintf(stderr, "corebench: graph: %s\n", err);
        return 1;
    }

    memset(&env, 0, sizeof(mst_run_env_t));
    env.store = store;
    env.agents = &agent;
    env.nagents = 1;
    env.graphs = &graph;
    env.ngraphs = 1;
    env.pid = (long) getpid();
    env.lease_ms = 30000;
    env.agent_log_keep = 100;
    env.flush_ms = 20;

    steps = 0;
    t0 = cb_now_us();
    c0 = cb_cpu_us();

    for (i = 0; i < n; i++) {
        memset(&next, 0, sizeof(mst_run_next_t));

        rc = mst_run_submit(&env, graph, "bench5", "benchmark prompt", NULL,
                            NULL, NULL, NULL, id, &rec, &next, err,
                            sizeof(err));
        if (rc != MST_OK) {
            fprintf(stderr, "corebench: submit: %s\n", err);
            return 1;
        }

        json_decref(rec);
        steps += cb_drive(&env, id, &next);
    }

    wall = cb_now_us() - t0;
    cpu = cb_cpu_us() - c0;

    if (steps != n * 5) {
        fprintf(stderr, "corebench: %ld steps, expected %ld\n", steps, n * 5);
        return 1;
    }

    printf("{\"workflows\": %ld, \"steps\": %ld, \"sync\": %d,"
           " \"writemap\": %d, \"crypt\": %d, \"workflows_per_s\": %.1f,"
           " \"us_per_step\": %.2f, \"cpu_us_per_step\": %.2f}\n",
           n, steps, conf.sync, conf.writemap, ring != NULL,
           n / (wall / 1e6), wall / steps, cpu / steps);

    mst_graph_free(graph);
    mst_agent_unload(&agent);
    mst_store_close(store);
    mst_crypt_free(ring);

    if (getenv("CB_KEEP") != NULL) {
        printf("%s\n", dir);
        return 0;
    }

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    rc = system(path);

    return rc == 0 ? 0 : 1;
}
