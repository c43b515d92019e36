/*
 * Copyright (C) Maestro authors
 */

/*
 * The /api/v1 router (ngx_http_maestro_api.c).
 */

#ifndef _NGX_HTTP_MAESTRO_API_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_API_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_MAESTRO_API_PREFIX    "/api/v1"


ngx_int_t ngx_http_maestro_api_handler(ngx_http_request_t *r);

#endif /* _NGX_HTTP_MAESTRO_API_H_INCLUDED_ */
