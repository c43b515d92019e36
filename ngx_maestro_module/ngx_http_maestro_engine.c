/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The LLM gateway's engine: every provider call, on the event loop.
 * POST /v1/chat/completions and /v1/embeddings for a model a provider
 * serves, and the plugins' llm_chat calls (a "job" from
 * ngx_http_maestro_llm.c, tried on every provider in the gateway's
 * order), through our HTTP/1.1 client (ngx_http_maestro_h1.c) or
 * libcurl's multi interface (ngx_http_maestro_curl.c), so a call in
 * flight costs a socket and a few KB, never a thread. The engine moves
 * bytes and events; what they mean is core/llm/mst_oai.c (the OpenAI
 * wire) and core/llm/mst_gateway.c (order, breakers), both unit-tested.
 *
 *  - Route: mst_gateway_plan(): the providers of that model in the
 *    gateway's order (priority, weight or latency), then the rest of the
 *    chain, each with its own model. Breakers (shared memory) are asked
 *    before each provider and told the outcome.
 *  - The body goes upstream as the client sent it (tools, tool_choice,
 *    response_format, unknown fields), rewritten by mst_oai_rewrite()
 *    only where it must change ("model", and when streaming
 *    stream_options.include_usage, so usage is always known).
 *  - Failures, as mst_oai_classify() tells them: a connect error, a
 *    timeout, 429, 5xx or a malformed answer is retried on the same
 *    provider (its retries=, after mst_oai_backoff(): full jitter, or
 *    Retry-After), another status not the client's goes to the next
 *    provider at once, while nothing has reached the client. 400 / 413 /
 *    422 are the client's: passed back as they came. All providers
 *    failed: 502 (503 when every breaker is open), OpenAI-shaped.
 *  - Streams are framed by mst_oai_sse_feed() and forwarded event by
 *    event as they arrive (ngx_http_maestro_engine_v1.c); only the
 *    chunks that can carry usage are parsed. Once one has reached the
 *    client a failure cannot be taken back: the client gets an
 *    OpenAI-shaped error chunk, then the end, never a silent 200.
 *  - A slow client pauses the transfer past 64 KB not yet sent; its
 *    write event resumes it. A client that goes away ends the transfer
 *    (the pool cleanup).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_engine.h"
#include "mst_json.h"


static ngx_int_t ngx_http_maestro_engine_attempt(ngx_http_maestro_call_t *pt);
static void ngx_http_maestro_engine_status(ngx_http_maestro_call_t *pt);
static void ngx_http_maestro_engine_done(void *data, int result);
static void ngx_http_maestro_engine_wait(ngx_http_maestro_call_t *pt,
    long ms);
static void ngx_http_maestro_engine_waited(ngx_event_t *ev);
static void ngx_http_maestro_engine_retry(ngx_event_t *ev);


/* one event's data of the provider's stream */
static int
ngx_http_maestro_engine_event(void *arg, const char *p, size_t n)
{
    ngx_int_t                 rc;
    ngx_http_maestro_call_t  *pt = arg;

    if (pt->done_marker) {
        return 0;               /* nothing comes after the end */
    }

    if (pt->job != NULL) {
        /* parsed once, for its text and the answer */
        rc = ngx_http_maestro_engine_job_event(pt, p, n);

        if (rc == NGX_OK) {
            return 0;
        }

        if (rc == NGX_DECLINED) {
            pt->malformed = 1;

        } else {
            pt->failed_write = 1;
        }

        return 1;
    }

    switch (mst_oai_event(p, n, &pt->usage)) {

    case MST_OAI_BAD:
        /* before the first, the next provider may still answer */
        pt->malformed = 1;
        return 1;

    case MST_OAI_DONE:
        pt->done_marker = 1;
        break;

    case MST_OAI_USAGE_ONLY:
        /* the usage chunk we forced: only for a client that asked */
        if (!pt->client_usage) {
            return 0;
        }
        break;
    }

    if (ngx_http_maestro_engine_queue(pt, p, n) != NGX_OK) {
        pt->failed_write = 1;
        return 1;
    }

    return 0;
}


/* the transfer's callbacks (libcurl's or ours), on the event loop */

