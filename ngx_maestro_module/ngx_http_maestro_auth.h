/*
 * Copyright (C) Maestro authors
 */

/*
 * Who is calling (ngx_http_maestro_auth.c): the credential directives
 * and stage 1 of the admission path for HTTP requests.
 */

#ifndef _NGX_HTTP_MAESTRO_AUTH_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_AUTH_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"


/* a browser's WebSocket offers the token as this subprotocol's suffix */
#define NGX_HTTP_MAESTRO_WS_BEARER  "maestro.bearer."


char *ngx_http_maestro_admin_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_jwt_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* init main conf: MAESTRO_ADMIN_KEY when no maestro_admin_key is set */
char *ngx_http_maestro_auth_init_conf(ngx_conf_t *cf,
    ngx_http_maestro_main_conf_t *mmcf);

/*
 * Stage 1 for a request: its credential (Authorization: Bearer, a
 * WebSocket subprotocol) checked against the admin
 * credential, the API keys and the JWT keys. With maestro_auth off a
 * request without the admin credential is the local caller. NGX_OK with
 * ad->caller (and ad->key for a key); NGX_ERROR with *e (401 or 403).
 */
ngx_int_t ngx_http_maestro_auth_identify(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, ngx_http_maestro_admit_error_t *e);

/*
 * A key's record again, by id, for a connection's later messages (a
 * revocation ends what an open WebSocket may submit). NGX_OK: ad->key
 * set; NGX_ERROR with *e.
 */
ngx_int_t ngx_http_maestro_auth_recheck(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);

#endif /* _NGX_HTTP_MAESTRO_AUTH_H_INCLUDED_ */
