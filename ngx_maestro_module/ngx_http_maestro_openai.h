/*
 * Copyright (C) Maestro authors
 */

/*
 * The /v1 facade (ngx_http_maestro_openai.c).
 */

#ifndef _NGX_HTTP_MAESTRO_OPENAI_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_OPENAI_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* /v1/models, /v1/chat/completions */
ngx_int_t ngx_http_maestro_openai_handler(ngx_http_request_t *r);

#endif /* _NGX_HTTP_MAESTRO_OPENAI_H_INCLUDED_ */
