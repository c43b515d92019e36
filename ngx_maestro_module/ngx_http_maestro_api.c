/*
 * Copyright (C) Maestro authors
 */

/*
 * The REST API under /api/v1 and /healthz: the router, and the workflow
 * routes (list, get, graph, events, cancel, the streams). The
 * checkpoints are in ngx_http_maestro_api_checkpoints.c, the information
 * routes are in ngx_http_maestro_api_info.c, the POST
 * routes in ngx_http_maestro_api_submit.c, the answers' helpers in
 * ngx_http_maestro_response.c. Reads are LMDB read transactions on the
 * event loop; writes go to the io thread pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_audit.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_erase.h"
#include "ngx_http_maestro_keys.h"
#include "ngx_http_maestro_openai.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_ws.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"
#include "mst_feed.h"


#define NGX_HTTP_MAESTRO_GET   0x01
#define NGX_HTTP_MAESTRO_POST  0x02
#define NGX_HTTP_MAESTRO_DELETE 0x04


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
static ngx_int_t ngx_http_maestro_wf_list(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_get(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_events(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_graph(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_cancel(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_monitor(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_wf_ws(ngx_http_request_t *r,
    ngx_str_t *arg);
static ngx_int_t ngx_http_maestro_user_ws(ngx_http_request_t *r,
    ngx_str_t *arg);


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
    { "/workflows/", "", NGX_HTTP_MAESTRO_GET | NGX_HTTP_MAESTRO_DELETE,
      ngx_http_maestro_wf_get, "GET, DELETE" },
    { "/stream/workflow", NULL, NGX_HTTP_MAESTRO_POST,
      ngx_http_maestro_wf_create, "POST" },
    { "/agents", NULL, NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_agents, "GET" },
    { "/users/", "/usage", NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_user_usage, "GET" },
    { "/users/", "", NGX_HTTP_MAESTRO_DELETE,
      ngx_http_maestro_erase_user, "DELETE" },
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
    { "/keys", NULL, NGX_HTTP_MAESTRO_GET | NGX_HTTP_MAESTRO_POST,
      ngx_http_maestro_keys, "GET, POST" },
    { "/keys/", "/rotate", NGX_HTTP_MAESTRO_POST,
      ngx_http_maestro_key_rotate, "POST" },
    { "/keys/", "", NGX_HTTP_MAESTRO_GET | NGX_HTTP_MAESTRO_DELETE,
      ngx_http_maestro_key, "GET, DELETE" },
    { "/me", NULL, NGX_HTTP_MAESTRO_GET,
      ngx_http_maestro_me, "GET" },
    { NULL, NULL, 0, NULL, NULL }
};


ngx_int_t
ngx_http_maestro_api_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_maestro_route(r);

    return rc;
}


ngx_http_maestro_main_conf_t *
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
             : (r->method & NGX_HTTP_POST) ? NGX_HTTP_MAESTRO_POST
             : (r->method & NGX_HTTP_DELETE) ? NGX_HTTP_MAESTRO_DELETE : 0;

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


/* a workflow record as the API shows it */
json_t *
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
    case MST_ECRYPT:
        /* the reason (which key id, altered) is in the error log */
        *code = "store_sealed";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        *code = "store_error";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


ngx_int_t
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

ngx_int_t
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


ngx_int_t
ngx_http_maestro_api_tenant(ngx_http_request_t *r, const char **user)
{
    ngx_http_maestro_admit_t  *ad;

    ad = ngx_http_maestro_admit_get(r);
    if (ad == NULL) {
        return NGX_ERROR;
    }

    if (ad->caller.kind == MST_CALLER_KEY
        || ad->caller.kind == MST_CALLER_JWT)
    {
        *user = mst_caller_user(&ad->caller);
    }

    return NGX_OK;
}