static size_t
ngx_http_maestro_engine_header_cb(char *buf, size_t size, size_t n,
    void *arg)
{
    ngx_http_maestro_call_t  *pt = arg;

    ngx_http_maestro_engine_wait(pt, mst_gateway_provider(pt->gw,
                                         pt->member)->idle_timeout_ms);

    mst_oai_header(&pt->head, buf, size * n, ngx_time());

    return size * n;
}


static size_t
ngx_http_maestro_engine_write_cb(char *buf, size_t size, size_t n, void *arg)
{
    int                       rc;
    size_t                    len;
    ngx_http_maestro_call_t  *pt = arg;

    len = size * n;

    ngx_http_maestro_engine_wait(pt, mst_gateway_provider(pt->gw,
                                         pt->member)->idle_timeout_ms);

    if (!pt->decided) {
        pt->decided = 1;
        ngx_http_maestro_engine_status(pt);

        /* a stream for the client: its first valid event starts it */
        pt->forward = pt->status >= 200 && pt->status < 300
                      && pt->stream && pt->head.sse;
    }

    if (!pt->forward) {
        return mst_oai_buf_add(&pt->body_in, buf, len, MST_OAI_BODY_MAX)
               == MST_OK ? len : 0;
    }

    rc = mst_oai_sse_feed(&pt->sse, buf, len, ngx_http_maestro_engine_event,
                          pt);

    if (rc == MST_EINVAL) {
        pt->malformed = 1;      /* a line or event over the limit */

    } else if (rc == MST_ENOMEM) {
        pt->failed_write = 1;
    }

    if (rc == MST_OK && pt->job == NULL
        && ngx_http_maestro_engine_flush(pt) != NGX_OK)
    {
        pt->failed_write = 1;
        rc = MST_ERROR;
    }

    if (rc != MST_OK) {
        return 0;
    }

    if (pt->job == NULL) {
        ngx_http_maestro_engine_slow(pt);
    }

    return len;
}


static void
ngx_http_maestro_engine_log_call(ngx_http_maestro_call_t *pt,
    const char *what)
{
    ngx_log_error(NGX_LOG_INFO, pt->log, 0,
                  "maestro: %s \"%s\" via %s: %s, %l+%l tokens, %L ms",
                  pt->kind, pt->model,
                  mst_gateway_provider(pt->gw, pt->member)->name, what,
                  pt->usage.prompt_tokens, pt->usage.completion_tokens,
                  (long long) (mst_mono_ms() - pt->t0));
}


/* the end of a stream part of which reached the client */
static void
ngx_http_maestro_engine_streamed(ngx_http_maestro_call_t *pt, int result)
{
    char        msg[384];
    ngx_int_t   rc;

    if ((result == CURLE_OK && pt->done_marker) || pt->last_sent) {
        mst_gateway_done(pt->gw, pt->member, 1, pt->first_ms - pt->t0);

        if (pt->job != NULL) {
            ngx_http_maestro_engine_finish(pt, NGX_OK);
            return;
        }

        ngx_http_maestro_engine_account(pt, pt->streamed);
        rc = pt->last_sent ? NGX_OK
                           : ngx_http_maestro_engine_send(pt, NULL, NULL, 0,
                                                          NULL, 1);
        ngx_http_maestro_engine_finish(pt, rc);
        return;
    }

    if (!pt->failed_write && pt->job == NULL) {
        /* the valid events before what failed */
        (void) ngx_http_maestro_engine_flush(pt);
    }

    if (pt->failed_write && !pt->malformed) {
        /* the client went away: not the provider's failure */
        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_engine_finish(pt, NGX_ERROR);
        return;
    }

    mst_gateway_done(pt->gw, pt->member, 0, 0);

    ngx_snprintf((u_char *) msg, sizeof(msg) - 1,
                 "provider \"%s\" broke the stream: %s%Z",
                 mst_gateway_provider(pt->gw, pt->member)->name,
                 pt->malformed ? (pt->answer.error[0] ? pt->answer.error
                                  : "a malformed event")
                 : result == CURLE_OK ? "it ended without [DONE]"
                                      : curl_easy_strerror(result));

    ngx_log_error(NGX_LOG_ERR, pt->log, 0, "maestro: %s: %s", pt->kind, msg);

    if (pt->job != NULL) {
        ngx_cpystrn((u_char *) pt->last_err, (u_char *) msg,
                    sizeof(pt->last_err));
        pt->job_rc = MST_EUPSTREAM;
        ngx_http_maestro_engine_finish(pt, NGX_ERROR);
        return;
    }

    ngx_http_maestro_engine_finish(pt,
                                   ngx_http_maestro_engine_broken(pt, msg));
}


