/*
 * Copyright (C) Maestro authors
 */

/*
 * The API keys' admin routes and who-am-I (ngx_http_maestro_keys.c).
 */

#ifndef _NGX_HTTP_MAESTRO_KEYS_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_KEYS_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


/* GET, POST /api/v1/keys */
ngx_int_t ngx_http_maestro_keys(ngx_http_request_t *r, ngx_str_t *arg);

/* the admin credential is required: NGX_OK, else NGX_ERROR, the 403 sent
   and *rc the handler's return */
ngx_int_t ngx_http_maestro_keys_admin(ngx_http_request_t *r, ngx_int_t *rc);

/* GET, DELETE /api/v1/keys/{id} */
ngx_int_t ngx_http_maestro_key(ngx_http_request_t *r, ngx_str_t *arg);

/* POST /api/v1/keys/{id}/rotate */
ngx_int_t ngx_http_maestro_key_rotate(ngx_http_request_t *r,
    ngx_str_t *arg);

/* GET /api/v1/me: the caller, and its key's limits and budget */
ngx_int_t ngx_http_maestro_me(ngx_http_request_t *r, ngx_str_t *arg);

/* a key was used at now: its last_used_at, written at most once a
   minute per key (an io-pool write; a full queue only skips it) */
void ngx_http_maestro_keys_touch(ngx_http_maestro_main_conf_t *mmcf,
    const json_t *rec, int64_t now, ngx_log_t *log);

#endif /* _NGX_HTTP_MAESTRO_KEYS_H_INCLUDED_ */
