/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The admin API of virtual API keys (mst_apikey.h):
 *
 *   POST   /api/v1/keys              create: 201 with "key" (shown once)
 *   GET    /api/v1/keys              list (?user_id=, ?limit=, ?cursor=)
 *   GET    /api/v1/keys/{id}         one key
 *   DELETE /api/v1/keys/{id}         revoke (?purge=true: erase, _erase.c)
 *   POST   /api/v1/keys/{id}/rotate  a new secret; {"grace_seconds": n}
 *                                    keeps the old one working n seconds
 *
 * Only the admin credential may use them. Reads run in the event loop
 * (an LMDB read takes no lock); writes run on the io pool, each in one
 * write transaction, so a revocation is committed before the answer and
 * the next request on any worker reads the revoked record.
 *
 * GET /api/v1/me tells any caller who it is, with its key's limits and
 * budget (the UI shows them).
 *
 * A secret exists in clear only in the create or rotate answer and in the
 * task that makes it, which is wiped before it is freed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_audit.h"
#include "ngx_http_maestro_erase.h"
#include "ngx_http_maestro_keys.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_thread.h"
#include "mst_apikey.h"
#include "mst_store.h"
#include "mst_usage.h"


#define NGX_HTTP_MAESTRO_KEYS_PAGE      50
#define NGX_HTTP_MAESTRO_KEYS_PAGE_MAX  1000
#define NGX_HTTP_MAESTRO_TOUCH_MS       60000   /* last_used_at precision */


typedef enum {
    NGX_HTTP_MAESTRO_KEY_CREATE = 0,
    NGX_HTTP_MAESTRO_KEY_REVOKE,
    NGX_HTTP_MAESTRO_KEY_ROTATE,
    NGX_HTTP_MAESTRO_KEY_TOUCH
} ngx_http_maestro_key_op_e;


/* one write, on the io pool */
typedef struct {
    ngx_http_request_t            *r;       /* NULL: touch */
    ngx_http_maestro_main_conf_t  *mmcf;
    ngx_http_maestro_key_op_e      op;
    char                           id[MST_APIKEY_ID_LEN + 1];
    json_t                        *rec;     /* in: create; out: stored */
    mst_apikey_secret_t            secret;
    int64_t                        now;
    int64_t                        grace_ms;
    int                            rc;
    char                           err[MST_ERRLEN];
    ngx_log_t                     *log;
} ngx_http_maestro_key_op_t;


static void ngx_http_maestro_keys_body(ngx_http_request_t *r);
static void ngx_http_maestro_rotate_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_maestro_key_post(ngx_http_request_t *r,
    ngx_http_maestro_key_op_t *op);
static void ngx_http_maestro_key_free(ngx_http_maestro_key_op_t *op);


