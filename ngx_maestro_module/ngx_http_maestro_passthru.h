/*
 * Copyright (C) Maestro authors
 */

/*
 * /v1 requests for provider models, and plugins' calls, on one engine
 * (ngx_http_maestro_passthru.c).
 */

#ifndef _NGX_HTTP_MAESTRO_PASSTHRU_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_PASSTHRU_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_llm.h"


ngx_int_t ngx_http_maestro_passthru(ngx_http_request_t *r, json_t *body,
    ngx_str_t *raw, const char *kind, const mst_guard_t *guard);
/* a plugin's call (job) on the same engine; cancel one in flight */
ngx_int_t ngx_http_maestro_passthru_job(ngx_http_maestro_job_t *job,
    mst_gateway_t *gw, ngx_log_t *log);
void ngx_http_maestro_passthru_cancel(ngx_http_maestro_job_t *job);

#endif /* _NGX_HTTP_MAESTRO_PASSTHRU_H_INCLUDED_ */
