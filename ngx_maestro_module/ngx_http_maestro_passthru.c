/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The LLM gateway's engine: POST /v1/chat/completions and /v1/embeddings
 * for a model a provider serves, and the plugins' llm_chat calls (a
 * "job" from ngx_http_maestro_llm.c, tried on every provider in the
 * gateway's order as mst_gateway_chat() would), on the event loop
 * (libcurl multi, ngx_http_maestro_curl.c), so a call in flight costs a
 * socket and a few KB, never a thread.
 *
 *  - Route: mst_gateway_plan(): the providers of that model in the
 *    gateway's order (priority, weight or latency), then the rest of the
 *    chain, each with its own model. Breakers (shared memory) are asked
 *    before each provider and told the outcome.
 *  - The body goes upstream as the client sent it (tools, tool_choice,
 *    response_format, unknown fields), with "model" set to the provider's
 *    and, when streaming, stream_options.include_usage forced, so usage is
 *    always known.
 *  - Failures: a connect error, a timeout, 429, 5xx or a malformed answer
 *    is retried on the same provider (its retries=, exponential backoff
 *    with full jitter, Retry-After honoured), then the next provider is
 *    tried, while nothing has reached the client. 400 / 413 / 422 are the
 *    client's: passed back as they came. All providers failed: 502 (503
 *    when every breaker is open), OpenAI-shaped.
 *  - Streams are forwarded event by event ("data: ..." lines) as they
 *    arrive. Once one has reached the client a failure cannot be taken
 *    back: the client gets an OpenAI-shaped error chunk, then the end,
 *    never a silent 200.
 *  - A slow client pauses the transfer (CURL_WRITEFUNC_PAUSE) past
 *    64 KB not yet sent; its write event resumes it. A client that goes
 *    away ends the transfer (the pool cleanup).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_usage.h"
#include "ngx_http_maestro_passthru.h"
#include "ngx_http_maestro_call.h"
#include "ngx_http_maestro_curl.h"
#include "ngx_http_maestro_h1.h"
#include "mst_json.h"


static ngx_int_t ngx_http_maestro_pt_attempt(ngx_http_maestro_pt_t *pt);
static void ngx_http_maestro_pt_status(ngx_http_maestro_pt_t *pt);
static void ngx_http_maestro_pt_pause(ngx_http_maestro_pt_t *pt,
    ngx_uint_t on);


static ngx_str_t  ngx_http_maestro_pt_json_type =
    ngx_string("application/json");


/* bytes */

ngx_int_t
ngx_http_maestro_pt_append(ngx_http_maestro_pt_bytes_t *b, const u_char *p,
    size_t n, size_t max)
{
    u_char  *d;
    size_t   cap;

    if (b->len + n > max) {
        return NGX_DECLINED;
    }

    if (b->cap - b->len < n + 1) {
        cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n + 1) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            return NGX_ERROR;
        }

        b->data = d;
        b->cap = cap;
    }

    ngx_memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';

    return NGX_OK;
}


/* the client */

static ngx_int_t
ngx_http_maestro_pt_provider_header(ngx_http_maestro_pt_t *pt)
{
    const char           *name;
    ngx_table_elt_t      *h;
    ngx_http_request_t   *r;

    r = pt->r;
    name = mst_gateway_provider(pt->gw, pt->member)->name;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Maestro-Provider");
    h->value.data = (u_char *) (name ? name : "default");
    h->value.len = ngx_strlen(h->value.data);

    return NGX_OK;
}


/*
 * Queue prefix + p + suffix to the client as one buffer; the buffers are
 * reused once sent, so a long stream does not grow the request's pool.
 */
static ngx_int_t
ngx_http_maestro_pt_send(ngx_http_maestro_pt_t *pt, const char *prefix,
    const u_char *p, size_t n, const char *suffix, ngx_uint_t last)
{
    size_t        size, plen, slen;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, *out;

    plen = prefix ? ngx_strlen(prefix) : 0;
    slen = suffix ? ngx_strlen(suffix) : 0;

    if (plen + n + slen == 0) {
        return last ? ngx_http_send_special(pt->r, NGX_HTTP_LAST) : NGX_OK;
    }

    cl = ngx_chain_get_free_buf(pt->r->pool, &pt->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;
    size = plen + n + slen;

    if (b->start == NULL || (size_t) (b->end - b->start) < size) {
        size = ngx_max(size, NGX_HTTP_MAESTRO_PT_BUF);
        b->start = ngx_palloc(pt->r->pool, size);
        if (b->start == NULL) {
            return NGX_ERROR;
        }
        b->end = b->start + size;
    }

    b->pos = b->start;
    b->last = ngx_cpymem(b->start, prefix, plen);
    b->last = ngx_cpymem(b->last, p, n);
    b->last = ngx_cpymem(b->last, suffix, slen);
    b->temporary = 1;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_maestro_module;
    b->last_buf = last;

    out = cl;

    rc = ngx_http_output_filter(pt->r, out);

    ngx_chain_update_chains(pt->r->pool, &pt->free, &pt->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_maestro_module);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_maestro_wait_writable(pt->r, 0);
}


static ngx_int_t
ngx_http_maestro_pt_error(ngx_http_maestro_pt_t *pt, ngx_uint_t status,
    const char *type, const char *code, const char *msg)
{
    ngx_http_request_t  *r = pt->r;

    ngx_log_error((status >= 500 ? NGX_LOG_ERR : NGX_LOG_INFO),
                  pt->log, 0, "maestro: %s: %ui %s: %s",
                  pt->kind, status, code, msg);

    if (pt->job != NULL) {
        ngx_cpystrn((u_char *) pt->last_err, (u_char *) msg,
                    sizeof(pt->last_err));
        pt->job_rc = MST_EUPSTREAM;
        return NGX_ERROR;
    }

    return ngx_http_maestro_send_json(r, status,
        json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg,
                  "type", type, "param", "code", code));
}


