/*
 * Copyright (C) Maestro authors
 */

/*
 * Cross-origin calls of the API from browsers (ngx_http_maestro_cors.c).
 */

#ifndef _NGX_HTTP_MAESTRO_CORS_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_CORS_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


/* a level's maestro_cors_origin list */
struct ngx_http_maestro_cors_conf_s {
    ngx_array_t                    *origins;    /* of char *, canonical */
    ngx_uint_t                      any;        /* "*" */
};


/* maestro_cors_origin <origin> | * ...; */
char *ngx_http_maestro_cors_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * In the ACCESS phase, before the caller is identified: a preflight
 * (OPTIONS with Origin and Access-Control-Request-Method) of a location
 * with maestro_cors_origin is answered here, 204 for an allowed origin,
 * 403 cors_forbidden otherwise (NGX_DONE: answered); anything else
 * NGX_DECLINED.
 */
ngx_int_t ngx_http_maestro_cors_preflight(ngx_http_request_t *r);

/* postconfiguration: the header filter that adds the CORS headers */
ngx_int_t ngx_http_maestro_cors_init(ngx_conf_t *cf);

#endif /* _NGX_HTTP_MAESTRO_CORS_H_INCLUDED_ */
