/*
 * Copyright (C) Maestro authors
 */

/*
 * Server-sent event streams (ngx_http_maestro_sse.c).
 */

#ifndef _NGX_HTTP_MAESTRO_SSE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_SSE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


ngx_int_t ngx_http_maestro_sse_start(ngx_http_request_t *r, ngx_str_t *id,
    uint64_t last_event_id);
ngx_int_t ngx_http_maestro_sse_headers(ngx_http_request_t *r);
ngx_int_t ngx_http_maestro_sse_start_feed(ngx_http_request_t *r,
    uint64_t last_event_id, ngx_str_t *status, ngx_str_t *user);
void ngx_http_maestro_sse_wakeup(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_sse_shutdown(ngx_http_maestro_main_conf_t *mmcf);
uint64_t ngx_http_maestro_sse_last_event_id(ngx_http_request_t *r);

#endif /* _NGX_HTTP_MAESTRO_SSE_H_INCLUDED_ */
