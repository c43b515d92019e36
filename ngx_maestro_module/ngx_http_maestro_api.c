/*
 * Copyright (C) Maestro authors
 */

/*
 * The REST API under /api/v1 and /healthz: routing, body reading and
 * validation, JSON responses and errors. Reads are LMDB read transactions
 * on the event loop; writes go to the io thread pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_openai.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_ws.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"
#include "mst_feed.h"


#define NGX_HTTP_MAESTRO_GET   0x01
#define NGX_HTTP_MAESTRO_POST  0x02


typedef ngx_int_t (*ngx_http_maestro_route_pt)(ngx_http_request_t *r,
    ngx_str_t *arg);


typedef struct {
    ngx_http_request_t             *r;
    ngx_http_maestro_main_conf_t   *mmcf;
    char                            id[MST_ID_LEN + 1];
    json_t                         *rec;
    int                             final;
    int                             rc;
    char                            err[MST_ERRLEN];
} ngx_http_maestro_cancel_t;


static ngx_int_t ngx_http_maestro_route(ngx_http_request_t *r);
static ngx_int_t ngx_http_maestro_health(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_list(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_get(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_checkpoints(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_events(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_graph(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_cancel(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_create(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_agents(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_monitor(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_providers(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_analyze_post(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_ws(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_user_ws(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_usage_all(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_user_usage(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_agent_logs(ngx_http_request_t *r,
    ngx_str_t *arg);
static void ngx_http_maestro_body_handler(ngx_http_request_t *r);
static void ngx_http_maestro_submitted(ngx_http_maestro_submit_t *sb);


typedef struct {
    const char                     *prefix;     /* after /api/v1 */
    const char                     *suffix;     /* after {arg}, or NULL */
    ngx_uint_t                      methods;
    ngx_http_maestro_route_pt       handler;
    const char                     *allow;
} ngx_http_maestro_route_t;


/* "{}" marks an argument: the path segment between prefix and suffix */
static ngx_http_maestro_route_t  ngx_http_maestro_routes[] = {
    { "/workflows", NULL, NGX_HTTP_MAESTRO_GET | NGX_HTTP_MAESTRO_POST,
      NULL, "GET, POST" },
    { "/workflows/", "/cancel", NGX_HTTP_MAESTRO_POST,
      ngx_http_maestro_wf_cancel, "POST" },
    { "/workflows/", "/checkpoints", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_wf_checkpoints, "GET" },
    { "/workflows/", "/graph", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_wf_graph, "GET" },
    { "/workflows/", "/events", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_wf_events, "GET" },
    { "/workflows/", "/ws", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_wf_ws, "GET" },
    { "/ws/", "", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_user_ws, "GET" },
    { "/workflows/", "", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_wf_get, "GET" },
    { "/stream/workflow", NULL, NGX_HTTP_MAESTRO_POST,
      ngx_http_maestro_wf_create, "POST" },
    { "/agents", NULL, NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_agents, "GET" },
    { "/users/", "/usage", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_user_usage, "GET" },
    { "/usage", NULL, NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_usage_all, "GET" },
    { "/providers", NULL, NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_providers, "GET" },
    { "/analyze", NULL, NGX_HTTP_MAESTRO_POST,
      ngx_http_maestro_analyze_post, "POST" },
    { "/events", NULL, NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_monitor, "GET" },
    { "/agents/", "/logs", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_agent_logs, "GET" },
    { NULL, NULL, 0, NULL, NULL }
};


ngx_int_t
ngx_http_maestro_api_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_maestro_route(r);

    return rc;
}


static ngx_http_maestro_main_conf_t *
ngx_http_maestro_mmcf(ngx_http_request_t *r)
{
    return ngx_http_get_module_main_conf(r, ngx_http_maestro_module);
}