/* a whole answer (not streamed): status, JSON body as it came */
static ngx_int_t
ngx_http_maestro_pt_send_body(ngx_http_maestro_pt_t *pt, ngx_uint_t status)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r = pt->r;

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_maestro_pt_json_type;
    r->headers_out.content_type_len = ngx_http_maestro_pt_json_type.len;
    r->headers_out.content_length_n = pt->body_in.len;

    if (ngx_http_maestro_pt_provider_header(pt) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_maestro_pt_send(pt, NULL, pt->body_in.data,
                                    pt->body_in.len, NULL, 1);
}


/*
 * The integer after the last "key": in p (already checked to be JSON),
 * or -1. The last: a usage object comes after the content, whose text
 * could hold the same words.
 */
static long
ngx_http_maestro_pt_number(const u_char *p, size_t n, const char *key)
{
    long           v;
    size_t         klen;
    const u_char  *q, *last, *end;

    klen = ngx_strlen(key);
    end = p + n;
    last = NULL;

    for (q = p; (q = ngx_strlcasestrn((u_char *) q, (u_char *) end,
                                      (u_char *) key, klen - 1))
                != NULL;
         q += klen)
    {
        last = q;
    }

    if (last == NULL) {
        return -1;
    }

    q = last + klen;

    while (q < end && (*q == ' ' || *q == ':' || *q == '\t'
                       || *q == '\n' || *q == '\r'))
    {
        q++;
    }

    v = 0;

    if (q == end || *q < '0' || *q > '9') {
        return -1;
    }

    while (q < end && *q >= '0' && *q <= '9' && v < 1000000000L) {
        v = v * 10 + (*q++ - '0');
    }

    return v;
}


/* usage of a response or chunk (JSON text), when it has one */
static ngx_uint_t
ngx_http_maestro_pt_usage(ngx_http_maestro_pt_t *pt, const u_char *p,
    size_t n)
{
    long  pr, co;

    if (ngx_strlcasestrn((u_char *) p, (u_char *) p + n,
                         (u_char *) "\"usage\"", sizeof("\"usage\"") - 2)
        == NULL)
    {
        return 0;
    }

    pr = ngx_http_maestro_pt_number(p, n, "\"prompt_tokens\"");
    co = ngx_http_maestro_pt_number(p, n, "\"completion_tokens\"");

    if (pr < 0 && co < 0) {
        return 0;
    }

    pt->prompt_tokens = ngx_max(pr, 0);
    pt->completion_tokens = ngx_max(co, 0);

    return 1;
}


/* whether "key" is followed by an empty array: "choices": [] */
static ngx_uint_t
ngx_http_maestro_pt_empty(const u_char *p, size_t n, const char *key)
{
    const u_char  *q, *end;

    end = p + n;
    q = ngx_strlcasestrn((u_char *) p, (u_char *) end, (u_char *) key,
                         ngx_strlen(key) - 1);
    if (q == NULL) {
        return 1;
    }

    for (q += ngx_strlen(key); q < end; q++) {
        if (*q == '[') {
            for (q++; q < end && (*q == ' ' || *q == '\n' || *q == '\r'
                                  || *q == '\t'); q++) { /* void */ }
            return q < end && *q == ']';
        }

        if (*q != ' ' && *q != ':' && *q != '\n' && *q != '\r'
            && *q != '\t')
        {
            return 0;
        }
    }

    return 0;
}


