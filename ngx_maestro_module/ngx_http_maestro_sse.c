/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Server-Sent Events of one workflow, from its event log in LMDB. A
 * subscriber remembers the id of the last event it sent; a pump reads the
 * events after it (a read transaction, zero-copy into the output buffers)
 * and writes them out, so a live stream, a replay and a resume with
 * Last-Event-ID are the same code, on any worker.
 *
 * Wake-up: pool threads and other workers bump a generation counter in
 * shared memory after each commit; every worker's poll timer sees it and
 * pumps its subscribers.
 *
 * Memory is bounded: buffers are recycled (free/busy chains); when a slow
 * client has more than NGX_HTTP_MAESTRO_SSE_MAX_BUSY bytes unsent, the
 * pump stops reading until the socket drains, and the events wait in LMDB.
 * The stream ends after the final "done" or "error" event.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_event_cache.h"
#include "mst_feed.h"


#define NGX_HTTP_MAESTRO_SSE_BUF       (16 * 1024)
#define NGX_HTTP_MAESTRO_SSE_MAX_BUSY  (256 * 1024)
#define NGX_HTTP_MAESTRO_SSE_BATCH     512


typedef struct {
    ngx_queue_t                     queue;      /* all streams */
    ngx_queue_t                     fqueue;     /* streams of the feed */
    ngx_http_maestro_watch_t        watch;      /* its workflow's events */
    ngx_http_request_t             *r;
    ngx_http_maestro_main_conf_t   *mmcf;
    char                            id[MST_ID_LEN + 1];
    uint64_t                        last;
    ngx_str_t                       status;     /* feed filters */
    ngx_str_t                       user;
    ngx_chain_t                    *free;
    ngx_chain_t                    *busy;
    ngx_chain_t                    *out;
    ngx_chain_t                   **last_out;
    ngx_event_t                     heartbeat;
    ngx_msec_t                      sent_at;
    unsigned                        finished:1;
    unsigned                        closed:1;
    unsigned                        feed:1;     /* /api/v1/events */
} ngx_http_maestro_sse_t;


static void ngx_http_maestro_sse_pump(ngx_http_maestro_sse_t *sse);
static void ngx_http_maestro_sse_cleanup(void *data);
static void ngx_http_maestro_sse_write_handler(ngx_http_request_t *r);
static void ngx_http_maestro_sse_heartbeat(ngx_event_t *ev);
static void ngx_http_maestro_sse_finish(ngx_http_maestro_sse_t *sse);
static void ngx_http_maestro_sse_check_final(ngx_http_maestro_sse_t *sse);
static void ngx_http_maestro_sse_terminal(ngx_http_maestro_sse_t *sse,
    json_t *rec, uint64_t end);
static ngx_buf_t *ngx_http_maestro_sse_buf(ngx_http_maestro_sse_t *sse,
    size_t len);
static void ngx_http_maestro_sse_wake(ngx_http_maestro_watch_t *w);
static ngx_int_t ngx_http_maestro_sse_send(ngx_http_maestro_sse_t *sse);


/* the events of a workflow formatted once per wake-up for its streams */
static ngx_http_maestro_event_cache_t  ngx_http_maestro_sse_cache;


static ngx_str_t  ngx_http_maestro_sse_type = ngx_string("text/event-stream");
static ngx_str_t  ngx_http_maestro_sse_retry = ngx_string("retry: 2000\n\n");


/* Last-Event-ID header, or ?last_event_id=; (uint64_t) -1 when invalid */
uint64_t
ngx_http_maestro_sse_last_event_id(ngx_http_request_t *r)
{
    u_char           *p;
    uint64_t          v;
    ngx_str_t         s;
    ngx_table_elt_t  *h;

    s.len = 0;
    s.data = NULL;

    h = ngx_http_maestro_header_in(r, "Last-Event-ID");
    if (h != NULL) {
        s = h->value;
    }

    if (s.len == 0
        && ngx_http_arg(r, (u_char *) "last_event_id",
                        sizeof("last_event_id") - 1, &s) != NGX_OK)
    {
        return 0;
    }

    if (s.len == 0) {
        return 0;
    }

    if (s.len > 19) {
        return (uint64_t) -1;
    }

    v = 0;

    for (p = s.data; p < s.data + s.len; p++) {
        if (*p < '0' || *p > '9') {
            return (uint64_t) -1;
        }
        v = v * 10 + (*p - '0');
    }

    return v;
}


