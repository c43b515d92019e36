/*
 * Copyright (C) Maestro authors
 */

/*
 * The module: directives, configuration (agents and workflow graphs are
 * loaded and validated here, in the master, so `nginx -t` catches every
 * misconfiguration), the shared zone, and per-worker start and stop.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_h1.h"
#include "mst_host.h"


/* the notification ring and counters, with the slab allocator's room */
#define NGX_HTTP_MAESTRO_SHM_SIZE                                           \
    (sizeof(ngx_http_maestro_shctx_t) + 64 * 1024)


static void *ngx_http_maestro_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_maestro_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_maestro_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_maestro_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_maestro_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maestro_agent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maestro_workflow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maestro_llm_provider(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_maestro_intent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maestro_llm_health_check(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_maestro_llm_breaker(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_maestro_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maestro_llm_price(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_maestro_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_maestro_conf_cleanup(void *data);
static ngx_int_t ngx_http_maestro_init_process(ngx_cycle_t *cycle);
static char *ngx_http_maestro_model_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maestro_llm_fallback(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_maestro_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_maestro_balance[] = {
    { ngx_string("weighted"), MST_GATEWAY_WEIGHTED },
    { ngx_string("latency"), MST_GATEWAY_LATENCY },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_maestro_commands[] = {

    { ngx_string("maestro_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_maestro_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maestro_loc_conf_t, max_body),
      NULL },

    { ngx_string("maestro_guard_deny"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_maestro_guard,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_guard_allow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_maestro_guard,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("maestro_guard_redact"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_maestro_guard,
      NGX_HTTP_LOC_CONF_OFFSET,
      2,
      NULL },

    { ngx_string("maestro_store_path"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, store_path),
      NULL },

    { ngx_string("maestro_store_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, store_size),
      NULL },

    { ngx_string("maestro_store_sync"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, store_sync),
      NULL },

    { ngx_string("maestro_store_writemap"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, store_writemap),
      NULL },

    { ngx_string("maestro_plugins_dir"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, plugins_dir),
      NULL },

    { ngx_string("maestro_agent"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_maestro_agent,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_workflow"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_maestro_workflow,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_default_workflow"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, default_workflow),
      NULL },

    { ngx_string("maestro_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, pool_name),
      NULL },

    { ngx_string("maestro_io_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, io_pool_name),
      NULL },

    { ngx_string("maestro_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, queue_size),
      NULL },

    { ngx_string("maestro_lease_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, lease_timeout),
      NULL },

    { ngx_string("maestro_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, poll_interval),
      NULL },

    { ngx_string("maestro_flush_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, flush_interval),
      NULL },

    { ngx_string("maestro_sse_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, heartbeat),
      NULL },

    { ngx_string("maestro_agent_log_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, agent_log_keep),
      NULL },

    { ngx_string("maestro_ws_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, ws_max_message),
      NULL },

    { ngx_string("maestro_ws_ping"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, ws_ping),
      NULL },

    { ngx_string("maestro_event_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, event_retention),
      NULL },

    { ngx_string("maestro_intent"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_maestro_intent,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_intent_route"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_maestro_intent,
      NGX_HTTP_MAIN_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("maestro_llm_fallback"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_maestro_llm_fallback,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_model_tier"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_maestro_model_tier,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_llm_price"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_maestro_llm_price,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_llm_balance"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, llm_balance),
      &ngx_http_maestro_balance },

    { ngx_string("maestro_llm_health_check"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_maestro_llm_health_check,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_llm_breaker"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_maestro_llm_breaker,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_llm_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_maestro_llm_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_maestro_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_maestro_create_main_conf,     /* create main configuration */
    ngx_http_maestro_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_maestro_create_loc_conf,      /* create location configuration */
    ngx_http_maestro_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_maestro_module = {
    NGX_MODULE_V1,
    &ngx_http_maestro_module_ctx,          /* module context */
    ngx_http_maestro_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_maestro_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_maestro_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* runs in the master at configuration and in workers at exit */

static ngx_int_t
ngx_http_maestro_init_process(ngx_cycle_t *cycle)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_maestro_module);

    if (mmcf == NULL || !mmcf->enabled) {
        return NGX_OK;
    }

    return ngx_http_maestro_run_init_worker(cycle, mmcf);
}


static void
ngx_http_maestro_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_maestro_module);

    if (mmcf == NULL || !mmcf->enabled) {
        return;
    }

    ngx_http_maestro_run_exit_worker(cycle, mmcf);
}


/* maestro_llm_fallback model next [next ...] [on=class,...] */
static char *
ngx_http_maestro_llm_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t  *mmcf = conf;

    u_char                       *p, *last, *comma;
    const char                  **name;
    ngx_str_t                    *value, cls;
    ngx_uint_t                    i, n, k;
    ngx_http_maestro_fallback_t  *fb;

    static const struct {
        const char  *name;
        ngx_uint_t   bit;
    } classes[] = {
        { "connect", MST_FAIL_CONNECT }, { "timeout", MST_FAIL_TIMEOUT },
        { "429", MST_FAIL_429 }, { "5xx", MST_FAIL_5XX },
        { "malformed", MST_FAIL_MALFORMED }, { "all", MST_FAIL_ALL },
    };

    value = cf->args->elts;
    n = cf->args->nelts;

    if (mmcf->fallbacks == NULL) {
        mmcf->fallbacks = ngx_array_create(cf->pool, 4,
                              sizeof(ngx_http_maestro_fallback_t));
        if (mmcf->fallbacks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    fb = mmcf->fallbacks->elts;

    for (i = 0; i < mmcf->fallbacks->nelts; i++) {
        if (ngx_strcmp(((const char **) fb[i].names.elts)[0], value[1].data)
            == 0)
        {
            return "is duplicate";
        }
    }

    if (mmcf->fallbacks->nelts == MST_GATEWAY_MAX) {
        return "is declared too often (at most 16 models)";
    }

    fb = ngx_array_push(mmcf->fallbacks);
    if (fb == NULL
        || ngx_array_init(&fb->names, cf->pool, n, sizeof(char *)) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    fb->on = 0;

    /* on=connect,timeout,429,5xx,malformed (default: all of them) */

    if (ngx_strncmp(value[n - 1].data, "on=", 3) == 0) {
        n--;
        p = value[n].data + 3;
        last = value[n].data + value[n].len;

        while (p < last) {
            comma = ngx_strlchr(p, last, ',');
            cls.data = p;
            cls.len = (comma ? comma : last) - p;

            for (k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
                if (cls.len == ngx_strlen(classes[k].name)
                    && ngx_strncmp(cls.data, classes[k].name, cls.len) == 0)
                {
                    fb->on |= classes[k].bit;
                    break;
                }
            }

            if (k == sizeof(classes) / sizeof(classes[0])) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown failure \"%V\" in \"%V\": use "
                                   "connect, timeout, 429, 5xx, malformed "
                                   "or all", &cls, &value[n]);
                return NGX_CONF_ERROR;
            }

            p += cls.len + 1;
        }

        if (fb->on == 0) {
            return "has an empty on=";
        }
    }

    if (n < 3) {
        return "needs a model and at least one fallback";
    }

    if (n - 2 > MST_GATEWAY_MAX_FALLBACK) {
        return "has too many models (at most 8 after the first)";
    }

    for (i = 1; i < n; i++) {
        if (value[i].len == 0) {
            return "needs model names";
        }

        name = ngx_array_push(&fb->names);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        /* ngx_conf strings are NUL-terminated */
        *name = (const char *) value[i].data;
    }

    return NGX_CONF_OK;
}


/* maestro_model_tier simple | moderate | complex model */
static char *
ngx_http_maestro_model_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t  *mmcf = conf;

    ngx_int_t   tier;
    ngx_str_t  *value;

    value = cf->args->elts;

    tier = ngx_http_maestro_tier(value[1].data);

    if (tier == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid tier \"%V\": use simple, moderate or "
                           "complex", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (mmcf->tier_model[tier].data != NULL) {
        return "is duplicate";
    }

    if (value[2].len == 0) {
        return "needs a model name";
    }

    mmcf->tier_model[tier] = value[2];

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_maestro_tier(const u_char *name)
{
    if (ngx_strcmp(name, "simple") == 0) {
        return 0;
    }

    if (ngx_strcmp(name, "moderate") == 0) {
        return 1;
    }

    if (ngx_strcmp(name, "complex") == 0) {
        return 2;
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_maestro_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_maestro_main_conf_t  *omcf = data;

    ngx_slab_pool_t               *shpool;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = shm_zone->data;

    if (omcf) {
        /* reload: keep counters, so subscribers' generations stay valid */
        mmcf->sh = omcf->sh;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        mmcf->sh = shpool->data;
        return NGX_OK;
    }

    mmcf->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_maestro_shctx_t));
    if (mmcf->sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = mmcf->sh;

    return NGX_OK;
}


/* configuration */

static void *
ngx_http_maestro_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_maestro_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->store_path = { 0, NULL };
     *     mmcf->plugins_dir = { 0, NULL };
     *     mmcf->default_workflow = { 0, NULL };
     *     mmcf->agents = NULL;
     */

    mmcf->created = ngx_time();
    mmcf->store_size = NGX_CONF_UNSET;
    mmcf->store_sync = NGX_CONF_UNSET;
    mmcf->store_writemap = NGX_CONF_UNSET;
    mmcf->queue_size = NGX_CONF_UNSET_UINT;
    mmcf->lease_timeout = NGX_CONF_UNSET_MSEC;
    mmcf->poll_interval = NGX_CONF_UNSET_MSEC;
    mmcf->flush_interval = NGX_CONF_UNSET_MSEC;
    mmcf->heartbeat = NGX_CONF_UNSET_MSEC;
    mmcf->agent_log_keep = NGX_CONF_UNSET_UINT;
    mmcf->ws_max_message = NGX_CONF_UNSET_SIZE;
    mmcf->ws_ping = NGX_CONF_UNSET_MSEC;
    mmcf->event_retention = NGX_CONF_UNSET_MSEC;
    mmcf->breaker_failures = NGX_CONF_UNSET_UINT;
    mmcf->breaker_recovery = NGX_CONF_UNSET_MSEC;
    mmcf->llm_balance = NGX_CONF_UNSET_UINT;
    mmcf->health_interval = NGX_CONF_UNSET_MSEC;
    mmcf->health_timeout = NGX_CONF_UNSET_MSEC;

    mmcf->agent_confs = ngx_array_create(cf->pool, 8,
                                     sizeof(ngx_http_maestro_agent_conf_t));
    mmcf->workflow_confs = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_maestro_workflow_conf_t));
    if (mmcf->agent_confs == NULL || mmcf->workflow_confs == NULL
        || ngx_array_init(&mmcf->intent_routes, cf->pool, 4,
                          sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&mmcf->providers, cf->pool, 2,
                          sizeof(ngx_http_maestro_provider_conf_t))
           != NGX_OK
        || ngx_array_init(&mmcf->prices, cf->pool, 4, sizeof(mst_price_t))
           != NGX_OK)
    {
        return NULL;
    }

    return mmcf;
}


static int
ngx_http_maestro_agent_exists(const char *agent, void *arg)
{
    ngx_uint_t                     i;
    ngx_http_maestro_main_conf_t  *mmcf = arg;

    for (i = 0; i < mmcf->nagents; i++) {
        if (ngx_strcmp(mmcf->agents[i].name, agent) == 0) {
            return 1;
        }
    }

    return 0;
}


static char *
ngx_http_maestro_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char                               err[MST_ERRLEN];
    ngx_str_t                          name;
    ngx_uint_t                         i, j;
    mst_agent_t                       *agent;
    ngx_path_t                        *path;
    ngx_pool_cleanup_t                *cln;
    ngx_http_maestro_agent_conf_t     *ac;
    ngx_http_maestro_workflow_conf_t  *wc;

    ngx_conf_init_value(mmcf->store_size, (off_t) 1024 * 1024 * 1024);
    ngx_conf_init_value(mmcf->store_sync, 1);
    ngx_conf_init_value(mmcf->store_writemap, 0);
    ngx_conf_init_uint_value(mmcf->queue_size, 1024);
    ngx_conf_init_msec_value(mmcf->lease_timeout, 10000);
    ngx_conf_init_msec_value(mmcf->poll_interval, 10);
    ngx_conf_init_msec_value(mmcf->flush_interval, 20);
    ngx_conf_init_msec_value(mmcf->heartbeat, 15000);
    ngx_conf_init_uint_value(mmcf->agent_log_keep, 1000);
    ngx_conf_init_size_value(mmcf->ws_max_message, 1024 * 1024);
    ngx_conf_init_msec_value(mmcf->ws_ping, 30000);
    ngx_conf_init_msec_value(mmcf->event_retention, 0);
    ngx_conf_init_uint_value(mmcf->breaker_failures, 5);
    ngx_conf_init_msec_value(mmcf->breaker_recovery, 60000);
    ngx_conf_init_uint_value(mmcf->llm_balance, MST_GATEWAY_WEIGHTED);
    ngx_conf_init_msec_value(mmcf->health_interval, 30000);
    ngx_conf_init_msec_value(mmcf->health_timeout, 5000);

    if (mmcf->store_path.data == NULL) {
        ngx_str_set(&mmcf->store_path, "maestro_store");
    }

    if (mmcf->plugins_dir.data == NULL) {
        ngx_str_set(&mmcf->plugins_dir, "plugins");
    }

    if (mmcf->pool_name.data == NULL) {
        ngx_str_set(&mmcf->pool_name, "maestro");
    }

    if (mmcf->io_pool_name.data == NULL) {
        ngx_str_set(&mmcf->io_pool_name, "maestro_io");
    }

    if (mmcf->lease_timeout < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"maestro_lease_timeout\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &mmcf->store_path, 0) != NGX_OK
        || ngx_conf_full_name(cf->cycle, &mmcf->plugins_dir, 0) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* nginx creates the store directory, owned by the worker user */

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    path->name = mmcf->store_path;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the release of plugins and graphs when this configuration goes */

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_maestro_conf_cleanup;
    cln->data = mmcf;

    /* agents: load and configure every plugin now, so nginx -t fails */

    mmcf->agents = ngx_pcalloc(cf->pool, (mmcf->agent_confs->nelts + 1)
                                         * sizeof(mst_agent_t));
    if (mmcf->agents == NULL) {
        return NGX_CONF_ERROR;
    }

    ac = mmcf->agent_confs->elts;

    for (i = 0; i < mmcf->agent_confs->nelts; i++) {

        for (j = 0; j < i; j++) {
            if (ac[j].name.len == ac[i].name.len
                && ngx_strncmp(ac[j].name.data, ac[i].name.data,
                               ac[i].name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate maestro_agent \"%V\"",
                                   &ac[i].name);
                return NGX_CONF_ERROR;
            }
        }

        if (ac[i].plugin.data[0] != '/') {
            name.len = mmcf->plugins_dir.len + 1 + ac[i].plugin.len;
            name.data = ngx_pnalloc(cf->pool, name.len + 1);
            if (name.data == NULL) {
                return NGX_CONF_ERROR;
            }
            ngx_sprintf(name.data, "%V/%V%Z", &mmcf->plugins_dir,
                        &ac[i].plugin);
            ac[i].plugin = name;
        }

        agent = &mmcf->agents[mmcf->nagents];

        if (mst_agent_load(agent, (char *) ac[i].name.data,
                           (char *) ac[i].plugin.data,
                           ac[i].config.len ? (char *) ac[i].config.data
                                            : NULL,
                           mst_host_config_table(), err, sizeof(err))
            != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_agent \"%V\": %s", &ac[i].name, err);
            return NGX_CONF_ERROR;
        }

        mmcf->nagents++;
    }

    /* workflow graphs, validated against the agents */

    mmcf->graphs = ngx_pcalloc(cf->pool, (mmcf->workflow_confs->nelts + 1)
                                         * sizeof(mst_graph_t *));
    if (mmcf->graphs == NULL) {
        return NGX_CONF_ERROR;
    }

    wc = mmcf->workflow_confs->elts;

    for (i = 0; i < mmcf->workflow_confs->nelts; i++) {
        mmcf->graphs[i] = mst_graph_load((char *) wc[i].file.data,
                                         ngx_http_maestro_agent_exists, mmcf,
                                         err, sizeof(err));
        if (mmcf->graphs[i] == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_workflow \"%V\" in \"%V\": %s",
                               &wc[i].name, &wc[i].file, err);
            return NGX_CONF_ERROR;
        }

        mmcf->ngraphs++;

        if (ngx_strcmp(mst_graph_name(mmcf->graphs[i]), wc[i].name.data)
            != 0)
        {
            /* the directive's name is the one users call it by */
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "maestro_workflow \"%V\": the graph in \"%V\" "
                               "is named \"%s\"; \"%V\" is used",
                               &wc[i].name, &wc[i].file,
                               mst_graph_name(mmcf->graphs[i]), &wc[i].name);
        }
    }

    if (mmcf->default_workflow.data == NULL && mmcf->ngraphs) {
        mmcf->default_workflow = wc[0].name;

        for (i = 0; i < mmcf->workflow_confs->nelts; i++) {
            if (ngx_strcmp(wc[i].name.data, "default") == 0) {
                mmcf->default_workflow = wc[i].name;
            }
        }
    }

    if (mmcf->default_workflow.data != NULL) {
        for (i = 0; i < mmcf->workflow_confs->nelts; i++) {
            if (ngx_strcmp(wc[i].name.data, mmcf->default_workflow.data)
                == 0)
            {
                break;
            }
        }

        if (i == mmcf->workflow_confs->nelts) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_default_workflow \"%V\" is not "
                               "defined by maestro_workflow",
                               &mmcf->default_workflow);
            return NGX_CONF_ERROR;
        }
    }

    /* every intent route names a workflow */
    for (i = 0; i < mmcf->intent_routes.nelts; i++) {
        ngx_str_t  *r = ((ngx_str_t *) mmcf->intent_routes.elts) + i;

        for (j = 0; j < mmcf->ngraphs; j++) {
            if (ngx_strcmp(mst_graph_name(mmcf->graphs[j]), r->data) == 0
                || ngx_strcmp(wc[j].name.data, r->data) == 0)
            {
                break;
            }
        }

        if (j == mmcf->ngraphs) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_intent_route: no workflow named "
                               "\"%V\" (maestro_workflow)", r);
            return NGX_CONF_ERROR;
        }
    }

    if (!mmcf->enabled) {
        return NGX_CONF_OK;
    }

    /* thread pools: defined by "thread_pool" or created with defaults */

    if (ngx_thread_pool_add(cf, &mmcf->pool_name) == NULL
        || ngx_thread_pool_add(cf, &mmcf->io_pool_name) == NULL)
    {
        return NGX_CONF_ERROR;
    }

    name.len = sizeof("maestro") - 1;
    name.data = (u_char *) "maestro";

    mmcf->shm_zone = ngx_shared_memory_add(cf, &name,
                                           NGX_HTTP_MAESTRO_SHM_SIZE,
                                           &ngx_http_maestro_module);
    if (mmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mmcf->shm_zone->init = ngx_http_maestro_init_zone;
    mmcf->shm_zone->data = mmcf;

    return NGX_CONF_OK;
}


static void
ngx_http_maestro_conf_cleanup(void *data)
{
    ngx_http_maestro_main_conf_t  *mmcf = data;

    ngx_uint_t  i;

    for (i = 0; i < mmcf->ngraphs; i++) {
        mst_graph_free(mmcf->graphs[i]);
    }

    mst_intents_free(mmcf->intents);
    mmcf->intents = NULL;

    for (i = 0; i < mmcf->nagents; i++) {
        mst_agent_unload(&mmcf->agents[i]);
    }

    mmcf->ngraphs = 0;
    mmcf->nagents = 0;
}


static void *
ngx_http_maestro_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_maestro_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_maestro_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    mlcf->api = NGX_CONF_UNSET;
    mlcf->max_body = NGX_CONF_UNSET_SIZE;

    return mlcf;
}


static char *
ngx_http_maestro_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_maestro_loc_conf_t *prev = parent;
    ngx_http_maestro_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->api, prev->api, 0);

    /* a level with any maestro_guard_* has its own guard; else inherits */
    if (conf->guard == NULL) {
        conf->guard = prev->guard;
    }
    ngx_conf_merge_size_value(conf->max_body, prev->max_body, 1024 * 1024);

    return NGX_CONF_OK;
}


static char *
ngx_http_maestro_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_maestro_main_conf_t  *mmcf;

    if (mlcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_maestro_api_handler;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maestro_module);
    mmcf->enabled = 1;

    return NGX_CONF_OK;
}


/* reads a whole small file (agent config, secrets) into the pool */
static char *
ngx_http_maestro_read_file(ngx_conf_t *cf, ngx_str_t *path, ngx_str_t *out)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", path);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 16 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot be read or is larger than 16M",
                           path);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, out->data, out->len);
    ngx_close_file(fd);

    if (n != (ssize_t) out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", path);
        return NGX_CONF_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_CONF_OK;
}


/* maestro_agent NAME plugin=FILE.so [config=FILE.json] [config_json=...] */
static char *
ngx_http_maestro_agent(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    u_char                         *p;
    json_t                         *cfg;
    ngx_str_t                      *value, path;
    ngx_uint_t                      i;
    json_error_t                    jerr;
    ngx_http_maestro_agent_conf_t  *ac;

    value = cf->args->elts;

    ac = ngx_array_push(mmcf->agent_confs);
    if (ac == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(ac, sizeof(ngx_http_maestro_agent_conf_t));
    ac->name = value[1];

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!(isalnum(*p) || *p == '_' || *p == '-')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid agent name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "plugin=", 7) == 0) {
            ac->plugin.data = value[i].data + 7;
            ac->plugin.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "config=", 7) == 0) {
            path.data = value[i].data + 7;
            path.len = value[i].len - 7;

            if (ngx_http_maestro_read_file(cf, &path, &ac->config)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            cfg = json_loadb((char *) ac->config.data, ac->config.len, 0,
                             &jerr);
            if (!json_is_object(cfg)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_agent \"%V\": bad JSON in \"%V\" "
                                   "line %d column %d: %s", &value[1], &path,
                                   jerr.line, jerr.column,
                                   cfg ? "not an object" : jerr.text);
                json_decref(cfg);
                return NGX_CONF_ERROR;
            }
            json_decref(cfg);
            continue;
        }

        if (ngx_strncmp(value[i].data, "config_json=", 12) == 0) {
            ac->config.data = value[i].data + 12;
            ac->config.len = value[i].len - 12;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ac->plugin.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_agent \"%V\" needs plugin=FILE.so",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /* NUL-terminate the plugin path for dlopen() */
    p = ngx_pnalloc(cf->pool, ac->plugin.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_memcpy(p, ac->plugin.data, ac->plugin.len);
    p[ac->plugin.len] = '\0';
    ac->plugin.data = p;

    return NGX_CONF_OK;
}


/* maestro_workflow NAME FILE.json */
static char *
ngx_http_maestro_workflow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_maestro_workflow_conf_t  *wc;

    value = cf->args->elts;

    wc = mmcf->workflow_confs->elts;
    for (i = 0; i < mmcf->workflow_confs->nelts; i++) {
        if (wc[i].name.len == value[1].len
            && ngx_strncmp(wc[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            return "is duplicate";
        }
    }

    wc = ngx_array_push(mmcf->workflow_confs);
    if (wc == NULL) {
        return NGX_CONF_ERROR;
    }

    wc->name = value[1];
    wc->file = value[2];

    if (ngx_conf_full_name(cf->cycle, &wc->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_maestro_guard_cleanup(void *data)
{
    mst_guard_free(data);
}


/*
 * maestro_guard_deny PATTERN...; maestro_guard_allow PATTERN...;
 * maestro_guard_redact on|off;
 */
static char *
ngx_http_maestro_guard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_loc_conf_t *mlcf = conf;

    char                 err[MST_ERRLEN];
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    if (mlcf->guard == NULL) {
        mlcf->guard = mst_guard_new();
        if (mlcf->guard == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            mst_guard_free(mlcf->guard);
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_maestro_guard_cleanup;
        cln->data = mlcf->guard;
    }

    if (cmd->offset == 2) {
        if (ngx_strcmp(value[1].data, "on") == 0) {
            mst_guard_redact(mlcf->guard, 1);
        } else if (ngx_strcmp(value[1].data, "off") == 0) {
            mst_guard_redact(mlcf->guard, 0);
        } else {
            return "must be \"on\" or \"off\"";
        }
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if ((cmd->offset == 0
             ? mst_guard_deny(mlcf->guard, (char *) value[i].data, err,
                              sizeof(err))
             : mst_guard_allow(mlcf->guard, (char *) value[i].data, err,
                               sizeof(err)))
            != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: %s", &cmd->name,
                               err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* maestro_llm_price MODEL input=USD output=USD (per million tokens) */
static char *
ngx_http_maestro_llm_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char         *end;
    double        v;
    ngx_str_t    *value;
    ngx_uint_t    i;
    mst_price_t  *p;

    value = cf->args->elts;

    p = ngx_array_push(&mmcf->prices);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    p->model = (char *) value[1].data;
    p->input = -1;
    p->output = -1;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "input=", 6) == 0) {
            v = strtod((char *) value[i].data + 6, &end);
            if (*end != '\0' || v < 0) {
                goto invalid;
            }
            p->input = v;

        } else if (ngx_strncmp(value[i].data, "output=", 7) == 0) {
            v = strtod((char *) value[i].data + 7, &end);
            if (*end != '\0' || v < 0) {
                goto invalid;
            }
            p->output = v;

        } else {
            goto invalid;
        }
    }

    if (p->input < 0 || p->output < 0) {
        return "needs input= and output= (USD per million tokens)";
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * A "name=TIME" parameter: NGX_DECLINED when value is another parameter,
 * NGX_ERROR when the time is invalid or below min (ms). Callers only test
 * NGX_OK: whatever no parameter takes is reported as invalid.
 */
static ngx_int_t
ngx_http_maestro_time_param(ngx_str_t *value, const char *name,
    ngx_msec_t min, ngx_msec_t *out)
{
    size_t     len;
    ngx_int_t  n;
    ngx_str_t  s;

    len = ngx_strlen(name);

    if (value->len < len || ngx_strncmp(value->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    s.data = value->data + len;
    s.len = value->len - len;

    n = ngx_parse_time(&s, 0);
    if (n == NGX_ERROR || (ngx_msec_t) n < min) {
        return NGX_ERROR;
    }

    *out = (ngx_msec_t) n;

    return NGX_OK;
}


/* maestro_llm_health_check off | interval=TIME [timeout=TIME] */
static char *
ngx_http_maestro_llm_health_check(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (mmcf->health_interval != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        mmcf->health_interval = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_maestro_time_param(&value[i], "interval=", 100,
                                        &mmcf->health_interval)
            == NGX_OK)
        {
            continue;
        }

        if (ngx_http_maestro_time_param(&value[i], "timeout=", 1,
                                        &mmcf->health_timeout)
            == NGX_OK)
        {
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/* maestro_llm_breaker failures=N recovery=TIME */
static char *
ngx_http_maestro_llm_breaker(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n < 1) {
                goto invalid;
            }
            mmcf->breaker_failures = (ngx_uint_t) n;
            continue;
        }

        if (ngx_http_maestro_time_param(&value[i], "recovery=", 1,
                                        &mmcf->breaker_recovery)
            == NGX_OK)
        {
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * maestro_intent NAME PATTERN...;  maestro_intent_route NAME WORKFLOW;
 * Patterns compile now (PCRE2, JIT), so nginx -t reports a bad one.
 */
static char *
ngx_http_maestro_intent(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char        err[MST_ERRLEN];
    ngx_str_t  *value, *route;
    ngx_uint_t  i;

    value = cf->args->elts;

    if (mmcf->intents == NULL) {
        mmcf->intents = mst_intents_new();
        if (mmcf->intents == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (cmd->offset == 1) {
        if (mst_intents_route(mmcf->intents, (char *) value[1].data,
                              (char *) value[2].data, err, sizeof(err))
            != MST_OK)
        {
            return NGX_CONF_ERROR;
        }

        route = ngx_array_push(&mmcf->intent_routes);
        if (route == NULL) {
            return NGX_CONF_ERROR;
        }
        *route = value[2];

        return NGX_CONF_OK;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (mst_intents_add(mmcf->intents, (char *) value[1].data,
                            (char *) value[i].data, err, sizeof(err))
            != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * maestro_llm_provider URL [name=NAME] [model=NAME] [priority=N]
 *     [weight=N] [api_key_env=VAR] [api_key_file=PATH] [timeout=TIME]
 *     [retries=N] [client=nginx|libcurl] [ca=FILE]
 * May repeat: the gateway tries providers by priority, then weight.
 */
static char *
ngx_http_maestro_llm_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    u_char                            *p;
    char                              *env;
    ngx_int_t                          n;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i, libcurl;
    ngx_http_maestro_provider_conf_t  *pc;

    value = cf->args->elts;

    if (mmcf->providers.nelts == MST_GATEWAY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d maestro_llm_provider",
                           MST_GATEWAY_MAX);
        return NGX_CONF_ERROR;
    }

    if (ngx_strncmp(value[1].data, "http://", 7) != 0
        && ngx_strncmp(value[1].data, "https://", 8) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid provider URL \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    pc = ngx_array_push(&mmcf->providers);
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(pc, sizeof(ngx_http_maestro_provider_conf_t));
    pc->url = value[1];
    /* https: libcurl unless asked, for its DNS at run time */
    libcurl = value[1].data[4] == 's';
    pc->timeout = 60000;
    pc->retries = 2;
    pc->weight = 1;

    /* a default name: provider1, provider2, ... */
    p = ngx_pnalloc(cf->pool, sizeof("provider") + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }
    pc->name.data = p;
    pc->name.len = ngx_sprintf(p, "provider%ui%Z", mmcf->providers.nelts)
                   - p - 1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            pc->name.data = value[i].data + 5;
            pc->name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            pc->model.data = value[i].data + 6;
            pc->model.len = value[i].len - 6;
            continue;
        }

        if (ngx_strncmp(value[i].data, "priority=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR) {
                goto invalid;
            }
            pc->priority = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "weight=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);
            if (n == NGX_ERROR || n < 1 || n > 1000) {
                goto invalid;
            }
            pc->weight = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_env=", 12) == 0) {
            /* the master reads it: workers' environment is cleared */
            env = getenv((char *) value[i].data + 12);
            if (env == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "environment variable \"%s\" is not set",
                                   value[i].data + 12);
                return NGX_CONF_ERROR;
            }
            s.len = ngx_strlen(env);
            pc->key.len = s.len;
            pc->key.data = ngx_pnalloc(cf->pool, s.len + 1);
            if (pc->key.data == NULL) {
                return NGX_CONF_ERROR;
            }
            ngx_memcpy(pc->key.data, env, s.len);
            pc->key.data[s.len] = '\0';
            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_file=", 13) == 0) {
            s.data = value[i].data + 13;
            s.len = value[i].len - 13;

            if (ngx_http_maestro_read_file(cf, &s, &pc->key) != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            while (pc->key.len
                   && (pc->key.data[pc->key.len - 1] == '\n'
                       || pc->key.data[pc->key.len - 1] == '\r'))
            {
                pc->key.data[--pc->key.len] = '\0';
            }
            continue;
        }

        if (ngx_http_maestro_time_param(&value[i], "timeout=", 0,
                                        &pc->timeout)
            == NGX_OK)
        {
            continue;
        }

        if (ngx_strncmp(value[i].data, "ca=", 3) == 0) {
            pc->ca.data = value[i].data + 3;
            pc->ca.len = value[i].len - 3;
            if (pc->ca.len == 0
                || ngx_conf_full_name(cf->cycle, &pc->ca, 1) != NGX_OK)
            {
                goto invalid;
            }
            if (access((char *) pc->ca.data, R_OK) != 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                                   "cannot read ca file \"%V\"", &pc->ca);
                return NGX_CONF_ERROR;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "client=", 7) == 0) {
            if (ngx_strcmp(value[i].data + 7, "libcurl") == 0) {
                libcurl = 1;
            } else if (ngx_strcmp(value[i].data + 7, "nginx") == 0) {
                libcurl = 0;
            } else {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "retries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR || n > 10) {
                goto invalid;
            }
            pc->retries = (ngx_uint_t) n;
            continue;
        }

        goto invalid;
    }

    if (libcurl) {
        return NGX_CONF_OK;
    }

    /* resolved now, for the gateway's own client */
    if (ngx_http_maestro_h1_peer_conf(cf, &pc->url, &pc->ca, &pc->peer)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}
