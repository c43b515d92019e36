/*
 * Copyright (C) Maestro authors
 */

/*
 * The module: the command table, the module context and the configuration
 * (agents and workflow graphs are loaded and validated here, in the
 * master, so `nginx -t` catches every misconfiguration), and the shared
 * zone. The custom setters are in ngx_http_maestro_directive.c, a
 * worker's start and stop in ngx_http_maestro_worker.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_audit.h"
#include "ngx_http_maestro_auth.h"
#include "ngx_http_maestro_bounds.h"
#include "ngx_http_maestro_cors.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_limit.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_worker.h"
#include "mst_host.h"


/* the defaults, applied in init / merge */
#define NGX_HTTP_MAESTRO_DEFAULT_STORE_PATH        "maestro_store"
#define NGX_HTTP_MAESTRO_DEFAULT_STORE_SIZE        ((off_t) 1024 * 1024 * 1024)
/* unset: an eighth of the map, at most this */
#define NGX_HTTP_MAESTRO_DEFAULT_STORE_HEADROOM    ((off_t) 64 * 1024 * 1024)
#define NGX_HTTP_MAESTRO_DEFAULT_PLUGINS_DIR       "plugins"
#define NGX_HTTP_MAESTRO_DEFAULT_POOL              "maestro"
#define NGX_HTTP_MAESTRO_DEFAULT_IO_POOL           "maestro_io"
#define NGX_HTTP_MAESTRO_DEFAULT_QUEUE_SIZE        1024
#define NGX_HTTP_MAESTRO_DEFAULT_LEASE_TIMEOUT     10000   /* ms */
#define NGX_HTTP_MAESTRO_MIN_LEASE_TIMEOUT         1000    /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_POLL_INTERVAL     10      /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_FLUSH_INTERVAL    20      /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_SSE_HEARTBEAT     15000   /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_AGENT_LOG_SIZE    1000
#define NGX_HTTP_MAESTRO_DEFAULT_WS_MAX_MESSAGE    (1024 * 1024)
#define NGX_HTTP_MAESTRO_DEFAULT_WS_PING           30000   /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_KEY_LIMITS_SIZE   (8 * 1024 * 1024)
#define NGX_HTTP_MAESTRO_DEFAULT_LIMIT_MAX_TOKENS  1024
#define NGX_HTTP_MAESTRO_DEFAULT_EVENT_RETENTION   0       /* with the record */
#define NGX_HTTP_MAESTRO_DEFAULT_RETENTION         (7 * 86400 * 1000)
#define NGX_HTTP_MAESTRO_DEFAULT_RETENTION_COUNT   1000000
#define NGX_HTTP_MAESTRO_DEFAULT_RETENTION_USER    100000
#define NGX_HTTP_MAESTRO_DEFAULT_PRESSURE_MARK     80      /* % of the map */
#define NGX_HTTP_MAESTRO_DEFAULT_PRESSURE_MIN_AGE  10000
#define NGX_HTTP_MAESTRO_DEFAULT_BREAKER_FAILURES  5
#define NGX_HTTP_MAESTRO_DEFAULT_BREAKER_RECOVERY  60000   /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_HEALTH_INTERVAL   30000   /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_HEALTH_TIMEOUT    5000    /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_MAX_BODY          (1024 * 1024)
#define NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_TIMEOUT  60000   /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_TOTAL    600000  /* ms */
#define NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_RETRIES  2
#define NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_WEIGHT   1


/* the notification ring and counters, with the slab allocator's room */
#define NGX_HTTP_MAESTRO_SHM_SIZE                                           \
    (sizeof(ngx_http_maestro_shctx_t) + 64 * 1024)


static void *ngx_http_maestro_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_maestro_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_maestro_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_maestro_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_maestro_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_maestro_conf_cleanup(void *data);


static ngx_conf_num_bounds_t  ngx_http_maestro_positive = {
    ngx_conf_check_num_bounds, 1, -1
};


