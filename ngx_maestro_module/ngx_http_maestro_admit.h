/*
 * Copyright (C) Maestro authors
 */

/*
 * The admission path (ngx_http_maestro_admit.c): the stages every way in
 * passes, in this order, each one function here.
 */

#ifndef _NGX_HTTP_MAESTRO_ADMIT_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_ADMIT_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "mst_caller.h"
#include "mst_limit.h"
#include "mst_route.h"


/* the ways in */
#define NGX_HTTP_MAESTRO_WAY_API         0  /* any other /api/v1 route */
#define NGX_HTTP_MAESTRO_WAY_SUBMIT      1  /* POST /api/v1/workflows */
#define NGX_HTTP_MAESTRO_WAY_STREAM      2  /* POST /api/v1/stream/... */
#define NGX_HTTP_MAESTRO_WAY_ANALYZE     3  /* POST /api/v1/analyze */
#define NGX_HTTP_MAESTRO_WAY_OPENAI      4  /* /v1/chat/..., embeddings */
#define NGX_HTTP_MAESTRO_WAY_WS          5  /* a prompt_submission */


typedef struct ngx_http_maestro_submit_s  ngx_http_maestro_submit_t;


/* why a stage refused: each front end answers in its own shape */
typedef struct {
    ngx_uint_t                      status;     /* HTTP status */
    const char                     *code;
    char                            message[384];
} ngx_http_maestro_admit_error_t;


/* one request's (or one WebSocket message's) way through the stages */
typedef struct {
    mst_caller_t                    caller;     /* 1. identify */
    json_t                         *key;        /* its API key's record,
                                                   or NULL */
    mst_limit_verdict_t             limit;      /* 2. limits */
    mst_route_t                     route;      /* 4. route, when routed */
    ngx_uint_t                      way;        /* NGX_HTTP_MAESTRO_WAY_* */
    ngx_http_maestro_limit_conf_t  *limits;     /* 2. or NULL: none */
    ngx_http_maestro_limit_ledger_t ledger;     /* 2. what it took */
    ngx_str_t                       addr;       /* 2. the client address */
    const char                     *endpoint;   /* 2. the route class */
    unsigned                        identified:1;
    unsigned                        refused:1;  /* by stage 1 */
    unsigned                        limit_dry_run:1;  /* 2. would be
                                                         refused */
    unsigned                        changed:1;  /* 3. the guard changed
                                                   a text */
    unsigned                        routed:1;
    unsigned                        stream:1;   /* 2. a subscription */
} ngx_http_maestro_admit_t;


/* fills *e (printf-style message); returns NGX_ERROR */
ngx_int_t ngx_http_maestro_admit_error(ngx_http_maestro_admit_error_t *e,
    ngx_uint_t status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* postconfiguration: the identify and limits phase handlers */
ngx_int_t ngx_http_maestro_admit_init(ngx_conf_t *cf);

/* the request's admission (its module ctx), the caller identified;
   NULL: no memory */
ngx_http_maestro_admit_t *ngx_http_maestro_admit_get(ngx_http_request_t *r);

/*
 * 1. identify r's caller (its credential: ngx_http_maestro_auth.c), once;
 * then session: a WebSocket session's user (the URL), or NULL
 */
ngx_int_t ngx_http_maestro_admit_identify(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, ngx_str_t *session,
    ngx_http_maestro_admit_error_t *e);

/*
 * Stages 1-2 for one message of a connection identified at its upgrade
 * (a WebSocket prompt_submission; r: the upgrade request, for its
 * location's limits and client address): ad is initialised, a key
 * checked again; ngx_http_maestro_admit_release() when done with ad.
 */
ngx_int_t ngx_http_maestro_admit_message(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, const mst_caller_t *conn,
    ngx_uint_t way, ngx_http_request_t *r,
    ngx_http_maestro_admit_error_t *e);
void ngx_http_maestro_admit_release(ngx_http_maestro_admit_t *ad);

/*
 * The caller may use a workflow ("workflows") or a model ("models"): an
 * API key may name the ones it allows. NGX_OK, or NGX_ERROR with a 403.
 */
ngx_int_t ngx_http_maestro_admit_allows(ngx_http_maestro_admit_t *ad,
    const char *field, const char *name, ngx_http_maestro_admit_error_t *e);

/* the caller may see a record owned by owner (tenants: their own) */
ngx_int_t ngx_http_maestro_admit_may_see(ngx_http_request_t *r,
    const char *owner);

/*
 * 2. limits at the door: requests, slots, streams, an empty token bucket,
 * the key's budget (429 rate_limited or insufficient_quota)
 */
ngx_int_t ngx_http_maestro_admit_limits(ngx_http_maestro_admit_t *ad,
    ngx_log_t *log, ngx_http_maestro_admit_error_t *e);

/*
 * 2. tokens, before a provider is called for model: the estimate for
 * input_bytes and max_tokens (< 0: none, maestro_limit_max_tokens)
 * reserved, and the rules by model counted; refused: 429 with
 * Retry-After on r
 */
ngx_int_t ngx_http_maestro_admit_reserve(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, const char *model, size_t input_bytes,
    int64_t max_tokens, ngx_http_maestro_admit_error_t *e);

/* 3. validate + guard an OpenAI body (every message, embeddings input);
   its "user" is claimed for the caller */
ngx_int_t ngx_http_maestro_admit_openai(ngx_http_maestro_admit_t *ad,
    json_t *body, const mst_guard_t *guard, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);

/* 4. route text: a workflow (flags MST_ROUTE_WORKFLOW) or a model */
ngx_int_t ngx_http_maestro_admit_route(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, const char *text, size_t len,
    int flags, ngx_http_maestro_admit_error_t *e);

/* X-Maestro-Route and X-Maestro-Complexity of what stage 4 decided */
void ngx_http_maestro_admit_route_headers(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad);

/* 5. cache: NGX_DECLINED, a miss (there is no response cache yet) */
ngx_int_t ngx_http_maestro_admit_cache(ngx_http_maestro_admit_t *ad);

/*
 * Stages 3-5 of a submission (REST, stream, WebSocket, maestro/<wf>):
 * validate, guard the prompt and every context file (guard NULL: the
 * texts were guarded as an OpenAI body), route "auto", resolve the
 * workflow, cache. NULL and *e filled when refused.
 */
ngx_http_maestro_submit_t *ngx_http_maestro_admit_submission(
    ngx_http_maestro_admit_t *ad, ngx_http_maestro_main_conf_t *mmcf,
    json_t *body, const mst_guard_t *guard, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);

/* 6. dispatch a submission (sb->done and sb->data set): NGX_OK, or
   *e filled */
ngx_int_t ngx_http_maestro_admit_dispatch(ngx_http_maestro_submit_t *sb,
    ngx_http_maestro_admit_error_t *e);

/* 7. account a call outside workflows: the caller's tokens, its token
   reservations settled; returns its cost in USD, < 0 when the model has
   no maestro_llm_price */
double ngx_http_maestro_admit_account(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, const char *model, long prompt,
    long completion);

#endif /* _NGX_HTTP_MAESTRO_ADMIT_H_INCLUDED_ */
