/*
 * Copyright (C) Maestro authors
 */

/*
 * Posts to nginx thread pools: fn(arg) on a pool thread, then done(arg,
 * rc) in the event loop. The task is allocated outside any request pool,
 * since the request may finish first.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_thread.h"


typedef struct {
    ngx_http_maestro_io_pt          fn;
    ngx_http_maestro_io_done_pt     done;
    void                           *arg;
} ngx_http_maestro_io_t;


static ngx_cycle_t                   *ngx_http_maestro_thread_cycle;
static ngx_http_maestro_main_conf_t  *ngx_http_maestro_thread_mmcf;


void
ngx_http_maestro_thread_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_http_maestro_thread_cycle = cycle;
    ngx_http_maestro_thread_mmcf = mmcf;
}


/* runs on a pool thread */
static void
ngx_http_maestro_io_thread(void *data, ngx_log_t *log)
{
    ngx_http_maestro_io_t  *io = data;

    io->fn(io->arg);
}


/* runs in the event loop */
static void
ngx_http_maestro_io_event(ngx_event_t *ev)
{
    ngx_thread_task_t      *task = ev->data;
    ngx_http_maestro_io_t  *io;

    io = task->ctx;
    io->done(io->arg, NGX_OK);

    ngx_free(task);
}


ngx_int_t
ngx_http_maestro_io_post(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_io_pt fn, ngx_http_maestro_io_done_pt done, void *arg)
{
    return ngx_http_maestro_pool_post(mmcf->io_pool, fn, done, arg);
}


ngx_int_t
ngx_http_maestro_pool_post(ngx_thread_pool_t *pool,
    ngx_http_maestro_io_pt fn, ngx_http_maestro_io_done_pt done, void *arg)
{
    ngx_str_t                     *name;
    ngx_thread_task_t             *task;
    ngx_http_maestro_io_t         *io;
    ngx_http_maestro_main_conf_t  *mmcf;

    /* not from a pool: the task may outlive the request that posts it */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_maestro_io_t),
                      ngx_http_maestro_thread_cycle->log);
    if (task == NULL) {
        done(arg, NGX_ERROR);
        return NGX_ERROR;
    }

    io = (ngx_http_maestro_io_t *) (task + 1);
    io->fn = fn;
    io->done = done;
    io->arg = arg;

    task->ctx = io;
    task->handler = ngx_http_maestro_io_thread;
    task->event.handler = ngx_http_maestro_io_event;
    task->event.data = task;
    task->event.log = ngx_http_maestro_thread_cycle->log;

    if (ngx_thread_task_post(pool, task) != NGX_OK) {
        /* nginx logged the overflow; say which directive raises it */
        mmcf = ngx_http_maestro_thread_mmcf;
        name = (pool == mmcf->io_pool) ? &mmcf->io_pool_name
                                       : &mmcf->pool_name;

        ngx_log_error(NGX_LOG_ERR, ngx_http_maestro_thread_cycle->log, 0,
                      "maestro: thread pool \"%V\" queue overflow: raise "
                      "max_queue= of thread_pool \"%V\"", name, name);

        ngx_free(task);
        done(arg, NGX_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}