static ngx_int_t
ngx_http_maestro_route(ngx_http_request_t *r)
{
    u_char                    *p, *end, *seg;
    size_t                     plen, slen;
    ngx_str_t                  arg, path;
    ngx_uint_t                 method;
    ngx_http_maestro_route_t  *rt;

    method = (r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))
             ? NGX_HTTP_MAESTRO_GET
             : (r->method & NGX_HTTP_POST) ? NGX_HTTP_MAESTRO_POST : 0;

    if (r->uri.len == sizeof("/healthz") - 1
        && ngx_strncmp(r->uri.data, "/healthz", r->uri.len) == 0)
    {
        if (method != NGX_HTTP_MAESTRO_GET) {
            goto not_allowed_get;
        }

        return ngx_http_maestro_health(r, NULL);
    }

    if (r->uri.len > 4 && ngx_strncmp(r->uri.data, "/v1/", 4) == 0) {
        return ngx_http_maestro_openai_handler(r);
    }

    plen = sizeof(NGX_HTTP_MAESTRO_API_PREFIX) - 1;

    if (r->uri.len < plen
        || ngx_strncmp(r->uri.data, NGX_HTTP_MAESTRO_API_PREFIX, plen) != 0)
    {
        goto not_found;
    }

    path.data = r->uri.data + plen;
    path.len = r->uri.len - plen;

    /* a trailing slash is the same resource */
    if (path.len > 1 && path.data[path.len - 1] == '/') {
        path.len--;
    }

    end = path.data + path.len;

    for (rt = ngx_http_maestro_routes; rt->prefix; rt++) {
        plen = ngx_strlen(rt->prefix);

        if (path.len < plen
            || ngx_strncmp(path.data, rt->prefix, plen) != 0)
        {
            continue;
        }

        if (rt->suffix == NULL) {
            if (path.len != plen) {
                continue;
            }
            arg.len = 0;
            arg.data = NULL;

        } else {
            seg = path.data + plen;
            for (p = seg; p < end && *p != '/'; p++) { /* void */ }

            if (p == seg) {
                continue;
            }

            slen = ngx_strlen(rt->suffix);

            if ((size_t) (end - p) != slen
                || ngx_strncmp(p, rt->suffix, slen) != 0)
            {
                continue;
            }

            arg.data = seg;
            arg.len = p - seg;
        }

        if (!(rt->methods & method)) {
            r->headers_out.status = NGX_HTTP_NOT_ALLOWED;
            return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                               "method_not_allowed",
                                               "use %s", rt->allow)
                   == NGX_OK ? NGX_OK : NGX_ERROR;
        }

        if (rt->handler == NULL) {
            /* /workflows: list or create */
            return method == NGX_HTTP_MAESTRO_GET
                   ? ngx_http_maestro_wf_list(r, &arg)
                   : ngx_http_maestro_wf_create(r, &arg);
        }

        return rt->handler(r, &arg);
    }

not_found:

    return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such endpoint");

not_allowed_get:

    return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                       "method_not_allowed", "use GET");
}


/* responses */

static ngx_int_t
ngx_http_maestro_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, const char *allow)
{
    char             *text;
    size_t            len;
    ngx_buf_t        *b;
    ngx_int_t         rc;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    if (r->header_sent) {
        return NGX_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

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


ngx_int_t
ngx_http_maestro_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    char         msg[512];
    va_list      args;
    ngx_uint_t   level;
    json_t      *body;
    ngx_int_t    rc;
    const char  *allow;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    /* a message may quote user input: keep the JSON valid */
    if (!mst_utf8_valid(msg, ngx_strlen(msg))) {
        ngx_cpystrn((u_char *) msg, (u_char *) "invalid request",
                    sizeof(msg));
    }

    level = (status >= 500) ? NGX_LOG_ERR : NGX_LOG_INFO;
    ngx_log_error(level, r->connection->log, 0, "maestro: %ui %s: %s",
                  status, code, msg);

    body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                     msg);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    allow = NULL;

    if (status == NGX_HTTP_NOT_ALLOWED) {
        allow = ngx_strstr(msg, "use ") ? msg + 4 : NULL;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_table_elt_t  *h;

        h = ngx_list_push(&r->headers_out.headers);
        if (h != NULL) {
            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");
            ngx_str_set(&h->value, "1");
        }
    }

    rc = ngx_http_maestro_send(r, status, body, allow);
    json_decref(body);

    return rc;
}