static ngx_conf_num_bounds_t  ngx_http_maestro_percent = {
    ngx_conf_check_num_bounds, 1, 99
};


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

    { ngx_string("maestro_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maestro_loc_conf_t, auth),
      NULL },

    { ngx_string("maestro_admin_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maestro_admin_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_jwt_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_maestro_jwt_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_jwt_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_maestro_jwt_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, jwt_issuer),
      NULL },

    { ngx_string("maestro_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, jwt_audience),
      NULL },

    { ngx_string("maestro_jwt_team_claim"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, jwt_team_claim),
      NULL },

    { ngx_string("maestro_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, jwt_leeway),
      NULL },

    { ngx_string("maestro_audit_log"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maestro_audit_log,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_cors_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_maestro_cors_origin,
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

    { ngx_string("maestro_store_headroom"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, store_headroom),
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

    { ngx_string("maestro_store_encryption_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_maestro_store_encryption_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
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
      &ngx_http_maestro_positive },

    { ngx_string("maestro_workflow_steps"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, workflow_steps),
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

    { ngx_string("maestro_workflow_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, retention),
      NULL },

    { ngx_string("maestro_workflow_retention_count"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, retention_count),
      NULL },

    { ngx_string("maestro_workflow_retention_user_count"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, retention_user),
      NULL },

    { ngx_string("maestro_store_pressure"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, pressure),
      NULL },

    { ngx_string("maestro_store_pressure_mark"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, pressure_mark),
      &ngx_http_maestro_percent },

    { ngx_string("maestro_store_pressure_min_age"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, pressure_min_age),
      NULL },

    { ngx_string("maestro_graph_max_nodes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.nodes),
      NULL },

    { ngx_string("maestro_graph_max_edges"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.edges),
      NULL },

    { ngx_string("maestro_graph_max_fanout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.fanout),
      NULL },

    { ngx_string("maestro_graph_max_steps"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.steps),
      NULL },

    { ngx_string("maestro_state_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.state),
      NULL },

    { ngx_string("maestro_prompt_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.prompt),
      NULL },

    { ngx_string("maestro_context_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, env.limits.context),
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

    /* request-rate limits (ngx_http_maestro_limit.c) */

    { ngx_string("maestro_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_maestro_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("maestro_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_maestro_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_limit_max_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, limit_max_tokens),
      NULL },

    { ngx_string("maestro_team_budget"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_maestro_team_budget,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maestro_key_limits_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maestro_main_conf_t, key_limits_size),
      NULL },

    { ngx_string("maestro_limit_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maestro_loc_conf_t, limit.dry_run),
      NULL },

    { ngx_string("maestro_limit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maestro_loc_conf_t, limit.log_level),
      &ngx_http_maestro_limit_log_levels },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_maestro_module_ctx = {
    ngx_http_maestro_limit_variables,      /* preconfiguration */
    ngx_http_maestro_admit_init,           /* postconfiguration */

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
     *     mmcf->store_crypt = NULL;
     *     mmcf->plugins_dir = { 0, NULL };
     *     mmcf->default_workflow = { 0, NULL };
     *     mmcf->agents = NULL;
     */

    mmcf->created = ngx_time();
    mmcf->store_size = NGX_CONF_UNSET;
    mmcf->store_headroom = NGX_CONF_UNSET;
    mmcf->store_sync = NGX_CONF_UNSET;
    mmcf->store_writemap = NGX_CONF_UNSET;
    mmcf->queue_size = NGX_CONF_UNSET_UINT;
    mmcf->workflow_steps = NGX_CONF_UNSET_UINT;
    mmcf->lease_timeout = NGX_CONF_UNSET_MSEC;
    mmcf->poll_interval = NGX_CONF_UNSET_MSEC;
    mmcf->flush_interval = NGX_CONF_UNSET_MSEC;
    mmcf->heartbeat = NGX_CONF_UNSET_MSEC;
    mmcf->agent_log_keep = NGX_CONF_UNSET_UINT;
    mmcf->ws_max_message = NGX_CONF_UNSET_SIZE;
    mmcf->key_limits_size = NGX_CONF_UNSET_SIZE;
    mmcf->limit_max_tokens = NGX_CONF_UNSET_UINT;
    mmcf->ws_ping = NGX_CONF_UNSET_MSEC;
    mmcf->event_retention = NGX_CONF_UNSET_MSEC;
    mmcf->retention = NGX_CONF_UNSET_MSEC;
    mmcf->retention_count = NGX_CONF_UNSET;
    mmcf->retention_user = NGX_CONF_UNSET;
    mmcf->pressure = NGX_CONF_UNSET;
    mmcf->pressure_mark = NGX_CONF_UNSET;
    mmcf->pressure_min_age = NGX_CONF_UNSET_MSEC;
    mmcf->env.limits.nodes = NGX_CONF_UNSET_SIZE;
    mmcf->env.limits.edges = NGX_CONF_UNSET_SIZE;
    mmcf->env.limits.fanout = NGX_CONF_UNSET_SIZE;
    mmcf->env.limits.steps = NGX_CONF_UNSET_SIZE;
    mmcf->env.limits.state = NGX_CONF_UNSET_SIZE;
    mmcf->env.limits.prompt = NGX_CONF_UNSET_SIZE;
    mmcf->env.limits.context = NGX_CONF_UNSET_SIZE;
    mmcf->breaker_failures = NGX_CONF_UNSET_UINT;
    mmcf->breaker_recovery = NGX_CONF_UNSET_MSEC;
    mmcf->llm_balance = NGX_CONF_UNSET_UINT;
    mmcf->health_interval = NGX_CONF_UNSET_MSEC;
    mmcf->health_timeout = NGX_CONF_UNSET_MSEC;
    mmcf->jwt_leeway = NGX_CONF_UNSET;
    mmcf->audit = NGX_CONF_UNSET_PTR;

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
           != NGX_OK
        || ngx_array_init(&mmcf->team_budgets, cf->pool, 2,
                          sizeof(mst_budget_t))
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
    ngx_http_maestro_provider_conf_t  *pc;
    ngx_http_maestro_workflow_conf_t  *wc;

    ngx_conf_init_value(mmcf->store_size, NGX_HTTP_MAESTRO_DEFAULT_STORE_SIZE);
    ngx_conf_init_value(mmcf->store_headroom,
                        ngx_min(mmcf->store_size / 8,
                                NGX_HTTP_MAESTRO_DEFAULT_STORE_HEADROOM));

    if (mmcf->store_headroom >= mmcf->store_size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"maestro_store_headroom\" %O must be less than "
                           "\"maestro_store_size\" %O",
                           mmcf->store_headroom, mmcf->store_size);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(mmcf->store_sync, 1);
    ngx_conf_init_value(mmcf->store_writemap, 0);
    ngx_conf_init_uint_value(mmcf->queue_size,
                             NGX_HTTP_MAESTRO_DEFAULT_QUEUE_SIZE);
    ngx_conf_init_uint_value(mmcf->workflow_steps, 0);
    ngx_conf_init_msec_value(mmcf->lease_timeout,
                             NGX_HTTP_MAESTRO_DEFAULT_LEASE_TIMEOUT);
    ngx_conf_init_msec_value(mmcf->poll_interval,
                             NGX_HTTP_MAESTRO_DEFAULT_POLL_INTERVAL);
    ngx_conf_init_msec_value(mmcf->flush_interval,
                             NGX_HTTP_MAESTRO_DEFAULT_FLUSH_INTERVAL);
    ngx_conf_init_msec_value(mmcf->heartbeat,
                             NGX_HTTP_MAESTRO_DEFAULT_SSE_HEARTBEAT);
    ngx_conf_init_uint_value(mmcf->agent_log_keep,
                             NGX_HTTP_MAESTRO_DEFAULT_AGENT_LOG_SIZE);
    ngx_conf_init_size_value(mmcf->ws_max_message,
                             NGX_HTTP_MAESTRO_DEFAULT_WS_MAX_MESSAGE);
    ngx_conf_init_msec_value(mmcf->ws_ping, NGX_HTTP_MAESTRO_DEFAULT_WS_PING);
    ngx_conf_init_size_value(mmcf->key_limits_size,
                             NGX_HTTP_MAESTRO_DEFAULT_KEY_LIMITS_SIZE);
    ngx_conf_init_uint_value(mmcf->limit_max_tokens,
                             NGX_HTTP_MAESTRO_DEFAULT_LIMIT_MAX_TOKENS);
    ngx_conf_init_msec_value(mmcf->event_retention,
                             NGX_HTTP_MAESTRO_DEFAULT_EVENT_RETENTION);
    ngx_conf_init_msec_value(mmcf->retention,
                             NGX_HTTP_MAESTRO_DEFAULT_RETENTION);
    ngx_conf_init_value(mmcf->retention_count,
                        NGX_HTTP_MAESTRO_DEFAULT_RETENTION_COUNT);
    ngx_conf_init_value(mmcf->retention_user,
                        NGX_HTTP_MAESTRO_DEFAULT_RETENTION_USER);
    ngx_conf_init_value(mmcf->pressure, 1);
    ngx_conf_init_value(mmcf->pressure_mark,
                        NGX_HTTP_MAESTRO_DEFAULT_PRESSURE_MARK);
    ngx_conf_init_msec_value(mmcf->pressure_min_age,
                             NGX_HTTP_MAESTRO_DEFAULT_PRESSURE_MIN_AGE);
    ngx_http_maestro_limits_init(&mmcf->env.limits);
    ngx_conf_init_uint_value(mmcf->breaker_failures,
                             NGX_HTTP_MAESTRO_DEFAULT_BREAKER_FAILURES);
    ngx_conf_init_msec_value(mmcf->breaker_recovery,
                             NGX_HTTP_MAESTRO_DEFAULT_BREAKER_RECOVERY);
    ngx_conf_init_uint_value(mmcf->llm_balance, MST_GATEWAY_WEIGHTED);
    ngx_conf_init_msec_value(mmcf->health_interval,
                             NGX_HTTP_MAESTRO_DEFAULT_HEALTH_INTERVAL);
    ngx_conf_init_msec_value(mmcf->health_timeout,
                             NGX_HTTP_MAESTRO_DEFAULT_HEALTH_TIMEOUT);

    pc = mmcf->providers.elts;

    for (i = 0; i < mmcf->providers.nelts; i++) {
        ngx_conf_init_msec_value(pc[i].timeout,
                                 NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_TIMEOUT);
        /* a stream may go on for longer than either of these */
        ngx_conf_init_msec_value(pc[i].idle_timeout, pc[i].timeout);
        ngx_conf_init_msec_value(pc[i].total_timeout,
                                 ngx_max(pc[i].timeout,
                                     NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_TOTAL));
        ngx_conf_init_uint_value(pc[i].retries,
                                 NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_RETRIES);
        ngx_conf_init_uint_value(pc[i].weight,
                                 NGX_HTTP_MAESTRO_DEFAULT_PROVIDER_WEIGHT);
    }

    if (mmcf->store_path.data == NULL) {
        ngx_str_set(&mmcf->store_path, NGX_HTTP_MAESTRO_DEFAULT_STORE_PATH);
    }

    if (mmcf->plugins_dir.data == NULL) {
        ngx_str_set(&mmcf->plugins_dir, NGX_HTTP_MAESTRO_DEFAULT_PLUGINS_DIR);
    }

    if (mmcf->pool_name.data == NULL) {
        ngx_str_set(&mmcf->pool_name, NGX_HTTP_MAESTRO_DEFAULT_POOL);
    }

    if (mmcf->io_pool_name.data == NULL) {
        ngx_str_set(&mmcf->io_pool_name, NGX_HTTP_MAESTRO_DEFAULT_IO_POOL);
    }

    ngx_conf_init_ptr_value(mmcf->audit, NULL);

    if (mmcf->key_limits_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"maestro_key_limits_size\" must be at least "
                           "32k");
        return NGX_CONF_ERROR;
    }

    /* the API keys' own limits (rpm, tpm, tpd, max_parallel) */
    if (mmcf->enabled
        && ngx_http_maestro_limit_keys_zone(cf, mmcf->key_limits_size)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_maestro_auth_init_conf(cf, mmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (mmcf->lease_timeout < NGX_HTTP_MAESTRO_MIN_LEASE_TIMEOUT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"maestro_lease_timeout\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (mmcf->store_crypt != NULL && !mst_crypt_ready(mmcf->store_crypt)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no \"maestro_store_encryption_key\" is "
                           "\"active\" (one must be, to seal new records)");
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

        if (ngx_http_maestro_limits_graph(cf, &mmcf->env.limits,
                                          mmcf->graphs[i], &wc[i].name,
                                          &wc[i].file)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (ngx_strcmp(mst_graph_name(mmcf->graphs[i]), wc[i].name.data)
            != 0)
        {
            /* the directive's name is the one users call it by */
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "maestro_workflow \"%V\": the graph in \"%V\" "
                               "is named \"%s\"; \"%V\" is used",
                               &wc[i].name, &wc[i].file,
                               mst_graph_name(mmcf->graphs[i]), &wc[i].name);

            if (mst_graph_rename(mmcf->graphs[i], (char *) wc[i].name.data)
                != MST_OK)
            {
                return NGX_CONF_ERROR;
            }
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
            if (ngx_strcmp(mst_graph_name(mmcf->graphs[j]), r->data) == 0) {
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
    mlcf->auth = NGX_CONF_UNSET;
    mlcf->max_body = NGX_CONF_UNSET_SIZE;
    mlcf->limit.dry_run = NGX_CONF_UNSET;
    mlcf->limit.log_level = NGX_CONF_UNSET_UINT;

    return mlcf;
}


static char *
ngx_http_maestro_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_maestro_loc_conf_t *prev = parent;
    ngx_http_maestro_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->api, prev->api, 0);
    ngx_conf_merge_value(conf->auth, prev->auth, 0);

    /* a level with any maestro_guard_* has its own guard; else inherits */
    if (conf->guard == NULL) {
        conf->guard = prev->guard;
    }

    /* a level with maestro_cors_origin has its own list, as add_header */
    if (conf->cors == NULL) {
        conf->cors = prev->cors;
    }

    /* a level with any maestro_limit has its own rules, as limit_req */
    if (conf->limit.rules == NULL) {
        conf->limit.rules = prev->limit.rules;
    }
    ngx_conf_merge_value(conf->limit.dry_run, prev->limit.dry_run, 0);
    ngx_conf_merge_uint_value(conf->limit.log_level, prev->limit.log_level,
                              NGX_LOG_ERR);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              NGX_HTTP_MAESTRO_DEFAULT_MAX_BODY);

    return NGX_CONF_OK;
}

