/*
 * Copyright (C) Maestro authors
 */

/*
 * The plugins' LLM calls on the event loop (ngx_http_maestro_llm.c).
 */

#ifndef _NGX_HTTP_MAESTRO_LLM_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_LLM_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pthread.h>

#include "ngx_http_maestro_module.h"


/*
 * The plugins' LLM calls, made by the event loop's engine (the
 * pass-through's) while the plugin's pool thread waits; its text arrives
 * as it streams. Shared between the thread and the loop:
 * what is marked "under lock".
 */
typedef struct ngx_http_maestro_job_s  ngx_http_maestro_job_t;

struct ngx_http_maestro_job_s {
    pthread_mutex_t                  lock;
    pthread_cond_t                   cond;
    ngx_uint_t                       refs;      /* under lock */
    json_t                          *request;   /* the loop's while it runs */
    int                              stream;
    int64_t                          deadline;  /* mst_mono_ms(), 0: none */
    ngx_http_maestro_job_t          *next;      /* the queue to the loop */
    void                            *call;      /* the loop's (passthru) */
    ngx_queue_t                      active;    /* the loop's */
    char                             key_id[33];/* a workflow's API key */

    /* under lock */
    u_char                          *text;      /* streamed, not yet taken */
    size_t                           ntext;
    size_t                           text_cap;
    int                              abort;     /* also read unlocked */
    unsigned                         done:1;
    int                              rc;
    char                             err[MST_ERRLEN];
    json_t                          *response;
    const char                      *used;
};

ngx_int_t ngx_http_maestro_llm_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_llm_exit_worker(void);
/* the loop: text streamed for the plugin; the end of the call */
void ngx_http_maestro_job_text(ngx_http_maestro_job_t *job, const char *p,
    size_t n);
void ngx_http_maestro_job_complete(ngx_http_maestro_job_t *job, int rc,
    json_t *response, const char *used, const char *err);

#endif /* _NGX_HTTP_MAESTRO_LLM_H_INCLUDED_ */