/* the client's SSE headers, before the first event that is forwarded */
static ngx_int_t
ngx_http_maestro_pt_start(ngx_http_maestro_pt_t *pt)
{
    ngx_int_t  rc;

    if (ngx_http_maestro_sse_headers(pt->r) != NGX_OK
        || ngx_http_maestro_pt_provider_header(pt) != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(pt->r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    pt->started = 1;

    return NGX_OK;
}


/*
 * One "data:" payload of the upstream stream, queued as it came (the
 * queue goes out at the end of the write callback) once it is a JSON
 * object. NGX_DECLINED: a malformed one (before the first, the next
 * provider may still answer).
 */
static ngx_int_t
ngx_http_maestro_pt_event(ngx_http_maestro_pt_t *pt, u_char *p, size_t n)
{
    ngx_int_t  rc;

    if (pt->done_marker) {
        return NGX_OK;          /* nothing comes after the end */
    }

    if (n == 6 && ngx_strncmp(p, "[DONE]", 6) == 0) {
        pt->done_marker = 1;

    } else {
        if (!mst_json_object_ok((char *) p, n)) {
            pt->malformed = 1;
            return NGX_DECLINED;
        }

        /* the usage chunk we forced: only for a client that asked */
        if (ngx_http_maestro_pt_usage(pt, p, n) && !pt->client_usage
            && ngx_http_maestro_pt_empty(p, n, "\"choices\""))
        {
            return NGX_OK;
        }
    }

    if (pt->job != NULL) {
        return ngx_http_maestro_pt_job_event(pt, p, n);
    }

    if (!pt->started) {
        if (ngx_http_maestro_pt_start(pt) != NGX_OK) {
            return NGX_ERROR;
        }
        pt->first_ms = mst_mono_ms();
    }

    pt->streamed += n;

    rc = ngx_http_maestro_pt_append(&pt->pending, (u_char *) "data: ", 6,
                                    NGX_HTTP_MAESTRO_PT_MAX_LINE);
    if (rc == NGX_OK) {
        rc = ngx_http_maestro_pt_append(&pt->pending, p, n,
                                        NGX_HTTP_MAESTRO_PT_MAX_LINE);
    }
    if (rc == NGX_OK) {
        rc = ngx_http_maestro_pt_append(&pt->pending, (u_char *) "\n\n", 2,
                                        NGX_HTTP_MAESTRO_PT_MAX_LINE);
    }

    return rc == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* what the last write callback queued, to the client in one buffer */
static ngx_int_t
ngx_http_maestro_pt_flush(ngx_http_maestro_pt_t *pt)
{
    ngx_int_t  rc;

    if (pt->pending.len == 0) {
        return NGX_OK;
    }

    /* after [DONE] the stream is complete: the end goes in the same write */
    rc = ngx_http_maestro_pt_send(pt, NULL, pt->pending.data,
                                  pt->pending.len, NULL, pt->done_marker);
    pt->pending.len = 0;
    pt->last_sent = pt->done_marker;

    return rc;
}


/* complete lines of the upstream SSE stream */
static ngx_int_t
ngx_http_maestro_pt_lines(ngx_http_maestro_pt_t *pt)
{
    u_char     *p, *end, *nl, *s, *e;
    ngx_int_t   rc;

    p = pt->line.data;
    end = p + pt->line.len;

    while (p < end && (nl = ngx_strlchr(p, end, '\n')) != NULL) {
        s = p;
        e = nl;
        if (e > s && e[-1] == '\r') {
            e--;
        }

        if (e - s >= 5 && ngx_strncmp(s, "data:", 5) == 0) {
            s += 5;
            if (s < e && *s == ' ') {
                s++;
            }

            rc = ngx_http_maestro_pt_event(pt, s, e - s);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        /* comments, event: and id: lines, blank lines: not forwarded */

        p = nl + 1;
    }

    pt->line.len = end - p;
    ngx_memmove(pt->line.data, p, pt->line.len);

    return NGX_OK;
}


/* the transfer's callbacks (libcurl's or ours), on the event loop */

static size_t
ngx_http_maestro_pt_header_cb(char *buf, size_t size, size_t n, void *arg)
{
    ngx_http_maestro_pt_t  *pt = arg;
    size_t                  len;
    ngx_int_t               secs;

    len = size * n;

    if (len > sizeof("retry-after:") - 1
        && ngx_strncasecmp((u_char *) buf, (u_char *) "retry-after:",
                           sizeof("retry-after:") - 1) == 0)
    {
        buf += sizeof("retry-after:") - 1;
        n = len - (sizeof("retry-after:") - 1);

        while (n > 0 && (*buf == ' ' || *buf == '\t')) {
            buf++;
            n--;
        }
        while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'
                         || buf[n - 1] == ' '))
        {
            n--;
        }

        secs = ngx_atoi((u_char *) buf, n);
        if (secs != NGX_ERROR) {
            pt->retry_after = (ngx_msec_t) ngx_min(secs * 1000,
                                               NGX_HTTP_MAESTRO_PT_MAX_WAIT);
        }

    } else if (len > sizeof("content-type:") - 1
               && ngx_strncasecmp((u_char *) buf, (u_char *) "content-type:",
                                  sizeof("content-type:") - 1) == 0)
    {
        pt->sse = ngx_strlcasestrn((u_char *) buf, (u_char *) buf + len,
                                   (u_char *) "text/event-stream",
                                   sizeof("text/event-stream") - 2)
                  != NULL;
    }

    return len;
}


static size_t
ngx_http_maestro_pt_write_cb(char *buf, size_t size, size_t n, void *arg)
{
    ngx_http_maestro_pt_t  *pt = arg;
    size_t                  len;
    ngx_int_t               rc;
    ngx_connection_t       *c;

    len = size * n;

    if (!pt->decided) {
        pt->decided = 1;
        ngx_http_maestro_pt_status(pt);

        /* a stream for the client: its first valid event starts it */
        pt->forward = pt->status >= 200 && pt->status < 300
                      && pt->stream && pt->sse;
    }

    if (!pt->forward) {
        rc = ngx_http_maestro_pt_append(&pt->body_in, (u_char *) buf, len,
                                        NGX_HTTP_MAESTRO_PT_MAX_BODY);
        return rc == NGX_OK ? len : 0;
    }

    rc = ngx_http_maestro_pt_append(&pt->line, (u_char *) buf, len,
                                    NGX_HTTP_MAESTRO_PT_MAX_LINE);
    if (rc == NGX_OK) {
        rc = ngx_http_maestro_pt_lines(pt);
    }
    if (rc == NGX_OK) {
        rc = ngx_http_maestro_pt_flush(pt);
    }

    if (rc != NGX_OK) {
        /* a malformed event or line is the provider's; else ours */
        if (rc == NGX_ERROR) {
            pt->failed_write = 1;
        } else {
            pt->malformed = 1;
        }
        return 0;
    }

    /* a slow client: stop reading the provider until it caught up */

    if (pt->job != NULL) {
        return len;
    }

    c = pt->r->connection;

    if (c->buffered && pt->busy != NULL) {
        size_t       queued = 0;
        ngx_chain_t *cl;

        for (cl = pt->busy; cl; cl = cl->next) {
            queued += ngx_buf_size(cl->buf);
        }

        if (queued > NGX_HTTP_MAESTRO_PT_PAUSE_AT) {
            /* what came is consumed; nothing more until resumed */
            pt->paused = 1;
            ngx_http_maestro_pt_pause(pt, 1);
        }
    }

    return len;
}


/* the client's connection can take more: resume the provider */
static void
ngx_http_maestro_pt_writable(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_chain_t            *out;
    ngx_http_maestro_pt_t  *pt;

    pt = ngx_http_get_module_ctx(r, ngx_http_maestro_module);

    if (pt == NULL || pt->finished) {
        (void) ngx_http_output_filter(r, NULL);
        return;
    }

    if (r->connection->write->timedout) {
        /* send_timeout: a client that stopped reading */
        r->connection->timedout = 1;
        ngx_log_error(NGX_LOG_INFO, pt->log, NGX_ETIMEDOUT,
                      "maestro: %s: client timed out", pt->kind);
        rc = NGX_ERROR;

    } else {
        rc = ngx_http_output_filter(r, NULL);

        out = NULL;
        ngx_chain_update_chains(r->pool, &pt->free, &pt->busy, &out,
                                (ngx_buf_tag_t) &ngx_http_maestro_module);

        if (rc != NGX_ERROR) {
            rc = ngx_http_maestro_wait_writable(r, 1);
        }
    }

    if (rc == NGX_ERROR) {
        if (ngx_http_maestro_pt_active(pt)) {
            /* the client's failure, not the provider's */
            ngx_http_maestro_pt_stop(pt);
            mst_gateway_done(pt->gw, pt->member, -1, 0);
        }
        ngx_http_maestro_pt_finish(pt, NGX_ERROR);
        return;
    }

    if (pt->paused && !r->connection->buffered) {
        pt->paused = 0;
        ngx_http_maestro_pt_pause(pt, 0);
    }
}


static void
ngx_http_maestro_pt_log_call(ngx_http_maestro_pt_t *pt, const char *what)
{
    ngx_log_error(NGX_LOG_INFO, pt->log, 0,
                  "maestro: %s \"%s\" via %s: %s, %l+%l tokens, %L ms",
                  pt->kind, pt->model,
                  mst_gateway_provider(pt->gw, pt->member)->name, what,
                  pt->prompt_tokens, pt->completion_tokens,
                  (long long) (mst_mono_ms() - pt->t0));
}


/*
 * A call that worked: its tokens (the provider's usage, else estimated
 * from the bytes) to the user's and everyone's totals, and the log.
 */
static void
ngx_http_maestro_pt_account(ngx_http_maestro_pt_t *pt, size_t answer)
{
    json_t                        *user;
    const char                    *model;
    const mst_llm_provider_t      *p;
    ngx_http_maestro_main_conf_t  *mmcf;
    double                         cost;

    p = mst_gateway_provider(pt->gw, pt->member);
    model = p->model ? p->model : pt->model;

    if (pt->prompt_tokens == 0 && pt->completion_tokens == 0) {
        pt->prompt_tokens = mst_llm_estimate_tokens(NULL,
                                                    pt->upstream_body.len);
        pt->completion_tokens = mst_llm_estimate_tokens(NULL, answer);
    }

    user = json_object_get(pt->body, "user");
    if (!json_is_string(user) || json_string_length(user) == 0
        || json_string_length(user) > 128)
    {
        user = NULL;
    }

    ngx_http_maestro_usage_record(json_string_value(user), model,
                                  pt->prompt_tokens, pt->completion_tokens);

    mmcf = ngx_http_get_module_main_conf(pt->r, ngx_http_maestro_module);
    cost = mst_usage_price(mmcf->env.prices, mmcf->env.nprices, model,
                           pt->prompt_tokens, pt->completion_tokens);

    ngx_log_error(NGX_LOG_INFO, pt->log, 0,
                  "maestro: %s \"%s\" via %s (%s): %l+%l tokens, "
                  "%s%.6f USD, %L ms",
                  pt->kind, pt->model, p->name, model, pt->prompt_tokens,
                  pt->completion_tokens, cost < 0 ? "unpriced " : "",
                  cost < 0 ? 0.0 : cost,
                  (long long) (mst_mono_ms() - pt->t0));
}


/* the transfer ended */
void
ngx_http_maestro_pt_done(void *data, int result)
{
    ngx_http_maestro_pt_t  *pt = data;
    json_t                 *v;
    ngx_int_t               rc;
    char                    msg[384];

    if (pt->paused) {
        pt->paused = 0;
    }

    if (pt->started) {

        /* the client has part of a stream: no switching any more */

        if ((result == CURLE_OK && pt->done_marker) || pt->last_sent) {
            mst_gateway_done(pt->gw, pt->member, 1,
                             pt->first_ms - pt->t0);

            if (pt->job != NULL) {
                ngx_http_maestro_pt_finish(pt, NGX_OK);
                return;
            }

            ngx_http_maestro_pt_account(pt, pt->streamed);
            rc = pt->last_sent ? NGX_OK
                               : ngx_http_maestro_pt_send(pt, NULL, NULL, 0,
                                                          NULL, 1);
            ngx_http_maestro_pt_finish(pt, rc);
            return;
        }

        if (!pt->failed_write) {
            /* the valid events before what failed */
            (void) ngx_http_maestro_pt_flush(pt);
        }

        if (pt->failed_write && !pt->malformed) {
            /* the client went away: not the provider's failure */
            mst_gateway_done(pt->gw, pt->member, -1, 0);
            ngx_http_maestro_pt_finish(pt, NGX_ERROR);
            return;
        }

        mst_gateway_done(pt->gw, pt->member, 0, 0);

        ngx_snprintf((u_char *) msg, sizeof(msg) - 1,
                     "provider \"%s\" broke the stream: %s%Z",
                     mst_gateway_provider(pt->gw, pt->member)->name,
                     pt->malformed ? "a malformed event"
                     : result == CURLE_OK ? "it ended without [DONE]"
                                          : curl_easy_strerror(result));

        ngx_log_error(NGX_LOG_ERR, pt->log, 0,
                      "maestro: %s: %s", pt->kind, msg);

        if (pt->job != NULL) {
            ngx_cpystrn((u_char *) pt->last_err, (u_char *) msg,
                        sizeof(pt->last_err));
            pt->job_rc = MST_EUPSTREAM;
            ngx_http_maestro_pt_finish(pt, NGX_ERROR);
            return;
        }

        v = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg,
                      "type", "server_error", "param", "code",
                      "upstream_stream_broken");
        {
            char  *text = v ? json_dumps(v, JSON_COMPACT) : NULL;

            json_decref(v);
            rc = NGX_ERROR;

            if (text != NULL) {
                rc = ngx_http_maestro_pt_send(pt, "data: ", (u_char *) text,
                                              ngx_strlen(text),
                                              "\n\ndata: [DONE]\n\n", 1);
                free(text);
            }
        }

        ngx_http_maestro_pt_finish(pt, rc);
        return;
    }

    /* nothing reached the client yet */

    if (result == CURLE_OK && !pt->decided) {
        ngx_http_maestro_pt_status(pt);
    }

    if ((result == CURLE_OK || pt->malformed)
        && pt->status >= 200 && pt->status < 300)
    {

        if (!pt->stream
            && mst_json_object_ok((char *) pt->body_in.data, pt->body_in.len)
            && (ngx_strlcasestrn(pt->body_in.data,
                                 pt->body_in.data + pt->body_in.len,
                                 (u_char *) "\"choices\"", 8)
                != NULL
                || ngx_strlcasestrn(pt->body_in.data,
                                    pt->body_in.data + pt->body_in.len,
                                    (u_char *) "\"data\"", 5)
                   != NULL))
        {
            (void) ngx_http_maestro_pt_usage(pt, pt->body_in.data,
                                             pt->body_in.len);

            mst_gateway_done(pt->gw, pt->member, 1, mst_mono_ms() - pt->t0);

            if (pt->job != NULL) {
                pt->answer = json_loadb((char *) pt->body_in.data,
                                        pt->body_in.len, 0, NULL);
                ngx_http_maestro_pt_finish(pt, NGX_OK);
                return;
            }

            ngx_http_maestro_pt_account(pt, pt->body_in.len);
            ngx_http_maestro_pt_finish(pt,
                ngx_http_maestro_pt_send_body(pt, NGX_HTTP_OK));
            return;
        }

        pt->fail = MST_FAIL_MALFORMED;
        ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                     "%s: a malformed answer (%s)%Z",
                     mst_gateway_provider(pt->gw, pt->member)->name,
                     pt->stream ? "not an event stream" : "not a "
                     "chat.completion or list");

    } else if (result == CURLE_OK
               && (pt->status == 400 || pt->status == 413
                   || pt->status == 422))
    {
        /* the client's request: the provider's answer is the answer */
        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_pt_log_call(pt, "refused the request");

        if (pt->job != NULL) {
            ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                         "%s refused the request: HTTP %l: %*s%Z",
                         mst_gateway_provider(pt->gw, pt->member)->name,
                         pt->status, ngx_min(pt->body_in.len, 160),
                         pt->body_in.data ? pt->body_in.data
                                          : (u_char *) "");
            pt->job_rc = MST_EINVAL;
            ngx_http_maestro_pt_finish(pt, NGX_ERROR);
            return;
        }

        ngx_http_maestro_pt_finish(pt,
            ngx_http_maestro_pt_send_body(pt, pt->status));
        return;

    } else if (result == CURLE_OK) {
        /* 429; 5xx, and 401, 403, 404...: the provider's, as a 5xx */
        pt->fail = pt->status == 429 ? MST_FAIL_429 : MST_FAIL_5XX;
        ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                     "%s: HTTP %l%Z",
                     mst_gateway_provider(pt->gw, pt->member)->name,
                     pt->status);

    } else if (result == CURLE_WRITE_ERROR && pt->failed_write
               && !pt->malformed)
    {
        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_pt_finish(pt, NGX_ERROR);
        return;

    } else {
        pt->fail = result == CURLE_OPERATION_TIMEDOUT ? MST_FAIL_TIMEOUT
                                                      : MST_FAIL_CONNECT;
        ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                     "%s: %s%Z",
                     mst_gateway_provider(pt->gw, pt->member)->name,
                     curl_easy_strerror(result));
    }

    ngx_log_error(NGX_LOG_WARN, pt->log, 0,
                  "maestro: %s attempt %ui failed: %s", pt->kind,
                  pt->attempt + 1, pt->last_err);

    /* the same provider again, after a backoff with full jitter */

    if (pt->attempt
        < (ngx_uint_t) mst_gateway_provider(pt->gw, pt->member)->max_retries)
    {
        ngx_msec_t  base, wait;

        base = (ngx_msec_t) mst_gateway_provider(pt->gw,
                                                 pt->member)->backoff_ms;
        if (base == 0) {
            base = 200;
        }

        wait = (ngx_msec_t) (ngx_random()
                             % ((base << ngx_min(pt->attempt, 10)) + 1));
        wait = ngx_max(wait, pt->retry_after);
        wait = ngx_min(wait, NGX_HTTP_MAESTRO_PT_MAX_WAIT);

        pt->attempt++;
        ngx_add_timer(&pt->retry_ev, wait);
        return;
    }

    mst_gateway_done(pt->gw, pt->member, 0, 0);
    ngx_http_maestro_pt_next(pt);
}


