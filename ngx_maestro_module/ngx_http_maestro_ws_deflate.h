/*
 * Copyright (C) Maestro authors
 */

/*
 * permessage-deflate for WebSocket (ngx_http_maestro_ws_deflate.c).
 */

#ifndef _NGX_HTTP_MAESTRO_WS_DEFLATE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_WS_DEFLATE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_str_t *ngx_http_maestro_ws_deflate_offer(ngx_table_elt_t *h);
ngx_int_t ngx_http_maestro_ws_deflate(const u_char *in, size_t len,
    u_char **out, size_t *outlen);
ngx_int_t ngx_http_maestro_ws_inflate(const u_char *in, size_t len,
    size_t max, u_char **out, size_t *outlen);

#endif /* _NGX_HTTP_MAESTRO_WS_DEFLATE_H_INCLUDED_ */
