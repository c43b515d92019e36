/*
 * Copyright (C) Maestro authors
 */

/*
 * Shared declarations of the nginx glue: configuration, per-worker runtime
 * and the entry points one glue file offers the others.
 */

#ifndef _NGX_HTTP_MAESTRO_MODULE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_MODULE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pthread.h>

#include "mst_run.h"
#include "mst_intent.h"
#include "mst_guard.h"
#include "mst_http1.h"


#define NGX_HTTP_MAESTRO_API_PREFIX    "/api/v1"
#define NGX_HTTP_MAESTRO_UNPROCESSABLE 422
#define NGX_HTTP_MAESTRO_GONE          410


#define NGX_HTTP_MAESTRO_RING_SIZE  16384


/* a notification: this workflow has new events (ngx_http_maestro_watch.c) */
typedef struct {
    ngx_atomic_t                 seq;           /* position + 1; 0: being
                                                   written */
    u_char                       id[MST_ID_LEN];
} ngx_http_maestro_ring_slot_t;


/* shared memory: cross-worker wake-up and counters */
typedef struct {
    ngx_atomic_t                 generation;    /* bumped on every commit
                                                   that appended events */
    ngx_atomic_t                 active;        /* workflows running, all
                                                   workers */
    ngx_atomic_t                 submitted;
    ngx_atomic_t                 ring_head;
    mst_breaker_t                breakers[MST_GATEWAY_MAX];
    ngx_http_maestro_ring_slot_t ring[NGX_HTTP_MAESTRO_RING_SIZE];
} ngx_http_maestro_shctx_t;


/* the watchers of one workflow on this worker */
typedef struct {
    ngx_rbtree_node_t            node;          /* key: crc32 of the id */
    u_char                       id[MST_ID_LEN];
    ngx_queue_t                  watchers;
    unsigned                     waking:1;
} ngx_http_maestro_watch_node_t;


typedef struct ngx_http_maestro_watch_s  ngx_http_maestro_watch_t;

struct ngx_http_maestro_watch_s {
    ngx_queue_t                     queue;
    ngx_http_maestro_watch_node_t  *node;
    void                          (*wake)(ngx_http_maestro_watch_t *w);
    void                           *data;
};


typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    plugin;        /* resolved path */
    ngx_str_t                    config;        /* JSON text */
} ngx_http_maestro_agent_conf_t;


typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    file;
} ngx_http_maestro_workflow_conf_t;


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


typedef struct {
    ngx_flag_t                   enabled;       /* any maestro_api */
    time_t                       created;       /* of this configuration */

    ngx_str_t                    store_path;
    off_t                        store_size;
    ngx_flag_t                   store_sync;
    ngx_flag_t                   store_writemap;

    ngx_str_t                    plugins_dir;
    ngx_array_t                 *agent_confs;   /* of _agent_conf_t */
    ngx_array_t                 *workflow_confs;/* of _workflow_conf_t */
    ngx_str_t                    default_workflow;
    mst_intents_t               *intents;       /* maestro_intent */
    ngx_str_t                    tier_model[3]; /* maestro_model_tier */
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
    ngx_msec_t                   event_retention;   /* 0: with the record */

    /* LLM providers (maestro_llm_provider), tried by the gateway */
    ngx_array_t                  providers;     /* of _provider_conf_t */
    ngx_array_t                  prices;        /* of mst_price_t */
    ngx_uint_t                   breaker_failures;
    ngx_msec_t                   breaker_recovery;
    ngx_uint_t                   llm_balance;   /* MST_GATEWAY_* */
    ngx_msec_t                   health_interval;   /* 0: off */
    ngx_msec_t                   health_timeout;

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
    ngx_event_t                  poll_ev;
    ngx_event_t                  housekeeping_ev;
    ngx_event_t                  health_ev;
    ngx_atomic_uint_t            seen_generation;
    unsigned                     housekeeping_busy:1;
    unsigned                     health_busy:1;
} ngx_http_maestro_main_conf_t;


typedef struct {
    ngx_flag_t                   api;           /* maestro_api */
    size_t                       max_body;      /* maestro_max_body */
    mst_guard_t                 *guard;         /* maestro_guard_* */
} ngx_http_maestro_loc_conf_t;


extern ngx_module_t  ngx_http_maestro_module;


/* ngx_http_maestro_submit.c: a submission from any front end */

typedef struct ngx_http_maestro_submit_s  ngx_http_maestro_submit_t;
typedef void (*ngx_http_maestro_submit_pt)(ngx_http_maestro_submit_t *sb);

