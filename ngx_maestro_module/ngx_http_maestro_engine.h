/*
 * Copyright (C) Maestro authors
 */

/*
 * The LLM engine (ngx_http_maestro_engine.c): /v1 requests for provider
 * models and the plugins' calls, on one engine. Below its entry points,
 * its internals, shared with its /v1 client side
 * (ngx_http_maestro_engine_v1.c), the plugins' side
 * (ngx_http_maestro_llm.c) and the health checks
 * (ngx_http_maestro_health.c). One call: its plan over the providers,
 * the transfer in flight, the answer as it comes (the OpenAI wire is
 * core/llm/mst_oai.h), and whom it is for: a /v1 client (r) or a
 * plugin's job.
 */

#ifndef _NGX_HTTP_MAESTRO_ENGINE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_ENGINE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_llm.h"
#include "ngx_http_maestro_curl.h"
#include "ngx_http_maestro_h1.h"
#include "mst_oai.h"


/*
 * Starts the pass-through of body (an object with a string "model") to
 * the providers of that model. NGX_DECLINED: no provider serves it;
 * NGX_DONE: going on (the request is finalized later); else a status.
 */
ngx_int_t ngx_http_maestro_passthru(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, json_t *body, ngx_str_t *raw,
    const char *kind);
/* a plugin's call (job) on the same engine; cancel one in flight */
ngx_int_t ngx_http_maestro_passthru_job(ngx_http_maestro_job_t *job,
    mst_gateway_t *gw, ngx_log_t *log);
void ngx_http_maestro_passthru_cancel(ngx_http_maestro_job_t *job);


#define NGX_HTTP_MAESTRO_ENGINE_PAUSE_AT  (64 * 1024)
#define NGX_HTTP_MAESTRO_ENGINE_BUF       4096


typedef struct {
    ngx_http_request_t             *r;          /* a /v1 client, or */
    ngx_http_maestro_job_t         *job;        /* a plugin's call */
    ngx_log_t                      *log;
    mst_gateway_t                  *gw;
    ngx_http_maestro_curl_xfer_t    xfer;       /* https: libcurl */
    ngx_http_maestro_h1_t           h1;         /* http: our client */
    struct curl_slist              *headers;    /* kept per member */
    json_t                         *body;
    ngx_http_maestro_admit_t       *admit;      /* a /v1 client's */
    const char                     *kind;       /* chat/completions, ... */
    char                           *payload;    /* made for upstream */
    ngx_str_t                       raw;        /* the client's body */
    ngx_str_t                       upstream_body;
    char                            model[160]; /* the client's */

    size_t                          order[MST_GATEWAY_MAX];
    size_t                          norder;
    size_t                          next;       /* in order[] */
    size_t                          member;
    ngx_uint_t                      attempt;    /* on this member */
    ngx_uint_t                      tried;      /* members sent to */
    unsigned                        fail;       /* the last: MST_FAIL_* */

    long                            status;     /* upstream's */
    mst_oai_head_t                  head;       /* upstream's */
    mst_oai_sse_t                   sse;        /* upstream's stream */
    mst_oai_usage_t                 usage;
    int64_t                         t0;
    int64_t                         first_ms;
    size_t                          streamed;   /* event bytes forwarded */

    mst_oai_buf_t                   body_in;    /* non-stream, errors */
    mst_oai_buf_t                   pending;    /* events to send */

    ngx_chain_t                    *free;
    ngx_chain_t                    *busy;

    ngx_event_t                     retry_ev;
    ngx_event_t                     wait_ev;    /* libcurl: first byte,
                                                   then idle gaps */
    char                            last_err[256];

    /* a plugin's call: the answer as it is assembled */
    mst_oai_answer_t                answer;     /* when streamed */
    json_t                         *whole;      /* when not streamed */
    int                             job_rc;
    unsigned                        req_model:1; /* the request has one */

    unsigned                        stream:1;
    unsigned                        client_usage:1;
    unsigned                        started:1;  /* client headers out */
    unsigned                        done_marker:1;
    unsigned                        last_sent:1;
    unsigned                        paused:1;
    unsigned                        failed_write:1;
    unsigned                        malformed:1;
    unsigned                        finished:1;
    unsigned                        decided:1;  /* status looked at */
    unsigned                        forward:1;  /* 2xx: to the client */
    unsigned                        native:1;   /* h1, not xfer */
} ngx_http_maestro_call_t;


/* the next provider of the plan, or the end of the call */
void ngx_http_maestro_engine_next(ngx_http_maestro_call_t *pt);
void ngx_http_maestro_engine_finish(ngx_http_maestro_call_t *pt,
    ngx_int_t rc);
void ngx_http_maestro_engine_cleanup(void *data);
void ngx_http_maestro_engine_init(ngx_http_maestro_call_t *pt);
ngx_uint_t ngx_http_maestro_engine_active(ngx_http_maestro_call_t *pt);
void ngx_http_maestro_engine_stop(ngx_http_maestro_call_t *pt);
void ngx_http_maestro_engine_pause(ngx_http_maestro_call_t *pt,
    ngx_uint_t on);

/*
 * A member's request headers, made once per worker and kept: for
 * libcurl, and "Name: value\r\n" lines for our own client.
 */
struct curl_slist *ngx_http_maestro_engine_headers(size_t member,
    ngx_uint_t stream, const mst_llm_provider_t *p);
ngx_str_t *ngx_http_maestro_engine_fields(size_t member, ngx_uint_t stream,
    const mst_llm_provider_t *p);

/* the /v1 client (ngx_http_maestro_engine_v1.c) */
ngx_int_t ngx_http_maestro_engine_send(ngx_http_maestro_call_t *pt,
    const char *prefix, const u_char *p, size_t n, const char *suffix,
    ngx_uint_t last);
ngx_int_t ngx_http_maestro_engine_error(ngx_http_maestro_call_t *pt,
    ngx_uint_t status, const char *type, const char *code, const char *msg);
ngx_int_t ngx_http_maestro_engine_send_body(ngx_http_maestro_call_t *pt,
    ngx_uint_t status);
ngx_int_t ngx_http_maestro_engine_queue(ngx_http_maestro_call_t *pt,
    const char *p, size_t n);
ngx_int_t ngx_http_maestro_engine_flush(ngx_http_maestro_call_t *pt);
ngx_int_t ngx_http_maestro_engine_broken(ngx_http_maestro_call_t *pt,
    const char *msg);
void ngx_http_maestro_engine_slow(ngx_http_maestro_call_t *pt);
void ngx_http_maestro_engine_writable(ngx_http_request_t *r);
void ngx_http_maestro_engine_account(ngx_http_maestro_call_t *pt,
    size_t answer);

/* a plugin's call (ngx_http_maestro_llm.c): a streamed chunk; the end */
ngx_int_t ngx_http_maestro_engine_job_event(ngx_http_maestro_call_t *pt,
    const char *p, size_t n);
void ngx_http_maestro_engine_job_finish(ngx_http_maestro_call_t *pt,
    ngx_int_t rc);

#endif /* _NGX_HTTP_MAESTRO_ENGINE_H_INCLUDED_ */