/* a workflow record as the API shows it */
static json_t *
ngx_http_maestro_wf_view(json_t *rec)
{
    char          link[128];
    const char   *id;
    json_t       *v, *links;
    json_int_t    created, started, finished, now;

    v = json_deep_copy(rec);
    if (v == NULL) {
        return NULL;
    }

    json_object_del(v, "inline");
    json_object_del(v, "owner");
    json_object_del(v, "epoch");
    json_object_del(v, "lease_until");
    json_object_del(v, "checkpoint_seq");

    now = (json_int_t) mst_now_ms();
    created = json_integer_value(json_object_get(rec, "created_at"));
    started = json_integer_value(json_object_get(rec, "started_at"));
    finished = json_integer_value(json_object_get(rec, "finished_at"));

    if (finished == 0) {
        finished = now;
    }

    json_object_set_new(v, "timings", json_pack("{s:I, s:I, s:I}",
        "queued_ms", (started ? started : finished) - created,
        "run_ms", started ? finished - started : 0,
        "total_ms", finished - created));

    id = json_string_value(json_object_get(rec, "id"));
    links = json_object();

    snprintf(link, sizeof(link), "/api/v1/workflows/%s", id);
    json_object_set_new(links, "self", json_string(link));
    snprintf(link, sizeof(link), "/api/v1/workflows/%s/events", id);
    json_object_set_new(links, "events", json_string(link));
    snprintf(link, sizeof(link), "/api/v1/workflows/%s/cancel", id);
    json_object_set_new(links, "cancel", json_string(link));
    snprintf(link, sizeof(link), "/api/v1/workflows/%s/checkpoints", id);
    json_object_set_new(links, "checkpoints", json_string(link));

    json_object_set_new(v, "links", links);

    return v;
}


static int
ngx_http_maestro_store_status(int rc, const char **code)
{
    switch (rc) {
    case MST_NOTFOUND:
        *code = "not_found";
        return NGX_HTTP_NOT_FOUND;
    case MST_MAPFULL:
        *code = "store_full";
        return 507;
    default:
        *code = "store_error";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static ngx_int_t
ngx_http_maestro_store_error(ngx_http_request_t *r, int rc, const char *what)
{
    ngx_uint_t   status;
    const char  *code;

    status = ngx_http_maestro_store_status(rc, &code);

    return ngx_http_maestro_send_error(r, status, code, "%s: %s", what,
                                       mst_strerror(rc));
}


/* copies an id argument; returns 0 when it cannot be a workflow id */
static int
ngx_http_maestro_id_arg(ngx_str_t *arg, char *id)
{
    if (!mst_id_valid((char *) arg->data, arg->len)) {
        return 0;
    }

    ngx_memcpy(id, arg->data, MST_ID_LEN);
    id[MST_ID_LEN] = '\0';

    return 1;
}


/* GET handlers */

static ngx_int_t
ngx_http_maestro_health(ngx_http_request_t *r, ngx_str_t *arg)
{
    size_t                         used, map;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    used = 0;
    map = 0;

    if (mst_store_usage(mmcf->env.store, &used, &map) != MST_OK) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "store_error",
                                           "store is not readable");
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:{s:I, s:I}, s:{s:I, s:I}, s:i, s:s}",
                  "status", "ok",
                  "store", "used_bytes", (json_int_t) used,
                           "map_bytes", (json_int_t) map,
                  "workflows", "active", (json_int_t) mmcf->sh->active,
                               "worker_active", (json_int_t) mmcf->nactive,
                  "agents", (int) mmcf->nagents,
                  "llm", mst_gateway_online(mmcf->gw) ? "online"
                                                      : "offline"));
}


