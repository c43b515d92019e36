/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * WebSocket (RFC 6455) endpoints:
 *
 *   /api/v1/workflows/{id}/ws   one workflow's events
 *   /api/v1/ws/{user_id}        a user's session: submit prompts, act on
 *                               workflows, receive all of that user's
 *                               workflows' events
 *
 * The handshake is answered here (101 and Sec-WebSocket-Accept); after it
 * the connection is driven by libwslay's event API, which does the
 * framing (masking, fragmentation, control frames between fragments,
 * ping/pong, the close handshake, the message size limit) and leaves I/O
 * to nginx: its callbacks read and write the connection without blocking.
 * Text messages are checked for UTF-8 once reassembled (close 1007);
 * binary ones are refused (1003).
 *
 * Events come from the same LMDB event logs as SSE: a connection holds
 * subscriptions (workflow id, last event id) and a pump queues the events
 * after them, woken by the same poll as SSE. A session also follows the
 * feed, so a workflow of its user submitted on any worker (or connection)
 * is subscribed to as soon as it exists. The pump stops while too much is
 * queued for a slow client, and the events wait in LMDB.
 *
 * Lifetime: the state is malloc()ed and counted (io tasks in flight hold
 * references), because nginx may free the request while a submission or
 * a cancel is being stored; the request's pool cleanup detaches it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>
#include <wslay/wslay.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_ws.h"
#include "ngx_http_maestro_ws_deflate.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_event_cache.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"
#include "mst_feed.h"


#define NGX_HTTP_MAESTRO_WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define NGX_HTTP_MAESTRO_WS_MAX_SUBS   64
#define NGX_HTTP_MAESTRO_WS_MAX_QUEUED (512 * 1024)
#define NGX_HTTP_MAESTRO_WS_BATCH      256


typedef struct {
    char                            id[MST_ID_LEN + 1];
    uint64_t                        last;
    ngx_http_maestro_watch_t        watch;
    unsigned                        used:1;
    unsigned                        finished:1;
} ngx_http_maestro_ws_sub_t;


typedef struct {
    ngx_queue_t                     queue;      /* all connections */
    ngx_queue_t                     fqueue;     /* sessions: the feed */
    ngx_http_request_t             *r;          /* NULL once detached */
    ngx_http_maestro_main_conf_t   *mmcf;
    const mst_guard_t              *guard;      /* the location's */
    mst_caller_t                    caller;     /* at the upgrade */
    wslay_event_context_ptr         ctx;        /* NULL while idle */
    uint64_t                        in_given;   /* bytes handed to wslay */
    uint64_t                        in_used;    /* ... in whole frames */
    uint64_t                        in_frame;   /* the frame being read */
    ngx_msec_t                      last_data;  /* a data message */
    u_char                         *pre;        /* bytes read with the */
    u_char                         *pre_last;   /* handshake */
    /* allocated as needed: most connections follow one workflow */
    ngx_http_maestro_ws_sub_t      *subs[NGX_HTTP_MAESTRO_WS_MAX_SUBS];
    char                            user[129];
    char                            status[16]; /* monitor filter */
    uint64_t                        feed_last;
    ngx_event_t                     ping;
    ngx_msec_t                      last_seen;
    ngx_uint_t                      refs;
    unsigned                        session:1;
    unsigned                        monitor:1;
    unsigned                        closed:1;
    unsigned                        hangup:1;   /* the peer went, or I/O
                                                   failed */
    unsigned                        deflate:1;  /* permessage-deflate */
    unsigned                        in_msg:1;   /* between fragments */
} ngx_http_maestro_ws_t;


typedef struct {
    ngx_http_maestro_ws_t          *ws;
    char                            id[MST_ID_LEN + 1];
    json_t                         *rec;
    int                             final;
    int                             rc;
    char                            err[MST_ERRLEN];
} ngx_http_maestro_ws_cancel_t;


static ngx_int_t ngx_http_maestro_ws_handshake(ngx_http_request_t *r,
    ngx_int_t *rc);
static ngx_http_maestro_ws_t *ngx_http_maestro_ws_accept(
    ngx_http_request_t *r, ngx_int_t *rc);
