/*
 * Copyright (C) Maestro authors
 */

/*
 * What every front end answers with: JSON bodies, JSON errors (one
 * shape: {"error": {"code", "message"}}), the whole request body in one
 * buffer, the routing headers, and waiting for a slow streaming client.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_response.h"


static ngx_int_t ngx_http_maestro_send(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body, const char *allow);


static ngx_int_t
ngx_http_maestro_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, const char *allow)
{
    char    *text;
    size_t   len;

    if (r->header_sent) {
        return NGX_ERROR;
    }

    text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

    return ngx_http_maestro_send_text(r, status, text, len, allow);
}


ngx_int_t
ngx_http_maestro_send_text(ngx_http_request_t *r, ngx_uint_t status,
    char *text, size_t len, const char *allow)
{
    ngx_buf_t        *b;
    ngx_int_t         rc;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    if (r->header_sent) {
        free(text);
        return NGX_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    *b->last++ = '\n';
    free(text);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    if (allow != NULL) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        h->value.data = (u_char *) allow;
        h->value.len = ngx_strlen(allow);
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * What a streaming client could not take yet: its write event armed (an
 * accepted connection watches only reads), so that the request's
 * write_event_handler runs when it can take more, within send_timeout
 * (renewed on progress, as ngx_http_writer does).
 */
ngx_int_t
ngx_http_maestro_wait_writable(ngx_http_request_t *r, ngx_uint_t progress)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;

    if (!r->connection->buffered) {
        if (wev->timer_set) {
            ngx_del_timer(wev);
        }
        return NGX_OK;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!wev->delayed && (progress || !wev->timer_set)) {
        ngx_add_timer(wev, clcf->send_timeout);
    }

    return ngx_handle_write_event(wev, clcf->send_lowat);
}


ngx_int_t
ngx_http_maestro_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_int_t  rc;

    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_maestro_send(r, status, body, NULL);
    json_decref(body);

    return rc;
}


/*
 * An error's message, formatted, made valid UTF-8 (it may quote user input
 * and goes into JSON) and logged: one wording for every front end.
 */
void
ngx_http_maestro_error_message(ngx_http_request_t *r, ngx_uint_t status,
    const char *who, const char *code, char *msg, size_t size,
    const char *fmt, va_list args)
{
    ngx_uint_t  level;

    vsnprintf(msg, size, fmt, args);

    if (!mst_utf8_valid(msg, ngx_strlen(msg))) {
        ngx_cpystrn((u_char *) msg, (u_char *) "invalid request", size);
    }

    level = (status >= 500) ? NGX_LOG_ERR : NGX_LOG_INFO;
    ngx_log_error(level, r->connection->log, 0, "maestro: %s%ui %s: %s",
                  who, status, code, msg);
}


ngx_int_t
ngx_http_maestro_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    char         msg[512];
    va_list      args;
    json_t      *body;
    ngx_int_t    rc;
    const char  *allow;

    va_start(args, fmt);
    ngx_http_maestro_error_message(r, status, "", code, msg, sizeof(msg),
                                   fmt, args);
    va_end(args);

    body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                     msg);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    allow = NULL;

    if (status == NGX_HTTP_NOT_ALLOWED) {
        allow = ngx_strstr(msg, "use ") ? msg + 4 : NULL;
    }

    /* 507: the store may get room back (retention, deletes, a reload) */
    if (status == NGX_HTTP_SERVICE_UNAVAILABLE || status == 507) {
        ngx_table_elt_t  *h;

        h = ngx_list_push(&r->headers_out.headers);
        if (h != NULL) {
            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");

            if (status == 507) {
                ngx_str_set(&h->value, "10");
            } else {
                ngx_str_set(&h->value, "1");
            }
        }
    }

    rc = ngx_http_maestro_send(r, status, body, allow);
    json_decref(body);

    return rc;
}


/* the whole body in one buffer (it may have gone to a temp file) */
ngx_int_t
ngx_http_maestro_request_body(ngx_http_request_t *r, ngx_str_t *body,
    size_t max)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > max) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }
            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';
    body->len = len;

    return NGX_OK;
}


/* X-Maestro-Route and X-Maestro-Complexity: what routing decided */
void
ngx_http_maestro_route_headers(ngx_http_request_t *r, const char *route,
    const char *complexity)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h != NULL) {
        h->hash = 1;
        ngx_str_set(&h->key, "X-Maestro-Route");
        h->value.len = ngx_strlen(route);
        h->value.data = ngx_pnalloc(r->pool, h->value.len);
        if (h->value.data == NULL) {
            h->hash = 0;
        } else {
            ngx_memcpy(h->value.data, route, h->value.len);
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h != NULL) {
        h->hash = 1;
        ngx_str_set(&h->key, "X-Maestro-Complexity");
        h->value.data = (u_char *) complexity;
        h->value.len = ngx_strlen(complexity);
    }
}


ngx_int_t
ngx_http_maestro_header_out(ngx_http_request_t *r, const char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


ngx_table_elt_t *
ngx_http_maestro_header_in(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}
