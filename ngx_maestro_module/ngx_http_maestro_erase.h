/*
 * Copyright (C) Maestro authors
 */

/*
 * Erasure on request (ngx_http_maestro_erase.c, core/access/mst_erase.c):
 *
 *   DELETE /api/v1/users/{user_id}          a user's data
 *   DELETE /api/v1/keys/{id}?purge=true     an API key's data
 *   DELETE /api/v1/workflows/{id}           one finished workflow
 *
 * The admin credential only (a workflow: whoever may read it); one write
 * transaction on the io pool.
 */

#ifndef _NGX_HTTP_MAESTRO_ERASE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_ERASE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


/* DELETE /api/v1/users/{user_id} */
ngx_int_t ngx_http_maestro_erase_user(ngx_http_request_t *r,
    ngx_str_t *arg);

/* DELETE /api/v1/workflows/{id} */
ngx_int_t ngx_http_maestro_erase_workflow(ngx_http_request_t *r,
    ngx_str_t *arg);

/* erase user (or NULL) or key_id (or NULL), the caller the admin: the
   handler's return (NGX_DONE: answered later) */
ngx_int_t ngx_http_maestro_erase(ngx_http_request_t *r, const char *user,
    const char *key_id);

#endif /* _NGX_HTTP_MAESTRO_ERASE_H_INCLUDED_ */
