/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * CORS for the API (maestro_cors_origin): which web pages, served from
 * other origins, a browser lets read Maestro's answers. Without the
 * directive there are no CORS headers at all: the console and any page
 * of the same origin work, other origins do not.
 *
 *   - Any answer of a maestro_api location with the directive carries
 *     "Vary: Origin" (what a cache keeps depends on it); to a request
 *     whose Origin is allowed, also Access-Control-Allow-Origin (that
 *     origin, echoed) and Access-Control-Expose-Headers (the rate limit
 *     fields, Retry-After, Location). A header filter adds them, so
 *     errors (401, 413, 429, ...) carry them too: a page needs them to
 *     read why it was refused.
 *   - A preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *     is answered in the ACCESS phase, before the caller is identified: a
 *     browser sends it without credentials. An allowed origin gets 204
 *     with the methods, headers and Max-Age; another a 403 cors_forbidden.
 *   - No Access-Control-Allow-Credentials: the API takes bearer tokens in
 *     the Authorization header, which a page sets itself; no cookie
 *     authenticates anyone, so nothing is gained by letting a browser
 *     send cookies across origins.
 *
 * Whether an origin is allowed is core's decision (core/access/mst_cors.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_cors.h"
#include "ngx_http_maestro_openai.h"
#include "ngx_http_maestro_response.h"
#include "mst_cors.h"


#define NGX_HTTP_MAESTRO_CORS_METHODS  "GET, POST, DELETE, OPTIONS"
#define NGX_HTTP_MAESTRO_CORS_HEADERS  "Authorization, Content-Type, " \
                                       "Last-Event-ID"
#define NGX_HTTP_MAESTRO_CORS_EXPOSE   "RateLimit, RateLimit-Policy, " \
                                       "Retry-After, Location"
/* seconds a browser may keep a preflight's answer (Chromium's cap) */
#define NGX_HTTP_MAESTRO_CORS_MAX_AGE  "7200"


static ngx_int_t ngx_http_maestro_cors_header_filter(ngx_http_request_t *r);
static ngx_table_elt_t *ngx_http_maestro_cors_allowed(ngx_http_request_t *r,
    ngx_http_maestro_loc_conf_t *mlcf);


static ngx_http_output_header_filter_pt  ngx_http_maestro_cors_next;


/* the request's Origin header when it is allowed here, else NULL */
static ngx_table_elt_t *
ngx_http_maestro_cors_allowed(ngx_http_request_t *r,
    ngx_http_maestro_loc_conf_t *mlcf)
{
    ngx_table_elt_t               *origin;
    ngx_http_maestro_cors_conf_t  *cc;

    cc = mlcf->cors;
    origin = ngx_http_maestro_header_in(r, "Origin");

    if (origin == NULL) {
        return NULL;
    }

    if (!mst_cors_allowed(cc->origins->elts, cc->origins->nelts, cc->any,
                          (char *) origin->value.data, origin->value.len))
    {
        return NULL;
    }

    return origin;
}