static void ngx_http_maestro_ws_read(ngx_http_request_t *r);
static void ngx_http_maestro_ws_write(ngx_http_request_t *r);
static void ngx_http_maestro_ws_io(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_close(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_violation(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_cleanup(void *data);
static void ngx_http_maestro_ws_release(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_pump(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_ping(ngx_event_t *ev);
static ngx_int_t ngx_http_maestro_ws_ctx(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_idle(ngx_http_maestro_ws_t *ws);
static size_t ngx_http_maestro_ws_queued(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_message(ngx_http_maestro_ws_t *ws,
    const char *text, size_t len);
static void ngx_http_maestro_ws_send(ngx_http_maestro_ws_t *ws,
    json_t *msg);
static void ngx_http_maestro_ws_error(ngx_http_maestro_ws_t *ws,
    const char *code, const char *fmt, ...);


/* wslay callbacks: non-blocking I/O on the nginx connection */

static ssize_t
ngx_http_maestro_ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf,
    size_t len, int flags, void *user_data)
{
    ngx_http_maestro_ws_t  *ws = user_data;

    size_t             n;
    ssize_t            rc;
    ngx_connection_t  *c;

    if (ws->pre < ws->pre_last) {
        n = ngx_min(len, (size_t) (ws->pre_last - ws->pre));
        ngx_memcpy(buf, ws->pre, n);
        ws->pre += n;
        ws->in_given += n;
        return (ssize_t) n;
    }

    c = ws->r->connection;

    rc = c->recv(c, buf, len);

    if (rc == NGX_AGAIN) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    if (rc == 0 || rc == NGX_ERROR) {
        ws->hangup = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }

    ws->last_seen = ngx_current_msec;
    ws->in_given += rc;

    return rc;
}


static ssize_t
ngx_http_maestro_ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
    size_t len, int flags, void *user_data)
{
    ngx_http_maestro_ws_t  *ws = user_data;

    ssize_t            rc;
    ngx_connection_t  *c;

    c = ws->r->connection;

    rc = c->send(c, (u_char *) data, len);

    if (rc == NGX_AGAIN || rc == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    if (rc == NGX_ERROR) {
        ws->hangup = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }

    return rc;
}


/*
 * RFC 6455 5.5.1: a close frame's body, when there is one, starts with
 * a two-byte code; wslay answers a one-byte body with an empty close.
 */
static void
ngx_http_maestro_ws_frame_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data)
{
    ngx_http_maestro_ws_t  *ws = user_data;

    uint64_t  len;

    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1) {
        wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
    }

    /* its size on the wire: header, extended length, mask, payload */
    len = arg->payload_length;
    ws->in_frame = 2 + (len > 65535 ? 8 : len > 125 ? 2 : 0) + 4 + len;

    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
    {
        ws->in_msg = !arg->fin;

    } else if (arg->opcode == WSLAY_CONTINUATION_FRAME && arg->fin) {
        ws->in_msg = 0;
    }
}


static void
ngx_http_maestro_ws_frame_end_cb(wslay_event_context_ptr ctx,
    void *user_data)
{
    ngx_http_maestro_ws_t  *ws = user_data;

    ws->in_used += ws->in_frame;
    ws->in_frame = 0;
}


static void
ngx_http_maestro_ws_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    ngx_http_maestro_ws_t  *ws = user_data;

    u_char     *text;
    size_t      len;
    ngx_int_t   rc;

    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
    {
        ws->last_data = ngx_current_msec;
    }

    switch (arg->opcode) {

    case WSLAY_TEXT_FRAME:

        if (wslay_get_rsv1(arg->rsv)) {
            /* permessage-deflate (only allowed once negotiated) */
            rc = ngx_http_maestro_ws_inflate(arg->msg, arg->msg_length,
                                             ws->mmcf->ws_max_message,
                                             &text, &len);
            if (rc == NGX_DECLINED) {
                wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG,
                                        NULL, 0);
                return;
            }

            if (rc != NGX_OK) {
                wslay_event_queue_close(ctx,
                                        WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                        (const uint8_t *) "bad deflate", 11);
                return;
            }

            if (!mst_utf8_valid((const char *) text, len)) {
                ngx_free(text);
                wslay_event_queue_close(ctx,
                                        WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                        (const uint8_t *) "invalid UTF-8", 13);
                return;
            }

            ngx_http_maestro_ws_message(ws, (const char *) text, len);
            ngx_free(text);
            return;
        }

        /* checked once the fragments are joined: a character may span
           two fragments */
        if (!mst_utf8_valid((const char *) arg->msg, arg->msg_length)) {
            ngx_log_error(NGX_LOG_INFO, ws->r->connection->log, 0,
                          "maestro: ws: invalid UTF-8 in a text message");
            wslay_event_queue_close(ctx,
                                    WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                    (const uint8_t *) "invalid UTF-8", 13);
            return;
        }

        ngx_http_maestro_ws_message(ws, (const char *) arg->msg,
                                    arg->msg_length);
        return;

    case WSLAY_BINARY_FRAME:
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
                                (const uint8_t *) "text messages only", 18);
        return;

    default:
        /* ping, pong and close are answered by wslay */
        return;
    }
}


static const struct wslay_event_callbacks  ngx_http_maestro_ws_callbacks = {
    ngx_http_maestro_ws_recv_cb,
    ngx_http_maestro_ws_send_cb,
    NULL,                                   /* genmask: clients only */
    ngx_http_maestro_ws_frame_cb,           /* on_frame_recv_start */
    NULL,                                   /* on_frame_recv_chunk */
    ngx_http_maestro_ws_frame_end_cb,       /* on_frame_recv_end */
    ngx_http_maestro_ws_msg_cb
};


/* the handshake */

static ngx_table_elt_t *
ngx_http_maestro_ws_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* whether a comma-separated header value has token (any case) */
static ngx_uint_t
ngx_http_maestro_ws_has_token(ngx_table_elt_t *h, const char *token)
{
    u_char  *p, *end, *start;
    size_t   len;

    if (h == NULL) {
        return 0;
    }

    len = ngx_strlen(token);
    p = h->value.data;
    end = p + h->value.len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
            p++;
        }

        if ((size_t) (p - start) == len
            && ngx_strncasecmp(start, (u_char *) token, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_maestro_ws_bad(ngx_http_request_t *r, const char *why)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h != NULL) {
        h->hash = 1;
        ngx_str_set(&h->key, "Sec-WebSocket-Version");
        ngx_str_set(&h->value, "13");
    }

    return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                       "bad_handshake", "%s", why);
}


/*
 * NGX_OK: a valid upgrade, the 101 headers are set. Else the request was
 * answered with an error and *rc is what that answer returned.
 */
static ngx_int_t
ngx_http_maestro_ws_handshake(ngx_http_request_t *r, ngx_int_t *rc)
{
    u_char            hash[20], *accept;
    ngx_str_t         src, dst;
    ngx_sha1_t        sha1;
    ngx_table_elt_t  *key, *version, *h;

    if (r->method != NGX_HTTP_GET) {
        *rc = ngx_http_maestro_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "method_not_allowed", "use GET");
        return NGX_DECLINED;
    }

    if (r->http_version != NGX_HTTP_VERSION_11) {
        *rc = ngx_http_maestro_ws_bad(r, "WebSocket needs HTTP/1.1");
        return NGX_DECLINED;
    }

    if (!ngx_http_maestro_ws_has_token(
            ngx_http_maestro_ws_header(r, "Upgrade"), "websocket")
        || !ngx_http_maestro_ws_has_token(
            ngx_http_maestro_ws_header(r, "Connection"), "upgrade"))
    {
        *rc = ngx_http_maestro_ws_bad(r, "not a WebSocket upgrade request");
        return NGX_DECLINED;
    }

    version = ngx_http_maestro_ws_header(r, "Sec-WebSocket-Version");

    if (version == NULL || version->value.len != 2
        || ngx_strncmp(version->value.data, "13", 2) != 0)
    {
        *rc = ngx_http_maestro_ws_bad(r, "Sec-WebSocket-Version must be 13");
        return NGX_DECLINED;
    }

    key = ngx_http_maestro_ws_header(r, "Sec-WebSocket-Key");

    /* base64 of 16 bytes */
    if (key == NULL || key->value.len != 24) {
        *rc = ngx_http_maestro_ws_bad(r, "bad Sec-WebSocket-Key");
        return NGX_DECLINED;
    }

    dst.data = hash;
    if (ngx_decode_base64(&dst, &key->value) != NGX_OK || dst.len != 16) {
        *rc = ngx_http_maestro_ws_bad(r, "bad Sec-WebSocket-Key");
        return NGX_DECLINED;
    }

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->value.data, key->value.len);
    ngx_sha1_update(&sha1, NGX_HTTP_MAESTRO_WS_GUID,
                    sizeof(NGX_HTTP_MAESTRO_WS_GUID) - 1);
    ngx_sha1_final(hash, &sha1);

    accept = ngx_pnalloc(r->pool, ngx_base64_encoded_length(20));
    if (accept == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    src.data = hash;
    src.len = 20;
    dst.data = accept;
    ngx_encode_base64(&dst, &src);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Upgrade");
    ngx_str_set(&h->value, "websocket");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Sec-WebSocket-Accept");
    h->value = dst;

    /* the header filter adds "Connection: upgrade" for 101 */

    return NGX_OK;
}


