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
 * This file holds the protocol (handshake, wslay, I/O, ping, close);
 * ngx_http_maestro_ws_session.c what a connection follows and says.
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
#include "ngx_http_maestro_ws.h"
#include "ngx_http_maestro_ws_deflate.h"
#include "ngx_http_maestro_watch.h"


#define NGX_HTTP_MAESTRO_WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* how long a close we sent waits for the peer, reading what it still
   sends, before the socket goes */
#define NGX_HTTP_MAESTRO_WS_LINGER  2000


static ngx_int_t ngx_http_maestro_ws_handshake(ngx_http_request_t *r,
    ngx_int_t *rc);
static void ngx_http_maestro_ws_read(ngx_http_request_t *r);
static void ngx_http_maestro_ws_write(ngx_http_request_t *r);
static void ngx_http_maestro_ws_close(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_violation(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_linger(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_drain(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_cleanup(void *data);
static void ngx_http_maestro_ws_ping(ngx_event_t *ev);
static ngx_int_t ngx_http_maestro_ws_ctx(ngx_http_maestro_ws_t *ws);
static void ngx_http_maestro_ws_idle(ngx_http_maestro_ws_t *ws);


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
            ngx_http_maestro_header_in(r, "Upgrade"), "websocket")
        || !ngx_http_maestro_ws_has_token(
            ngx_http_maestro_header_in(r, "Connection"), "upgrade"))
    {
        *rc = ngx_http_maestro_ws_bad(r, "not a WebSocket upgrade request");
        return NGX_DECLINED;
    }

    version = ngx_http_maestro_header_in(r, "Sec-WebSocket-Version");

    if (version == NULL || version->value.len != 2
        || ngx_strncmp(version->value.data, "13", 2) != 0)
    {
        *rc = ngx_http_maestro_ws_bad(r, "Sec-WebSocket-Version must be 13");
        return NGX_DECLINED;
    }

    key = ngx_http_maestro_header_in(r, "Sec-WebSocket-Key");

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

    /*
     * A browser that sends its credential as "maestro.bearer.<token>"
     * offers "maestro" too; the server selects it (a client offering
     * subprotocols fails the connection when none is selected).
     */
    if (ngx_http_maestro_ws_has_token(
            ngx_http_maestro_header_in(r, "Sec-WebSocket-Protocol"),
            "maestro"))
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DECLINED;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Sec-WebSocket-Protocol");
        ngx_str_set(&h->value, "maestro");
    }

    /* the header filter adds "Connection: upgrade" for 101 */

    return NGX_OK;
}


/*
 * The upgrade: handshake, the connection's state, and the hand-over of
 * the connection from nginx's HTTP machinery to wslay. NULL and *rc set
 * when it fails (before the 101, *rc is an HTTP answer).
 */
ngx_http_maestro_ws_t *
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
                 ngx_http_maestro_header_in(r, "Sec-WebSocket-Extensions"));

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
void
ngx_http_maestro_ws_io(ngx_http_maestro_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->r->connection;

    if (ws->lingering) {
        ngx_http_maestro_ws_drain(ws);
        return;
    }

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
        /* the close handshake is done, or our close is sent */
        ngx_http_maestro_ws_linger(ws);
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
size_t
ngx_http_maestro_ws_queued(ngx_http_maestro_ws_t *ws)
{
    return ws->ctx ? wslay_event_get_queued_msg_length(ws->ctx) : 0;
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

    ngx_http_maestro_ws_linger(ws);
}


/*
 * A close we sent while the peer still sends (the rest of a frame over
 * maestro_ws_max_message, say): closing the socket with unread bytes
 * makes the kernel answer with a reset, which drops our close frame
 * before the client reads it. So, as nginx's lingering close does: no
 * more writes (FIN after the close frame), read and discard until the
 * peer closes or NGX_HTTP_MAESTRO_WS_LINGER ms pass.
 */
static void
ngx_http_maestro_ws_linger(ngx_http_maestro_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->r->connection;

    if (ws->hangup
        || (ws->ctx != NULL && wslay_event_get_close_received(ws->ctx)))
    {
        ngx_http_maestro_ws_close(ws);
        return;
    }

    if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
        ngx_http_maestro_ws_close(ws);
        return;
    }

    ws->lingering = 1;
    ngx_add_timer(c->read, NGX_HTTP_MAESTRO_WS_LINGER);

    ngx_http_maestro_ws_drain(ws);
}


static void
ngx_http_maestro_ws_drain(ngx_http_maestro_ws_t *ws)
{
    u_char             buf[NGX_HTTP_LINGERING_BUFFER_SIZE];
    ssize_t            n;
    ngx_connection_t  *c;

    c = ws->r->connection;

    if (c->read->timedout) {
        ngx_http_maestro_ws_close(ws);
        return;
    }

    do {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_maestro_ws_close(ws);
            return;
        }

    } while (c->read->ready);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_maestro_ws_close(ws);
    }
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


void
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
void
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


void
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