void
ngx_http_maestro_pt_retry(ngx_event_t *ev)
{
    ngx_http_maestro_pt_t  *pt = ev->data;

    if (ngx_http_maestro_pt_attempt(pt) != NGX_OK) {
        mst_gateway_done(pt->gw, pt->member, 0, 0);
        ngx_http_maestro_pt_next(pt);
    }
}


/*
 * A member's request headers (with its key), made once per worker and
 * kept: they never change, and a request should not rebuild them.
 */
static struct curl_slist *
ngx_http_maestro_pt_headers(size_t member, ngx_uint_t stream,
    const mst_llm_provider_t *p)
{
    char                        auth[1024];
    struct curl_slist          *l, *n;
    static struct curl_slist   *made[MST_GATEWAY_MAX][2];

    if (made[member][stream] != NULL) {
        return made[member][stream];
    }

    l = curl_slist_append(NULL, "Content-Type: application/json");

    if (l != NULL && stream) {
        n = curl_slist_append(l, "Accept: text/event-stream");
        if (n == NULL) {
            curl_slist_free_all(l);
        }
        l = n;
    }

    if (l != NULL && p->api_key != NULL && p->api_key[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->api_key);
        n = curl_slist_append(l, auth);
        ngx_explicit_memzero(auth, sizeof(auth));
        if (n == NULL) {
            curl_slist_free_all(l);
        }
        l = n;
    }

    made[member][stream] = l;

    return l;
}