ngx_int_t
ngx_http_maestro_keys_admin(ngx_http_request_t *r, ngx_int_t *rc)
{
    ngx_http_maestro_admit_t      *ad;
    ngx_http_maestro_main_conf_t  *mmcf;

    ad = ngx_http_maestro_admit_get(r);
    if (ad == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (mst_caller_is_admin(&ad->caller)) {
        return NGX_OK;
    }

    mmcf = ngx_http_maestro_mmcf(r);

    *rc = ngx_http_maestro_send_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                      mmcf->admin_set
                                      ? "the admin credential is required"
                                      : "no admin credential is configured "
                                        "(maestro_admin_key or "
                                        "MAESTRO_ADMIN_KEY)");
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_maestro_keys_id(ngx_str_t *arg, char *id)
{
    if (arg->len != MST_APIKEY_ID_LEN
        || ngx_strncmp(arg->data, "key_", 4) != 0)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(id, arg->data, MST_APIKEY_ID_LEN);
    id[MST_APIKEY_ID_LEN] = '\0';

    return NGX_OK;
}


/* a write task of kind, stamped now; freed by ngx_http_maestro_key_free */
static ngx_http_maestro_key_op_t *
ngx_http_maestro_key_op(ngx_http_maestro_key_op_e kind, ngx_log_t *log)
{
    ngx_http_maestro_key_op_t  *op;

    op = ngx_calloc(sizeof(ngx_http_maestro_key_op_t), log);
    if (op == NULL) {
        return NULL;
    }

    op->op = kind;
    op->now = mst_now_ms();
    op->log = log;

    return op;
}


static ngx_int_t
ngx_http_maestro_keys_has_body(ngx_http_request_t *r)
{
    return r->headers_in.content_length_n > 0 || r->headers_in.chunked;
}


/* reads */

static ngx_int_t
ngx_http_maestro_keys_list(ngx_http_request_t *r)
{
    int                            rc;
    char                           user[256], cursor[MST_STORE_KEY_ID_MAX + 1];
    char                           next[MST_STORE_KEY_ID_MAX + 1], num[16];
    size_t                         i;
    json_t                        *list, *out, *rec;
    int64_t                        now;
    ngx_int_t                      n, limit;
    ngx_str_t                      v;
    mst_txn_t                     *txn;
    const char                    *who, *after;
    ngx_http_maestro_main_conf_t  *mmcf;

    who = NULL;
    after = NULL;
    limit = NGX_HTTP_MAESTRO_KEYS_PAGE;

    n = ngx_http_maestro_arg(r, "user_id", &v, user, sizeof(user));
    if (n == NGX_ERROR) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "user_id is too long");
    }
    if (n == NGX_OK) {
        who = user;
    }

    n = ngx_http_maestro_arg(r, "cursor", &v, cursor, sizeof(cursor));
    if (n == NGX_ERROR) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field", "bad cursor");
    }
    if (n == NGX_OK) {
        after = cursor;
    }

    n = ngx_http_maestro_arg(r, "limit", &v, num, sizeof(num));
    if (n == NGX_OK) {
        limit = ngx_atoi(v.data, v.len);
    }
    if (n == NGX_ERROR || limit < 1
        || limit > NGX_HTTP_MAESTRO_KEYS_PAGE_MAX)
    {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "limit must be 1..1000");
    }

    mmcf = ngx_http_maestro_mmcf(r);

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "store");
    }

    rc = mst_store_key_list(txn, who, after, (size_t) limit, &list, next);
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "keys");
    }

    now = mst_now_ms();
    out = json_array();

    json_array_foreach(list, i, rec) {
        json_array_append_new(out, mst_apikey_view(rec, now));
    }

    json_decref(list);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:o, s:o}", "items", out,
                  "next_cursor", next[0] ? json_string(next) : json_null()));
}


static ngx_int_t
ngx_http_maestro_keys_get(ngx_http_request_t *r, const char *id)
{
    int                            rc;
    json_t                        *rec, *view;
    mst_txn_t                     *txn;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "store");
    }

    rc = mst_store_key_get(txn, id, &rec);
    mst_txn_abort(txn);

    if (rc == MST_NOTFOUND) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such key");
    }

    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "key");
    }

    view = mst_apikey_view(rec, mst_now_ms());
    json_decref(rec);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, view);
}


/* the routes */

ngx_int_t
ngx_http_maestro_keys(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_int_t  rc;

    if (ngx_http_maestro_keys_admin(r, &rc) != NGX_OK) {
        return rc;
    }

    if (r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD)) {
        return ngx_http_maestro_keys_list(r);
    }

    rc = ngx_http_maestro_body_check(r);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_maestro_keys_body);

    return (rc >= NGX_HTTP_SPECIAL_RESPONSE) ? rc : NGX_DONE;
}


ngx_int_t
ngx_http_maestro_key(ngx_http_request_t *r, ngx_str_t *arg)
{
    char                        id[MST_APIKEY_ID_LEN + 1];
    ngx_int_t                   rc;
    ngx_http_maestro_key_op_t  *op;

    if (ngx_http_maestro_keys_admin(r, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_maestro_keys_id(arg, id) != NGX_OK) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such key");
    }

    if (r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD)) {
        return ngx_http_maestro_keys_get(r, id);
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* DELETE ?purge=true: erase the key and what it made */

    if (r->args.len == sizeof("purge=true") - 1
        && ngx_strncmp(r->args.data, "purge=true", r->args.len) == 0)
    {
        return ngx_http_maestro_erase(r, NULL, id);
    }

    /* DELETE: revoke */

    op = ngx_http_maestro_key_op(NGX_HTTP_MAESTRO_KEY_REVOKE,
                                 r->connection->log);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(op->id, id, sizeof(id));

    return ngx_http_maestro_key_post(r, op);
}


ngx_int_t
ngx_http_maestro_key_rotate(ngx_http_request_t *r, ngx_str_t *arg)
{
    char       id[MST_APIKEY_ID_LEN + 1];
    ngx_int_t  rc;

    if (ngx_http_maestro_keys_admin(r, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_maestro_keys_id(arg, id) != NGX_OK) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such key");
    }

    /* the body is optional: {"grace_seconds": n} */
    if (ngx_http_maestro_keys_has_body(r)) {
        rc = ngx_http_maestro_body_check(r);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_maestro_rotate_body);

    return (rc >= NGX_HTTP_SPECIAL_RESPONSE) ? rc : NGX_DONE;
}