/* the same for a filter kept as ngx_str_t */
static ngx_int_t
ngx_http_maestro_api_tenant_str(ngx_http_request_t *r, ngx_str_t *user)
{
    const char  *own;

    own = NULL;

    if (ngx_http_maestro_api_tenant(r, &own) != NGX_OK) {
        return NGX_ERROR;
    }

    if (own != NULL) {
        user->data = (u_char *) own;
        user->len = ngx_strlen(own);
    }

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

    if (ngx_http_maestro_api_tenant(r, &f.user_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
 * The record of the workflow named by arg. An argument that cannot be an
 * id is MST_NOTFOUND, like an id that is not stored.
 */
int
ngx_http_maestro_wf_load(ngx_http_request_t *r, ngx_str_t *arg, char *id,
    json_t **rec)
{
    int                            rc;
    mst_txn_t                     *txn;
    const char                    *owner;
    ngx_http_maestro_admit_t      *ad;
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

    owner = (rc == MST_OK) ? json_string_value(json_object_get(*rec,
                                                                "user_id"))
                           : NULL;

    if (rc == MST_OK && !ngx_http_maestro_admit_may_see(r, owner)) {
        /* another tenant's: as if it did not exist */
        json_decref(*rec);
        *rec = NULL;
        rc = MST_NOTFOUND;
    }

    if (rc == MST_OK && owner != NULL) {
        ad = ngx_http_get_module_ctx(r, ngx_http_maestro_module);

        if (ad != NULL && mst_caller_is_admin(&ad->caller)) {
            ngx_http_maestro_audit(r, "admin_read",
                json_pack("{s:s, s:s}", "workflow", id, "owner", owner));
        }
    }

    mst_txn_abort(txn);

    return rc;
}


static ngx_int_t
ngx_http_maestro_wf_get(ngx_http_request_t *r, ngx_str_t *arg)
{
    int         rc;
    char        id[MST_ID_LEN + 1];
    json_t     *rec, *view;
    mst_txn_t  *txn;

    if (r->method & NGX_HTTP_DELETE) {
        return ngx_http_maestro_erase_workflow(r, arg);
    }

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    /* its agents and prompt are parts of it (mst_store.h) */

    rc = mst_txn_begin(ngx_http_maestro_mmcf(r)->env.store, 1, &txn);
    if (rc == MST_OK) {
        rc = mst_store_wf_attach(txn, id, rec);
        mst_txn_abort(txn);
    }

    if (rc != MST_OK) {
        json_decref(rec);
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    view = ngx_http_maestro_wf_view(rec);
    json_decref(rec);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, view);
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

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec);
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

    rc = ngx_http_maestro_wf_load(r, arg, id, &rec);
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
ngx_int_t
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


ngx_int_t
ngx_http_maestro_user_id(ngx_http_request_t *r, ngx_str_t *arg,
    ngx_str_t *user, ngx_int_t *rc)
{
    switch (ngx_http_maestro_user_arg(r, arg, user, rc)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        return NGX_DECLINED;
    default:
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    if (user->len == 0 || user->len > MST_CALLER_USER_MAX) {
        *rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_field",
                                          "a user id is 1..128 bytes");
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

    if (ngx_http_maestro_api_tenant_str(r, &user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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


/* POST: body reading, shared by create and stream */


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
        /* not posted: the io pool's queue is full */
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "queue_full",
                                         "the io thread pool queue is "
                                         "full");

    } else if (cc->rc == MST_EXISTS) {
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
    int                            rc;
    char                           id[MST_ID_LEN + 1];
    json_t                        *rec;
    ngx_http_maestro_cancel_t     *cc;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    /* the record first: another tenant's is not found */
    rc = ngx_http_maestro_wf_load(r, arg, id, &rec);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    json_decref(rec);

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

    /* ngx_http_maestro_cancel_done() answers, also when not posted */
    r->main->count++;

    (void) ngx_http_maestro_io_post(mmcf, ngx_http_maestro_cancel_thread,
                                    ngx_http_maestro_cancel_done, cc);

    return NGX_DONE;
}
