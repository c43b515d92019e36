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

#include "ngx_http_maestro_module.h"


ngx_int_t ngx_http_maestro_ws_start(ngx_http_request_t *r,
    ngx_str_t *workflow_id, ngx_str_t *user_id);
ngx_int_t ngx_http_maestro_ws_start_monitor(ngx_http_request_t *r,
    uint64_t last, ngx_str_t *status, ngx_str_t *user);
void ngx_http_maestro_ws_wakeup(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_ws_shutdown(ngx_http_maestro_main_conf_t *mmcf);

#endif /* _NGX_HTTP_MAESTRO_WS_H_INCLUDED_ */