/* runs in the event loop: POST /keys with its body read */
static void
ngx_http_maestro_keys_body(ngx_http_request_t *r)
{
    json_t                     *body;
    ngx_int_t                   rc;
    ngx_http_maestro_key_op_t  *op;

    rc = ngx_http_maestro_body_object(r, &body);
    if (body == NULL) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    op = ngx_http_maestro_key_op(NGX_HTTP_MAESTRO_KEY_CREATE,
                                 r->connection->log);
    if (op == NULL) {
        json_decref(body);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (mst_apikey_generate(&op->secret) != MST_OK) {
        json_decref(body);
        ngx_free(op);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (mst_apikey_create(body, &op->secret, op->now, &op->rec, op->err,
                          sizeof(op->err))
        != MST_OK)
    {
        json_decref(body);
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_field", "%s", op->err);
        ngx_http_maestro_key_free(op);
        ngx_http_finalize_request(r, rc);
        return;
    }

    json_decref(body);
    ngx_memcpy(op->id, op->secret.id, sizeof(op->id));

    /* NGX_DONE drops the body reader's reference: key_done answers */
    ngx_http_finalize_request(r, ngx_http_maestro_key_post(r, op));
}


/* runs in the event loop: POST /keys/{id}/rotate with its body, if any */
static void
ngx_http_maestro_rotate_body(ngx_http_request_t *r)
{
    json_t                     *body, *g;
    ngx_int_t                   rc;
    ngx_http_maestro_key_op_t  *op;

    body = NULL;

    if (ngx_http_maestro_keys_has_body(r)) {
        rc = ngx_http_maestro_body_object(r, &body);
        if (body == NULL) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    op = ngx_http_maestro_key_op(NGX_HTTP_MAESTRO_KEY_ROTATE,
                                 r->connection->log);
    if (op == NULL) {
        json_decref(body);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    op->grace_ms = MST_APIKEY_GRACE_MS;

    g = json_object_get(body, "grace_seconds");

    if (body != NULL && (json_object_size(body) != (g ? 1u : 0u)
                         || (g != NULL && !json_is_integer(g))))
    {
        json_decref(body);
        ngx_free(op);
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_field",
                                         "the body may only have "
                                         "\"grace_seconds\" (an integer)");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (g != NULL) {
        op->grace_ms = (int64_t) json_integer_value(g) * 1000;
    }

    json_decref(body);

    /* the id from the path the router matched: /api/v1/keys/{id}/rotate */
    ngx_memcpy(op->id, r->uri.data + sizeof("/api/v1/keys/") - 1,
               MST_APIKEY_ID_LEN);

    if (mst_apikey_regenerate(&op->secret, op->id) != MST_OK) {
        ngx_free(op);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* NGX_DONE drops the body reader's reference: key_done answers */
    ngx_http_finalize_request(r, ngx_http_maestro_key_post(r, op));
}


/* writes */

/* runs on the io pool */
static void
ngx_http_maestro_key_thread(void *arg)
{
    ngx_http_maestro_key_op_t  *op = arg;

    int         rc;
    json_t     *rec, *used;
    mst_txn_t  *txn;

    rc = mst_txn_begin(op->mmcf->env.store, 0, &txn);
    if (rc != MST_OK) {
        op->rc = rc;
        return;
    }

    if (op->op == NGX_HTTP_MAESTRO_KEY_CREATE) {
        rc = mst_store_key_put(txn, op->id, op->rec, 1);
        goto commit;
    }

    rc = mst_store_key_get(txn, op->id, &rec);
    if (rc != MST_OK) {
        goto commit;
    }

    switch (op->op) {

    case NGX_HTTP_MAESTRO_KEY_REVOKE:
        rc = mst_apikey_revoke(rec, op->now);
        break;

    case NGX_HTTP_MAESTRO_KEY_ROTATE:
        rc = mst_apikey_rotate(rec, &op->secret, op->now, op->grace_ms,
                               op->err, sizeof(op->err));
        break;

    default: /* NGX_HTTP_MAESTRO_KEY_TOUCH */
        used = json_object_get(rec, "last_used_at");

        if (json_is_integer(used)
            && op->now - json_integer_value(used)
               < NGX_HTTP_MAESTRO_TOUCH_MS)
        {
            rc = MST_EXISTS;    /* another worker did */
            break;
        }

        json_object_set_new(rec, "last_used_at", json_integer(op->now));
        break;
    }

    if (rc == MST_OK) {
        rc = mst_store_key_put(txn, op->id, rec, 0);
    }

    json_decref(op->rec);
    op->rec = rec;

commit:

    if (rc == MST_OK) {
        rc = mst_txn_commit(txn);

    } else {
        mst_txn_abort(txn);
    }

    op->rc = rc;
}


static void
ngx_http_maestro_key_free(ngx_http_maestro_key_op_t *op)
{
    json_decref(op->rec);
    ngx_explicit_memzero(&op->secret, sizeof(mst_apikey_secret_t));
    ngx_free(op);
}


static ngx_int_t
ngx_http_maestro_key_answer(ngx_http_request_t *r,
    ngx_http_maestro_key_op_t *op)
{
    u_char           *loc;
    json_t           *view;
    ngx_uint_t        status;
    ngx_table_elt_t  *h;

    static const char  *what[] = { "key_created", "key_revoked",
                                   "key_rotated" };

    if (op->rc == MST_NOTFOUND) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such key");
    }

    if (op->rc == MST_EXISTS) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_CONFLICT,
                                           "already_revoked",
                                           "the key was revoked");
    }

    if (op->rc == MST_EINVAL && op->err[0]) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field", "%s", op->err);
    }

    if (op->rc != MST_OK) {
        return ngx_http_maestro_store_error(r, op->rc, "key");
    }

    /* the audit trail: who did what to which key (never the secret) */
    ngx_http_maestro_audit(r, what[op->op],
        json_pack("{s:s, s:O?}", "key", op->id,
                  "for_user", json_object_get(op->rec, "user_id")));

    view = mst_apikey_view(op->rec, op->now);
    if (view == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    status = NGX_HTTP_OK;

    if (op->op != NGX_HTTP_MAESTRO_KEY_REVOKE) {
        json_object_set_new(view, "key", json_string(op->secret.token));
    }

    if (op->op == NGX_HTTP_MAESTRO_KEY_CREATE) {
        status = NGX_HTTP_CREATED;

        h = ngx_list_push(&r->headers_out.headers);
        loc = ngx_pnalloc(r->pool, sizeof("/api/v1/keys/") - 1
                                   + MST_APIKEY_ID_LEN);
        if (h != NULL && loc != NULL) {
            h->hash = 1;
            ngx_str_set(&h->key, "Location");
            h->value.data = loc;
            h->value.len = ngx_sprintf(loc, "/api/v1/keys/%s", op->id) - loc;
        }
    }

    /* the answer holds a secret: send_json marks it no-store */

    return ngx_http_maestro_send_json(r, status, view);
}


/* runs in the event loop */
static void
ngx_http_maestro_key_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_key_op_t  *op = arg;

    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = op->r;

    if (r == NULL) {
        /* a touch: best effort */
        if (trc == NGX_OK && op->rc != MST_OK && op->rc != MST_EXISTS) {
            ngx_log_error(NGX_LOG_INFO, op->log, 0,
                          "maestro: key %s: last_used_at not written: %s",
                          op->id, mst_strerror(op->rc));
        }

        ngx_http_maestro_key_free(op);
        return;
    }

    if (trc != NGX_OK) {
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "queue_full",
                                         "the io thread pool queue is "
                                         "full");
    } else {
        rc = ngx_http_maestro_key_answer(r, op);
    }

    ngx_http_maestro_key_free(op);
    ngx_http_finalize_request(r, rc);
}


