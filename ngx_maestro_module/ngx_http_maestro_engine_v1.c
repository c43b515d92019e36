/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The /v1 client's side of an engine call (ngx_http_maestro_engine.c):
 * what goes back to a client of /v1/chat/completions or /v1/embeddings
 * for a provider's model. All of it runs in the event loop.
 *
 *  - A whole answer goes back with the provider's status and body as
 *    they came, and X-Maestro-Provider naming who answered.
 *  - A stream's events are queued as the provider's write callback
 *    parses them and sent in one buffer at the end of that callback; the
 *    buffers are reused once sent, so a long stream does not grow the
 *    request's pool. After [DONE] the end goes in the same write.
 *  - A slow client pauses the provider's transfer past 64 KB not yet
 *    sent; its write event resumes it (send_timeout ends it).
 *  - A stream broken once part of it was sent ends with an OpenAI-shaped
 *    error chunk and [DONE], never a silent 200.
 *  - A call that worked is accounted: the provider's usage, else an
 *    estimate from the bytes, to the user's and everyone's totals.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_engine.h"


static ngx_str_t  ngx_http_maestro_engine_json_type =
    ngx_string("application/json");


static ngx_int_t
ngx_http_maestro_engine_provider_header(ngx_http_maestro_call_t *pt)
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


/* prefix + p + suffix to the client as one buffer */
ngx_int_t
ngx_http_maestro_engine_send(ngx_http_maestro_call_t *pt, const char *prefix,
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
        size = ngx_max(size, NGX_HTTP_MAESTRO_ENGINE_BUF);
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


ngx_int_t
ngx_http_maestro_engine_error(ngx_http_maestro_call_t *pt, ngx_uint_t status,
    const char *type, const char *code, const char *msg)
{
    ngx_log_error((status >= 500 ? NGX_LOG_ERR : NGX_LOG_INFO),
                  pt->log, 0, "maestro: %s: %ui %s: %s",
                  pt->kind, status, code, msg);

    if (pt->job != NULL) {
        ngx_cpystrn((u_char *) pt->last_err, (u_char *) msg,
                    sizeof(pt->last_err));
        pt->job_rc = MST_EUPSTREAM;
        return NGX_ERROR;
    }

    return ngx_http_maestro_send_json(pt->r, status,
        json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg,
                  "type", type, "param", "code", code));
}


/* a whole answer (not streamed): status, JSON body as it came */
ngx_int_t
ngx_http_maestro_engine_send_body(ngx_http_maestro_call_t *pt,
    ngx_uint_t status)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r = pt->r;

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_maestro_engine_json_type;
    r->headers_out.content_type_len = ngx_http_maestro_engine_json_type.len;
    r->headers_out.content_length_n = pt->body_in.len;

    if (ngx_http_maestro_engine_provider_header(pt) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_maestro_engine_send(pt, NULL, (u_char *) pt->body_in.data,
                                        pt->body_in.len, NULL, 1);
}