static ngx_int_t
ngx_http_maestro_arg(ngx_http_request_t *r, const char *name, ngx_str_t *v,
    char *buf, size_t size)
{
    u_char  *dst, *src;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), v) != NGX_OK) {
        v->len = 0;
        v->data = (u_char *) buf;
        return NGX_DECLINED;
    }

    if (v->len >= size) {
        return NGX_ERROR;
    }

    dst = (u_char *) buf;
    src = v->data;
    ngx_unescape_uri(&dst, &src, v->len, 0);
    *dst = '\0';

    v->data = (u_char *) buf;
    v->len = dst - (u_char *) buf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_maestro_wf_list(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                            rc;
    char                           status[32], user[256], cursor[64];
    char                           next[MST_ID_LEN + 1];
    size_t                         i;
    json_t                        *items, *out, *item;
    ngx_int_t                      n;
    ngx_str_t                      v;
    mst_txn_t                     *txn;
    mst_wf_filter_t                f;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    ngx_memzero(&f, sizeof(mst_wf_filter_t));
    f.limit = 50;

    n = ngx_http_maestro_arg(r, "status", &v, status, sizeof(status));
    if (n == NGX_OK) {
        if (ngx_strcmp(status, "queued") != 0
            && ngx_strcmp(status, "running") != 0
            && ngx_strcmp(status, "complete") != 0
            && ngx_strcmp(status, "failed") != 0
            && ngx_strcmp(status, "cancelled") != 0)
        {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                "invalid_field", "status must be queued, running, complete,"
                " failed or cancelled");
        }
        f.status = status;

    } else if (n == NGX_ERROR) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field", "bad status");
    }

    n = ngx_http_maestro_arg(r, "user_id", &v, user, sizeof(user));
    if (n == NGX_OK) {
        f.user_id = user;

    } else if (n == NGX_ERROR) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "user_id is too long");
    }

    n = ngx_http_maestro_arg(r, "limit", &v, cursor, sizeof(cursor));
    if (n == NGX_OK) {
        n = ngx_atoi(v.data, v.len);
        if (n < 1 || n > 1000) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalid_field",
                                               "limit must be 1..1000");
        }
        f.limit = (size_t) n;

    } else if (n == NGX_ERROR) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "limit must be 1..1000");
    }

    n = ngx_http_maestro_arg(r, "cursor", &v, cursor, sizeof(cursor));
    if (n == NGX_OK) {
        if (!mst_id_valid(cursor, v.len)) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalid_field",
                                               "bad cursor");
        }
        f.cursor = cursor;

    } else if (n == NGX_ERROR) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field", "bad cursor");
    }

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "store");
    }

    next[0] = '\0';
    rc = mst_store_wf_list(txn, &f, &items, next);
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "list");
    }

    out = json_array();

    json_array_foreach(items, i, item) {
        json_array_append_new(out, ngx_http_maestro_wf_view(item));
    }

    json_decref(items);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:o, s:o}", "items", out,
                  "next_cursor", next[0] ? json_string(next) : json_null()));
}


/*
 * The record of the workflow named by arg, and its checkpoints when list
 * is not NULL, in one read transaction. An argument that cannot be an id
 * is MST_NOTFOUND, like an id that is not stored.
 */
static int
ngx_http_maestro_wf_load(ngx_http_request_t *r, ngx_str_t *arg, char *id,
    json_t **rec, json_t **list)
{
    int                            rc;
    mst_txn_t                     *txn;
    ngx_http_maestro_main_conf_t  *mmcf;

    if (!ngx_http_maestro_id_arg(arg, id)) {
        return MST_NOTFOUND;
    }

    mmcf = ngx_http_maestro_mmcf(r);

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_wf_get(txn, id, rec);

    if (rc == MST_OK && list != NULL) {
        rc = mst_store_checkpoint_list(txn, id, list);
        if (rc != MST_OK) {
            json_decref(*rec);
        }
    }

    mst_txn_abort(txn);

    return rc;
}