/* NGX_DONE: ngx_http_maestro_key_done() answers, also when not posted */
static ngx_int_t
ngx_http_maestro_key_post(ngx_http_request_t *r,
    ngx_http_maestro_key_op_t *op)
{
    op->r = r;
    op->mmcf = ngx_http_maestro_mmcf(r);

    r->main->count++;

    (void) ngx_http_maestro_io_post(op->mmcf, ngx_http_maestro_key_thread,
                                    ngx_http_maestro_key_done, op);

    return NGX_DONE;
}


void
ngx_http_maestro_keys_touch(ngx_http_maestro_main_conf_t *mmcf,
    const json_t *rec, int64_t now, ngx_log_t *log)
{
    json_t                     *used;
    const char                 *id;
    ngx_http_maestro_key_op_t  *op;

    used = json_object_get(rec, "last_used_at");

    if (json_is_integer(used)
        && now - json_integer_value(used) < NGX_HTTP_MAESTRO_TOUCH_MS)
    {
        return;
    }

    id = json_string_value(json_object_get(rec, "id"));
    if (id == NULL || ngx_strlen(id) != MST_APIKEY_ID_LEN) {
        return;
    }

    op = ngx_http_maestro_key_op(NGX_HTTP_MAESTRO_KEY_TOUCH, log);
    if (op == NULL) {
        return;
    }

    op->mmcf = mmcf;
    op->now = now;
    ngx_memcpy(op->id, id, MST_APIKEY_ID_LEN + 1);

    (void) ngx_http_maestro_io_post(mmcf, ngx_http_maestro_key_thread,
                                    ngx_http_maestro_key_done, op);
}


