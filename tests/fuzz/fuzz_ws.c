/*
 * Copyright (C) Maestro authors
 */

/*
 * libFuzzer target for what a WebSocket client sends after the
 * handshake: arbitrary bytes as the data a connection receives, through
 * a libwslay server context set up as ngx_http_maestro_ws.c sets up its
 * own (maestro_ws_max_message's default as the message limit, RSV1
 * allowed when permessage-deflate was agreed, the same callbacks'
 * decisions), and every message wslay hands over through what the
 * module does with it: a compressed one inflated (core/text/
 * mst_inflate.c), UTF-8 checked, parsed as a client message (core/text/
 * mst_ws_msg.c), and a prompt_submission checked as a submission
 * (core/text/mst_request.c).
 *
 * The first input byte picks the size of each read (the event loop gets
 * the bytes in arbitrary pieces) and whether deflate was agreed; the
 * rest is the stream. Beyond ASan, UBSan and LSan: no message handed
 * over is longer than the limit, a refusal has a code and a UTF-8
 * message, and wslay's answers are sent.
 *
 *   make fuzz                       (60 s each; FUZZ_SECONDS=N for longer)
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "mst_inflate.h"
#include "mst_ws_msg.h"


/* the module's default maestro_ws_max_message; small enough to reach */
#define FUZZ_MAX_MESSAGE  (1024 * 1024)


typedef struct {
    const uint8_t   *in;
    size_t           left;
    size_t           chunk;
    size_t           sent;
    unsigned         deflate:1;
} fuzz_conn_t;


static z_stream  fuzz_z;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (inflateInit2(&fuzz_z, -15) != Z_OK) {
        abort();
    }

    return 0;
}


static ssize_t
fuzz_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    int flags, void *user_data)
{
    size_t        n;
    fuzz_conn_t  *c = user_data;

    if (c->left == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    n = len < c->chunk ? len : c->chunk;
    n = n < c->left ? n : c->left;

    memcpy(buf, c->in, n);
    c->in += n;
    c->left -= n;

    return (ssize_t) n;
}


static ssize_t
fuzz_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user_data)
{
    fuzz_conn_t  *c = user_data;

    c->sent += len;

    return (ssize_t) len;
}


/* as ngx_http_maestro_ws_frame_cb(): a one-byte close body is refused */
static void
fuzz_frame_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data)
{
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1) {
        wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
    }
}


/* what ngx_http_maestro_ws_message() decides on a text message */
static void
fuzz_message(const char *text, size_t len)
{
    json_t               *ctx;
    mst_caller_t          who;
    mst_ws_msg_t          m;
    mst_request_error_t   e;

    if (mst_ws_msg_parse(text, len, &m, &e) != MST_OK) {
        if (e.code == NULL || m.json != NULL
            || !mst_utf8_valid(e.message, strlen(e.message)))
        {
            abort();
        }

        return;
    }

    switch (m.type) {

    case MST_WS_MSG_PROMPT:
        mst_caller_local(&who);

        if (mst_request_submission(m.json, &who, &ctx, &e) == MST_OK) {
            json_decref(ctx);

        } else if (e.code == NULL
                   || !mst_utf8_valid(e.message, strlen(e.message)))
        {
            abort();
        }

        break;

    case MST_WS_MSG_CANCEL:
    case MST_WS_MSG_SUBSCRIBE:
        if (!mst_id_valid(m.workflow_id, strlen(m.workflow_id))) {
            abort();
        }

        break;

    default:
        abort();
    }

    mst_ws_msg_free(&m);
}


/* as ngx_http_maestro_ws_msg_cb() */
static void
fuzz_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    int           rc;
    size_t        len;
    uint8_t      *text;
    fuzz_conn_t  *c = user_data;

    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
    {
        if (arg->msg_length > FUZZ_MAX_MESSAGE) {
            abort();
        }
    }

    switch (arg->opcode) {

    case WSLAY_TEXT_FRAME:

        if (wslay_get_rsv1(arg->rsv)) {
            if (!c->deflate) {
                /* wslay lets RSV1 through only when it was allowed */
                abort();
            }

            rc = mst_inflate_msg(&fuzz_z, arg->msg, arg->msg_length,
                                 FUZZ_MAX_MESSAGE, &text, &len);

            if (rc == MST_INFLATE_TOO_BIG) {
                wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG,
                                        NULL, 0);
                return;
            }

            if (rc != MST_OK) {
                wslay_event_queue_close(ctx,
                                        WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                        (const uint8_t *) "bad deflate", 11);
                return;
            }

            if (len > FUZZ_MAX_MESSAGE) {
                abort();
            }

            if (!mst_utf8_valid((const char *) text, len)) {
                free(text);
                wslay_event_queue_close(ctx,
                                        WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                        (const uint8_t *) "invalid UTF-8", 13);
                return;
            }

            fuzz_message((const char *) text, len);
            free(text);
            return;
        }

        if (!mst_utf8_valid((const char *) arg->msg, arg->msg_length)) {
            wslay_event_queue_close(ctx,
                                    WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                    (const uint8_t *) "invalid UTF-8", 13);
            return;
        }

        fuzz_message((const char *) arg->msg, arg->msg_length);
        return;

    case WSLAY_BINARY_FRAME:
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
                                (const uint8_t *) "text messages only", 18);
        return;

    default:
        return;
    }
}


static const struct wslay_event_callbacks  fuzz_callbacks = {
    fuzz_recv_cb,
    fuzz_send_cb,
    NULL,
    fuzz_frame_cb,
    NULL,
    NULL,
    fuzz_msg_cb
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      i;
    fuzz_conn_t              c;
    wslay_event_context_ptr  ctx;

    if (size < 1) {
        return 0;
    }

    memset(&c, 0, sizeof(c));
    c.chunk = (data[0] & 0x7f) + 1;
    c.deflate = (data[0] & 0x80) != 0;
    c.in = data + 1;
    c.left = size - 1;

    if (wslay_event_context_server_init(&ctx, &fuzz_callbacks, &c) != 0) {
        abort();
    }

    wslay_event_config_set_max_recv_msg_length(ctx, FUZZ_MAX_MESSAGE);

    if (c.deflate) {
        wslay_event_config_set_allowed_rsv_bits(ctx, WSLAY_RSV1_BIT);
    }

    /* the read and write handlers, until wslay is done or starved */
    for (i = 0; i < 4096; i++) {
        if (wslay_event_recv(ctx) != 0 || wslay_event_send(ctx) != 0) {
            break;
        }

        if (c.left == 0 && !wslay_event_want_write(ctx)) {
            break;
        }

        if (!wslay_event_want_read(ctx) && !wslay_event_want_write(ctx)) {
            break;
        }
    }

    wslay_event_context_free(ctx);

    return 0;
}