struct ngx_http_maestro_submit_s {
    ngx_http_maestro_main_conf_t   *mmcf;
    mst_graph_t                    *graph;
    char                            workflow[128];  /* a copy: an inline
                                                       graph is freed first */
    char                           *prompt;
    char                            user_id[129];
    json_t                         *context;
    json_t                         *body;       /* owns the strings */

    /* the outcome, for done() */
    char                            id[MST_ID_LEN + 1];
    json_t                         *rec;
    mst_run_next_t                  next;
    int                             rc;
    int                             claim_rc;
    char                            err[MST_ERRLEN];

    ngx_http_maestro_submit_pt      done;       /* in the event loop */
    void                           *data;       /* the front end's */
    const char                     *complexity; /* when routed "auto" */
    const char                     *intent;
    unsigned                        graph_owned:1;
    unsigned                        has_user:1;
    unsigned                        stream:1;
    unsigned                        routed:1;
};

typedef struct {
    ngx_uint_t                      status;     /* HTTP status */
    const char                     *code;
    char                            message[384];
} ngx_http_maestro_submit_error_t;

/* validates body (prompt, workflow, user_id, context); user_id, when not
   NULL, overrides the body's; NULL and *e filled when invalid */
ngx_http_maestro_submit_t *ngx_http_maestro_submit_new(
    ngx_http_maestro_main_conf_t *mmcf, json_t *body, const char *user_id,
    const mst_guard_t *guard, ngx_log_t *log,
    ngx_http_maestro_submit_error_t *e);
/* stores and claims it on the io pool, then calls sb->done() */
ngx_int_t ngx_http_maestro_submit_post(ngx_http_maestro_submit_t *sb);
/* after the front end answered: this worker runs it; frees sb */
void ngx_http_maestro_submit_finish(ngx_http_maestro_submit_t *sb);

/* ngx_http_maestro_api.c */
ngx_int_t ngx_http_maestro_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_maestro_send_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
ngx_int_t ngx_http_maestro_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, ...);
/* the whole request body in one buffer; NGX_DECLINED when over max */
ngx_int_t ngx_http_maestro_request_body(ngx_http_request_t *r,
    ngx_str_t *body, size_t max);

/* ngx_http_maestro_openai.c: /v1/models, /v1/chat/completions */
ngx_int_t ngx_http_maestro_openai_handler(ngx_http_request_t *r);

/* ngx_http_maestro_sse.c */
ngx_int_t ngx_http_maestro_sse_start(ngx_http_request_t *r, ngx_str_t *id,
    uint64_t last_event_id);
ngx_int_t ngx_http_maestro_sse_headers(ngx_http_request_t *r);
ngx_int_t ngx_http_maestro_sse_start_feed(ngx_http_request_t *r,
    uint64_t last_event_id, ngx_str_t *status, ngx_str_t *user);
