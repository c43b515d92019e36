/*
 * Copyright (C) Maestro authors
 */

/*
 * What corebench.c and retainbench.c share: the 5-step noop graph, the
 * clocks, and the loop that runs a workflow's steps on this thread.
 */

#ifndef _CB_COMMON_H_INCLUDED_
#define _CB_COMMON_H_INCLUDED_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "mst_run.h"


static const char *cb_graph_json =
    "{\"name\": \"bench5\", \"entry\": \"n1\", \"max_steps\": 10,"
    " \"nodes\": {\"n1\": {\"agent\": \"noop\"}, \"n2\": {\"agent\": \"noop\"},"
    "  \"n3\": {\"agent\": \"noop\"}, \"n4\": {\"agent\": \"noop\"},"
    "  \"n5\": {\"agent\": \"noop\"}},"
    " \"edges\": [{\"from\": \"n1\", \"to\": \"n2\"},"
    "  {\"from\": \"n2\", \"to\": \"n3\"}, {\"from\": \"n3\", \"to\": \"n4\"},"
    "  {\"from\": \"n4\", \"to\": \"n5\"},"
    "  {\"from\": \"n5\", \"to\": \"$end\"}]}";


static double
cb_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


static double
cb_cpu_us(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6
           + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}


static int
cb_agent_exists(const char *agent, void *arg)
{
    return strcmp(agent, "noop") == 0;
}


/* run what a commit returned until the workflow is final; steps run */
static long
cb_drive(mst_run_env_t *env, const char *id, mst_run_next_t *next)
{
    int             rc;
    long            steps;
    size_t          i;
    volatile int    state;
    char            err[MST_ERRLEN];
    mst_run_next_t  more;

    steps = 0;

    while (!next->finished && next->nsteps > 0) {
        memset(&more, 0, sizeof(mst_run_next_t));

        for (i = 0; i < next->nsteps; i++) {
            state = MST_STEP_RUNNING;
            mst_run_next_free(&more);
            rc = mst_run_step_exec(env, id, next->epoch, &next->steps[i],
                                   &state, &more, err, sizeof(err));
            if (rc != MST_OK) {
                fprintf(stderr, "corebench: step: %s\n", err);
                exit(1);
            }
            steps++;
        }

        mst_run_next_free(next);
        *next = more;
    }

    mst_run_next_free(next);

    return steps;
}


#endif /* _CB_COMMON_H_INCLUDED_ */
