/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see ngx_http_maestro_erase.h and core/access/mst_erase.h */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_audit.h"
#include "ngx_http_maestro_erase.h"
#include "ngx_http_maestro_keys.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_thread.h"
#include "mst_erase.h"


typedef struct {
    ngx_http_request_t            *r;
    ngx_http_maestro_main_conf_t  *mmcf;
    char                           user[129];     /* or "" */
    char                           key_id[65];    /* or "" */
    char                           wf_id[MST_ID_LEN + 1];     /* or "" */
    mst_erase_t                    result;
    int                            rc;
} ngx_http_maestro_erase_t;


/* runs on the io pool: all of it or nothing */
static void
ngx_http_maestro_erase_thread(void *arg)
{
    ngx_http_maestro_erase_t  *er = arg;

    mst_txn_t  *txn;

    er->rc = mst_txn_begin(er->mmcf->env.store, 0, &txn);
    if (er->rc != MST_OK) {
        return;
    }

    er->rc = er->wf_id[0] ? mst_erase_workflow(txn, er->wf_id, &er->result)
             : er->user[0] ? mst_erase_user(txn, er->user, &er->result)
             : mst_erase_key(txn, er->key_id, &er->result);

    if (er->rc != MST_OK) {
        mst_txn_abort(txn);
        return;
    }

    er->rc = mst_txn_commit(txn);

    /* its followers wake, find it gone and end (ngx_http_maestro_sse.c) */
    if (er->rc == MST_OK && er->wf_id[0] && er->mmcf->env.notify != NULL) {
        er->mmcf->env.notify(er->mmcf->env.notify_arg, er->wf_id, 0);
    }
}


/* DELETE /api/v1/workflows/{id}: 204, 404, 409 while queued or running */
static ngx_int_t
ngx_http_maestro_erase_wf_answer(ngx_http_request_t *r,
    ngx_http_maestro_erase_t *er)
{
    if (er->rc == MST_CONFLICT) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                   "workflow %s is still queued or running: cancel it, "
                   "then delete it", er->wf_id);
    }

    if (er->rc == MST_NOTFOUND) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such workflow");
    }

    if (er->rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "maestro: deleting workflow %s: %s", er->wf_id,
                      mst_strerror(er->rc));
        return ngx_http_maestro_store_error(r, er->rc, "deletion");
    }

    ngx_http_maestro_audit(r, "workflow_deleted",
                           json_pack("{s:s}", "workflow", er->wf_id));

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


static ngx_int_t
ngx_http_maestro_erase_answer(ngx_http_request_t *r,
    ngx_http_maestro_erase_t *er)
{
    json_t  *out;

    if (er->wf_id[0]) {
        return ngx_http_maestro_erase_wf_answer(r, er);
    }

    if (er->rc == MST_CONFLICT) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                   "%zu workflow%s still queued or running (%s): cancel "
                   "them, then erase again", er->result.active,
                   er->result.active == 1 ? " is" : "s are",
                   er->result.active_id);
    }

    if (er->rc == MST_NOTFOUND) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such key");
    }

    if (er->rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "maestro: erasing %s %s: %s",
                      er->user[0] ? "user" : "key",
                      er->user[0] ? er->user : er->key_id,
                      mst_strerror(er->rc));
        return ngx_http_maestro_store_error(r, er->rc, "erasure");
    }

    ngx_http_maestro_audit(r, "data_erased",
        json_pack("{s:s?, s:s?, s:I, s:I}",
                  "user_id", er->user[0] ? er->user : NULL,
                  "erased_key", er->key_id[0] ? er->key_id : NULL,
                  "workflows", (json_int_t) er->result.workflows,
                  "keys", (json_int_t) er->result.keys));

    out = json_pack("{s:{s:I, s:I}}", "erased",
                    "workflows", (json_int_t) er->result.workflows,
                    "keys", (json_int_t) er->result.keys);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, out);
}


/* runs in the event loop */
static void
ngx_http_maestro_erase_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_erase_t  *er = arg;

    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = er->r;

    rc = (trc != NGX_OK)
         ? ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "queue_full", "the io thread pool "
                                       "queue is full")
         : ngx_http_maestro_erase_answer(r, er);

    ngx_free(er);
    ngx_http_finalize_request(r, rc);
}


ngx_int_t
ngx_http_maestro_erase(ngx_http_request_t *r, const char *user,
    const char *key_id)
{
    ngx_http_maestro_erase_t  *er;

    er = ngx_calloc(sizeof(ngx_http_maestro_erase_t), r->connection->log);
    if (er == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    er->r = r;
    er->mmcf = ngx_http_maestro_mmcf(r);

    if (user != NULL) {
        ngx_cpystrn((u_char *) er->user, (u_char *) user, sizeof(er->user));
    } else {
        ngx_cpystrn((u_char *) er->key_id, (u_char *) key_id,
                    sizeof(er->key_id));
    }

    r->main->count++;

    /* a full queue: erase_done answers 503 */
    (void) ngx_http_maestro_io_post(er->mmcf, ngx_http_maestro_erase_thread,
                                    ngx_http_maestro_erase_done, er);

    return NGX_DONE;
}


ngx_int_t
ngx_http_maestro_erase_user(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_int_t  rc;
    ngx_str_t  user;

    if (ngx_http_maestro_keys_admin(r, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_maestro_user_id(r, arg, &user, &rc) != NGX_OK) {
        return rc;
    }

    return ngx_http_maestro_erase(r, (char *) user.data, NULL);
}


ngx_int_t
ngx_http_maestro_erase_workflow(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                        rc;
    char                       id[MST_ID_LEN + 1];
    json_t                    *rec;
    ngx_http_maestro_erase_t  *er;

    /* the record first: another tenant's is not found */
    rc = ngx_http_maestro_wf_load(r, arg, id, &rec);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "workflow");
    }

    json_decref(rec);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    er = ngx_calloc(sizeof(ngx_http_maestro_erase_t), r->connection->log);
    if (er == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    er->r = r;
    er->mmcf = ngx_http_maestro_mmcf(r);
    ngx_memcpy(er->wf_id, id, MST_ID_LEN + 1);

    r->main->count++;

    /* a full queue: erase_done answers 503 */
    (void) ngx_http_maestro_io_post(er->mmcf, ngx_http_maestro_erase_thread,
                                    ngx_http_maestro_erase_done, er);

    return NGX_DONE;
}
