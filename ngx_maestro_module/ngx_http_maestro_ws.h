/*
 * Copyright (C) Maestro authors
 */

/*
 * WebSocket (ngx_http_maestro_ws.c: the protocol;
 * ngx_http_maestro_ws_session.c: the session).
 */

#ifndef _NGX_HTTP_MAESTRO_WS_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_WS_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <wslay/wslay.h>

#include "ngx_http_maestro_module.h"
#include "mst_caller.h"
#include "ngx_http_maestro_watch.h"


#define NGX_HTTP_MAESTRO_WS_MAX_SUBS   64
#define NGX_HTTP_MAESTRO_WS_MAX_QUEUED (512 * 1024)


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
    unsigned                        lingering:1;    /* closed, draining */
    unsigned                        in_msg:1;   /* between fragments */
} ngx_http_maestro_ws_t;


ngx_int_t ngx_http_maestro_ws_start(ngx_http_request_t *r,
    ngx_str_t *workflow_id, ngx_str_t *user_id);
ngx_int_t ngx_http_maestro_ws_start_monitor(ngx_http_request_t *r,
    uint64_t last, ngx_str_t *status, ngx_str_t *user);
void ngx_http_maestro_ws_wakeup(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_ws_shutdown(ngx_http_maestro_main_conf_t *mmcf);

/* between the protocol (_ws.c) and the session (_ws_session.c) */
ngx_http_maestro_ws_t *ngx_http_maestro_ws_accept(ngx_http_request_t *r,
    ngx_int_t *rc);
void ngx_http_maestro_ws_io(ngx_http_maestro_ws_t *ws);
void ngx_http_maestro_ws_release(ngx_http_maestro_ws_t *ws);
size_t ngx_http_maestro_ws_queued(ngx_http_maestro_ws_t *ws);
void ngx_http_maestro_ws_queue_text(ngx_http_maestro_ws_t *ws,
    const u_char *text, size_t len);
void ngx_http_maestro_ws_send(ngx_http_maestro_ws_t *ws, json_t *msg);
/* the session's: queue the events after each subscription; a message */
void ngx_http_maestro_ws_pump(ngx_http_maestro_ws_t *ws);
void ngx_http_maestro_ws_message(ngx_http_maestro_ws_t *ws,
    const char *text, size_t len);

#endif /* _NGX_HTTP_MAESTRO_WS_H_INCLUDED_ */