static void
ngx_http_maestro_ws_sub_wake(ngx_http_maestro_watch_t *w)
{
    ngx_http_maestro_ws_t  *ws = w->data;

    ngx_http_maestro_ws_pump(ws);
    ngx_http_maestro_ws_io(ws);
}


/*
 * A subscription (workflow id, after last). Slots are reused in place:
 * each holds a watch linked into the worker's index.
 */
static ngx_int_t
ngx_http_maestro_ws_subscribe(ngx_http_maestro_ws_t *ws, const char *id,
    uint64_t last)
{
    ngx_uint_t                  i, slot;
    ngx_http_maestro_ws_sub_t  *sub;

    slot = NGX_HTTP_MAESTRO_WS_MAX_SUBS;

    for (i = 0; i < NGX_HTTP_MAESTRO_WS_MAX_SUBS; i++) {
        sub = ws->subs[i];

        if (sub != NULL && sub->used && ngx_strcmp(sub->id, id) == 0) {
            return NGX_DECLINED;
        }

        if (slot == NGX_HTTP_MAESTRO_WS_MAX_SUBS
            && (sub == NULL || !sub->used || sub->finished))
        {
            slot = i;
        }
    }

    if (slot == NGX_HTTP_MAESTRO_WS_MAX_SUBS) {
        return NGX_ERROR;
    }

    sub = ws->subs[slot];

    if (sub == NULL) {
        sub = ngx_alloc(sizeof(ngx_http_maestro_ws_sub_t), ngx_cycle->log);
        if (sub == NULL) {
            return NGX_ERROR;
        }
        sub->used = 0;
        ws->subs[slot] = sub;
    }

    if (sub->used) {
        ngx_http_maestro_watch_del(ws->mmcf, &sub->watch);
    }

    ngx_memzero(sub, sizeof(ngx_http_maestro_ws_sub_t));
    ngx_memcpy(sub->id, id, MST_ID_LEN);
    sub->last = last;
    sub->used = 1;

    sub->watch.wake = ngx_http_maestro_ws_sub_wake;
    sub->watch.data = ws;
    ngx_http_maestro_watch_add(ws->mmcf, &sub->watch, sub->id);

    return NGX_OK;
}


/* a session starts with the user's workflows that are still running */
static void
ngx_http_maestro_ws_session_start(ngx_http_maestro_ws_t *ws)
{
    char              next[MST_ID_LEN + 1];
    size_t            i;
    json_t           *items, *rec;
    const char       *status;
    mst_txn_t        *txn;
    mst_wf_filter_t   f;

    if (mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK) {
        return;
    }

    (void) mst_feed_last(txn, &ws->feed_last);

    ngx_memzero(&f, sizeof(mst_wf_filter_t));
    f.user_id = ws->user;
    f.limit = NGX_HTTP_MAESTRO_WS_MAX_SUBS / 2;

    if (mst_store_wf_list(txn, &f, &items, next) == MST_OK) {
        json_array_foreach(items, i, rec) {
            status = json_string_value(json_object_get(rec, "status"));

            if (status != NULL
                && (ngx_strcmp(status, "queued") == 0
                    || ngx_strcmp(status, "running") == 0))
            {
                (void) ngx_http_maestro_ws_subscribe(ws,
                    json_string_value(json_object_get(rec, "id")), 0);
            }
        }

        json_decref(items);
    }

    mst_txn_abort(txn);
}


/*
 * The upgrade: handshake, the connection's state, and the hand-over of
 * the connection from nginx's HTTP machinery to wslay. NULL and *rc set
 * when it fails (before the 101, *rc is an HTTP answer).
 */
static ngx_http_maestro_ws_t *
ngx_http_maestro_ws_accept(ngx_http_request_t *r, ngx_int_t *rc)
{
    ngx_str_t                     *answer;
    ngx_table_elt_t               *h;
    ngx_connection_t              *c;
    ngx_pool_cleanup_t            *cln;
    ngx_http_maestro_ws_t         *ws;
    ngx_http_maestro_admit_t      *ad;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);
    c = r->connection;

    if (ngx_http_maestro_ws_handshake(r, rc) != NGX_OK) {
        return NULL;
    }

    *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    ad = ngx_http_maestro_admit_get(r);
    if (ad == NULL) {
        return NULL;
    }

    ws = ngx_calloc(sizeof(ngx_http_maestro_ws_t), c->log);
    if (ws == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_free(ws);
        return NULL;
    }

    ws->r = r;
    ws->mmcf = mmcf;
    ws->guard = ((ngx_http_maestro_loc_conf_t *)
                 ngx_http_get_module_loc_conf(r, ngx_http_maestro_module))
                ->guard;
    ws->caller = ad->caller;    /* identified with the upgrade request */
    ws->refs = 1;
    ws->last_seen = ngx_current_msec;

    /* linked before anything can fail: the cleanup unlinks */
    ngx_queue_insert_tail(&mmcf->ws_conns, &ws->queue);

    cln->handler = ngx_http_maestro_ws_cleanup;
    cln->data = ws;

    ws->ping.handler = ngx_http_maestro_ws_ping;
    ws->ping.data = ws;
    ws->ping.log = c->log;
    ws->ping.cancelable = 1;

    answer = ngx_http_maestro_ws_deflate_offer(
                 ngx_http_maestro_ws_header(r, "Sec-WebSocket-Extensions"));

    if (answer != NULL) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h != NULL) {
            h->hash = 1;
            ngx_str_set(&h->key, "Sec-WebSocket-Extensions");
            h->value = *answer;
            ws->deflate = 1;
        }
    }

    *rc = ngx_http_send_header(r);
    if (*rc == NGX_ERROR || *rc > NGX_OK) {
        return NULL;
    }

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        *rc = NGX_ERROR;
        return NULL;
    }

    /* frames the client sent right behind its handshake */
    if (r->header_in->pos < r->header_in->last) {
        ws->pre = r->header_in->pos;
        ws->pre_last = r->header_in->last;
    }

    c->log->action = "serving a WebSocket";

    r->read_event_handler = ngx_http_maestro_ws_read;
    r->write_event_handler = ngx_http_maestro_ws_write;
    r->main->count++;

    ngx_add_timer(&ws->ping, mmcf->ws_ping);

    return ws;
}


