/*
 * Copyright (C) Maestro authors
 */

/*
 * JSON answers, errors and request bodies: what every front end uses
 * (ngx_http_maestro_response.c).
 */

#ifndef _NGX_HTTP_MAESTRO_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_RESPONSE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


#define NGX_HTTP_MAESTRO_UNPROCESSABLE 422
#define NGX_HTTP_MAESTRO_GONE          410


ngx_int_t ngx_http_maestro_send_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
/* JSON text made already (malloc, freed here; a pool thread made it) */
ngx_int_t ngx_http_maestro_send_text(ngx_http_request_t *r,
    ngx_uint_t status, char *text, size_t len, const char *allow);
ngx_int_t ngx_http_maestro_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* format (valid UTF-8) and log an error message; who: "" or "openai: " */
void ngx_http_maestro_error_message(ngx_http_request_t *r,
    ngx_uint_t status, const char *who, const char *code, char *msg,
    size_t size, const char *fmt, va_list args)
    __attribute__((format(printf, 7, 0)));
/* the whole request body in one buffer; NGX_DECLINED when over max */
ngx_int_t ngx_http_maestro_request_body(ngx_http_request_t *r,
    ngx_str_t *body, size_t max);

/* a response header; name and value must outlive the request */
ngx_int_t ngx_http_maestro_header_out(ngx_http_request_t *r,
    const char *name, u_char *value, size_t len);

/* the first request header named name (any case), or NULL */
ngx_table_elt_t *ngx_http_maestro_header_in(ngx_http_request_t *r,
    const char *name);

/* a stream's client that is behind: call its write handler when it can */
ngx_int_t ngx_http_maestro_wait_writable(ngx_http_request_t *r,
    ngx_uint_t progress);

/* X-Maestro-Route and X-Maestro-Complexity: what routing decided */
void ngx_http_maestro_route_headers(ngx_http_request_t *r, const char *route,
    const char *complexity);

#endif /* _NGX_HTTP_MAESTRO_RESPONSE_H_INCLUDED_ */
