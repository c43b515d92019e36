/*
 * Copyright (C) Maestro authors
 */

/*
 * Active health checks of the LLM providers (maestro_llm_health_check):
 * every interval, worker 0 asks each provider for GET /models on the
 * agents' thread pool (a dead provider may take the whole timeout, which
 * must block neither the event loop nor the LMDB io pool). The verdict
 * goes into the breakers in shared memory, so every worker acts on it:
 * a failed check opens the breaker, a passed one lets the next call
 * probe an open breaker at once. One worker is enough for that; worker 0
 * is restarted with the same number if it dies.
 */

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_thread.h"
#include "ngx_http_maestro_health.h"


typedef struct {
    ngx_http_maestro_main_conf_t  *mmcf;
    json_t                        *changes;
} ngx_http_maestro_health_t;


static void ngx_http_maestro_health_timer(ngx_event_t *ev);


void
ngx_http_maestro_health_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    if (mmcf->health_interval == 0 || ngx_worker != 0
        || !mst_gateway_online(mmcf->gw))
    {
        return;
    }

    mmcf->health_ev.handler = ngx_http_maestro_health_timer;
    mmcf->health_ev.data = mmcf;
    mmcf->health_ev.log = cycle->log;
    mmcf->health_ev.cancelable = 1;

    ngx_add_timer(&mmcf->health_ev, mmcf->health_interval);
}


/* runs on a pool thread */
static void
ngx_http_maestro_health_thread(void *arg)
{
    ngx_http_maestro_health_t  *hc = arg;

    (void) mst_gateway_check(hc->mmcf->gw, (long) hc->mmcf->health_timeout,
                             hc->changes);
}


/* runs in the event loop */
static void
ngx_http_maestro_health_done(void *arg, ngx_int_t rc)
{
    ngx_http_maestro_health_t  *hc = arg;

    size_t   i;
    json_t  *c;

    for (i = 0; i < json_array_size(hc->changes); i++) {
        c = json_array_get(hc->changes, i);

        if (json_is_true(json_object_get(c, "healthy"))) {
            ngx_log_error(NGX_LOG_NOTICE, hc->mmcf->health_ev.log, 0,
                          "maestro: provider \"%s\" passed its health check",
                          json_string_value(json_object_get(c, "provider")));

        } else {
            ngx_log_error(NGX_LOG_WARN, hc->mmcf->health_ev.log, 0,
                          "maestro: provider \"%s\" failed its health "
                          "check, its breaker is open: %s",
                          json_string_value(json_object_get(c, "provider")),
                          json_string_value(json_object_get(c, "error")));
        }
    }

    hc->mmcf->health_busy = 0;

    json_decref(hc->changes);
    ngx_free(hc);
}


static void
ngx_http_maestro_health_timer(ngx_event_t *ev)
{
    ngx_http_maestro_main_conf_t  *mmcf = ev->data;

    ngx_http_maestro_health_t  *hc;

    if (ngx_terminate || ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, mmcf->health_interval);

    if (mmcf->health_busy) {
        /* the last round still waits for a slow provider */
        return;
    }

    hc = ngx_calloc(sizeof(ngx_http_maestro_health_t), ev->log);
    if (hc == NULL) {
        return;
    }

    hc->mmcf = mmcf;
    hc->changes = json_array();

    if (hc->changes == NULL) {
        ngx_free(hc);
        return;
    }

    /* a failed post has freed hc (ngx_http_maestro_health_done) */
    if (ngx_http_maestro_pool_post(mmcf->pool,
                                   ngx_http_maestro_health_thread,
                                   ngx_http_maestro_health_done, hc)
        == NGX_OK)
    {
        mmcf->health_busy = 1;
    }
}