/*
 * The same for our own client: "Name: value\r\n" lines, made once per
 * worker and kept.
 */
static ngx_str_t *
ngx_http_maestro_pt_fields(size_t member, ngx_uint_t stream,
    const mst_llm_provider_t *p)
{
    u_char            *d, *e;
    size_t             len;
    static ngx_str_t   made[MST_GATEWAY_MAX][2];

    if (made[member][stream].data != NULL) {
        return &made[member][stream];
    }

    len = sizeof("Content-Type: application/json\r\n"
                 "Accept: text/event-stream\r\n"
                 "Authorization: Bearer \r\n")
          + (p->api_key ? ngx_strlen(p->api_key) : 0);

    d = ngx_alloc(len, ngx_cycle->log);
    if (d == NULL) {
        return NULL;
    }

    e = ngx_cpymem(d, "Content-Type: application/json\r\n",
                   sizeof("Content-Type: application/json\r\n") - 1);

    if (stream) {
        e = ngx_cpymem(e, "Accept: text/event-stream\r\n",
                       sizeof("Accept: text/event-stream\r\n") - 1);
    }

    if (p->api_key != NULL && p->api_key[0] != '\0') {
        e = ngx_sprintf(e, "Authorization: Bearer %s\r\n", p->api_key);
    }

    made[member][stream].data = d;
    made[member][stream].len = e - d;

    return &made[member][stream];
}