/* the transfer ended */
static void
ngx_http_maestro_engine_done(void *data, int result)
{
    int                        xfer, action, rc;
    long                       wait, left;
    char                       excerpt[MST_OAI_EXCERPT + 8];
    ngx_uint_t                 malformed;
    const mst_llm_provider_t  *p;
    ngx_http_maestro_call_t   *pt = data;

    if (pt->wait_ev.timer_set) {
        ngx_del_timer(&pt->wait_ev);
    }

    pt->paused = 0;
    p = mst_gateway_provider(pt->gw, pt->member);

    if (pt->forward && result == CURLE_OK && !pt->malformed
        && !pt->failed_write)
    {
        /* an event the stream did not end with a blank line */
        rc = mst_oai_sse_end(&pt->sse, ngx_http_maestro_engine_event, pt);

        if (rc == MST_EINVAL) {
            pt->malformed = 1;
        }

        if (rc == MST_OK && pt->job == NULL
            && ngx_http_maestro_engine_flush(pt) != NGX_OK)
        {
            pt->failed_write = 1;
        }
    }

    if (pt->started) {
        /* the client has part of a stream: no switching any more */
        ngx_http_maestro_engine_streamed(pt, result);
        return;
    }

    /* nothing reached the client yet */

    if (result == CURLE_WRITE_ERROR && pt->failed_write && !pt->malformed) {
        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_engine_finish(pt, NGX_ERROR);
        return;
    }

    if (result == CURLE_OK && !pt->decided) {
        ngx_http_maestro_engine_status(pt);
    }

    /* our own abort on a malformed stream: the answer came, and was bad */
    xfer = (result == CURLE_OK || pt->malformed) ? MST_OAI_XFER_OK
           : result == CURLE_OPERATION_TIMEDOUT ? MST_OAI_XFER_TIMEOUT
           : MST_OAI_XFER_CONNECT;

    /* a 2xx: is it an answer? (a stream that reached nothing is not) */
    malformed = pt->malformed
                || (pt->status >= 200 && pt->status < 300
                    && (pt->stream
                        || mst_oai_body(pt->body_in.data, pt->body_in.len,
                                        &pt->usage,
                                        pt->job ? &pt->whole : NULL)
                           != MST_OK));

    action = mst_oai_classify(xfer, pt->status, malformed, &pt->fail);

    if (action != MST_OAI_ANSWER && pt->whole != NULL) {
        json_decref(pt->whole);         /* not the answer after all */
        pt->whole = NULL;
    }

    if (action == MST_OAI_ANSWER) {
        mst_gateway_done(pt->gw, pt->member, 1, mst_mono_ms() - pt->t0);

        if (pt->job != NULL) {
            ngx_http_maestro_engine_finish(pt, NGX_OK);
            return;
        }

        ngx_http_maestro_engine_account(pt, pt->body_in.len);
        ngx_http_maestro_engine_finish(pt,
            ngx_http_maestro_engine_send_body(pt, NGX_HTTP_OK));
        return;
    }

    mst_oai_excerpt(pt->body_in.data, pt->body_in.len, p->api_key, excerpt,
                    sizeof(excerpt));

    if (action == MST_OAI_CLIENT) {
        /* the client's request: the provider's answer is the answer */
        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_engine_log_call(pt, "refused the request");

        if (pt->job != NULL) {
            ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                         "%s refused the request: HTTP %l: %s%Z", p->name,
                         pt->status, excerpt);
            pt->job_rc = MST_EINVAL;
            ngx_http_maestro_engine_finish(pt, NGX_ERROR);
            return;
        }

        ngx_http_maestro_engine_finish(pt,
            ngx_http_maestro_engine_send_body(pt, pt->status));
        return;
    }

    if (xfer != MST_OAI_XFER_OK) {
        ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                     "%s: %s%Z", p->name, curl_easy_strerror(result));

    } else if (pt->status >= 200 && pt->status < 300) {
        ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                     "%s: a malformed answer (%s)%Z", p->name,
                     pt->stream ? "not an event stream" : "not a "
                     "chat.completion or list");

    } else {
        /* 429; 5xx, and 401, 403, 404...: the provider's, as a 5xx */
        ngx_snprintf((u_char *) pt->last_err, sizeof(pt->last_err) - 1,
                     "%s: HTTP %l%s%s%Z", p->name, pt->status,
                     excerpt[0] ? ": " : "", excerpt);
    }

    ngx_log_error(NGX_LOG_WARN, pt->log, 0,
                  "maestro: %s attempt %ui failed: %s", pt->kind,
                  pt->attempt + 1, pt->last_err);

    /* the same provider again, after a backoff */

    if (action == MST_OAI_RETRY
        && pt->attempt < (ngx_uint_t) p->max_retries)
    {
        left = -1;

        if (pt->job != NULL && pt->job->deadline) {
            left = (long) ngx_max(pt->job->deadline - mst_mono_ms(), 0);
        }

        wait = mst_oai_backoff(pt->attempt, p->backoff_ms,
                               pt->head.retry_after_ms, left, NULL, NULL);

        if (wait >= 0) {
            pt->attempt++;
            ngx_add_timer(&pt->retry_ev, (ngx_msec_t) wait);
            return;
        }
    }

    mst_gateway_done(pt->gw, pt->member, 0, 0);
    ngx_http_maestro_engine_next(pt);
}