static ngx_int_t
ngx_http_maestro_wf_get(ngx_http_request_t *r, ngx_str_t *arg)
{
    int      rc;
    char     id[MST_ID_LEN + 1];
    json_t  *rec, *view;

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec, NULL);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    view = ngx_http_maestro_wf_view(rec);
    json_decref(rec);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, view);
}


static ngx_int_t
ngx_http_maestro_wf_checkpoints(ngx_http_request_t *r, ngx_str_t *arg)
{
    int      rc;
    char     id[MST_ID_LEN + 1];
    json_t  *rec, *list;

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec, &list);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    json_decref(rec);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:o}", "id", id, "items", list));
}


/* GET /api/v1/workflows/{id}/graph: the graph it runs (for drawing) */
static ngx_int_t
ngx_http_maestro_wf_graph(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                            rc;
    char                           id[MST_ID_LEN + 1];
    json_t                        *rec, *def, *out;
    const char                    *name;
    ngx_http_maestro_main_conf_t  *mmcf;

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec, NULL);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    mmcf = ngx_http_maestro_mmcf(r);
    name = json_string_value(json_object_get(rec, "workflow"));

    def = NULL;
    rc = mst_run_graph_def(&mmcf->env, id, rec, &def);

    if (rc != MST_OK) {
        json_decref(rec);
        return ngx_http_maestro_store_error(r, rc, "graph");
    }

    out = json_pack("{s:s, s:s?, s:o}", "id", id, "workflow", name,
                    "graph", def);
    json_decref(rec);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, out);
}


static ngx_int_t
ngx_http_maestro_wf_events(ngx_http_request_t *r, ngx_str_t *arg)
{
    int        rc;
    char      *id;
    json_t    *rec;
    uint64_t   last;
    ngx_str_t  sid;

    last = ngx_http_maestro_sse_last_event_id(r);
    if (last == (uint64_t) -1) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "Last-Event-ID must be a number");
    }

    id = ngx_pnalloc(r->pool, MST_ID_LEN + 1);
    if (id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec, NULL);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    if (json_is_true(json_object_get(rec, "events_pruned"))) {
        json_decref(rec);
        return ngx_http_maestro_send_error(r, NGX_HTTP_MAESTRO_GONE,
                                           "events_expired",
                                           "the events of this workflow were "
                                           "dropped (maestro_event_retention)"
                                           "; its record and checkpoints "
                                           "remain");
    }

    json_decref(rec);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sid.data = (u_char *) id;
    sid.len = MST_ID_LEN;

    return ngx_http_maestro_sse_start(r, &sid, last);
}


/* GET /api/v1/workflows/{id}/ws: one workflow over WebSocket */
static ngx_int_t
ngx_http_maestro_wf_ws(ngx_http_request_t *r, ngx_str_t *arg)
{
    return ngx_http_maestro_ws_start(r, arg, NULL);
}


/*
 * A user id from the path, percent-decoded and NUL-terminated: NGX_OK,
 * NGX_DECLINED when it is not a valid id (the 400 is sent), NGX_ERROR.
 */
