/*
 * Copyright (C) Maestro authors
 */

/*
 * A worker's start and stop: the thread pools, the LMDB environment
 * (one per process, opened after fork), the LLM gateway and its
 * providers, the run environment, and every feature's per-worker part.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"
#include "ngx_http_maestro_worker.h"
#include "ngx_http_maestro_usage.h"
#include "ngx_http_maestro_llm.h"
#include "ngx_http_maestro_curl.h"
#include "ngx_http_maestro_h1.h"
#include "ngx_http_maestro_health.h"


static ngx_int_t ngx_http_maestro_worker_init(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
static void ngx_http_maestro_worker_exit(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);


/* runs in each worker, after fork (init process) */
ngx_int_t
ngx_http_maestro_init_process(ngx_cycle_t *cycle)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_maestro_module);

    if (mmcf == NULL || !mmcf->enabled) {
        return NGX_OK;
    }

    return ngx_http_maestro_worker_init(cycle, mmcf);
}


/* runs in each worker, when it exits (exit process) */
void
ngx_http_maestro_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_maestro_module);

    if (mmcf == NULL || !mmcf->enabled) {
        return;
    }

    ngx_http_maestro_worker_exit(cycle, mmcf);
}


/* runs on any thread: subscribers on every worker look at generation */
static void
ngx_http_maestro_notify(void *arg, const char *id, uint64_t last)
{
    ngx_http_maestro_main_conf_t  *mmcf = arg;

    ngx_http_maestro_watch_notify(mmcf->sh, id);
}


/* runs on any thread: why a sealed store record could not be opened */
static void
ngx_http_maestro_store_log(void *arg, const char *msg)
{
    ngx_log_error(NGX_LOG_ERR, (ngx_log_t *) arg, 0, "maestro: %s", msg);
}


/* runs on any thread; ngx_log_error() is safe there */
static void
ngx_http_maestro_log(void *arg, int level, const char *msg)
{
    static const ngx_uint_t  levels[] = {
        NGX_LOG_DEBUG, NGX_LOG_INFO, NGX_LOG_WARN, NGX_LOG_ERR
    };

    ngx_log_t  *log = arg;

    if (level < MAESTRO_LOG_DEBUG || level > MAESTRO_LOG_ERROR) {
        level = MAESTRO_LOG_INFO;
    }

    ngx_log_error(levels[level], log, 0, "maestro: %s", msg);
}


