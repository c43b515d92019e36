/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see ngx_http_maestro_retain.h and core/flow/mst_retain.h */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_retain.h"
#include "ngx_http_maestro_thread.h"


#define NGX_HTTP_MAESTRO_RETAIN_INTERVAL  100
#define NGX_HTTP_MAESTRO_RETAIN_AGAIN     10


typedef struct {
    ngx_http_maestro_main_conf_t  *mmcf;
    mst_retain_conf_t              conf;
    mst_retain_result_t            res;
    int                            rc;
} ngx_http_maestro_retain_t;


static void ngx_http_maestro_retain_tick(ngx_event_t *ev);


static void
ngx_http_maestro_retain_conf(ngx_http_maestro_main_conf_t *mmcf,
    mst_retain_conf_t *c)
{
    ngx_memzero(c, sizeof(mst_retain_conf_t));

    c->max_age_ms = (int64_t) mmcf->retention;
    c->max_count = (size_t) mmcf->retention_count;
    c->max_per_user = (size_t) mmcf->retention_user;
    c->pressure_pct = mmcf->pressure ? (unsigned) mmcf->pressure_mark : 0;
    c->pressure_min_age_ms = (int64_t) mmcf->pressure_min_age;
    c->batch = 64;
    c->max_txns = 8;
    c->users_per_pass = 64;
    c->backfill = 2000;
}


void
ngx_http_maestro_retain_init(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    mst_retain_conf_t  c;

    ngx_http_maestro_retain_conf(mmcf, &c);

    /* one worker deletes: the others' passes would only wait for its */
    if (!mst_retain_enabled(&c) || ngx_worker != 0) {
        return;
    }

    mmcf->retain_ev.handler = ngx_http_maestro_retain_tick;
    mmcf->retain_ev.data = mmcf;
    mmcf->retain_ev.log = cycle->log;
    mmcf->retain_ev.cancelable = 1;
    ngx_add_timer(&mmcf->retain_ev, NGX_HTTP_MAESTRO_RETAIN_INTERVAL);
}


/* runs on a pool thread */
static void
ngx_http_maestro_retain_thread(void *arg)
{
    ngx_http_maestro_retain_t  *rt = arg;

    rt->rc = mst_retain_run(rt->mmcf->env.store, &rt->conf, mst_now_ms(),
                            &rt->mmcf->retain_state, &rt->res);
}


/* runs in the event loop */
static void
ngx_http_maestro_retain_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_retain_t  *rt = arg;

    size_t                         n, *e;
    ngx_msec_t                     next;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = rt->mmcf;
    mmcf->retain_busy = 0;
    e = rt->res.expired;

    if (trc == NGX_OK && rt->rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "maestro: workflow retention: %s",
                      mst_strerror(rt->rc));
    }

    n = e[MST_RETAIN_AGE] + e[MST_RETAIN_COUNT] + e[MST_RETAIN_USER]
        + e[MST_RETAIN_PRESSURE];

    if (n > 0) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "maestro: deleted %uz finished workflows: %uz by age "
                      "(maestro_workflow_retention), %uz by count, %uz by "
                      "user count, %uz by store pressure "
                      "(maestro_store_pressure_mark)", n, e[MST_RETAIN_AGE],
                      e[MST_RETAIN_COUNT], e[MST_RETAIN_USER],
                      e[MST_RETAIN_PRESSURE]);
    }

    next = (trc == NGX_OK && rt->rc == MST_OK && rt->res.more)
           ? NGX_HTTP_MAESTRO_RETAIN_AGAIN : NGX_HTTP_MAESTRO_RETAIN_INTERVAL;

    ngx_free(rt);

    if (!ngx_terminate && !ngx_exiting) {
        ngx_add_timer(&mmcf->retain_ev, next);
    }
}


/* runs in the event loop */
static void
ngx_http_maestro_retain_tick(ngx_event_t *ev)
{
    ngx_http_maestro_main_conf_t  *mmcf = ev->data;

    ngx_http_maestro_retain_t  *rt;

    if (ngx_terminate || ngx_exiting || mmcf->retain_busy) {
        return;
    }

    rt = ngx_calloc(sizeof(ngx_http_maestro_retain_t), ev->log);
    if (rt == NULL) {
        ngx_add_timer(ev, NGX_HTTP_MAESTRO_RETAIN_INTERVAL);
        return;
    }

    rt->mmcf = mmcf;
    ngx_http_maestro_retain_conf(mmcf, &rt->conf);

    mmcf->retain_busy = 1;

    /* a failed post calls retain_done, which sets the next tick */
    (void) ngx_http_maestro_io_post(mmcf, ngx_http_maestro_retain_thread,
                                    ngx_http_maestro_retain_done, rt);
}