/* who am I */

/*
 * A budget's state: {usd, period, bucket, spent_usd, remaining_usd} of a
 * key (team 0) or a team; usage: the period's usage record, or NULL
 */
static json_t *
ngx_http_maestro_me_budget(ngx_http_request_t *r, int team, const char *id,
    json_t *usd, const char *period, json_t **usage)
{
    char                           err[MST_ERRLEN];
    double                         spent, left;
    json_t                        *u, *out;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    if (mst_usage_period_get(mmcf->env.store, team, id, period,
                             mst_now_ms(), &u, err, sizeof(err))
        != MST_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "maestro: usage of %s: %s", id, err);
        return NULL;
    }

    spent = json_number_value(json_object_get(u, "cost_usd"));
    left = json_number_value(usd) - spent;

    out = json_pack("{s:O, s:s, s:s?, s:f, s:o}",
                    "usd", usd ? usd : json_null(), "period", period,
                    "bucket", json_string_value(json_object_get(u, "period")),
                    "spent_usd", spent,
                    "remaining_usd", json_is_number(usd)
                                     ? json_real(left > 0 ? left : 0)
                                     : json_null());

    if (usage != NULL) {
        json_object_del(u, "user_id");
        json_object_del(u, "period");
        *usage = u;

    } else {
        json_decref(u);
    }

    return out;
}


/* a key's limits, usage and budget, the team's budget */
static void
ngx_http_maestro_me_quota(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, json_t *out)
{
    json_t                        *usage, *b, *usd;
    const char                    *period;
    const mst_budget_t            *tb;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    if (ad->key != NULL) {
        json_object_set_new(out, "limits",
                            ngx_http_maestro_limit_key_view(ad->key));

        period = json_string_value(json_object_get(ad->key,
                                                   "budget_period"));
        usage = NULL;
        b = ngx_http_maestro_me_budget(r, 0, ad->caller.key_id,
                                       json_object_get(ad->key, "budget_usd"),
                                       period ? period : "month", &usage);
        if (b != NULL) {
            json_object_set_new(out, "budget", b);
            json_object_set_new(out, "usage", usage);
        }
    }

    tb = mst_limit_team_budget(mmcf->team_budgets.elts,
                               mmcf->team_budgets.nelts, ad->caller.team);

    if (tb != NULL) {
        usd = json_real(tb->usd);
        b = ngx_http_maestro_me_budget(r, 1, ad->caller.team, usd,
                                       tb->period, NULL);
        json_decref(usd);

        if (b != NULL) {
            json_object_set_new(out, "team_budget", b);
        }
    }
}


ngx_int_t
ngx_http_maestro_me(ngx_http_request_t *r, ngx_str_t *arg)
{
    json_t                    *out;
    const char                *user;
    ngx_http_maestro_admit_t  *ad;

    ad = ngx_http_maestro_admit_get(r);
    if (ad == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    user = mst_caller_user(&ad->caller);

    out = json_pack("{s:s, s:s?, s:s?, s:s?}",
                    "kind", mst_caller_kind_name(&ad->caller),
                    "user_id", user,
                    "team", ad->caller.team[0] ? ad->caller.team : NULL,
                    "key_id", ad->caller.key_id[0] ? ad->caller.key_id
                                                   : NULL);

    if (out != NULL && ad->key != NULL) {
        json_object_set_new(out, "key", mst_apikey_view(ad->key,
                                                        mst_now_ms()));
    }

    if (out != NULL) {
        ngx_http_maestro_me_quota(r, ad, out);
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, out);
}