static ngx_int_t
ngx_http_maestro_user_arg(ngx_http_request_t *r, ngx_str_t *arg,
    ngx_str_t *user, ngx_int_t *rc)
{
    u_char  *dst, *src;

    user->data = ngx_pnalloc(r->pool, arg->len + 1);
    if (user->data == NULL) {
        return NGX_ERROR;
    }

    dst = user->data;
    src = arg->data;
    ngx_unescape_uri(&dst, &src, arg->len, 0);
    user->len = dst - user->data;
    *dst = '\0';

    if (!mst_utf8_valid((char *) user->data, user->len)
        || ngx_strlchr(user->data, dst, '\0') != NULL)
    {
        *rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_field",
                                          "the user id is not UTF-8");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* GET /api/v1/ws/{user_id}: a user's session over WebSocket */
static ngx_int_t
ngx_http_maestro_user_ws(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_int_t  rc;
    ngx_str_t  user;

    switch (ngx_http_maestro_user_arg(r, arg, &user, &rc)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        return rc;
    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_maestro_ws_start(r, NULL, &user);
}


/* GET /api/v1/usage: everyone's tokens and cost (workflows and /v1) */
static ngx_int_t
ngx_http_maestro_usage_all(ngx_http_request_t *r, ngx_str_t *arg)
{
    char                           err[MST_ERRLEN];
    json_t                        *usage;
    ngx_int_t                      rc;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    rc = mst_usage_get(mmcf->env.store, NULL, &usage, err, sizeof(err));
    if (rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "maestro: %s",
                      err);
        return ngx_http_maestro_store_error(r, (int) rc, "usage");
    }

    json_object_del(usage, "user_id");

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, usage);
}


/* GET /api/v1/users/{user_id}/usage: tokens and cost of all their calls */
static ngx_int_t
ngx_http_maestro_user_usage(ngx_http_request_t *r, ngx_str_t *arg)
{
    char                           err[MST_ERRLEN];
    json_t                        *usage;
    ngx_int_t                      rc;
    ngx_str_t                      user;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    switch (ngx_http_maestro_user_arg(r, arg, &user, &rc)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        return rc;
    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (user.len == 0 || user.len > 128) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "a user id is 1..128 bytes");
    }

    rc = mst_run_user_usage(&mmcf->env, (char *) user.data, &usage, err,
                            sizeof(err));
    if (rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "maestro: %s",
                      err);
        return ngx_http_maestro_store_error(r, (int) rc, "usage");
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, usage);
}


/* GET /api/v1/events: the monitor stream of every workflow's updates */
static ngx_int_t
ngx_http_maestro_monitor(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                            rc;
    u_char                        *buf;
    uint64_t                       last;
    ngx_str_t                      status, user;
    mst_txn_t                     *txn;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    buf = ngx_pnalloc(r->pool, 2 * 256);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_maestro_arg(r, "status", &status, (char *) buf, 256)
        == NGX_ERROR
        || ngx_http_maestro_arg(r, "user_id", &user, (char *) buf + 256,
                                256)
           == NGX_ERROR)
    {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "status or user_id is too long");
    }

    last = ngx_http_maestro_sse_last_event_id(r);
    if (last == (uint64_t) -1) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "Last-Event-ID must be a number");
    }

    if (last == 0) {
        /* a new dashboard starts live; GET /api/v1/workflows has the
           state, Last-Event-ID resumes */
        rc = mst_txn_begin(mmcf->env.store, 1, &txn);
        if (rc != MST_OK) {
            return ngx_http_maestro_store_error(r, rc, "store");
        }

        rc = mst_feed_last(txn, &last);
        mst_txn_abort(txn);

        if (rc != MST_OK) {
            return ngx_http_maestro_store_error(r, rc, "feed");
        }
    }

    if (r->headers_in.upgrade != NULL) {
        /* the same stream over WebSocket */
        return ngx_http_maestro_ws_start_monitor(r, last, &status, &user);
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_maestro_sse_start_feed(r, last, &status, &user);
}


/* GET /api/v1/providers: the gateway's providers and their breakers */
static ngx_int_t
ngx_http_maestro_providers(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:o, s:b}", "items", mst_gateway_status(mmcf->gw),
                  "offline", !mst_gateway_online(mmcf->gw)));
}


static ngx_int_t
ngx_http_maestro_agents(ngx_http_request_t *r, ngx_str_t *arg)
{
    json_t                        *items;
    ngx_uint_t                     i;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    items = json_array();

    for (i = 0; i < mmcf->nagents; i++) {
        json_array_append_new(items, mst_agent_describe(&mmcf->agents[i]));
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
                                      json_pack("{s:o}", "items", items));
}