/* the provider's answer's status, from whichever client has it */
static void
ngx_http_maestro_pt_status(ngx_http_maestro_pt_t *pt)
{
    if (pt->native) {
        pt->status = pt->h1.status;
        return;
    }

    (void) curl_easy_getinfo(pt->xfer.easy, CURLINFO_RESPONSE_CODE,
                             &pt->status);
}


static void
ngx_http_maestro_pt_pause(ngx_http_maestro_pt_t *pt, ngx_uint_t on)
{
    if (pt->native) {
        ngx_http_maestro_h1_pause(&pt->h1, on);
        return;
    }

    (void) curl_easy_pause(pt->xfer.easy, on ? CURLPAUSE_RECV
                                             : CURLPAUSE_CONT);
}


ngx_uint_t
ngx_http_maestro_pt_active(ngx_http_maestro_pt_t *pt)
{
    return pt->native ? pt->h1.active : pt->xfer.active;
}


void
ngx_http_maestro_pt_stop(ngx_http_maestro_pt_t *pt)
{
    if (pt->native) {
        ngx_http_maestro_h1_stop(&pt->h1);
        return;
    }

    ngx_http_maestro_curl_stop(&pt->xfer);
}


/* both clients call back the same: the engine does not tell them apart */
void
ngx_http_maestro_pt_init(ngx_http_maestro_pt_t *pt)
{
    pt->xfer.done = ngx_http_maestro_pt_done;
    pt->xfer.data = pt;

    pt->h1.header = ngx_http_maestro_pt_header_cb;
    pt->h1.write = ngx_http_maestro_pt_write_cb;
    pt->h1.done = ngx_http_maestro_pt_done;
    pt->h1.data = pt;
    pt->h1.log = pt->log;
}


/* the transfer itself, with libcurl (client=libcurl) */
static ngx_int_t
ngx_http_maestro_pt_curl(ngx_http_maestro_pt_t *pt,
    const mst_llm_provider_t *p, long timeout)
{
    CURL  *easy;
    char   url[1024];

    if (pt->xfer.easy == NULL) {
        pt->xfer.easy = ngx_http_maestro_curl_easy();
        if (pt->xfer.easy == NULL) {
            return NGX_ERROR;
        }
    }

    easy = pt->xfer.easy;
    curl_easy_reset(easy);

    pt->headers = ngx_http_maestro_pt_headers(pt->member, pt->stream, p);
    if (pt->headers == NULL) {
        return NGX_ERROR;
    }

    snprintf(url, sizeof(url), "%s/%s", p->base_url, pt->kind);

    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, pt->headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, pt->upstream_body.data);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE,
                     (long) pt->upstream_body.len);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_maestro_pt_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, pt);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION,
                     ngx_http_maestro_pt_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, pt);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     p->connect_timeout_ms > 0 ? p->connect_timeout_ms
                                               : 10000L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);

    if (p->ca_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, p->ca_file);
    }

    /* no Expect: 100-continue round trip for big bodies */
    curl_easy_setopt(easy, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);

    return ngx_http_maestro_curl_start(&pt->xfer);
}


