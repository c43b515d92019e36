/*
 * Copyright (C) Maestro authors
 */

/*
 * Thread-pool posts (ngx_http_maestro_thread.c).
 */

#ifndef _NGX_HTTP_MAESTRO_THREAD_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_THREAD_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


void ngx_http_maestro_thread_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);

/*
 * Run fn(arg) on the io thread pool, then done(arg, NGX_OK) on the event
 * loop. The caller allocates arg with ngx_alloc() / malloc(); done frees
 * it. done is called exactly once: when the task cannot be posted (the
 * pool's queue is full, which is logged with the directive that raises
 * it, or no memory), done(arg, NGX_ERROR) runs at once, before the post
 * returns NGX_ERROR, and fn never runs; the caller must not touch arg
 * after a failed post. rc NGX_ERROR in done therefore means "not run".
 */
typedef void (*ngx_http_maestro_io_pt)(void *arg);
typedef void (*ngx_http_maestro_io_done_pt)(void *arg, ngx_int_t rc);
ngx_int_t ngx_http_maestro_io_post(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_io_pt fn, ngx_http_maestro_io_done_pt done, void *arg);
/* the same on any pool (the agents' pool for slow network calls) */
ngx_int_t ngx_http_maestro_pool_post(ngx_thread_pool_t *pool,
    ngx_http_maestro_io_pt fn, ngx_http_maestro_io_done_pt done, void *arg);

#endif /* _NGX_HTTP_MAESTRO_THREAD_H_INCLUDED_ */
