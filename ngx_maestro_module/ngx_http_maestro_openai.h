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

/* r is for the OpenAI-compatible API (/v1/...) */
ngx_int_t ngx_http_maestro_openai_path(ngx_http_request_t *r);

/* an error in OpenAI's shape: {"error": {message, type, param, code}} */
ngx_int_t ngx_http_maestro_oai_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, const char *code, const char *param,
    const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif /* _NGX_HTTP_MAESTRO_OPENAI_H_INCLUDED_ */
