/*
 * Copyright (C) Maestro authors
 */

/*
 * The audit log (ngx_http_maestro_audit.c): maestro_audit_log.
 */

#ifndef _NGX_HTTP_MAESTRO_AUDIT_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_AUDIT_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


char *ngx_http_maestro_audit_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * One JSON line: time, event, the caller (kind, user, key id), the
 * client address, method and path, then fields (stolen; may be NULL).
 * Nothing when maestro_audit_log is off.
 */
void ngx_http_maestro_audit(ngx_http_request_t *r, const char *event,
    json_t *fields);

#endif /* _NGX_HTTP_MAESTRO_AUDIT_H_INCLUDED_ */