ngx_int_t
ngx_http_maestro_ws_start(ngx_http_request_t *r, ngx_str_t *workflow_id,
    ngx_str_t *user_id)
{
    char                             id[MST_ID_LEN + 1];
    json_t                          *rec;
    uint64_t                         last;
    ngx_int_t                        rc;
    mst_txn_t                       *txn;
    ngx_http_maestro_ws_t           *ws;
    ngx_http_maestro_admit_t        *ad;
    ngx_http_maestro_main_conf_t    *mmcf;
    ngx_http_maestro_admit_error_t   e;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    /* what to follow, checked before the upgrade so errors are HTTP */

    last = 0;

    if (workflow_id != NULL) {
        if (!mst_id_valid((char *) workflow_id->data, workflow_id->len)) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                               "not_found",
                                               "no such workflow");
        }

        ngx_memcpy(id, workflow_id->data, MST_ID_LEN);
        id[MST_ID_LEN] = '\0';

        if (mst_txn_begin(mmcf->env.store, 1, &txn) != MST_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = mst_store_wf_get(txn, id, &rec);
        mst_txn_abort(txn);

        if (rc != MST_OK) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                               "not_found",
                                               "no such workflow");
        }

        if (json_is_true(json_object_get(rec, "events_pruned"))) {
            json_decref(rec);
            return ngx_http_maestro_send_error(r, NGX_HTTP_MAESTRO_GONE,
                                               "events_expired",
                                               "the events of this workflow "
                                               "were dropped "
                                               "(maestro_event_retention)");
        }

        json_decref(rec);

        last = ngx_http_maestro_sse_last_event_id(r);
        if (last == (uint64_t) -1) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalid_field",
                                               "last_event_id must be a "
                                               "number");
        }

    } else {
        /* a session: the URL names the caller's user */
        ad = ngx_http_maestro_admit_get(r);
        if (ad == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_maestro_admit_identify(ad, user_id, &e) != NGX_OK) {
            return ngx_http_maestro_send_error(r, e.status, e.code, "%s",
                                               e.message);
        }
    }

    ws = ngx_http_maestro_ws_accept(r, &rc);
    if (ws == NULL) {
        return rc;
    }

    if (workflow_id != NULL) {
        (void) ngx_http_maestro_ws_subscribe(ws, id, last);

    } else {
        ngx_memcpy(ws->user, user_id->data, user_id->len);
        ws->session = 1;
        ngx_queue_insert_tail(&mmcf->feed_ws, &ws->fqueue);
        ngx_http_maestro_ws_session_start(ws);
    }

    ngx_http_maestro_ws_pump(ws);
    ngx_http_maestro_ws_io(ws);

    return NGX_DONE;
}


/* the monitor over WebSocket: /api/v1/events with an upgrade */
ngx_int_t
ngx_http_maestro_ws_start_monitor(ngx_http_request_t *r, uint64_t last,
    ngx_str_t *status, ngx_str_t *user)
{
    ngx_int_t                      rc;
    ngx_http_maestro_ws_t         *ws;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    if (status->len >= sizeof(ws->status) || user->len >= sizeof(ws->user)) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "status or user_id is too long");
    }

    ws = ngx_http_maestro_ws_accept(r, &rc);
    if (ws == NULL) {
        return rc;
    }

    ws->monitor = 1;
    ws->feed_last = last;
    ngx_memcpy(ws->status, status->data, status->len);
    ngx_memcpy(ws->user, user->data, user->len);

    ngx_queue_insert_tail(&mmcf->feed_ws, &ws->fqueue);

    ngx_http_maestro_ws_pump(ws);
    ngx_http_maestro_ws_io(ws);

    return NGX_DONE;
}


/* I/O */

static void
ngx_http_maestro_ws_read(ngx_http_request_t *r)
{
    ngx_http_maestro_ws_t  *ws;
    ngx_pool_cleanup_t     *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_maestro_ws_cleanup) {
            ws = cln->data;
            if (!ws->closed) {
                ngx_http_maestro_ws_io(ws);
            }
            return;
        }
    }
}


static void
ngx_http_maestro_ws_write(ngx_http_request_t *r)
{
    ngx_http_maestro_ws_read(r);
}


/* read what is there, write what is queued, refill, re-arm */
static void
ngx_http_maestro_ws_io(ngx_http_maestro_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->r->connection;

    if (ws->ctx == NULL) {
        if (!c->read->ready && ws->pre >= ws->pre_last) {
            /* idle, and nothing came: keep it that way */
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_maestro_ws_close(ws);
            }
            return;
        }

        if (ngx_http_maestro_ws_ctx(ws) != NGX_OK) {
            ngx_http_maestro_ws_close(ws);
            return;
        }
    }

    if (wslay_event_recv(ws->ctx) != 0) {
        ngx_http_maestro_ws_violation(ws);
        return;
    }

    /* room again after a slow client drained: more events */
    if (ngx_http_maestro_ws_queued(ws)
        < NGX_HTTP_MAESTRO_WS_MAX_QUEUED / 2)
    {
        ngx_http_maestro_ws_pump(ws);
    }

    if (wslay_event_send(ws->ctx) != 0) {
        ngx_http_maestro_ws_close(ws);
        return;
    }

    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
    {
        /* the close handshake is done */
        ngx_http_maestro_ws_close(ws);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK
        || ngx_handle_write_event(c->write, 0) != NGX_OK)
    {
        ngx_http_maestro_ws_close(ws);
        return;
    }

    ngx_http_maestro_ws_idle(ws);
}