void ngx_http_maestro_sse_wakeup(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_sse_shutdown(ngx_http_maestro_main_conf_t *mmcf);
uint64_t ngx_http_maestro_sse_last_event_id(ngx_http_request_t *r);

/* ngx_http_maestro_watch.c */
void ngx_http_maestro_watch_init(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_watch_notify(ngx_http_maestro_shctx_t *sh,
    const char *id);
ngx_uint_t ngx_http_maestro_watch_drain(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_watch_add(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_t *w, const char *id);
void ngx_http_maestro_watch_del(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_t *w);
void ngx_http_maestro_watch_wake_all(ngx_http_maestro_main_conf_t *mmcf);

/* ngx_http_maestro_cache.c: events formatted once per wake-up */

typedef struct {
    char                         id[MST_ID_LEN + 1];
    uint64_t                     from;      /* events after this ... */
    uint64_t                     to;        /* ... up to this one */
    ngx_uint_t                   epoch;     /* the wake-up */
    u_char                      *text;      /* messages back to back */
    size_t                       len;
    size_t                       cap;
    uint64_t                    *seqs;      /* message i's id ... */
    size_t                      *offs;      /* ... and its offset;
                                               offs[n] is the end */
    size_t                       n;
    size_t                       ncap;
    unsigned                     valid:1;
    unsigned                     final:1;   /* ends with done / error */
} ngx_http_maestro_cache_t;

void ngx_http_maestro_cache_reset(ngx_http_maestro_cache_t *c,
    const char *id, uint64_t from, ngx_uint_t epoch);
void ngx_http_maestro_cache_add(ngx_http_maestro_cache_t *c, uint64_t seq,
    const u_char *p, size_t len, ngx_uint_t final);
void ngx_http_maestro_cache_done(ngx_http_maestro_cache_t *c);
/* NGX_OK: *first is the first message after last; NGX_DONE: nothing new
   this wake-up; NGX_DECLINED: read LMDB */
ngx_int_t ngx_http_maestro_cache_find(ngx_http_maestro_cache_t *c,
    const char *id, uint64_t last, ngx_uint_t epoch, size_t *first);

/* ngx_http_maestro_ws.c */
ngx_int_t ngx_http_maestro_ws_start(ngx_http_request_t *r,
    ngx_str_t *workflow_id, ngx_str_t *user_id);
ngx_int_t ngx_http_maestro_ws_start_monitor(ngx_http_request_t *r,
    uint64_t last, ngx_str_t *status, ngx_str_t *user);
void ngx_http_maestro_ws_wakeup(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_ws_shutdown(ngx_http_maestro_main_conf_t *mmcf);

/* ngx_http_maestro_ws_deflate.c: permessage-deflate */
ngx_str_t *ngx_http_maestro_ws_deflate_offer(ngx_table_elt_t *h);
ngx_int_t ngx_http_maestro_ws_deflate(const u_char *in, size_t len,
    u_char **out, size_t *outlen);
ngx_int_t ngx_http_maestro_ws_inflate(const u_char *in, size_t len,
    size_t max, u_char **out, size_t *outlen);

/* ngx_http_maestro_run.c: the per-worker scheduler */
ngx_int_t ngx_http_maestro_run_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_run_exit_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
/* adopt a workflow this worker created or claimed; takes next's steps */
void ngx_http_maestro_run_adopt(ngx_http_maestro_main_conf_t *mmcf,
    const char *id, mst_run_next_t *next);
ngx_int_t ngx_http_maestro_run_can_accept(
    ngx_http_maestro_main_conf_t *mmcf);
int ngx_http_maestro_run_alive(long pid);

/*
 * Run fn(arg) on the io thread pool, then done(arg) on the event loop.
 * The caller allocates arg with ngx_alloc() / malloc(); done frees it.
 * done gets NGX_ERROR instead of running fn when the queue is full.
 */
typedef void (*ngx_http_maestro_io_pt)(void *arg);
typedef void (*ngx_http_maestro_io_done_pt)(void *arg, ngx_int_t rc);
ngx_int_t ngx_http_maestro_io_post(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_io_pt fn, ngx_http_maestro_io_done_pt done, void *arg);
/* the same on any pool (the agents' pool for slow network calls) */
ngx_int_t ngx_http_maestro_pool_post(ngx_thread_pool_t *pool,
    ngx_http_maestro_io_pt fn, ngx_http_maestro_io_done_pt done, void *arg);

/*
 * ngx_http_maestro_curl.c: libcurl's multi interface on the event loop.
 * The caller sets up easy (its callbacks run on the event loop) and
 * done; done(data, result) is called once when the transfer ends, unless
 * ngx_http_maestro_curl_stop() was called first.
 */
typedef void (*ngx_http_maestro_curl_done_pt)(void *data, int result);

typedef struct {
    void                            *easy;      /* CURL * */
    ngx_http_maestro_curl_done_pt    done;
    void                            *data;
    unsigned                         active:1;
} ngx_http_maestro_curl_xfer_t;

ngx_int_t ngx_http_maestro_curl_init_worker(ngx_cycle_t *cycle);
void ngx_http_maestro_curl_exit_worker(void);
ngx_int_t ngx_http_maestro_curl_start(ngx_http_maestro_curl_xfer_t *x);
void ngx_http_maestro_curl_stop(ngx_http_maestro_curl_xfer_t *x);
ngx_uint_t ngx_http_maestro_curl_running(void);
/* an easy handle (a kept one or a new one: curl_easy_reset() it before
   use), and its return */
void *ngx_http_maestro_curl_easy(void);
void ngx_http_maestro_curl_release(void *easy);

/*
 * ngx_http_maestro_h1.c: the HTTP/1.1 client for http:// providers, on
 * nginx connections with a keep-alive cache. The same contract as a curl
 * transfer: header() and write() as CURLOPT_HEADERFUNCTION and
 * CURLOPT_WRITEFUNCTION (less than n from write() aborts), done() once
 * with a CURLcode, never from inside start().
 */
struct ngx_http_maestro_h1_peer_s {
    struct sockaddr                 *sockaddr;
    socklen_t                        socklen;
    ngx_str_t                        name;      /* address, for logs */
    ngx_str_t                        host;      /* Host: */
    ngx_str_t                        path;      /* "" or "/v1" */
    ngx_queue_t                      idle;      /* kept connections */
#if (NGX_SSL)
    ngx_ssl_t                       *ssl;       /* https */
    ngx_str_t                        sni;       /* and the certificate's */
    ngx_ssl_session_t               *session;   /* the last, to resume */
#endif
};

typedef size_t (*ngx_http_maestro_h1_data_pt)(char *buf, size_t size,
    size_t n, void *arg);

typedef struct {
    /* the caller's */
    ngx_http_maestro_h1_peer_t      *peer;
    ngx_http_maestro_h1_data_pt      header;
    ngx_http_maestro_h1_data_pt      write;
    void                           (*done)(void *data, int result);
    void                            *data;
    ngx_log_t                       *log;
    ngx_msec_t                       connect_timeout;
    ngx_msec_t                       timeout;   /* the whole call */
    long                             status;    /* once the head came */

    /* the transfer's */
    ngx_connection_t                *c;
    ngx_event_t                      timer;
    ngx_event_t                      later;     /* done(), or resume */
    ngx_msec_t                       deadline;
    ngx_str_t                        head;
    size_t                           head_cap;
    ngx_str_t                        body;
    ngx_buf_t                        bufs[2];
    ngx_chain_t                      chain[2];
    ngx_chain_t                     *out;       /* not yet sent */
    u_char                          *buf;       /* the response's bytes */
    size_t                           pos;
    size_t                           last;
    mst_http1_t                      resp;
    int                              result;
    unsigned                         active:1;
    unsigned                         connecting:1;  /* and TLS */
    unsigned                         reused:1;
    unsigned                         fresh:1;   /* no kept connection */
    unsigned                         sent:1;
    unsigned                         got:1;     /* any byte came back */
    unsigned                         paused:1;
} ngx_http_maestro_h1_t;

ngx_int_t ngx_http_maestro_h1_peer_conf(ngx_conf_t *cf, ngx_str_t *url,
    ngx_str_t *ca, ngx_http_maestro_h1_peer_t **peer);
void ngx_http_maestro_h1_init_worker(
    ngx_http_maestro_main_conf_t *mmcf);
/* fields: extra request header lines, each ending in CRLF; body NULL:
   a GET */
ngx_int_t ngx_http_maestro_h1_start(ngx_http_maestro_h1_t *x,
    const char *kind, const ngx_str_t *fields, const ngx_str_t *body);
void ngx_http_maestro_h1_stop(ngx_http_maestro_h1_t *x);
void ngx_http_maestro_h1_pause(ngx_http_maestro_h1_t *x, ngx_uint_t on);
void ngx_http_maestro_h1_free(ngx_http_maestro_h1_t *x);

/* a stream's client that is behind: call its write handler when it can */
ngx_int_t ngx_http_maestro_wait_writable(ngx_http_request_t *r,
    ngx_uint_t progress);

/* X-Maestro-Route and X-Maestro-Complexity: what routing decided */
void ngx_http_maestro_route_headers(ngx_http_request_t *r, const char *route,
    const char *complexity);

/* 0 simple, 1 moderate, 2 complex; NGX_ERROR for another name */
ngx_int_t ngx_http_maestro_tier(const u_char *name);

/* maestro_llm_fallback: names[0] falls back to names[1..] on on */
typedef struct {
    ngx_array_t                  names;         /* of char * */
    ngx_uint_t                   on;            /* MST_FAIL_* */
} ngx_http_maestro_fallback_t;

/* ngx_http_maestro_usage.c: usage of calls outside workflows, batched */
void ngx_http_maestro_usage_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_usage_exit_worker(void);
void ngx_http_maestro_usage_record(const char *user, const char *model,
    long prompt, long completion);

/*
 * ngx_http_maestro_llm.c: the plugins' LLM calls, made by the event loop's
 * engine (the pass-through's) while the plugin's pool thread waits; its
 * text arrives as it streams. Shared between the thread and the loop:
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

/* ngx_http_maestro_engine.c: /v1 requests for provider models */
ngx_int_t ngx_http_maestro_passthru(ngx_http_request_t *r, json_t *body,
    ngx_str_t *raw, const char *kind, const mst_guard_t *guard);
/* a plugin's call (job) on the same engine; cancel one in flight */
ngx_int_t ngx_http_maestro_passthru_job(ngx_http_maestro_job_t *job,
    mst_gateway_t *gw, ngx_log_t *log);
void ngx_http_maestro_passthru_cancel(ngx_http_maestro_job_t *job);

/* ngx_http_maestro_health.c: active health checks of the LLM providers */
void ngx_http_maestro_health_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);

#endif /* _NGX_HTTP_MAESTRO_MODULE_H_INCLUDED_ */