/* the client's SSE headers, before the first event that is forwarded */
static ngx_int_t
ngx_http_maestro_engine_start(ngx_http_maestro_call_t *pt)
{
    ngx_int_t  rc;

    if (ngx_http_maestro_sse_headers(pt->r) != NGX_OK
        || ngx_http_maestro_engine_provider_header(pt) != NGX_OK)
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


/* one event's data as it came, queued for the end of the callback */
ngx_int_t
ngx_http_maestro_engine_queue(ngx_http_maestro_call_t *pt, const char *p,
    size_t n)
{
    int  rc;

    if (!pt->started) {
        if (ngx_http_maestro_engine_start(pt) != NGX_OK) {
            return NGX_ERROR;
        }
        pt->first_ms = mst_mono_ms();
    }

    pt->streamed += n;

    rc = mst_oai_buf_add(&pt->pending, "data: ", 6, MST_OAI_BODY_MAX);
    if (rc == MST_OK) {
        rc = mst_oai_buf_add(&pt->pending, p, n, MST_OAI_BODY_MAX);
    }
    if (rc == MST_OK) {
        rc = mst_oai_buf_add(&pt->pending, "\n\n", 2, MST_OAI_BODY_MAX);
    }

    return rc == MST_OK ? NGX_OK : NGX_ERROR;
}


/* what the last write callback queued, to the client in one buffer */
ngx_int_t
ngx_http_maestro_engine_flush(ngx_http_maestro_call_t *pt)
{
    ngx_int_t  rc;

    if (pt->pending.len == 0) {
        return NGX_OK;
    }

    /* after [DONE] the stream is complete: the end goes in the same write */
    rc = ngx_http_maestro_engine_send(pt, NULL, (u_char *) pt->pending.data,
                                      pt->pending.len, NULL,
                                      pt->done_marker);
    pt->pending.len = 0;
    pt->last_sent = pt->done_marker;

    return rc;
}


/* the end of a stream that broke after part of it was sent */
ngx_int_t
ngx_http_maestro_engine_broken(ngx_http_maestro_call_t *pt, const char *msg)
{
    char       *text;
    json_t     *v;
    ngx_int_t   rc;

    v = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg,
                  "type", "server_error", "param", "code",
                  "upstream_stream_broken");
    text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);

    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_maestro_engine_send(pt, "data: ", (u_char *) text,
                                      ngx_strlen(text),
                                      "\n\ndata: [DONE]\n\n", 1);
    free(text);

    return rc;
}


/* a slow client: stop reading the provider until it caught up */
void
ngx_http_maestro_engine_slow(ngx_http_maestro_call_t *pt)
{
    size_t        queued;
    ngx_chain_t  *cl;

    if (!pt->r->connection->buffered || pt->busy == NULL) {
        return;
    }

    queued = 0;

    for (cl = pt->busy; cl; cl = cl->next) {
        queued += ngx_buf_size(cl->buf);
    }

    if (queued > NGX_HTTP_MAESTRO_ENGINE_PAUSE_AT) {
        /* what came is consumed; nothing more until resumed */
        pt->paused = 1;
        ngx_http_maestro_engine_pause(pt, 1);
    }
}


/* the client's connection can take more: resume the provider */
void
ngx_http_maestro_engine_writable(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_chain_t              *out;
    ngx_http_maestro_call_t  *pt;

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
        if (ngx_http_maestro_engine_active(pt)) {
            /* the client's failure, not the provider's */
            ngx_http_maestro_engine_stop(pt);
            mst_gateway_done(pt->gw, pt->member, -1, 0);
        }
        ngx_http_maestro_engine_finish(pt, NGX_ERROR);
        return;
    }

    if (pt->paused && !r->connection->buffered) {
        pt->paused = 0;
        ngx_http_maestro_engine_pause(pt, 0);
    }
}


/*
 * A call that worked: its tokens (the provider's usage, else estimated
 * from the bytes) to the user's and everyone's totals, and the log.
 */
void
ngx_http_maestro_engine_account(ngx_http_maestro_call_t *pt, size_t answer)
{
    long                           prompt, completion;
    const char                    *model;
    const mst_llm_provider_t      *p;
    ngx_http_maestro_main_conf_t  *mmcf;
    double                         cost;

    p = mst_gateway_provider(pt->gw, pt->member);
    model = p->model ? p->model : pt->model;

    prompt = pt->usage.prompt_tokens;
    completion = pt->usage.completion_tokens;

    if (!pt->usage.known || (prompt == 0 && completion == 0)) {
        prompt = mst_oai_estimate_tokens(pt->upstream_body.len);
        completion = mst_oai_estimate_tokens(answer);
    }

    /* the account stage of the admission path */
    mmcf = ngx_http_get_module_main_conf(pt->r, ngx_http_maestro_module);
    cost = ngx_http_maestro_admit_account(pt->admit, mmcf, model, prompt,
                                          completion);

    ngx_log_error(NGX_LOG_INFO, pt->log, 0,
                  "maestro: %s \"%s\" via %s (%s): %l+%l tokens, "
                  "%s%.6f USD, %L ms",
                  pt->kind, pt->model, p->name, model, prompt, completion,
                  cost < 0 ? "unpriced " : "", cost < 0 ? 0.0 : cost,
                  (long long) (mst_mono_ms() - pt->t0));
}