/* one request to pt->member */
static ngx_int_t
ngx_http_maestro_pt_attempt(ngx_http_maestro_pt_t *pt)
{
    long                               timeout;
    json_t                            *body, *opts;
    ngx_str_t                         *fields;
    const mst_llm_provider_t          *p;
    ngx_http_maestro_main_conf_t      *mmcf;
    ngx_http_maestro_provider_conf_t  *pc;

    p = mst_gateway_provider(pt->gw, pt->member);
    body = pt->body;

    /* the client's own bytes when nothing in them changes */

    if (pt->raw.len > 0 && !pt->stream && p->model != NULL
        && ngx_strcmp(p->model, pt->model) == 0)
    {
        pt->upstream_body = pt->raw;

    } else {
        /* a plugin's own model goes as it is; else the provider's */
        if (p->model != NULL && !pt->req_model) {
            json_object_set_new(body, "model", json_string(p->model));
        }

        if (pt->stream) {
            opts = json_object_get(body, "stream_options");
            if (!json_is_object(opts)) {
                opts = json_object();
                json_object_set_new(body, "stream_options", opts);
            }
            json_object_set_new(opts, "include_usage", json_true());
        }

        free(pt->payload);
        pt->payload = mst_json_dump(body, &pt->upstream_body.len);

        if (pt->payload == NULL) {
            return NGX_ERROR;
        }

        pt->upstream_body.data = (u_char *) pt->payload;
    }

    timeout = p->timeout_ms > 0 ? p->timeout_ms : 60000L;

    if (pt->job != NULL && pt->job->deadline) {
        /* never past the step's deadline */
        timeout = ngx_min(timeout, (long) ngx_max(pt->job->deadline
                                                  - mst_mono_ms(), 1));
    }

    pt->status = 0;
    pt->retry_after = 0;
    pt->decided = 0;
    pt->forward = 0;
    pt->sse = 0;
    pt->malformed = 0;
    pt->failed_write = 0;
    pt->done_marker = 0;
    pt->prompt_tokens = 0;
    pt->completion_tokens = 0;
    pt->body_in.len = 0;
    pt->line.len = 0;
    pt->pending.len = 0;
    pt->t0 = mst_mono_ms();
    pt->first_ms = 0;

    /* members are the providers, in the order they were declared */
    mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_maestro_module);
    pc = mmcf->providers.elts;

    pt->native = pc[pt->member].peer != NULL;

    if (!pt->native) {
        return ngx_http_maestro_pt_curl(pt, p, timeout);
    }

    fields = ngx_http_maestro_pt_fields(pt->member, pt->stream, p);
    if (fields == NULL) {
        return NGX_ERROR;
    }

    pt->h1.peer = pc[pt->member].peer;
    pt->h1.connect_timeout = p->connect_timeout_ms > 0
                             ? (ngx_msec_t) p->connect_timeout_ms : 10000;
    pt->h1.timeout = (ngx_msec_t) timeout;

    return ngx_http_maestro_h1_start(&pt->h1, pt->kind, fields,
                                     &pt->upstream_body);
}


