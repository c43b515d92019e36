/*
 * Copyright (C) Maestro authors
 */

/*
 * The LLM call engine's internals (ngx_http_maestro_passthru.c), shared
 * with the plugins' side of it (ngx_http_maestro_llm.c). One call: its
 * plan over the providers, the transfer in flight, the answer as it
 * comes, and whom it is for: a /v1 client (r) or a plugin's job.
 */

#ifndef _NGX_HTTP_MAESTRO_CALL_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_CALL_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_llm.h"
#include "ngx_http_maestro_curl.h"
#include "ngx_http_maestro_h1.h"


#define NGX_HTTP_MAESTRO_PT_MAX_BODY   (16 * 1024 * 1024)
#define NGX_HTTP_MAESTRO_PT_MAX_LINE   (4 * 1024 * 1024)
#define NGX_HTTP_MAESTRO_PT_PAUSE_AT   (64 * 1024)
#define NGX_HTTP_MAESTRO_PT_BUF        4096
#define NGX_HTTP_MAESTRO_PT_MAX_WAIT   30000   /* ms, one backoff */


typedef struct {
    u_char                         *data;
    size_t                          len;
    size_t                          cap;
} ngx_http_maestro_pt_bytes_t;


typedef struct {
    ngx_http_request_t             *r;          /* a /v1 client, or */
    ngx_http_maestro_job_t         *job;        /* a plugin's call */
    ngx_log_t                      *log;
    mst_gateway_t                  *gw;
    ngx_http_maestro_curl_xfer_t    xfer;       /* https: libcurl */
    ngx_http_maestro_h1_t           h1;         /* http: our client */
    struct curl_slist              *headers;    /* kept per member */
    json_t                         *body;
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
    ngx_msec_t                      retry_after;
    int64_t                         t0;
    int64_t                         first_ms;
    long                            prompt_tokens;
    long                            completion_tokens;
    size_t                          streamed;   /* event bytes forwarded */

    ngx_http_maestro_pt_bytes_t     body_in;    /* non-stream, errors */
    ngx_http_maestro_pt_bytes_t     line;       /* partial SSE line */
    ngx_http_maestro_pt_bytes_t     pending;    /* events to send */

    ngx_chain_t                    *free;
    ngx_chain_t                    *busy;

    ngx_event_t                     retry_ev;
    char                            last_err[256];

    /* a plugin's call: the answer as it is assembled */
    ngx_http_maestro_pt_bytes_t     content;
    json_t                         *answer;     /* when not streamed */
    int                             job_rc;
    char                            finish[32];
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
    unsigned                        sse:1;      /* upstream is SSE */
    unsigned                        decided:1;  /* status looked at */
    unsigned                        forward:1;  /* 2xx: to the client */
    unsigned                        native:1;   /* h1, not xfer */
} ngx_http_maestro_pt_t;


ngx_int_t ngx_http_maestro_pt_append(ngx_http_maestro_pt_bytes_t *b,
    const u_char *p, size_t n, size_t max);

/* the next provider of the plan, or the end of the call */
void ngx_http_maestro_pt_next(ngx_http_maestro_pt_t *pt);
void ngx_http_maestro_pt_finish(ngx_http_maestro_pt_t *pt, ngx_int_t rc);
void ngx_http_maestro_pt_cleanup(void *data);
void ngx_http_maestro_pt_done(void *data, int result);
void ngx_http_maestro_pt_retry(ngx_event_t *ev);

/* the transfer, whichever client carries it */
void ngx_http_maestro_pt_init(ngx_http_maestro_pt_t *pt);
ngx_uint_t ngx_http_maestro_pt_active(ngx_http_maestro_pt_t *pt);
void ngx_http_maestro_pt_stop(ngx_http_maestro_pt_t *pt);

/* a plugin's call (ngx_http_maestro_llm.c): a streamed chunk; the end */
ngx_int_t ngx_http_maestro_pt_job_event(ngx_http_maestro_pt_t *pt,
    u_char *p, size_t n);
void ngx_http_maestro_pt_job_finish(ngx_http_maestro_pt_t *pt,
    ngx_int_t rc);

#endif /* _NGX_HTTP_MAESTRO_CALL_H_INCLUDED_ */