static ngx_int_t
ngx_http_maestro_worker_init(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    char                               err[MST_ERRLEN];
    ngx_uint_t                         i, n;
    mst_store_conf_t                   sc;
    mst_breaker_conf_t                 bc;
    mst_gateway_provider_t             providers[MST_GATEWAY_MAX];
    ngx_http_maestro_provider_conf_t  *pc;

    ngx_http_maestro_thread_init_worker(cycle, mmcf);

    mmcf->pool = ngx_thread_pool_get(cycle, &mmcf->pool_name);
    mmcf->io_pool = ngx_thread_pool_get(cycle, &mmcf->io_pool_name);

    if (mmcf->pool == NULL || mmcf->io_pool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "maestro: thread pools \"%V\" and \"%V\" not found",
                      &mmcf->pool_name, &mmcf->io_pool_name);
        return NGX_ERROR;
    }

    /* before any thread: libcurl for the engine and the plugins' http() */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "maestro: curl_global_init() failed");
        return NGX_ERROR;
    }

    /* one LMDB environment per process, opened after fork */

    ngx_memzero(&sc, sizeof(mst_store_conf_t));
    sc.path = (char *) mmcf->store_path.data;
    sc.map_size = (size_t) mmcf->store_size;
    sc.headroom = (size_t) mmcf->store_headroom;
    sc.sync = mmcf->store_sync ? 1 : 0;
    sc.writemap = mmcf->store_writemap ? 1 : 0;
    sc.crypt = mmcf->store_crypt;
    sc.errlog = ngx_http_maestro_store_log;
    sc.errlog_arg = cycle->log;

    if (mst_store_open(&mmcf->env.store, &sc, err, sizeof(err)) != MST_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "maestro: %s "
                      "(see maestro_store_path, maestro_store_size)", err);
        return NGX_ERROR;
    }

    /* a worker killed with kill -9 leaves its reader slots behind */
    mst_store_reader_check(mmcf->env.store);

    /* the LLM gateway: breakers in shared memory, one set for all */

    n = mmcf->providers.nelts;
    pc = mmcf->providers.elts;

    for (i = 0; i < n; i++) {
        ngx_memzero(&providers[i], sizeof(mst_gateway_provider_t));
        providers[i].provider.name = (char *) pc[i].name.data;
        providers[i].provider.base_url = (char *) pc[i].url.data;
        providers[i].provider.api_key = pc[i].key.len
                                        ? (char *) pc[i].key.data : NULL;
        providers[i].provider.model = pc[i].model.len
                                      ? (char *) pc[i].model.data : NULL;
        providers[i].provider.ca_file = pc[i].ca.len
                                        ? (char *) pc[i].ca.data : NULL;
        providers[i].provider.connect_timeout_ms = 5000;
        providers[i].provider.timeout_ms = (long) pc[i].timeout;
        providers[i].provider.max_retries = (int) pc[i].retries;
        providers[i].provider.backoff_ms = 250;
        providers[i].priority = (int) pc[i].priority;
        providers[i].weight = (int) pc[i].weight;
    }

    bc.failures = mmcf->breaker_failures;
    bc.recovery_ms = (int64_t) mmcf->breaker_recovery;

    mmcf->gw = mst_gateway_create(providers, n, &bc, mmcf->sh->breakers,
                                  err, sizeof(err));
    if (mmcf->gw == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "maestro: %s", err);
        return NGX_ERROR;
    }

    mst_gateway_set_balance(mmcf->gw, (int) mmcf->llm_balance);

    /* maestro_llm_fallback: each is "model next..." as C strings */
    if (mmcf->fallbacks != NULL) {
        ngx_http_maestro_fallback_t  *fb = mmcf->fallbacks->elts;

        for (i = 0; i < mmcf->fallbacks->nelts; i++) {
            const char  **names = fb[i].names.elts;

            if (mst_gateway_fallback(mmcf->gw, names[0], names + 1,
                                     fb[i].names.nelts - 1, fb[i].on)
                != MST_OK)
            {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "maestro: maestro_llm_fallback \"%s\": "
                              "too many", names[0]);
                return NGX_ERROR;
            }
        }
    }

    mmcf->env.gw = mmcf->gw;
    mmcf->env.prices = mmcf->prices.elts;
    mmcf->env.nprices = mmcf->prices.nelts;
    mmcf->env.agents = mmcf->agents;
    mmcf->env.nagents = mmcf->nagents;
    mmcf->env.graphs = mmcf->graphs;
    mmcf->env.ngraphs = mmcf->ngraphs;
    mmcf->env.pid = (long) ngx_pid;
    mmcf->env.lease_ms = (int64_t) mmcf->lease_timeout;
    mmcf->env.agent_log_keep = mmcf->agent_log_keep;
    mmcf->env.flush_ms = (int64_t) mmcf->flush_interval;
    mmcf->env.notify = ngx_http_maestro_notify;
    mmcf->env.notify_arg = mmcf;
    mmcf->env.log = ngx_http_maestro_log;
    mmcf->env.log_arg = cycle->log;

    ngx_queue_init(&mmcf->active);
    ngx_queue_init(&mmcf->subscribers);
    ngx_queue_init(&mmcf->feed_sse);
    ngx_queue_init(&mmcf->ws_conns);
    ngx_queue_init(&mmcf->feed_ws);

    mmcf->seen_generation = mmcf->sh->generation;
    ngx_http_maestro_watch_init(mmcf);

    ngx_http_maestro_run_init_worker(cycle, mmcf);

    ngx_http_maestro_health_init_worker(cycle, mmcf);
    ngx_http_maestro_usage_init_worker(cycle, mmcf);

    if (ngx_http_maestro_curl_init_worker(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_maestro_h1_init_worker(mmcf);

    /* the plugins' LLM calls on the same engine */
    return ngx_http_maestro_llm_init_worker(cycle, mmcf);
}


static void
ngx_http_maestro_worker_exit(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    /* thread pools were joined before (core module exits first) */

    ngx_http_maestro_llm_exit_worker();
    ngx_http_maestro_curl_exit_worker();
    ngx_http_maestro_usage_exit_worker();

    if (mmcf->gw != NULL) {
        mst_gateway_free(mmcf->gw);
        mmcf->gw = NULL;
    }

    if (mmcf->env.store != NULL) {
        mst_store_close(mmcf->env.store);
        mmcf->env.store = NULL;
    }
}