ngx_int_t
ngx_http_maestro_cors_preflight(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_table_elt_t              *origin;
    ngx_http_maestro_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    if (mlcf->cors == NULL || r->method != NGX_HTTP_OPTIONS
        || r != r->main
        || ngx_http_maestro_header_in(r, "Origin") == NULL
        || ngx_http_maestro_header_in(r, "Access-Control-Request-Method")
           == NULL)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    origin = ngx_http_maestro_cors_allowed(r, mlcf);

    if (origin == NULL) {
        /* the error logs the refusal; the origin is the client's text */
        if (ngx_http_maestro_openai_path(r)) {
            rc = ngx_http_maestro_oai_error(r, NGX_HTTP_FORBIDDEN,
                     "invalid_request_error", "cors_forbidden", NULL,
                     "this origin may not call the API "
                     "(maestro_cors_origin)");

        } else {
            rc = ngx_http_maestro_send_error(r, NGX_HTTP_FORBIDDEN,
                     "cors_forbidden", "this origin may not call the API "
                     "(maestro_cors_origin)");
        }

        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    /* Access-Control-Allow-Origin and Vary come from the filter */

    if (ngx_http_maestro_header_out(r, "Access-Control-Allow-Methods",
            (u_char *) NGX_HTTP_MAESTRO_CORS_METHODS,
            sizeof(NGX_HTTP_MAESTRO_CORS_METHODS) - 1) != NGX_OK
        || ngx_http_maestro_header_out(r, "Access-Control-Allow-Headers",
            (u_char *) NGX_HTTP_MAESTRO_CORS_HEADERS,
            sizeof(NGX_HTTP_MAESTRO_CORS_HEADERS) - 1) != NGX_OK
        || ngx_http_maestro_header_out(r, "Access-Control-Max-Age",
            (u_char *) NGX_HTTP_MAESTRO_CORS_MAX_AGE,
            sizeof(NGX_HTTP_MAESTRO_CORS_MAX_AGE) - 1) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    ngx_http_finalize_request(r, ngx_http_send_header(r));

    return NGX_DONE;
}


static ngx_int_t
ngx_http_maestro_cors_header_filter(ngx_http_request_t *r)
{
    ngx_table_elt_t              *origin;
    ngx_http_maestro_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    if (r != r->main || mlcf == NULL || mlcf->cors == NULL || !mlcf->api) {
        return ngx_http_maestro_cors_next(r);
    }

    if (ngx_http_maestro_header_out(r, "Vary", (u_char *) "Origin",
                                  sizeof("Origin") - 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    origin = ngx_http_maestro_cors_allowed(r, mlcf);

    /* the origin echoed: checked by core, it is scheme://host[:port] */
    if (origin != NULL
        && (ngx_http_maestro_header_out(r, "Access-Control-Allow-Origin",
                                      origin->value.data, origin->value.len)
            != NGX_OK
            || ngx_http_maestro_header_out(r, "Access-Control-Expose-Headers",
                   (u_char *) NGX_HTTP_MAESTRO_CORS_EXPOSE,
                   sizeof(NGX_HTTP_MAESTRO_CORS_EXPOSE) - 1)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return ngx_http_maestro_cors_next(r);
}


/* configuration: runs in the master */

char *
ngx_http_maestro_cors_origin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_loc_conf_t *mlcf = conf;

    char                          *canon, **slot;
    char                           buf[MST_CORS_ORIGIN_MAX];
    char                           err[MST_ERRLEN];
    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_http_maestro_cors_conf_t  *cc;

    cc = mlcf->cors;

    if (cc == NULL) {
        cc = ngx_pcalloc(cf->pool, sizeof(ngx_http_maestro_cors_conf_t));
        if (cc == NULL) {
            return NGX_CONF_ERROR;
        }

        cc->origins = ngx_array_create(cf->pool, 4, sizeof(char *));
        if (cc->origins == NULL) {
            return NGX_CONF_ERROR;
        }

        mlcf->cors = cc;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 1 && value[i].data[0] == '*') {
            cc->any = 1;

        } else if (mst_cors_origin((char *) value[i].data, value[i].len, buf,
                                   sizeof(buf), err, sizeof(err))
                   != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_cors_origin: invalid origin \"%V\": "
                               "%s", &value[i], err);
            return NGX_CONF_ERROR;

        } else {
            canon = ngx_pnalloc(cf->pool, ngx_strlen(buf) + 1);
            slot = ngx_array_push(cc->origins);

            if (canon == NULL || slot == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_cpystrn((u_char *) canon, (u_char *) buf,
                        ngx_strlen(buf) + 1);
            *slot = canon;
        }

        if (cc->any && cc->origins->nelts > 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_cors_origin: \"*\" allows every "
                               "origin and cannot be listed with others");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_maestro_cors_init(ngx_conf_t *cf)
{
    ngx_http_maestro_cors_next = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_maestro_cors_header_filter;

    return NGX_OK;
}
