/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The audit log: one JSON object per line for what an operator must be
 * able to answer later (who failed to authenticate, who created, revoked
 * or rotated which key, when the admin read a tenant's workflow). It is
 * an nginx log file: opened by the master (ngx_conf_open_file), reopened
 * on "nginx -s reopen", written with one write() per line the way the
 * access log is, so lines of both workers never interleave. Secrets never
 * appear: a key is named by its id, a refused token not at all.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_audit.h"
#include "mst_json.h"


/* maestro_audit_log path | off */
char *
ngx_http_maestro_audit_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_str_t  *value;

    if (mmcf->audit != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mmcf->audit = NULL;
        return NGX_CONF_OK;
    }

    mmcf->audit = ngx_conf_open_file(cf->cycle, &value[1]);
    if (mmcf->audit == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void
ngx_http_maestro_audit(ngx_http_request_t *r, const char *event,
    json_t *fields)
{
    char                          *line;
    size_t                         len;
    json_t                        *o;
    ngx_http_maestro_admit_t      *ad;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    if (mmcf->audit == NULL || mmcf->audit == NGX_CONF_UNSET_PTR) {
        json_decref(fields);
        return;
    }

    ad = ngx_http_get_module_ctx(r, ngx_http_maestro_module);

    o = json_pack("{s:s%, s:s, s:s, s:s?, s:s?, s:s%, s:s%, s:s%}",
                  "time", ngx_cached_http_log_iso8601.data,
                  ngx_cached_http_log_iso8601.len,
                  "event", event,
                  "caller", ad ? mst_caller_kind_name(&ad->caller) : "local",
                  "user_id", ad ? mst_caller_user(&ad->caller) : NULL,
                  "key_id", (ad && ad->caller.key_id[0]) ? ad->caller.key_id
                                                         : NULL,
                  "ip", r->connection->addr_text.data,
                  r->connection->addr_text.len,
                  "method", r->method_name.data, r->method_name.len,
                  "path", r->uri.data, r->uri.len);

    if (o == NULL) {
        json_decref(fields);
        return;
    }

    if (fields != NULL) {
        (void) json_object_update(o, fields);
        json_decref(fields);
    }

    line = mst_json_dump(o, &len);
    json_decref(o);

    if (line == NULL) {
        return;
    }

    /* one write: the line and its newline together */
    line[len] = '\n';

    if (ngx_write_fd(mmcf->audit->fd, line, len + 1) != (ssize_t) len + 1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "maestro: audit: " ngx_write_fd_n " to \"%V\" failed",
                      &mmcf->audit->name);
    }

    free(line);
}