/*
 * libwslay's context is 9.4 KB; an idle connection (thousands of them,
 * watching a workflow that is quiet) does not need one. It is made when
 * bytes arrive or a message is queued, and freed when wslay holds nothing
 * (no partial frame or fragmented message, nothing to send, no close
 * under way) and no data message went either way for a ping interval.
 */
static ngx_int_t
ngx_http_maestro_ws_ctx(ngx_http_maestro_ws_t *ws)
{
    if (ws->ctx != NULL) {
        return NGX_OK;
    }

    if (wslay_event_context_server_init(&ws->ctx,
                                        &ngx_http_maestro_ws_callbacks, ws)
        != 0)
    {
        ws->ctx = NULL;
        return NGX_ERROR;
    }

    wslay_event_config_set_max_recv_msg_length(ws->ctx,
                                               ws->mmcf->ws_max_message);
    if (ws->deflate) {
        wslay_event_config_set_allowed_rsv_bits(ws->ctx, WSLAY_RSV1_BIT);
    }

    ws->in_given = 0;
    ws->in_used = 0;
    ws->in_frame = 0;
    ws->in_msg = 0;

    return NGX_OK;
}


static void
ngx_http_maestro_ws_idle(ngx_http_maestro_ws_t *ws)
{
    if (ws->ctx == NULL || ws->closed
        || ngx_current_msec - ws->last_data < ws->mmcf->ws_ping
        || ws->in_given != ws->in_used || ws->in_msg
        || wslay_event_want_write(ws->ctx)
        || wslay_event_get_queued_msg_count(ws->ctx) != 0
        || wslay_event_get_close_sent(ws->ctx)
        || wslay_event_get_close_received(ws->ctx)
        || ws->pre < ws->pre_last)
    {
        return;
    }

    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
}


/* what wslay has queued; nothing without a context */
static size_t
ngx_http_maestro_ws_queued(ngx_http_maestro_ws_t *ws)
{
    return ws->ctx ? ngx_http_maestro_ws_queued(ws) : 0;
}


/*
 * wslay gave up on the peer's frames (a control frame over 125 bytes or
 * fragmented, ...) without a close code: RFC 6455 7.1.7 and 7.4.1 want a
 * close with 1002 before the TCP close, unless the peer is gone.
 */
static void
ngx_http_maestro_ws_violation(ngx_http_maestro_ws_t *ws)
{
    static u_char      close1002[] = { 0x88, 0x02, 0x03, 0xea };
    ngx_connection_t  *c;

    c = ws->r->connection;

    if (!ws->hangup
        && (ws->ctx == NULL || !wslay_event_get_close_sent(ws->ctx)))
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "maestro: ws: protocol error from the client");
        (void) c->send(c, close1002, sizeof(close1002));
    }

    ngx_http_maestro_ws_close(ws);
}


static void
ngx_http_maestro_ws_close(ngx_http_maestro_ws_t *ws)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    if (ws->closed) {
        return;
    }

    r = ws->r;
    c = r->connection;

    /* the cleanup handler detaches ws; the request goes with the socket */
    ngx_http_finalize_request(r, NGX_HTTP_CLOSE);

    /*
     * From a timer (pings, wake-ups) no connection event will run what
     * the termination posted: run it now.
     */
    ngx_http_run_posted_requests(c);
}


/* the request is going: detach (io tasks may still hold references) */
static void
ngx_http_maestro_ws_cleanup(void *data)
{
    ngx_http_maestro_ws_t  *ws = data;

    ngx_uint_t  i;

    if (ws->ping.timer_set) {
        ngx_del_timer(&ws->ping);
    }

    ngx_queue_remove(&ws->queue);

    if (ws->session || ws->monitor) {
        ngx_queue_remove(&ws->fqueue);
    }

    for (i = 0; i < NGX_HTTP_MAESTRO_WS_MAX_SUBS; i++) {
        if (ws->subs[i] == NULL) {
            continue;
        }

        if (ws->subs[i]->used) {
            ngx_http_maestro_watch_del(ws->mmcf, &ws->subs[i]->watch);
        }

        ngx_free(ws->subs[i]);
        ws->subs[i] = NULL;
    }

    if (ws->ctx != NULL) {
        wslay_event_context_free(ws->ctx);
        ws->ctx = NULL;
    }
    ws->closed = 1;
    ws->r = NULL;

    ngx_http_maestro_ws_release(ws);
}


static void
ngx_http_maestro_ws_release(ngx_http_maestro_ws_t *ws)
{
    if (--ws->refs == 0) {
        ngx_free(ws);
    }
}


static void
ngx_http_maestro_ws_ping(ngx_event_t *ev)
{
    ngx_http_maestro_ws_t  *ws = ev->data;

    struct wslay_event_msg  msg;

    if (ws->closed) {
        return;
    }

    if (ngx_http_maestro_ws_ctx(ws) != NGX_OK) {
        ngx_http_maestro_ws_close(ws);
        return;
    }

    if (wslay_event_get_close_sent(ws->ctx)) {
        /* a whole interval without the peer's close: no more waiting */
        ngx_http_maestro_ws_close(ws);
        return;
    }

    if (ngx_current_msec - ws->last_seen >= 2 * ws->mmcf->ws_ping) {
        /* no pong, no message: the peer is gone */
        wslay_event_queue_close(ws->ctx, WSLAY_CODE_GOING_AWAY,
                                (const uint8_t *) "idle timeout", 12);

    } else {
        ngx_memzero(&msg, sizeof(struct wslay_event_msg));
        msg.opcode = WSLAY_PING;
        msg.msg = (const uint8_t *) "maestro";
        msg.msg_length = 7;
        wslay_event_queue_msg(ws->ctx, &msg);
    }

    ngx_add_timer(ev, ws->mmcf->ws_ping);

    ngx_http_maestro_ws_io(ws);
}