static void
ngx_http_maestro_engine_retry(ngx_event_t *ev)
{
    ngx_http_maestro_call_t  *pt = ev->data;

    if (ngx_http_maestro_engine_attempt(pt) != NGX_OK) {
        mst_gateway_done(pt->gw, pt->member, 0, 0);
        ngx_http_maestro_engine_next(pt);
    }
}


/*
 * A member's request headers (with its key), made once per worker and
 * kept: they never change, and a request should not rebuild them.
 */
struct curl_slist *
ngx_http_maestro_engine_headers(size_t member, ngx_uint_t stream,
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
ngx_str_t *
ngx_http_maestro_engine_fields(size_t member, ngx_uint_t stream,
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
ngx_http_maestro_engine_status(ngx_http_maestro_call_t *pt)
{
    if (pt->native) {
        pt->status = pt->h1.status;
        return;
    }

    (void) curl_easy_getinfo(pt->xfer.easy, CURLINFO_RESPONSE_CODE,
                             &pt->status);
}


void
ngx_http_maestro_engine_pause(ngx_http_maestro_call_t *pt, ngx_uint_t on)
{
    if (pt->native) {
        ngx_http_maestro_h1_pause(&pt->h1, on);
        return;
    }

    (void) curl_easy_pause(pt->xfer.easy, on ? CURLPAUSE_RECV
                                             : CURLPAUSE_CONT);
}


ngx_uint_t
ngx_http_maestro_engine_active(ngx_http_maestro_call_t *pt)
{
    return pt->native ? pt->h1.active : pt->xfer.active;
}


void
ngx_http_maestro_engine_stop(ngx_http_maestro_call_t *pt)
{
    if (pt->native) {
        ngx_http_maestro_h1_stop(&pt->h1);
        return;
    }

    ngx_http_maestro_curl_stop(&pt->xfer);
}


/* both clients call back the same: the engine does not tell them apart */
void
ngx_http_maestro_engine_init(ngx_http_maestro_call_t *pt)
{
    pt->xfer.done = ngx_http_maestro_engine_done;
    pt->xfer.data = pt;

    pt->h1.header = ngx_http_maestro_engine_header_cb;
    pt->h1.write = ngx_http_maestro_engine_write_cb;
    pt->h1.done = ngx_http_maestro_engine_done;
    pt->h1.data = pt;
    pt->h1.log = pt->log;

    mst_oai_sse_init(&pt->sse, MST_OAI_LINE_MAX);

    pt->retry_ev.handler = ngx_http_maestro_engine_retry;
    pt->retry_ev.data = pt;
    pt->retry_ev.log = pt->log;
    pt->wait_ev.handler = ngx_http_maestro_engine_waited;
    pt->wait_ev.data = pt;
    pt->wait_ev.log = pt->log;
}


/*
 * libcurl bounds the whole transfer (CURLOPT_TIMEOUT_MS); the wait for
 * the first byte and between two reads is this timer, re-armed by every
 * header and body callback, as the nginx client's timer is.
 */
static void
ngx_http_maestro_engine_wait(ngx_http_maestro_call_t *pt, long ms)
{
    /* the nginx client calls the same callbacks and has its own timer */
    if (ms > 0 && !pt->native) {
        ngx_add_timer(&pt->wait_ev, (ngx_msec_t) ms);
    }
}


/* runs in the event loop */
static void
ngx_http_maestro_engine_waited(ngx_event_t *ev)
{
    ngx_http_maestro_call_t  *pt = ev->data;

    if (!pt->xfer.active) {
        return;
    }

    if (pt->paused) {
        /* our client is slow, not the provider */
        ngx_http_maestro_engine_wait(pt, mst_gateway_provider(pt->gw,
                                             pt->member)->idle_timeout_ms);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, pt->log, 0,
                  "maestro: provider \"%s\" timed out %s",
                  mst_gateway_provider(pt->gw, pt->member)->name,
                  pt->decided ? "between two reads (idle_timeout)"
                              : "waiting for its answer (timeout)");

    ngx_http_maestro_curl_stop(&pt->xfer);
    ngx_http_maestro_engine_done(pt, CURLE_OPERATION_TIMEDOUT);
}


/* the transfer itself, with libcurl (client=libcurl) */
static ngx_int_t
ngx_http_maestro_engine_curl(ngx_http_maestro_call_t *pt,
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

    pt->headers = ngx_http_maestro_engine_headers(pt->member, pt->stream, p);
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
                     ngx_http_maestro_engine_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, pt);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION,
                     ngx_http_maestro_engine_header_cb);
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

    /* the first byte and the gaps: our timer (libcurl has none) */
    ngx_http_maestro_engine_wait(pt, p->timeout_ms);

    return ngx_http_maestro_curl_start(&pt->xfer);
}


