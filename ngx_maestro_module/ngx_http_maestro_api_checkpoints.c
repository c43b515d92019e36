/*
 * Copyright (C) Maestro authors
 */

/*
 * GET /api/v1/workflows/{id}/checkpoints?cursor=&limit=: a page of a
 * workflow's checkpoints, oldest first. The page is read, rebuilt from
 * its deltas and written as JSON text on the io pool: a long workflow's
 * checkpoints are large, and none of that work may hold the event loop.
 * A page ends at limit checkpoints or once it passed
 * NGX_HTTP_MAESTRO_CP_PAGE_BYTES (one at least); next_cursor, when not
 * null, is the cursor of the next page.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_audit.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_thread.h"


#define NGX_HTTP_MAESTRO_CP_PAGE_DEFAULT  20
#define NGX_HTTP_MAESTRO_CP_PAGE_MAX      100
#define NGX_HTTP_MAESTRO_CP_PAGE_BYTES    (8 * 1024 * 1024)


typedef struct {
    ngx_http_request_t             *r;
    ngx_http_maestro_main_conf_t   *mmcf;
    char                            id[MST_ID_LEN + 1];
    uint64_t                        from;
    size_t                          limit;
    char                           *owner;      /* malloc; NULL: none */
    char                           *text;       /* malloc: the answer */
    size_t                          len;
    int                             rc;
} ngx_http_maestro_cp_page_t;


static void ngx_http_maestro_cp_page_thread(void *arg);
static void ngx_http_maestro_cp_page_done(void *arg, ngx_int_t trc);


ngx_int_t
ngx_http_maestro_wf_checkpoints(ngx_http_request_t *r, ngx_str_t *arg)
{
    char                        buf[32];
    ngx_int_t                   n;
    ngx_str_t                   v;
    uint64_t                    from;
    ngx_http_maestro_cp_page_t  *pg;

    if (!mst_id_valid((char *) arg->data, arg->len)) {
        return ngx_http_maestro_store_error(r, MST_NOTFOUND, "workflow");
    }

    from = 0;

    n = ngx_http_maestro_arg(r, "cursor", &v, buf, sizeof(buf));
    if (n == NGX_OK) {
        n = ngx_atoof(v.data, v.len);
        if (n < 0) {
            goto bad_cursor;
        }
        from = (uint64_t) n;

    } else if (n == NGX_ERROR) {
        goto bad_cursor;
    }

    n = ngx_http_maestro_arg(r, "limit", &v, buf, sizeof(buf));
    if (n == NGX_OK) {
        n = ngx_atoi(v.data, v.len);
        if (n < 1 || n > NGX_HTTP_MAESTRO_CP_PAGE_MAX) {
            goto bad_limit;
        }

    } else if (n == NGX_ERROR) {
        goto bad_limit;

    } else {
        n = NGX_HTTP_MAESTRO_CP_PAGE_DEFAULT;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pg = ngx_calloc(sizeof(ngx_http_maestro_cp_page_t), r->connection->log);
    if (pg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pg->r = r;
    pg->mmcf = ngx_http_maestro_mmcf(r);
    ngx_memcpy(pg->id, arg->data, MST_ID_LEN);
    pg->from = from;
    pg->limit = (size_t) n;

    /* ngx_http_maestro_cp_page_done() answers, also when not posted */
    r->main->count++;

    (void) ngx_http_maestro_io_post(pg->mmcf, ngx_http_maestro_cp_page_thread,
                                    ngx_http_maestro_cp_page_done, pg);

    return NGX_DONE;

bad_cursor:

    return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_field",
                                       "cursor must be a next_cursor");

bad_limit:

    return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_field", "limit must be 1..%d",
                                       NGX_HTTP_MAESTRO_CP_PAGE_MAX);
}


/* runs on a pool thread */
static void
ngx_http_maestro_cp_page_thread(void *arg)
{
    ngx_http_maestro_cp_page_t  *pg = arg;

    char         cursor[32];
    json_t      *rec, *list, *out;
    uint64_t     next;
    mst_txn_t   *txn;
    const char  *owner;

    pg->rc = mst_txn_begin(pg->mmcf->env.store, 1, &txn);
    if (pg->rc != MST_OK) {
        return;
    }

    pg->rc = mst_store_wf_get(txn, pg->id, &rec);
    if (pg->rc != MST_OK) {
        mst_txn_abort(txn);
        return;
    }

    owner = json_string_value(json_object_get(rec, "user_id"));
    pg->owner = owner ? strdup(owner) : NULL;
    json_decref(rec);

    if (owner != NULL && pg->owner == NULL) {
        pg->rc = MST_ENOMEM;
        mst_txn_abort(txn);
        return;
    }

    pg->rc = mst_store_checkpoint_page(txn, pg->id, pg->from, pg->limit,
                                       NGX_HTTP_MAESTRO_CP_PAGE_BYTES, &list,
                                       &next);
    mst_txn_abort(txn);

    if (pg->rc != MST_OK) {
        return;
    }

    snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long) next);

    out = json_pack("{s:s, s:o, s:o}", "id", pg->id, "items", list,
                    "next_cursor", next ? json_string(cursor) : json_null());

    pg->text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    pg->len = pg->text ? strlen(pg->text) : 0;
    json_decref(out);

    if (pg->text == NULL) {
        pg->rc = MST_ENOMEM;
    }
}


/* runs in the event loop */
static void
ngx_http_maestro_cp_page_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_cp_page_t  *pg = arg;

    ngx_int_t                  rc;
    ngx_http_request_t        *r;
    ngx_http_maestro_admit_t  *ad;

    r = pg->r;

    if (trc != NGX_OK) {
        /* not posted: the io pool's queue is full */
        rc = ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "queue_full",
                                         "the io thread pool queue is "
                                         "full");

    } else if (pg->rc == MST_OK
               && !ngx_http_maestro_admit_may_see(r, pg->owner))
    {
        /* another tenant's: as if it did not exist */
        rc = ngx_http_maestro_store_error(r, MST_NOTFOUND, "workflow");

    } else if (pg->rc != MST_OK) {
        rc = ngx_http_maestro_store_error(r, pg->rc, "workflow");

    } else {
        ad = ngx_http_get_module_ctx(r, ngx_http_maestro_module);

        if (pg->owner != NULL && ad != NULL
            && mst_caller_is_admin(&ad->caller))
        {
            ngx_http_maestro_audit(r, "admin_read",
                json_pack("{s:s, s:s}", "workflow", pg->id,
                          "owner", pg->owner));
        }

        rc = ngx_http_maestro_send_text(r, NGX_HTTP_OK, pg->text, pg->len,
                                        NULL);
        pg->text = NULL;
    }

    free(pg->text);
    free(pg->owner);
    ngx_free(pg);

    ngx_http_finalize_request(r, rc);
}