/* a text message, compressed when that was agreed and pays */
static void
ngx_http_maestro_ws_queue_text(ngx_http_maestro_ws_t *ws, const u_char *text,
    size_t len)
{
    u_char                  *z;
    size_t                   zlen;
    struct wslay_event_msg   msg;

    if (ngx_http_maestro_ws_ctx(ws) != NGX_OK) {
        return;
    }

    ws->last_data = ngx_current_msec;

    ngx_memzero(&msg, sizeof(struct wslay_event_msg));
    msg.opcode = WSLAY_TEXT_FRAME;

    if (ws->deflate
        && ngx_http_maestro_ws_deflate(text, len, &z, &zlen) == NGX_OK)
    {
        msg.msg = z;
        msg.msg_length = zlen;

        /* wslay copies the message */
        (void) wslay_event_queue_msg_ex(ws->ctx, &msg, WSLAY_RSV1_BIT);
        ngx_free(z);
        return;
    }

    msg.msg = text;
    msg.msg_length = len;

    (void) wslay_event_queue_msg(ws->ctx, &msg);
}


/* outbound: events as JSON messages */

typedef struct {
    ngx_http_maestro_ws_t      *ws;
    ngx_http_maestro_ws_sub_t  *sub;
    size_t                      n;
    ngx_uint_t                  fill;   /* into the shared cache too */
    ngx_uint_t                  full;   /* stopped: too much queued */
} ngx_http_maestro_ws_pump_t;


/* a workflow's messages formatted once per wake-up for its sockets */
static ngx_http_maestro_event_cache_t  ngx_http_maestro_ws_cache;


/* runs inside the read transaction: data points into the map */
static int
ngx_http_maestro_ws_event(uint64_t seq, const char *name, const char *data,
    size_t len, void *arg)
{
    ngx_http_maestro_ws_pump_t  *wp = arg;

    u_char      *buf, *p;
    size_t       size;
    ngx_uint_t   final;

    wp->n++;

    size = sizeof("{\"type\":\"\",\"workflow_id\":\"\",\"event_id\":,"
                  "\"data\":}") - 1
           + ngx_strlen(name) + MST_ID_LEN + NGX_INT64_LEN + len;

    buf = ngx_alloc(size, ngx_cycle->log);
    if (buf == NULL) {
        return 1;
    }

    p = ngx_sprintf(buf, "{\"type\":\"%s\",\"workflow_id\":\"%s\","
                    "\"event_id\":%uL,\"data\":", name, wp->sub->id, seq);
    p = ngx_cpymem(p, data, len);
    *p++ = '}';

    ngx_http_maestro_ws_queue_text(wp->ws, buf, p - buf);

    final = (ngx_strcmp(name, "done") == 0 || ngx_strcmp(name, "error") == 0);

    if (wp->fill) {
        ngx_http_maestro_event_cache_add(&ngx_http_maestro_ws_cache, seq,
                                         buf, p - buf, final);
    }

    ngx_free(buf);

    wp->sub->last = seq;

    if (final) {
        wp->sub->finished = 1;
        return 1;
    }

    if (ngx_http_maestro_ws_queued(wp->ws)
        >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED)
    {
        wp->full = 1;
        return 1;
    }

    return 0;
}


/* a session learns of its user's new workflows from the feed */
static int
ngx_http_maestro_ws_feed(uint64_t seq, const char *name, const char *data,
    size_t len, void *arg)
{
    ngx_http_maestro_ws_t  *ws = arg;

    json_t      *j;
    const char  *user, *id, *status;

    ws->feed_last = seq;

    j = json_loadb(data, len, 0, NULL);
    if (j == NULL) {
        return 0;
    }

    user = json_string_value(json_object_get(j, "user_id"));
    id = json_string_value(json_object_get(j, "id"));
    status = json_string_value(json_object_get(j, "status"));

    if (ws->monitor) {
        if ((ws->user[0] == '\0'
             || (user != NULL && ngx_strcmp(user, ws->user) == 0))
            && (ws->status[0] == '\0'
                || (status != NULL && ngx_strcmp(status, ws->status) == 0)))
        {
            ngx_http_maestro_ws_send(ws,
                json_pack("{s:s, s:I, s:s?, s:O}",
                          "type", name,
                          "feed_id", (json_int_t) seq,
                          "workflow_id", id,
                          "data", j));
        }

        json_decref(j);

        return ngx_http_maestro_ws_queued(ws)
               >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED;
    }

    if (user != NULL && id != NULL && status != NULL
        && ngx_strcmp(user, ws->user) == 0
        && ngx_strcmp(status, "queued") == 0)
    {
        (void) ngx_http_maestro_ws_subscribe(ws, id, 0);
    }

    json_decref(j);

    return 0;
}


static void
ngx_http_maestro_ws_pump(ngx_http_maestro_ws_t *ws)
{
    size_t                           k;
    ngx_int_t                        rc;
    ngx_uint_t                       i, epoch;
    mst_txn_t                       *txn;
    ngx_http_maestro_event_cache_t  *c;
    ngx_http_maestro_ws_pump_t       wp;

    if (ws->closed
        || ngx_http_maestro_ws_queued(ws)
           >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED)
    {
        return;
    }

    txn = NULL;

    if (ws->session || ws->monitor) {
        if (mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK) {
            return;
        }

        (void) mst_feed_range(txn, ws->feed_last, 0,
                              ngx_http_maestro_ws_feed, ws);
    }

    wp.ws = ws;
    c = &ngx_http_maestro_ws_cache;
    epoch = ws->mmcf->wake_epoch;

    for (i = 0; i < NGX_HTTP_MAESTRO_WS_MAX_SUBS; i++) {
        if (ws->subs[i] == NULL || !ws->subs[i]->used
            || ws->subs[i]->finished)
        {
            continue;
        }

        wp.sub = ws->subs[i];

        /* what another socket of this workflow read in this wake-up */

        rc = ngx_http_maestro_event_cache_find(c, wp.sub->id, wp.sub->last,
                                               epoch, &k);
        if (rc == NGX_DONE) {
            continue;
        }

        if (rc == NGX_OK) {
            for ( /* void */ ;
                 k < c->n
                 && ngx_http_maestro_ws_queued(ws)
                    < NGX_HTTP_MAESTRO_WS_MAX_QUEUED;
                 k++)
            {
                ngx_http_maestro_ws_queue_text(ws, c->text + c->offs[k],
                                               c->offs[k + 1] - c->offs[k]);
                wp.sub->last = c->seqs[k];
            }

            if (k == c->n && c->final) {
                wp.sub->finished = 1;
            }

            continue;
        }

        if (txn == NULL
            && mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK)
        {
            return;
        }

        /* the first batch becomes the cache of this wake-up */
        ngx_http_maestro_event_cache_reset(c, wp.sub->id, wp.sub->last,
                                           epoch);
        wp.fill = 1;
        wp.full = 0;

        do {
            wp.n = 0;
            (void) mst_store_event_range(txn, wp.sub->id, wp.sub->last,
                                         NGX_HTTP_MAESTRO_WS_BATCH,
                                         ngx_http_maestro_ws_event, &wp);

            /* shareable when it reached the end of the log (or the
               final event), not when the socket's queue stopped it */
            if (wp.fill && !wp.full
                && (wp.n < NGX_HTTP_MAESTRO_WS_BATCH || wp.sub->finished))
            {
                ngx_http_maestro_event_cache_done(c);
            }

            wp.fill = 0;

        } while (wp.n == NGX_HTTP_MAESTRO_WS_BATCH && !wp.sub->finished
                 && ngx_http_maestro_ws_queued(ws)
                    < NGX_HTTP_MAESTRO_WS_MAX_QUEUED);

        if (ngx_http_maestro_ws_queued(ws)
            >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED)
        {
            break;
        }
    }

    if (txn != NULL) {
        mst_txn_abort(txn);
    }
}