static ngx_int_t
ngx_http_maestro_agent_logs(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                            rc;
    char                           name[65], lim[16];
    json_t                        *list;
    ngx_int_t                      n, limit;
    ngx_str_t                      v;
    mst_txn_t                     *txn;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    if (arg->len >= sizeof(name)) {
        goto unknown;
    }

    ngx_memcpy(name, arg->data, arg->len);
    name[arg->len] = '\0';

    if (mst_run_agent(&mmcf->env, name) == NULL) {
        goto unknown;
    }

    limit = 100;

    n = ngx_http_maestro_arg(r, "limit", &v, lim, sizeof(lim));
    if (n != NGX_DECLINED) {
        limit = (n == NGX_OK) ? ngx_atoi(v.data, v.len) : NGX_ERROR;
        if (limit < 1 || limit > 1000) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalid_field",
                                               "limit must be 1..1000");
        }
    }

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "store");
    }

    rc = mst_store_agent_log_list(txn, name, (size_t) limit, &list);
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "agent logs");
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:o}", "agent", name, "items", list));

unknown:

    return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such agent");
}


/* POST: body reading, shared by create and stream */

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


static ngx_int_t
ngx_http_maestro_analyze_post(ngx_http_request_t *r, ngx_str_t *arg)
{
    return ngx_http_maestro_read_body(r, 3);
}


static ngx_int_t
ngx_http_maestro_wf_create(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_uint_t  stream;

    stream = (r->uri.len > sizeof("/api/v1/stream") - 1
              && ngx_strncmp(r->uri.data, "/api/v1/stream",
                             sizeof("/api/v1/stream") - 1) == 0);

    return ngx_http_maestro_read_body(r, stream);
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


/* cancel */

/* runs on a pool thread */
static void
ngx_http_maestro_cancel_thread(void *arg)
{
    ngx_http_maestro_cancel_t  *cc = arg;

    cc->rc = mst_run_cancel(&cc->mmcf->env, cc->id,
                            ngx_http_maestro_run_alive, &cc->rec, &cc->final,
                            cc->err, sizeof(cc->err));
}


/* runs in the event loop */
static void
ngx_http_maestro_cancel_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_cancel_t  *cc = arg;

    json_t              *out;
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = cc->r;

    if (trc != NGX_OK) {
        cc->rc = MST_ERROR;
    }

    if (cc->rc == MST_EXISTS) {
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_CONFLICT,
                                         "already_finished", "%s", cc->err);

    } else if (cc->rc != MST_OK) {
        rc = ngx_http_maestro_store_error(r, cc->rc, "cancel");

    } else {
        out = json_pack("{s:s, s:O, s:b}", "id", cc->id,
                        "status", json_object_get(cc->rec, "status"),
                        "cancel_requested", 1);
        rc = ngx_http_maestro_send_json(r, NGX_HTTP_ACCEPTED, out);
    }

    json_decref(cc->rec);
    ngx_free(cc);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_maestro_wf_cancel(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_http_maestro_cancel_t     *cc;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    if (!mst_id_valid((char *) arg->data, arg->len)) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such workflow");
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cc = ngx_calloc(sizeof(ngx_http_maestro_cancel_t), r->connection->log);
    if (cc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cc->r = r;
    cc->mmcf = mmcf;
    ngx_memcpy(cc->id, arg->data, MST_ID_LEN);

    if (ngx_http_maestro_io_post(mmcf, ngx_http_maestro_cancel_thread,
                                 ngx_http_maestro_cancel_done, cc)
        != NGX_OK)
    {
        ngx_free(cc);
        return ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "queue_full",
                                           "the io thread pool queue is "
                                           "full");
    }

    r->main->count++;

    return NGX_DONE;
}
