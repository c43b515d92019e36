/*
 * Copyright (C) Maestro authors
 */

/*
 * The POST routes of /api/v1: a workflow submitted (/workflows and
 * /stream/workflow) and /analyze: the body read, validated and answered.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_sse.h"


static void ngx_http_maestro_body_handler(ngx_http_request_t *r);
static void ngx_http_maestro_submitted(ngx_http_maestro_submit_t *sb);


static ngx_int_t
ngx_http_maestro_read_body(ngx_http_request_t *r, ngx_uint_t stream)
{
    u_char                       *p, *semi;
    ngx_int_t                     rc;
    ngx_str_t                    *ct;
    ngx_http_maestro_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                    : NULL;

    semi = NULL;
    if (ct != NULL) {
        semi = ngx_strlchr(ct->data, ct->data + ct->len, ';');
    }

    p = ct ? (semi ? semi : ct->data + ct->len) : NULL;

    if (ct == NULL
        || (size_t) (p - ct->data) != sizeof("application/json") - 1
        || ngx_strncasecmp(ct->data, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        return ngx_http_maestro_send_error(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                   "Content-Type must be application/json");
    }

    if (r->headers_in.content_length_n > (off_t) mlcf->max_body) {
        return ngx_http_maestro_send_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                   "body is larger than %uz bytes (maestro_max_body)",
                   mlcf->max_body);
    }

    /* the flag tells the body handler which endpoint this is */
    ngx_http_set_ctx(r, (void *) (uintptr_t) (stream + 1),
                     ngx_http_maestro_module);

    rc = ngx_http_read_client_request_body(r, ngx_http_maestro_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


ngx_int_t
ngx_http_maestro_analyze_post(ngx_http_request_t *r, ngx_str_t *arg)
{
    return ngx_http_maestro_read_body(r, 3);
}


ngx_int_t
ngx_http_maestro_wf_create(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_uint_t  stream;

    stream = (r->uri.len > sizeof("/api/v1/stream") - 1
              && ngx_strncmp(r->uri.data, "/api/v1/stream",
                             sizeof("/api/v1/stream") - 1) == 0);

    return ngx_http_maestro_read_body(r, stream);
}


/* POST /api/v1/analyze {prompt}: the route a submission would take */
static ngx_int_t
ngx_http_maestro_analyze(ngx_http_request_t *r, json_t *body)
{
    json_t                        *prompt, *out;
    ngx_int_t                      tier;
    const char                    *route;
    mst_analysis_t                 a;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);
    prompt = json_object_get(body, "prompt");

    if (prompt == NULL) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "missing_field",
                                           "\"prompt\" is required");
    }

    if (!json_is_string(prompt)) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "\"prompt\" must be a string");
    }

    mst_analyze(mmcf->intents, json_string_value(prompt),
                json_string_length(prompt), &a);

    route = a.route ? a.route : (const char *) mmcf->default_workflow.data;

    out = mst_analysis_json(&a);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tier = ngx_http_maestro_tier((u_char *) a.complexity);

    if (a.route == NULL && tier != NGX_ERROR
        && mmcf->tier_model[tier].data != NULL)
    {
        /* what "model": "auto" on /v1 runs: the tier's model */
        json_object_set_new(out, "route", json_pack("{s:s}", "model",
                                     (char *) mmcf->tier_model[tier].data));

    } else {
        json_object_set_new(out, "route", route ? json_pack("{s:s}",
                                                            "workflow", route)
                                                : json_null());
    }

    if (route != NULL) {
        ngx_http_maestro_route_headers(r, route, a.complexity);
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, out);
}


/* runs in the event loop: the answer to POST /workflows or /stream */
static void
ngx_http_maestro_submitted(ngx_http_maestro_submit_t *sb)
{
    json_t              *view;
    ngx_str_t            id;
    ngx_int_t            rc;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = sb->data;

    if (sb->rc != MST_OK) {
        rc = ngx_http_maestro_store_error(r, sb->rc, "cannot store workflow");
        goto done;
    }

    id.len = MST_ID_LEN;
    id.data = ngx_pnalloc(r->pool, MST_ID_LEN + 1);
    if (id.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }
    ngx_memcpy(id.data, sb->id, MST_ID_LEN + 1);

    if (sb->stream) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h != NULL) {
            h->hash = 1;
            ngx_str_set(&h->key, "X-Maestro-Workflow-Id");
            h->value = id;
        }

        rc = ngx_http_maestro_sse_start(r, &id, 0);
        goto done;
    }

    if (sb->routed) {
        ngx_http_maestro_route_headers(r, sb->workflow, sb->complexity);
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h != NULL) {
        h->hash = 1;
        ngx_str_set(&h->key, "Location");
        h->value.data = ngx_pnalloc(r->pool, 64);
        if (h->value.data != NULL) {
            h->value.len = ngx_sprintf(h->value.data, "/api/v1/workflows/%V",
                                       &id) - h->value.data;
        } else {
            h->hash = 0;
        }
    }

    view = ngx_http_maestro_wf_view(sb->rec);
    if (view != NULL) {
        /* the record as accepted: it may have started by now */
        json_object_set_new(view, "status", json_string("queued"));
    }

    rc = ngx_http_maestro_send_json(r, NGX_HTTP_ACCEPTED, view);

done:

    ngx_http_maestro_submit_finish(sb);
    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_maestro_body_handler(ngx_http_request_t *r)
{
    json_t                           *body;
    ngx_int_t                         rc;
    ngx_str_t                         raw;
    json_error_t                      jerr;
    ngx_http_maestro_submit_t        *sb;
    ngx_http_maestro_loc_conf_t      *mlcf;
    ngx_http_maestro_submit_error_t   e;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    rc = ngx_http_maestro_request_body(r, &raw, mlcf->max_body);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_maestro_send_error(r,
                 NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                 "body is larger than %uz bytes (maestro_max_body)",
                 mlcf->max_body);
        goto done;
    }

    if (rc != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (raw.len == 0) {
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_json", "empty body");
        goto done;
    }

    if (!mst_utf8_valid((char *) raw.data, raw.len)) {
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_utf8",
                                         "body is not valid UTF-8");
        goto done;
    }

    body = json_loadb((char *) raw.data, raw.len, 0, &jerr);

    if (body == NULL) {
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_json",
                                         "line %d column %d: %s", jerr.line,
                                         jerr.column, jerr.text);
        goto done;
    }

    if (!json_is_object(body)) {
        json_decref(body);
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_json",
                                         "body must be a JSON object");
        goto done;
    }

    if (ngx_http_get_module_ctx(r, ngx_http_maestro_module) == (void *) 4) {
        rc = ngx_http_maestro_analyze(r, body);
        json_decref(body);
        goto done;
    }

    sb = ngx_http_maestro_submit_new(ngx_http_maestro_mmcf(r), body, NULL,
                                     mlcf->guard, r->connection->log, &e);
    json_decref(body);

    if (sb == NULL) {
        rc = ngx_http_maestro_send_error(r, e.status, e.code, "%s",
                                         e.message);
        goto done;
    }

    sb->done = ngx_http_maestro_submitted;
    sb->data = r;
    sb->stream = ngx_http_get_module_ctx(r, ngx_http_maestro_module)
                 == (void *) 2;

    if (ngx_http_maestro_submit_post(sb) != NGX_OK) {
        ngx_http_maestro_submit_finish(sb);
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "queue_full",
                                         "the io thread pool queue is full");
        goto done;
    }

    /* ngx_http_maestro_submitted() finalizes */
    return;

done:

    ngx_http_finalize_request(r, rc);
}