/* the sessions follow the feed (subscriptions wake through the watch) */
void
ngx_http_maestro_ws_wakeup(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_queue_t            *q, *next;
    ngx_http_maestro_ws_t  *ws;

    for (q = ngx_queue_head(&mmcf->feed_ws);
         q != ngx_queue_sentinel(&mmcf->feed_ws);
         q = next)
    {
        /* the I/O may close (and unlink) this connection */
        next = ngx_queue_next(q);
        ws = ngx_queue_data(q, ngx_http_maestro_ws_t, fqueue);

        ngx_http_maestro_ws_pump(ws);
        ngx_http_maestro_ws_io(ws);
    }
}


void
ngx_http_maestro_ws_shutdown(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_queue_t            *q, *next;
    ngx_http_maestro_ws_t  *ws;

    for (q = ngx_queue_head(&mmcf->ws_conns);
         q != ngx_queue_sentinel(&mmcf->ws_conns);
         q = next)
    {
        next = ngx_queue_next(q);
        ws = ngx_queue_data(q, ngx_http_maestro_ws_t, queue);

        /* clients resubscribe with their last event ids elsewhere */
        if (ngx_http_maestro_ws_ctx(ws) == NGX_OK) {
            wslay_event_queue_close(ws->ctx, WSLAY_CODE_GOING_AWAY,
                                    (const uint8_t *) "server restart", 14);
            (void) wslay_event_send(ws->ctx);
        }
        ngx_http_maestro_ws_close(ws);
    }
}


static void
ngx_http_maestro_ws_send(ngx_http_maestro_ws_t *ws, json_t *msg)
{
    char  *text;

    if (msg == NULL || ws->closed) {
        json_decref(msg);
        return;
    }

    text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);

    if (text == NULL) {
        return;
    }

    ngx_http_maestro_ws_queue_text(ws, (u_char *) text, ngx_strlen(text));
    free(text);
}


/* a malformed message gets an error message; the connection stays */
static void
ngx_http_maestro_ws_error(ngx_http_maestro_ws_t *ws, const char *code,
    const char *fmt, ...)
{
    char     msg[512];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (!mst_utf8_valid(msg, ngx_strlen(msg))) {
        ngx_cpystrn((u_char *) msg, (u_char *) "invalid message",
                    sizeof(msg));
    }

    ngx_http_maestro_ws_send(ws, json_pack("{s:s, s:s, s:s}", "type",
                                           "error", "code", code,
                                           "message", msg));
}


/* prompt_submission: the same submission as POST /api/v1/workflows */

static void
ngx_http_maestro_ws_submitted(ngx_http_maestro_submit_t *sb)
{
    ngx_http_maestro_ws_t  *ws = sb->data;

    if (!ws->closed) {
        if (sb->rc != MST_OK) {
            ngx_http_maestro_ws_error(ws, sb->rc == MST_MAPFULL
                                          ? "store_full" : "store_error",
                                      "cannot store workflow: %s",
                                      mst_strerror(sb->rc));

        } else {
            (void) ngx_http_maestro_ws_subscribe(ws, sb->id, 0);

            ngx_http_maestro_ws_send(ws,
                json_pack("{s:s, s:s, s:b, s:s, s:s}",
                          "type", "action_result",
                          "action", "prompt_submission",
                          "ok", 1,
                          "workflow_id", sb->id,
                          "status", "queued"));

            ngx_http_maestro_ws_pump(ws);
            ngx_http_maestro_ws_io(ws);
        }
    }

    ngx_http_maestro_submit_finish(sb);
    ngx_http_maestro_ws_release(ws);
}


