/*
 * Copyright (C) Maestro authors
 */

/*
 * The host side of the plugin ABI: the per-step context behind
 * maestro_ctx_t and the function table handed to plugins. Shared by
 * mst_run_step.c (which creates contexts and commits them) and mst_host.c
 * (which implements the services).
 */

#ifndef _MST_HOST_H_INCLUDED_
#define _MST_HOST_H_INCLUDED_

#include <pthread.h>

#include "mst_run.h"


struct maestro_ctx_s {
    mst_run_env_t          *env;
    const char             *id;
    uint64_t                epoch;
    const mst_run_step_t   *step;
    volatile int           *state;      /* MST_STEP_*, shared with loop */

    pthread_mutex_t         lock;       /* plugins may call from threads */
    int64_t                 started;    /* mst_mono_ms() */
    int64_t                 deadline;   /* mst_mono_ms() */

    json_t                 *events;     /* pending: [[name, data], ...] */
    int64_t                 last_flush;
    json_t                 *output;
    json_t                 *patch;
    long                    prompt_tokens;
    long                    completion_tokens;
    json_t                 *by_model;   /* {model: {prompt, completion,
                                           cost_usd}} since the flush */
    double                  progress;
    char                    current_task[200];
    unsigned                progress_dirty:1;
    unsigned                fenced:1;
    unsigned                cancel_seen:1;
    int64_t                 cancel_checked;

    char                    error[MST_ERRLEN + 16]; /* last error set */
};


extern const maestro_host_t  mst_host;

/* a context for one step; mst_host_ctx_free() releases it */
int mst_host_ctx_init(maestro_ctx_t *ctx, mst_run_env_t *env, const char *id,
    uint64_t epoch, const mst_run_step_t *step, volatile int *state);
void mst_host_ctx_free(maestro_ctx_t *ctx);

/* queue an event (takes data); flushes when flush_ms passed */
void mst_host_event(maestro_ctx_t *ctx, const char *name, json_t *data);

/* write pending events now (own transaction); lock held by caller */
int mst_run_ctx_flush(maestro_ctx_t *ctx);

/* map between MST_* and MAESTRO_* codes */
int mst_host_code(int mst_rc);

/* the plugin-facing host table for init() at configuration time */
const maestro_host_t *mst_host_config_table(void);

#endif /* _MST_HOST_H_INCLUDED_ */
