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
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_sse.h"
#include "mst_request.h"


static void ngx_http_maestro_body_handler(ngx_http_request_t *r);
static void ngx_http_maestro_submitted(ngx_http_maestro_submit_t *sb);


ngx_int_t
ngx_http_maestro_body_check(ngx_http_request_t *r)
{
    u_char                       *p, *semi;
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

    /*
     * A refusal before the body is read: discard it, so nginx closes
     * lingering and the client, still sending, reads the answer instead
     * of a reset.
     */

    if (ct == NULL
        || (size_t) (p - ct->data) != sizeof("application/json") - 1
        || ngx_strncasecmp(ct->data, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_maestro_send_error(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                   "Content-Type must be application/json");
    }

    if (r->headers_in.content_length_n > (off_t) mlcf->max_body) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_maestro_send_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                   "body is larger than %zu bytes (maestro_max_body)",
                   mlcf->max_body);
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_maestro_body_object(ngx_http_request_t *r, json_t **body)
{
    ngx_int_t                     rc;
    ngx_str_t                     raw;
    mst_request_error_t           re;
    ngx_http_maestro_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    *body = NULL;

    rc = ngx_http_maestro_request_body(r, &raw, mlcf->max_body);

    if (rc == NGX_DECLINED) {
        return ngx_http_maestro_send_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                   "body is larger than %zu bytes (maestro_max_body)",
                   mlcf->max_body);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *body = mst_request_parse((char *) raw.data, raw.len, &re);

    if (*body == NULL) {
        return ngx_http_maestro_send_error(r, re.status, re.code, "%s",
                                           re.message);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_maestro_read_body(ngx_http_request_t *r, ngx_uint_t way)
{
    ngx_int_t                  rc;
    ngx_http_maestro_admit_t  *ad;

    rc = ngx_http_maestro_body_check(r);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ad = ngx_http_maestro_admit_get(r);
    if (ad == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the way in tells the body handler which endpoint this is */
    ad->way = way;

    rc = ngx_http_read_client_request_body(r, ngx_http_maestro_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


ngx_int_t
ngx_http_maestro_analyze_post(ngx_http_request_t *r, ngx_str_t *arg)
{
    return ngx_http_maestro_read_body(r, NGX_HTTP_MAESTRO_WAY_ANALYZE);
}


ngx_int_t
ngx_http_maestro_wf_create(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_uint_t  stream;

    stream = (r->uri.len > sizeof("/api/v1/stream") - 1
              && ngx_strncmp(r->uri.data, "/api/v1/stream",
                             sizeof("/api/v1/stream") - 1) == 0);

    return ngx_http_maestro_read_body(r, stream ? NGX_HTTP_MAESTRO_WAY_STREAM
                                                : NGX_HTTP_MAESTRO_WAY_SUBMIT);
}


/*
 * POST /api/v1/analyze {prompt}: the route stage alone, as "model":
 * "auto" on /v1 would take it (a tier's model is a route here)
 */
static ngx_int_t
ngx_http_maestro_analyze(ngx_http_request_t *r, ngx_http_maestro_admit_t *ad,
    json_t *body)
{
    json_t                          *prompt, *out;
    ngx_http_maestro_admit_error_t   e;

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

    /* no route is an answer here: "route": null */
    (void) ngx_http_maestro_admit_route(ad, ngx_http_maestro_mmcf(r),
                                        json_string_value(prompt),
                                        json_string_length(prompt), 0, &e);

    out = mst_analysis_json(&ad->route.analysis);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_set_new(out, "route", mst_route_json(&ad->route));

    ngx_http_maestro_admit_route_headers(r, ad);

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
        rc = (sb->rc == MST_MAPFULL && sb->err[0])
             ? ngx_http_maestro_send_error(r, 507, "store_full",
                                           "cannot store workflow: %s",
                                           sb->err)
             : ngx_http_maestro_store_error(r, sb->rc,
                                            "cannot store workflow");
        goto done;
    }

    /* what routing decided, on both endpoints alike */
    ngx_http_maestro_admit_route_headers(r,
        ngx_http_get_module_ctx(r, ngx_http_maestro_module));

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
    json_t                          *body;
    ngx_int_t                        rc;
    ngx_http_maestro_admit_t        *ad;
    ngx_http_maestro_submit_t       *sb;
    ngx_http_maestro_loc_conf_t     *mlcf;
    ngx_http_maestro_admit_error_t   e;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);
    ad = ngx_http_get_module_ctx(r, ngx_http_maestro_module);

    rc = ngx_http_maestro_body_object(r, &body);
    if (body == NULL) {
        goto done;
    }

    if (ad->way == NGX_HTTP_MAESTRO_WAY_ANALYZE) {
        rc = ngx_http_maestro_analyze(r, ad, body);
        json_decref(body);
        goto done;
    }

    /* the admission path: stages 1-2 ran in the access phase */

    sb = ngx_http_maestro_admit_submission(ad, ngx_http_maestro_mmcf(r),
                                           body, mlcf->guard,
                                           r->connection->log, &e);
    json_decref(body);

    if (sb == NULL) {
        rc = ngx_http_maestro_send_error(r, e.status, e.code, "%s",
                                         e.message);
        goto done;
    }

    sb->done = ngx_http_maestro_submitted;
    sb->data = r;
    sb->stream = (ad->way == NGX_HTTP_MAESTRO_WAY_STREAM);

    if (ngx_http_maestro_admit_dispatch(sb, &e) != NGX_OK) {
        rc = ngx_http_maestro_send_error(r, e.status, e.code, "%s",
                                         e.message);
        goto done;
    }

    /* ngx_http_maestro_submitted() finalizes */
    return;

done:

    ngx_http_finalize_request(r, rc);
}