static void
ngx_http_maestro_ws_submit(ngx_http_maestro_ws_t *ws, json_t *m)
{
    ngx_log_t                       *log;
    ngx_http_maestro_admit_t         ad;
    ngx_http_maestro_submit_t       *sb;
    ngx_http_maestro_admit_error_t   e;

    log = ws->r->connection->log;

    /* the admission path, for each message: the connection's caller */

    if (ngx_http_maestro_admit_message(&ad, &ws->caller,
                                       NGX_HTTP_MAESTRO_WAY_WS, log, &e)
        != NGX_OK)
    {
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    sb = ngx_http_maestro_admit_submission(&ad, ws->mmcf, m, ws->guard, log,
                                           &e);
    if (sb == NULL) {
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    sb->done = ngx_http_maestro_ws_submitted;
    sb->data = ws;

    if (ngx_http_maestro_admit_dispatch(sb, &e) != NGX_OK) {
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    ws->refs++;
}


/* agent_action cancel */

/* runs on a pool thread */
static void
ngx_http_maestro_ws_cancel_thread(void *arg)
{
    ngx_http_maestro_ws_cancel_t  *wc = arg;

    wc->rc = mst_run_cancel(&wc->ws->mmcf->env, wc->id,
                            ngx_http_maestro_run_alive, &wc->rec,
                            &wc->final, wc->err, sizeof(wc->err));
}


/* runs in the event loop */
static void
ngx_http_maestro_ws_cancel_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_ws_cancel_t  *wc = arg;

    ngx_http_maestro_ws_t  *ws;

    ws = wc->ws;

    if (!ws->closed) {
        if (trc != NGX_OK || (wc->rc != MST_OK && wc->rc != MST_EXISTS)) {
            ngx_http_maestro_ws_error(ws, wc->rc == MST_NOTFOUND
                                          ? "not_found" : "store_error",
                                      "%s", wc->err);

        } else {
            ngx_http_maestro_ws_send(ws,
                json_pack("{s:s, s:s, s:b, s:s, s:O}",
                          "type", "action_result",
                          "action", "cancel",
                          "ok", wc->rc == MST_OK,
                          "workflow_id", wc->id,
                          "status", json_object_get(wc->rec, "status")
                                    ? json_object_get(wc->rec, "status")
                                    : json_null()));
        }

        ngx_http_maestro_ws_io(ws);
    }

    json_decref(wc->rec);
    ngx_free(wc);
    ngx_http_maestro_ws_release(ws);
}


static void
ngx_http_maestro_ws_action(ngx_http_maestro_ws_t *ws, json_t *m)
{
    const char                    *id, *action;
    ngx_http_maestro_ws_cancel_t  *wc;

    id = json_string_value(json_object_get(m, "workflow_id"));
    action = json_string_value(json_object_get(m, "action"));

    if (id == NULL || !mst_id_valid(id, ngx_strlen(id))) {
        ngx_http_maestro_ws_error(ws, "invalid_field",
                                  "\"workflow_id\" must be a workflow id");
        return;
    }

    if (action == NULL) {
        ngx_http_maestro_ws_error(ws, "missing_field",
                                  "\"action\" is required");
        return;
    }

    if (ngx_strcmp(action, "approve") == 0
        || ngx_strcmp(action, "resume") == 0
        || ngx_strcmp(action, "feedback") == 0)
    {
        /* human-in-the-loop steps do not exist yet: say so */
        ngx_http_maestro_ws_error(ws, "unsupported_action",
                                  "\"%s\" needs a workflow step that waits "
                                  "for a human, which Maestro does not "
                                  "have yet", action);
        return;
    }

    if (ngx_strcmp(action, "cancel") != 0) {
        ngx_http_maestro_ws_error(ws, "invalid_field",
                                  "\"action\" must be cancel, approve, "
                                  "resume or feedback");
        return;
    }

    wc = ngx_calloc(sizeof(ngx_http_maestro_ws_cancel_t),
                    ws->r->connection->log);
    if (wc == NULL) {
        return;
    }

    wc->ws = ws;
    ngx_memcpy(wc->id, id, MST_ID_LEN);

    if (ngx_http_maestro_io_post(ws->mmcf, ngx_http_maestro_ws_cancel_thread,
                                 ngx_http_maestro_ws_cancel_done, wc)
        != NGX_OK)
    {
        ngx_free(wc);
        ngx_http_maestro_ws_error(ws, "queue_full",
                                  "the io thread pool queue is full");
        return;
    }

    ws->refs++;
}


/* 1: it exists and has its events; 0: no such workflow; 2: pruned */
static ngx_uint_t
ngx_http_maestro_ws_exists(ngx_http_maestro_ws_t *ws, const char *id)
{
    int          rc;
    json_t      *rec;
    mst_txn_t   *txn;
    ngx_uint_t   found;

    if (mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK) {
        return 0;
    }

    rc = mst_store_wf_get(txn, id, &rec);
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return 0;
    }

    found = json_is_true(json_object_get(rec, "events_pruned")) ? 2 : 1;
    json_decref(rec);

    return found;
}


static void
ngx_http_maestro_ws_message(ngx_http_maestro_ws_t *ws, const char *text,
    size_t len)
{
    json_t        *m, *v;
    uint64_t       last;
    ngx_uint_t     found;
    const char    *type, *id;
    json_error_t   jerr;

    m = json_loadb(text, len, 0, &jerr);

    if (!json_is_object(m)) {
        ngx_http_maestro_ws_error(ws, "invalid_json",
                                  m ? "a message is a JSON object"
                                    : "line %d column %d: %s",
                                  jerr.line, jerr.column, jerr.text);
        json_decref(m);
        return;
    }

    type = json_string_value(json_object_get(m, "type"));

    if (type == NULL) {
        ngx_http_maestro_ws_error(ws, "missing_field",
                                  "\"type\" is required");

    } else if (ngx_strcmp(type, "prompt_submission") == 0) {
        ngx_http_maestro_ws_submit(ws, m);

    } else if (ngx_strcmp(type, "agent_action") == 0) {
        ngx_http_maestro_ws_action(ws, m);

    } else if (ngx_strcmp(type, "subscribe") == 0) {
        id = json_string_value(json_object_get(m, "workflow_id"));
        v = json_object_get(m, "last_event_id");
        last = json_is_integer(v) && json_integer_value(v) > 0
               ? (uint64_t) json_integer_value(v) : 0;

        if (id == NULL || !mst_id_valid(id, ngx_strlen(id))
            || (v != NULL && !json_is_integer(v)))
        {
            ngx_http_maestro_ws_error(ws, "invalid_field",
                                      "subscribe needs a \"workflow_id\" "
                                      "and an integer \"last_event_id\"");

        } else if ((found = ngx_http_maestro_ws_exists(ws, id)) != 1) {
            if (found == 0) {
                ngx_http_maestro_ws_error(ws, "not_found",
                                          "no workflow \"%s\"", id);
            } else {
                ngx_http_maestro_ws_error(ws, "events_expired",
                                          "the events of \"%s\" were "
                                          "dropped "
                                          "(maestro_event_retention)", id);
            }

        } else {
            switch (ngx_http_maestro_ws_subscribe(ws, id, last)) {
            case NGX_ERROR:
                ngx_http_maestro_ws_error(ws, "too_many_subscriptions",
                                          "at most %d workflows per "
                                          "connection",
                                          NGX_HTTP_MAESTRO_WS_MAX_SUBS);
                break;
            default:
                ngx_http_maestro_ws_send(ws,
                    json_pack("{s:s, s:s, s:b, s:s}",
                              "type", "action_result",
                              "action", "subscribe",
                              "ok", 1,
                              "workflow_id", id));
                ngx_http_maestro_ws_pump(ws);
            }
        }

    } else {
        ngx_http_maestro_ws_error(ws, "invalid_field",
                                  "unknown message type \"%s\"", type);
    }

    json_decref(m);
}