/* one request to pt->member */
static ngx_int_t
ngx_http_maestro_engine_attempt(ngx_http_maestro_call_t *pt)
{
    long                               timeout;
    json_t                            *body;
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
        if (mst_oai_rewrite(body, pt->req_model ? NULL : p->model,
                            pt->stream)
            != MST_OK)
        {
            return NGX_ERROR;
        }

        free(pt->payload);
        pt->payload = mst_json_dump(body, &pt->upstream_body.len);

        if (pt->payload == NULL) {
            return NGX_ERROR;
        }

        pt->upstream_body.data = (u_char *) pt->payload;
    }

    /* the whole call; the first byte and the idle gaps are shorter */
    timeout = p->total_timeout_ms > 0 ? p->total_timeout_ms
              : p->timeout_ms > 0 ? p->timeout_ms : 60000L;

    if (pt->job != NULL && pt->job->deadline) {
        /* never past the step's deadline */
        timeout = ngx_min(timeout, (long) ngx_max(pt->job->deadline
                                                  - mst_mono_ms(), 1));
    }

    pt->status = 0;
    mst_oai_head_init(&pt->head);
    mst_oai_sse_reset(&pt->sse);
    ngx_memzero(&pt->usage, sizeof(mst_oai_usage_t));
    pt->decided = 0;
    pt->forward = 0;
    pt->malformed = 0;
    pt->failed_write = 0;
    pt->done_marker = 0;
    pt->body_in.len = 0;
    pt->pending.len = 0;
    pt->t0 = mst_mono_ms();
    pt->first_ms = 0;

    /* members are the providers, in the order they were declared */
    mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_maestro_module);
    pc = mmcf->providers.elts;

    pt->native = pc[pt->member].peer != NULL;

    if (!pt->native) {
        return ngx_http_maestro_engine_curl(pt, p, timeout);
    }

    fields = ngx_http_maestro_engine_fields(pt->member, pt->stream, p);
    if (fields == NULL) {
        return NGX_ERROR;
    }

    pt->h1.peer = pc[pt->member].peer;
    pt->h1.connect_timeout = p->connect_timeout_ms > 0
                             ? (ngx_msec_t) p->connect_timeout_ms : 10000;
    pt->h1.timeout = (ngx_msec_t) timeout;
    pt->h1.first_timeout = (ngx_msec_t) ngx_max(p->timeout_ms, 0);
    pt->h1.idle_timeout = (ngx_msec_t) ngx_max(p->idle_timeout_ms, 0);

    return ngx_http_maestro_h1_start(&pt->h1, pt->kind, fields,
                                     &pt->upstream_body);
}