/* the next provider in the chain, or the end */
void
ngx_http_maestro_pt_next(ngx_http_maestro_pt_t *pt)
{
    char         msg[384];
    const char  *model;

    while (pt->next < pt->norder) {
        pt->member = pt->order[pt->next++];

        /* another model: only on the failures its chain names */
        model = mst_gateway_provider(pt->gw, pt->member)->model;

        if (pt->job == NULL && pt->tried > 0 && model != NULL
            && ngx_strcmp(model, pt->model) != 0
            && !(pt->fail & mst_gateway_fallback_on(pt->gw, pt->model)))
        {
            break;
        }

        if (pt->job != NULL && pt->job->deadline
            && mst_mono_ms() >= pt->job->deadline)
        {
            pt->job_rc = MST_ETIMEDOUT;
            if (pt->last_err[0] == '\0') {
                ngx_cpystrn((u_char *) pt->last_err,
                            (u_char *) "the step's deadline passed",
                            sizeof(pt->last_err));
            }
            ngx_http_maestro_pt_finish(pt, NGX_ERROR);
            return;
        }

        if (!mst_gateway_take(pt->gw, pt->member)) {
            continue;
        }

        pt->attempt = 0;
        pt->tried++;

        if (ngx_http_maestro_pt_attempt(pt) == NGX_OK) {
            return;
        }

        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_pt_finish(pt, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pt->tried == 0) {
        ngx_http_maestro_pt_finish(pt, ngx_http_maestro_pt_error(pt,
            NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
            "upstream_unavailable",
            "every provider of this model has its circuit breaker open"));
        return;
    }

    ngx_snprintf((u_char *) msg, sizeof(msg) - 1,
                 "all providers failed; last: %s%Z", pt->last_err);

    ngx_http_maestro_pt_finish(pt, ngx_http_maestro_pt_error(pt,
        NGX_HTTP_BAD_GATEWAY, "server_error", "upstream_error", msg));
}


void
ngx_http_maestro_pt_finish(ngx_http_maestro_pt_t *pt, ngx_int_t rc)
{
    if (pt->finished) {
        return;
    }

    pt->finished = 1;

    if (pt->job != NULL) {
        ngx_http_maestro_pt_job_finish(pt, rc);
        return;
    }

    ngx_http_finalize_request(pt->r, rc);
}


void
ngx_http_maestro_pt_cleanup(void *data)
{
    ngx_http_maestro_pt_t  *pt = data;

    if (pt->retry_ev.timer_set) {
        ngx_del_timer(&pt->retry_ev);
    }

    if (ngx_http_maestro_pt_active(pt)) {
        /* the client went away mid-call: not the provider's failure */
        ngx_http_maestro_pt_stop(pt);
        mst_gateway_done(pt->gw, pt->member, -1, 0);
    }

    ngx_http_maestro_curl_release(pt->xfer.easy);
    ngx_http_maestro_h1_free(&pt->h1);

    free(pt->payload);
    free(pt->body_in.data);
    free(pt->line.data);
    free(pt->pending.data);
    json_decref(pt->body);
}


/* one text through the guard, replaced by what may go on if that differs */
static ngx_int_t
ngx_http_maestro_pt_guard_text(const mst_guard_t *guard, json_t *holder,
    const char *key, size_t index, char *why, size_t whylen)
{
    char    *checked;
    json_t  *t;
    size_t   len;

    t = key ? json_object_get(holder, key) : json_array_get(holder, index);

    if (!json_is_string(t)) {
        return NGX_OK;
    }

    if (mst_guard_check(guard, json_string_value(t), json_string_length(t),
                        &checked, why, whylen)
        != MST_OK)
    {
        return NGX_DECLINED;
    }

    len = ngx_strlen(checked);

    if (len == json_string_length(t)
        && ngx_memcmp(checked, json_string_value(t), len) == 0)
    {
        free(checked);
        return NGX_OK;
    }

    if (key) {
        json_object_set_new(holder, key, json_string(checked));
    } else {
        json_array_set_new(holder, index, json_string(checked));
    }

    free(checked);

    return NGX_AGAIN;           /* changed */
}


/*
 * The prompt guard on every text the request carries: messages[].content
 * (a string or text parts) and an embeddings request's input. NGX_OK,
 * NGX_AGAIN (a text was normalised or redacted), NGX_DECLINED (blocked).
 */
static ngx_int_t
ngx_http_maestro_pt_guard(const mst_guard_t *guard, json_t *body, char *why,
    size_t whylen)
{
    size_t      i, j;
    json_t     *msg, *content, *part, *input;
    ngx_int_t   rc;
    ngx_uint_t  changed;

    changed = 0;

    json_array_foreach(json_object_get(body, "messages"), i, msg) {
        content = json_object_get(msg, "content");

        if (json_is_string(content)) {
            rc = ngx_http_maestro_pt_guard_text(guard, msg, "content", 0, why,
                                                whylen);
            if (rc == NGX_DECLINED) {
                return NGX_DECLINED;
            }
            changed |= (rc == NGX_AGAIN);
            continue;
        }

        json_array_foreach(content, j, part) {
            rc = ngx_http_maestro_pt_guard_text(guard, part, "text", 0, why,
                                                whylen);
            if (rc == NGX_DECLINED) {
                return NGX_DECLINED;
            }
            changed |= (rc == NGX_AGAIN);
        }
    }

    input = json_object_get(body, "input");

    if (json_is_string(input)) {
        rc = ngx_http_maestro_pt_guard_text(guard, body, "input", 0, why,
                                            whylen);
        return (rc == NGX_AGAIN || changed) && rc != NGX_DECLINED
               ? NGX_AGAIN : rc;
    }

    json_array_foreach(input, i, part) {
        rc = ngx_http_maestro_pt_guard_text(guard, input, NULL, i, why,
                                            whylen);
        if (rc == NGX_DECLINED) {
            return NGX_DECLINED;
        }
        changed |= (rc == NGX_AGAIN);
    }

    return changed ? NGX_AGAIN : NGX_OK;
}


/*
 * Starts the pass-through of body (an object with a string "model") to
 * https://provider/<kind>. NGX_DECLINED: no provider serves that model;
 * NGX_DONE: going on (the request is finalized later); else a status.
 */
ngx_int_t
ngx_http_maestro_passthru(ngx_http_request_t *r, json_t *body,
    ngx_str_t *raw, const char *kind, const mst_guard_t *guard)
{
    char                            why[256];
    size_t                          norder;
    ngx_int_t                       rc;
    size_t                          order[MST_GATEWAY_MAX];
    const char                     *model;
    ngx_pool_cleanup_t             *cln;
    ngx_http_maestro_pt_t          *pt;
    ngx_http_maestro_main_conf_t   *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);
    model = json_string_value(json_object_get(body, "model"));

    if (mmcf->env.gw == NULL || model == NULL) {
        return NGX_DECLINED;
    }

    norder = mst_gateway_plan(mmcf->env.gw, model, order);
    if (norder == 0) {
        return NGX_DECLINED;
    }

    pt = ngx_pcalloc(r->pool, sizeof(ngx_http_maestro_pt_t));
    if (pt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_maestro_pt_cleanup;
    cln->data = pt;

    pt->r = r;
    pt->log = r->connection->log;
    pt->gw = mmcf->env.gw;
    pt->kind = kind;
    pt->body = json_incref(body);

    rc = guard ? ngx_http_maestro_pt_guard(guard, body, why, sizeof(why))
               : NGX_OK;

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "maestro: prompt blocked: %s", why);
        return ngx_http_maestro_pt_error(pt, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "prompt_blocked", why);
    }

    if (rc == NGX_OK && raw != NULL) {
        pt->raw = *raw;         /* may go upstream as it came */
    }

    ngx_cpystrn((u_char *) pt->model, (u_char *) model, sizeof(pt->model));
    pt->stream = json_is_true(json_object_get(body, "stream"));
    pt->client_usage = json_is_true(json_object_get(
                           json_object_get(body, "stream_options"),
                           "include_usage"));
    pt->norder = norder;
    ngx_memcpy(pt->order, order, norder * sizeof(size_t));

    ngx_http_maestro_pt_init(pt);

    pt->retry_ev.handler = ngx_http_maestro_pt_retry;
    pt->retry_ev.data = pt;
    pt->retry_ev.log = r->connection->log;

    ngx_http_set_ctx(r, pt, ngx_http_maestro_module);

    /* a client that closes ends the call; a slow one resumes it */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_maestro_pt_writable;

    ngx_http_maestro_pt_next(pt);

    return NGX_DONE;
}