static ngx_int_t ngx_http_maestro_sse_begin(ngx_http_request_t *r,
    ngx_http_maestro_sse_t *sse);


/* the headers of an event stream (also the OpenAI facade's) */
ngx_int_t
ngx_http_maestro_sse_headers(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_maestro_sse_type;
    r->headers_out.content_type_len = ngx_http_maestro_sse_type.len;
    r->headers_out.content_length_n = -1;
    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "X-Accel-Buffering");
    ngx_str_set(&h->value, "no");

    /* no gzip or other buffering filter may hold events back */
    r->gzip_tested = 1;
    r->gzip_ok = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_maestro_sse_start(ngx_http_request_t *r, ngx_str_t *id,
    uint64_t last_event_id)
{
    ngx_http_maestro_sse_t  *sse;

    sse = ngx_pcalloc(r->pool, sizeof(ngx_http_maestro_sse_t));
    if (sse == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(sse->id, id->data, MST_ID_LEN);
    sse->last = last_event_id;

    return ngx_http_maestro_sse_begin(r, sse);
}


/* the monitor stream: every workflow's updates, maybe filtered */
ngx_int_t
ngx_http_maestro_sse_start_feed(ngx_http_request_t *r,
    uint64_t last_event_id, ngx_str_t *status, ngx_str_t *user)
{
    ngx_http_maestro_sse_t  *sse;

    sse = ngx_pcalloc(r->pool, sizeof(ngx_http_maestro_sse_t));
    if (sse == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sse->feed = 1;
    sse->last = last_event_id;
    sse->status = *status;
    sse->user = *user;

    return ngx_http_maestro_sse_begin(r, sse);
}


static ngx_int_t
ngx_http_maestro_sse_begin(ngx_http_request_t *r,
    ngx_http_maestro_sse_t *sse)
{
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_chain_t                    out;
    ngx_pool_cleanup_t            *cln;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    sse->r = r;
    sse->mmcf = mmcf;
    sse->last_out = &sse->out;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_maestro_sse_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    /* the reconnection delay for EventSource clients */
    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ngx_http_maestro_sse_retry.data;
    b->last = b->pos + ngx_http_maestro_sse_retry.len;
    b->memory = 1;
    b->flush = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_output_filter(r, &out);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_maestro_sse_cleanup;
    cln->data = sse;

    ngx_queue_insert_tail(&mmcf->subscribers, &sse->queue);

    if (sse->feed) {
        ngx_queue_insert_tail(&mmcf->feed_sse, &sse->fqueue);

    } else {
        sse->watch.wake = ngx_http_maestro_sse_wake;
        sse->watch.data = sse;
        ngx_http_maestro_watch_add(mmcf, &sse->watch, sse->id);
    }

    /* a closed connection ends the request (and so the subscription) */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_maestro_sse_write_handler;

    sse->heartbeat.handler = ngx_http_maestro_sse_heartbeat;
    sse->heartbeat.data = sse;
    sse->heartbeat.log = r->connection->log;
    sse->heartbeat.cancelable = 1;
    ngx_add_timer(&sse->heartbeat, mmcf->heartbeat);

    sse->sent_at = ngx_current_msec;

    r->main->count++;

    ngx_http_maestro_sse_pump(sse);

    if (!sse->closed && !sse->feed) {
        ngx_http_maestro_sse_check_final(sse);
    }

    return NGX_DONE;
}


/*
 * A client that resumes at or after the last event of a finished workflow
 * gets the terminal event ("done" or "error") again, then the end: a
 * stream that just closes makes an EventSource client reconnect for ever.
 * Runs inside ngx_http_maestro_sse_begin(), which holds the request.
 */
static void
ngx_http_maestro_sse_check_final(ngx_http_maestro_sse_t *sse)
{
    json_t      *rec;
    uint64_t     end;
    mst_txn_t   *txn;
    const char  *status;

    if (mst_txn_begin(sse->mmcf->env.store, 1, &txn) != MST_OK) {
        return;
    }

    if (mst_store_wf_get(txn, sse->id, &rec) != MST_OK) {
        rec = NULL;
    }

    mst_txn_abort(txn);

    if (rec == NULL) {
        return;
    }

    status = json_string_value(json_object_get(rec, "status"));
    end = (uint64_t) json_integer_value(json_object_get(rec,
                                                        "last_event_id"));

    if (status == NULL
        || ngx_strcmp(status, "queued") == 0
        || ngx_strcmp(status, "running") == 0
        || end > sse->last)
    {
        json_decref(rec);
        return;
    }

    if (end > 0) {
        sse->last = end - 1;
        ngx_http_maestro_sse_pump(sse);
    }

    if (!sse->closed && !sse->finished) {
        /* the log is gone (maestro_event_retention): from the record */
        ngx_http_maestro_sse_terminal(sse, rec, end);
    }

    json_decref(rec);
}


/* a finished workflow's terminal event, rebuilt from its record */
static void
ngx_http_maestro_sse_terminal(ngx_http_maestro_sse_t *sse, json_t *rec,
    uint64_t end)
{
    char        *text;
    size_t       len;
    json_t      *data;
    ngx_buf_t   *b;
    const char  *status, *name;

    status = json_string_value(json_object_get(rec, "status"));

    if (ngx_strcmp(status, "failed") == 0) {
        name = "error";
        data = json_pack("{s:s, s:s, s:O}", "id", sse->id, "status", status,
                         "error", json_object_get(rec, "error"));

    } else {
        name = "done";
        data = json_pack("{s:s, s:s, s:O}", "id", sse->id, "status", status,
                         "result", json_object_get(rec, "result"));
    }

    text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);

    if (text != NULL) {
        len = ngx_strlen(text);
        b = ngx_http_maestro_sse_buf(sse, sizeof("id: \nevent: \ndata: \n\n")
                                          - 1 + NGX_INT64_LEN + 5 + len);
        if (b != NULL) {
            b->last = ngx_sprintf(b->last, "id: %uL\nevent: %s\ndata: ",
                                  end, name);
            b->last = ngx_cpymem(b->last, text, len);
            *b->last++ = '\n';
            *b->last++ = '\n';
            (void) ngx_http_maestro_sse_send(sse);
        }

        free(text);
    }

    sse->finished = 1;
    ngx_http_maestro_sse_finish(sse);
}


/* out of every list: the stream is ending */
static void
ngx_http_maestro_sse_unlink(ngx_http_maestro_sse_t *sse)
{
    if (sse->heartbeat.timer_set) {
        ngx_del_timer(&sse->heartbeat);
    }

    if (sse->closed) {
        return;
    }

    sse->closed = 1;
    ngx_queue_remove(&sse->queue);

    if (sse->feed) {
        ngx_queue_remove(&sse->fqueue);

    } else {
        ngx_http_maestro_watch_del(sse->mmcf, &sse->watch);
    }
}


static void
ngx_http_maestro_sse_cleanup(void *data)
{
    ngx_http_maestro_sse_unlink(data);
}


static void
ngx_http_maestro_sse_wake(ngx_http_maestro_watch_t *w)
{
    ngx_http_maestro_sse_pump(w->data);
}


/* a buffer with room for len bytes at the end of the out chain */
static ngx_buf_t *
ngx_http_maestro_sse_buf(ngx_http_maestro_sse_t *sse, size_t len)
{
    size_t        size;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = NULL;

    if (sse->last_out != &sse->out) {
        cl = (ngx_chain_t *) ((u_char *) sse->last_out
                              - offsetof(ngx_chain_t, next));
        if ((size_t) (cl->buf->end - cl->buf->last) >= len) {
            return cl->buf;
        }
    }

    size = ngx_max(len, NGX_HTTP_MAESTRO_SSE_BUF);

    if (sse->free != NULL && size == NGX_HTTP_MAESTRO_SSE_BUF) {
        cl = sse->free;
        sse->free = cl->next;
        b = cl->buf;
        b->pos = b->start;
        b->last = b->start;
        b->flush = 0;
        b->last_buf = 0;

    } else {
        cl = ngx_alloc_chain_link(sse->r->pool);
        if (cl == NULL) {
            return NULL;
        }

        b = ngx_create_temp_buf(sse->r->pool, size);
        if (b == NULL) {
            return NULL;
        }

        b->tag = (ngx_buf_tag_t) &ngx_http_maestro_module;
        cl->buf = b;
    }

    cl->next = NULL;
    *sse->last_out = cl;
    sse->last_out = &cl->next;

    return b;
}


typedef struct {
    ngx_http_maestro_sse_t   *sse;
    ngx_int_t                 rc;
    size_t                    n;        /* entries read */
    ngx_uint_t                fill;     /* into the shared cache too */
} ngx_http_maestro_sse_ctx_t;


/*
 * Serves a stream from the cache when it can. NGX_OK: served (or nothing
 * new this wake-up); NGX_DECLINED: read LMDB.
 */
static ngx_int_t
ngx_http_maestro_sse_from_cache(ngx_http_maestro_sse_t *sse)
{
    u_char                          *p, *end;
    size_t                           i, len;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_http_maestro_event_cache_t  *c = &ngx_http_maestro_sse_cache;

    rc = ngx_http_maestro_event_cache_find(c, sse->id, sse->last,
                                           sse->mmcf->wake_epoch, &i);
    if (rc != NGX_OK) {
        return rc == NGX_DONE ? NGX_OK : NGX_DECLINED;
    }

    /* in buffer-sized pieces: those are recycled, larger ones are not */

    p = c->text + c->offs[i];
    end = c->text + c->len;

    while (p < end) {
        len = ngx_min((size_t) (end - p), NGX_HTTP_MAESTRO_SSE_BUF);

        b = ngx_http_maestro_sse_buf(sse, len);
        if (b == NULL) {
            return NGX_DECLINED;
        }

        len = ngx_min(len, (size_t) (b->end - b->last));
        b->last = ngx_cpymem(b->last, p, len);
        p += len;
    }

    sse->last = c->to;
    sse->finished = c->final;

    if (ngx_http_maestro_sse_send(sse) == NGX_ERROR || sse->finished) {
        ngx_http_maestro_sse_finish(sse);
    }

    return NGX_OK;
}


/* the monitor's ?status= and ?user_id= filters on a feed entry */
static ngx_uint_t
ngx_http_maestro_sse_match(ngx_http_maestro_sse_t *sse, const char *data,
    size_t len)
{
    json_t      *j;
    ngx_uint_t   ok;
    const char  *v;

    if (sse->status.len == 0 && sse->user.len == 0) {
        return 1;
    }

    j = json_loadb(data, len, 0, NULL);
    if (j == NULL) {
        return 0;
    }

    ok = 1;

    if (sse->status.len) {
        v = json_string_value(json_object_get(j, "status"));
        ok = v != NULL && ngx_strlen(v) == sse->status.len
             && ngx_strncmp(v, sse->status.data, sse->status.len) == 0;
    }

    if (ok && sse->user.len) {
        v = json_string_value(json_object_get(j, "user_id"));
        ok = v != NULL && ngx_strlen(v) == sse->user.len
             && ngx_strncmp(v, sse->user.data, sse->user.len) == 0;
    }

    json_decref(j);

    return ok;
}


/* formats one event; runs inside the read transaction (zero-copy data) */
static int
ngx_http_maestro_sse_event(uint64_t seq, const char *name, const char *data,
    size_t len, void *arg)
{
    ngx_http_maestro_sse_ctx_t  *sc = arg;

    u_char      *start;
    size_t       need, nlen;
    ngx_buf_t   *b;
    ngx_uint_t   final;

    sc->n++;

    if (sc->sse->feed && !ngx_http_maestro_sse_match(sc->sse, data, len)) {
        sc->sse->last = seq;
        return 0;
    }

    nlen = ngx_strlen(name);
    need = sizeof("id: \nevent: \ndata: \n\n") - 1 + NGX_INT64_LEN + nlen
           + len;

    b = ngx_http_maestro_sse_buf(sc->sse, need);
    if (b == NULL) {
        sc->rc = NGX_ERROR;
        return 1;
    }

    start = b->last;

    b->last = ngx_sprintf(b->last, "id: %uL\nevent: %s\ndata: ", seq, name);
    b->last = ngx_cpymem(b->last, data, len);
    *b->last++ = '\n';
    *b->last++ = '\n';

    sc->sse->last = seq;

    final = !sc->sse->feed
            && (ngx_strcmp(name, "done") == 0
                || ngx_strcmp(name, "error") == 0);

    if (sc->fill) {
        ngx_http_maestro_event_cache_add(&ngx_http_maestro_sse_cache, seq,
                                         start, b->last - start, final);
    }

    if (final) {
        sc->sse->finished = 1;
        return 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_maestro_sse_send(ngx_http_maestro_sse_t *sse)
{
    ngx_int_t            rc;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = sse->r;

    for (cl = sse->out; cl; cl = cl->next) {
        if (cl->next == NULL) {
            cl->buf->flush = 1;
        }
    }

    rc = ngx_http_output_filter(r, sse->out);

    ngx_chain_update_chains(r->pool, &sse->free, &sse->busy, &sse->out,
                            (ngx_buf_tag_t) &ngx_http_maestro_module);

    sse->out = NULL;
    sse->last_out = &sse->out;
    sse->sent_at = ngx_current_msec;

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* behind: the pump goes on from the write handler */
    return ngx_http_maestro_wait_writable(r, 0) == NGX_OK ? rc : NGX_ERROR;
}


static size_t
ngx_http_maestro_sse_busy(ngx_http_maestro_sse_t *sse)
{
    size_t        n;
    ngx_chain_t  *cl;

    n = 0;

    for (cl = sse->busy; cl; cl = cl->next) {
        n += ngx_buf_size(cl->buf);
    }

    return n;
}


static void
ngx_http_maestro_sse_pump(ngx_http_maestro_sse_t *sse)
{
    int                          rc;
    mst_txn_t                   *txn;
    ngx_http_request_t          *r;
    ngx_http_maestro_sse_ctx_t   sc;

    r = sse->r;

    if (sse->closed || sse->finished) {
        return;
    }

    for ( ;; ) {

        /* a slow client: wait until the socket drains */
        if (ngx_http_maestro_sse_busy(sse) > NGX_HTTP_MAESTRO_SSE_MAX_BUSY
            || r->connection->buffered)
        {
            return;
        }

        if (!sse->feed && ngx_http_maestro_sse_from_cache(sse) == NGX_OK) {
            return;
        }

        rc = mst_txn_begin(sse->mmcf->env.store, 1, &txn);
        if (rc != MST_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "maestro: sse: store: %s", mst_strerror(rc));
            return;
        }

        sc.sse = sse;
        sc.rc = NGX_OK;
        sc.n = 0;
        sc.fill = 0;

        if (!sse->feed) {
            /* this read becomes the cache of this wake-up */
            ngx_http_maestro_event_cache_reset(&ngx_http_maestro_sse_cache,
                                               sse->id, sse->last,
                                               sse->mmcf->wake_epoch);
            sc.fill = 1;
        }

        if (sse->feed) {
            rc = mst_feed_range(txn, sse->last, NGX_HTTP_MAESTRO_SSE_BATCH,
                                ngx_http_maestro_sse_event, &sc);
        } else {
            rc = mst_store_event_range(txn, sse->id, sse->last,
                                       NGX_HTTP_MAESTRO_SSE_BATCH,
                                       ngx_http_maestro_sse_event, &sc);

            /* deleted (DELETE, retention): nothing more will come */
            if (rc == MST_OK && sc.n == 0
                && mst_store_wf_flag(txn, sse->id, "inline") == MST_NOTFOUND)
            {
                rc = MST_ERROR;
            }
        }
        mst_txn_abort(txn);

        /* complete up to the end of the log as of now: shareable */
        if (sc.fill && sc.rc == NGX_OK && rc == MST_OK
            && sc.n < NGX_HTTP_MAESTRO_SSE_BATCH)
        {
            ngx_http_maestro_event_cache_done(&ngx_http_maestro_sse_cache);
        }

        if (sc.rc != NGX_OK || (rc != MST_OK && rc != MST_NOTFOUND)) {
            ngx_http_maestro_sse_finish(sse);
            return;
        }

        if (sse->out == NULL) {
            if (sc.n == NGX_HTTP_MAESTRO_SSE_BATCH) {
                continue;       /* a batch the filters dropped whole */
            }
            return;
        }

        if (ngx_http_maestro_sse_send(sse) == NGX_ERROR) {
            ngx_http_maestro_sse_finish(sse);
            return;
        }

        if (sse->finished) {
            ngx_http_maestro_sse_finish(sse);
            return;
        }
    }
}


/* end the response: after the final event, on shutdown, on errors */
static void
ngx_http_maestro_sse_finish(ngx_http_maestro_sse_t *sse)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    if (sse->closed) {
        return;
    }

    r = sse->r;
    c = r->connection;

    ngx_http_maestro_sse_unlink(sse);

    rc = ngx_http_send_special(r, NGX_HTTP_LAST);

    ngx_http_finalize_request(r, rc == NGX_ERROR ? NGX_ERROR : NGX_OK);

    /* called from timers too: run what the finalization posted */
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_maestro_sse_write_handler(ngx_http_request_t *r)
{
    ngx_http_maestro_sse_t  *sse;
    ngx_pool_cleanup_t      *cln;

    /* find our state through the cleanup handler list */
    sse = NULL;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_maestro_sse_cleanup) {
            sse = cln->data;
            break;
        }
    }

    if (r->connection->write->timedout) {
        r->connection->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (sse == NULL || sse->closed) {
        return;
    }

    if (ngx_http_maestro_wait_writable(r, 1) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_chain_update_chains(r->pool, &sse->free, &sse->busy, &sse->out,
                            (ngx_buf_tag_t) &ngx_http_maestro_module);

    ngx_http_maestro_sse_pump(sse);
}


static void
ngx_http_maestro_sse_heartbeat(ngx_event_t *ev)
{
    ngx_buf_t               *b;
    ngx_http_maestro_sse_t  *sse = ev->data;

    if (sse->closed) {
        return;
    }

    if (ngx_current_msec - sse->sent_at + 50 >= sse->mmcf->heartbeat
        && sse->out == NULL)
    {
        b = ngx_http_maestro_sse_buf(sse, sizeof(":hb\n\n") - 1);
        if (b != NULL) {
            b->last = ngx_cpymem(b->last, ":hb\n\n", sizeof(":hb\n\n") - 1);

            if (ngx_http_maestro_sse_send(sse) == NGX_ERROR) {
                ngx_http_maestro_sse_finish(sse);
                return;
            }
        }
    }

    ngx_add_timer(ev, sse->mmcf->heartbeat);
}


/* the monitor streams (workflows' own streams wake through the watch) */
void
ngx_http_maestro_sse_wakeup(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_queue_t             *q, *next;
    ngx_http_maestro_sse_t  *sse;

    for (q = ngx_queue_head(&mmcf->feed_sse);
         q != ngx_queue_sentinel(&mmcf->feed_sse);
         q = next)
    {
        /* the pump may finish (and unlink) this subscriber */
        next = ngx_queue_next(q);
        sse = ngx_queue_data(q, ngx_http_maestro_sse_t, fqueue);

        ngx_http_maestro_sse_pump(sse);
    }
}


void
ngx_http_maestro_sse_shutdown(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_queue_t             *q;
    ngx_http_maestro_sse_t  *sse;

    while (!ngx_queue_empty(&mmcf->subscribers)) {
        q = ngx_queue_head(&mmcf->subscribers);
        sse = ngx_queue_data(q, ngx_http_maestro_sse_t, queue);

        /* what is stored is sent; the client resumes with its last id */
        ngx_http_maestro_sse_pump(sse);

        if (!sse->closed) {
            ngx_http_maestro_sse_finish(sse);
        }
    }
}
