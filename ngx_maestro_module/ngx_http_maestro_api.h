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

#include "ngx_http_maestro_module.h"


#define NGX_HTTP_MAESTRO_API_PREFIX    "/api/v1"


ngx_int_t ngx_http_maestro_api_handler(ngx_http_request_t *r);

/* shared by the route files (_api.c, _api_info.c, _api_submit.c) */
ngx_http_maestro_main_conf_t *ngx_http_maestro_mmcf(ngx_http_request_t *r);
/* a workflow record as the API shows it */
json_t *ngx_http_maestro_wf_view(json_t *rec);

/* GET /api/v1/workflows/{id}/checkpoints (_api_checkpoints.c) */
ngx_int_t ngx_http_maestro_wf_checkpoints(ngx_http_request_t *r,
    ngx_str_t *arg);
ngx_int_t ngx_http_maestro_store_error(ngx_http_request_t *r, int rc,
    const char *what);
ngx_int_t ngx_http_maestro_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *v, char *buf, size_t size);
ngx_int_t ngx_http_maestro_user_arg(ngx_http_request_t *r, ngx_str_t *arg,
    ngx_str_t *user, ngx_int_t *rc);

/* the same, 1..128 bytes (else the 400 sent): NGX_OK, else NGX_DECLINED
   and *rc the handler's return */
ngx_int_t ngx_http_maestro_user_id(ngx_http_request_t *r, ngx_str_t *arg,
    ngx_str_t *user, ngx_int_t *rc);

/*
 * The record of the workflow named by arg (MST_NOTFOUND also when it is
 * another tenant's).
 */
int ngx_http_maestro_wf_load(ngx_http_request_t *r, ngx_str_t *arg,
    char *id, json_t **rec);

/* the routes of _api_info.c */
ngx_int_t ngx_http_maestro_health(ngx_http_request_t *r, ngx_str_t *arg);
ngx_int_t ngx_http_maestro_agents(ngx_http_request_t *r, ngx_str_t *arg);
ngx_int_t ngx_http_maestro_agent_logs(ngx_http_request_t *r,
    ngx_str_t *arg);
ngx_int_t ngx_http_maestro_providers(ngx_http_request_t *r, ngx_str_t *arg);
ngx_int_t ngx_http_maestro_usage_all(ngx_http_request_t *r, ngx_str_t *arg);
ngx_int_t ngx_http_maestro_user_usage(ngx_http_request_t *r,
    ngx_str_t *arg);

/* the routes of _api_submit.c */
/*
 * A JSON body: check the Content-Type and length before reading
 * (NGX_DECLINED: read it; anything else is the handler's return, the
 * answer sent: the send's own NGX_OK must not read on); then the read
 * body as an object (mst_request_parse(): NGX_OK and *body, else *body
 * NULL and the answer sent).
 */
ngx_int_t ngx_http_maestro_body_check(ngx_http_request_t *r);
ngx_int_t ngx_http_maestro_body_object(ngx_http_request_t *r,
    json_t **body);

/*
 * A tenant caller (an API key, a JWT) sees its own user's data only:
 * *user becomes that user; others leave it as it is (the query's).
 */
ngx_int_t ngx_http_maestro_api_tenant(ngx_http_request_t *r,
    const char **user);

ngx_int_t ngx_http_maestro_wf_create(ngx_http_request_t *r, ngx_str_t *arg);
ngx_int_t ngx_http_maestro_analyze_post(ngx_http_request_t *r,
    ngx_str_t *arg);

#endif /* _NGX_HTTP_MAESTRO_API_H_INCLUDED_ */