/* the next provider in the chain, or the end */
void
ngx_http_maestro_engine_next(ngx_http_maestro_call_t *pt)
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
            ngx_http_maestro_engine_finish(pt, NGX_ERROR);
            return;
        }

        if (!mst_gateway_take(pt->gw, pt->member)) {
            continue;
        }

        pt->attempt = 0;
        pt->tried++;

        if (ngx_http_maestro_engine_attempt(pt) == NGX_OK) {
            return;
        }

        mst_gateway_done(pt->gw, pt->member, -1, 0);
        ngx_http_maestro_engine_finish(pt, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pt->tried == 0) {
        ngx_http_maestro_engine_finish(pt, ngx_http_maestro_engine_error(pt,
            NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
            "upstream_unavailable",
            "every provider of this model has its circuit breaker open"));
        return;
    }

    ngx_snprintf((u_char *) msg, sizeof(msg) - 1,
                 "all providers failed; last: %s%Z", pt->last_err);

    ngx_http_maestro_engine_finish(pt, ngx_http_maestro_engine_error(pt,
        NGX_HTTP_BAD_GATEWAY, "server_error", "upstream_error", msg));
}


void
ngx_http_maestro_engine_finish(ngx_http_maestro_call_t *pt, ngx_int_t rc)
{
    if (pt->finished) {
        return;
    }

    pt->finished = 1;

    if (pt->job != NULL) {
        ngx_http_maestro_engine_job_finish(pt, rc);
        return;
    }

    ngx_http_finalize_request(pt->r, rc);
}


void
ngx_http_maestro_engine_cleanup(void *data)
{
    ngx_http_maestro_call_t  *pt = data;

    if (pt->retry_ev.timer_set) {
        ngx_del_timer(&pt->retry_ev);
    }

    if (pt->wait_ev.timer_set) {
        ngx_del_timer(&pt->wait_ev);
    }

    if (ngx_http_maestro_engine_active(pt)) {
        /* the client went away mid-call: not the provider's failure */
        ngx_http_maestro_engine_stop(pt);
        mst_gateway_done(pt->gw, pt->member, -1, 0);
    }

    ngx_http_maestro_curl_release(pt->xfer.easy);
    ngx_http_maestro_h1_free(&pt->h1);

    free(pt->payload);
    mst_oai_buf_free(&pt->body_in);
    mst_oai_buf_free(&pt->pending);
    mst_oai_sse_free(&pt->sse);
    mst_oai_answer_free(&pt->answer);
    json_decref(pt->whole);
    json_decref(pt->body);
}


/*
 * Starts the pass-through of body (an object with a string "model") to
 * https://provider/<kind>, once the admission path admitted and guarded
 * it. NGX_DECLINED: no provider serves that model; NGX_DONE: going on
 * (the request is finalized later); else a status.
 */
ngx_int_t
ngx_http_maestro_passthru(ngx_http_request_t *r, ngx_http_maestro_admit_t *ad,
    json_t *body, ngx_str_t *raw, const char *kind)
{
    size_t                          norder;
    size_t                          order[MST_GATEWAY_MAX];
    const char                     *model;
    ngx_pool_cleanup_t             *cln;
    ngx_http_maestro_call_t          *pt;
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

    pt = ngx_pcalloc(r->pool, sizeof(ngx_http_maestro_call_t));
    if (pt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_maestro_engine_cleanup;
    cln->data = pt;

    pt->r = r;
    pt->log = r->connection->log;
    pt->gw = mmcf->env.gw;
    pt->kind = kind;
    pt->body = json_incref(body);
    pt->admit = ad;             /* guarded already: the admission path */

    if (raw != NULL) {
        pt->raw = *raw;         /* may go upstream as it came */
    }

    ngx_cpystrn((u_char *) pt->model, (u_char *) model, sizeof(pt->model));
    pt->stream = json_is_true(json_object_get(body, "stream"));
    pt->client_usage = json_is_true(json_object_get(
                           json_object_get(body, "stream_options"),
                           "include_usage"));
    pt->norder = norder;
    ngx_memcpy(pt->order, order, norder * sizeof(size_t));

    ngx_http_maestro_engine_init(pt);

    ngx_http_set_ctx(r, pt, ngx_http_maestro_module);

    /* a client that closes ends the call; a slow one resumes it */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_maestro_engine_writable;

    ngx_http_maestro_engine_next(pt);

    return NGX_DONE;
}
