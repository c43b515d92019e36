/*
 * Copyright (C) Maestro authors
 */

/*
 * The module's configuration: the main and location conf, shared by
 * every glue file; each feature has its own header.
 */

#ifndef _NGX_HTTP_MAESTRO_MODULE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_MODULE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mst_run.h"
#include "mst_intent.h"
#include "mst_route.h"
#include "mst_guard.h"
#include "mst_jwt.h"
#include "ngx_http_maestro_limit.h"


typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    plugin;        /* resolved path */
    ngx_str_t                    config;        /* JSON text */
} ngx_http_maestro_agent_conf_t;


typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    file;
} ngx_http_maestro_workflow_conf_t;


typedef struct ngx_http_maestro_cors_conf_s  ngx_http_maestro_cors_conf_t;
typedef struct ngx_http_maestro_shctx_s  ngx_http_maestro_shctx_t;

typedef struct ngx_http_maestro_h1_peer_s  ngx_http_maestro_h1_peer_t;

typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    url;
    ngx_str_t                    model;
    ngx_str_t                    key;           /* resolved secret */
    ngx_msec_t                   timeout;
    ngx_uint_t                   retries;
    ngx_int_t                    priority;
    ngx_uint_t                   weight;
    ngx_str_t                    ca;            /* https: trusted CAs */
    ngx_http_maestro_h1_peer_t  *peer;          /* client=nginx */
} ngx_http_maestro_provider_conf_t;


/* maestro_llm_fallback: names[0] falls back to names[1..] on on */
typedef struct {
    ngx_array_t                  names;         /* of char * */
    ngx_uint_t                   on;            /* MST_FAIL_* */
} ngx_http_maestro_fallback_t;


typedef struct {
    ngx_flag_t                   enabled;       /* any maestro_api */
    time_t                       created;       /* of this configuration */

    ngx_str_t                    store_path;
    off_t                        store_size;
    off_t                        store_headroom;
    ngx_flag_t                   store_sync;
    ngx_flag_t                   store_writemap;
    mst_crypt_t                 *store_crypt;   /* maestro_store_encryption_
                                                   key; NULL: plain */

    ngx_str_t                    plugins_dir;
    ngx_array_t                 *agent_confs;   /* of _agent_conf_t */
    ngx_array_t                 *workflow_confs;/* of _workflow_conf_t */
    ngx_str_t                    default_workflow;
    mst_intents_t               *intents;       /* maestro_intent */
    ngx_str_t                    tier_model[MST_ROUTE_TIERS];
                                                /* maestro_model_tier */
    ngx_array_t                 *fallbacks;     /* of ..._fallback_t */
    ngx_array_t                  intent_routes; /* their workflows */

    ngx_str_t                    pool_name;     /* steps */
    ngx_str_t                    io_pool_name;  /* store writes */
    ngx_thread_pool_t           *pool;
    ngx_thread_pool_t           *io_pool;

    ngx_uint_t                   queue_size;    /* active workflows / worker */
    ngx_msec_t                   lease_timeout;
    ngx_msec_t                   poll_interval; /* event wake-up */
    ngx_msec_t                   flush_interval;/* event batching */
    ngx_msec_t                   heartbeat;     /* SSE comments */
    ngx_uint_t                   agent_log_keep;
    size_t                       ws_max_message;
    ngx_msec_t                   ws_ping;
    size_t                       key_limits_size;   /* "maestro_keys" */
    ngx_array_t                  team_budgets;  /* of mst_budget_t */
    ngx_uint_t                   limit_max_tokens;  /* no max_tokens */
    ngx_msec_t                   event_retention;   /* 0: with the record */

    /* LLM providers (maestro_llm_provider), tried by the gateway */
    ngx_array_t                  providers;     /* of _provider_conf_t */
    ngx_array_t                  prices;        /* of mst_price_t */
    ngx_uint_t                   breaker_failures;
    ngx_msec_t                   breaker_recovery;
    ngx_uint_t                   llm_balance;   /* MST_GATEWAY_* */
    ngx_msec_t                   health_interval;   /* 0: off */
    ngx_msec_t                   health_timeout;

    /* who gets in (ngx_http_maestro_auth.c) */
    u_char                       admin_hash[32];    /* SHA-256 */
    ngx_flag_t                   admin_set;
    mst_jwt_keys_t              *jwt_keys;      /* NULL: no JWT */
    mst_jwt_policy_t             jwt_policy;
    ngx_str_t                    jwt_issuer;
    ngx_str_t                    jwt_audience;
    ngx_str_t                    jwt_team_claim;
    time_t                       jwt_leeway;
    ngx_open_file_t             *audit;         /* maestro_audit_log */

    /* built at configuration time, in the master */
    mst_agent_t                 *agents;
    ngx_uint_t                   nagents;
    mst_graph_t                **graphs;
    ngx_uint_t                   ngraphs;

    ngx_shm_zone_t              *shm_zone;
    ngx_http_maestro_shctx_t    *sh;

    /* per worker, after fork */
    mst_run_env_t                env;
    mst_gateway_t               *gw;
    ngx_uint_t                   nactive;       /* this worker */
    ngx_queue_t                  active;        /* of _wf_t */
    ngx_queue_t                  subscribers;   /* SSE streams */
    ngx_queue_t                  feed_sse;      /* those of the feed */
    ngx_queue_t                  ws_conns;      /* WebSocket connections */
    ngx_queue_t                  feed_ws;       /* those of the feed */
    ngx_rbtree_t                 watch_tree;    /* workflow id -> watchers */
    ngx_rbtree_node_t            watch_sentinel;
    ngx_atomic_uint_t            ring_tail;
    ngx_uint_t                   wake_epoch;    /* one per wake-up */
    char                         prune_cursor[MST_ID_LEN + 1];
    int                          store_level;   /* MST_STORE_*, as the
                                                   housekeeping last saw */
    ngx_event_t                  poll_ev;
    ngx_event_t                  housekeeping_ev;
    ngx_event_t                  health_ev;
    ngx_atomic_uint_t            seen_generation;
    unsigned                     housekeeping_busy:1;
    unsigned                     health_busy:1;
} ngx_http_maestro_main_conf_t;


typedef struct {
    ngx_flag_t                   api;           /* maestro_api */
    ngx_flag_t                   auth;          /* maestro_auth */
    size_t                       max_body;      /* maestro_max_body */
    mst_guard_t                 *guard;         /* maestro_guard_* */
    ngx_http_maestro_limit_conf_t  limit;       /* maestro_limit* */
    ngx_http_maestro_cors_conf_t  *cors;        /* maestro_cors_origin, or
                                                   NULL: none */
} ngx_http_maestro_loc_conf_t;


extern ngx_module_t  ngx_http_maestro_module;

#endif /* _NGX_HTTP_MAESTRO_MODULE_H_INCLUDED_ */
