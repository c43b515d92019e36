/*
 * Copyright (C) Maestro authors
 */

/*
 * A WebSocket's session (the protocol is in ngx_http_maestro_ws.c): what
 * a connection follows (one workflow, a user's workflows, the monitor),
 * the pump that queues their events as JSON messages, and the messages a
 * client sends: subscribe, prompt_submission, agent_action.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_ws.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_event_cache.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"
#include "mst_feed.h"
#include "mst_ws_msg.h"


#define NGX_HTTP_MAESTRO_WS_BATCH  256


typedef struct {
    ngx_http_maestro_ws_t          *ws;
    char                            id[MST_ID_LEN + 1];
    json_t                         *rec;
    int                             final;
    int                             rc;
    char                            err[MST_ERRLEN];
} ngx_http_maestro_ws_cancel_t;


static void ngx_http_maestro_ws_error(ngx_http_maestro_ws_t *ws,
    const char *code, const char *fmt, ...);


static void
ngx_http_maestro_ws_sub_wake(ngx_http_maestro_watch_t *w)
{
    ngx_http_maestro_ws_t  *ws = w->data;

    ngx_http_maestro_ws_pump(ws);
    ngx_http_maestro_ws_io(ws);
}


/*
 * A subscription (workflow id, after last). Slots are reused in place:
 * each holds a watch linked into the worker's index.
 */
static ngx_int_t
ngx_http_maestro_ws_subscribe(ngx_http_maestro_ws_t *ws, const char *id,
    uint64_t last)
{
    ngx_uint_t                  i, slot;
    ngx_http_maestro_ws_sub_t  *sub;

    slot = NGX_HTTP_MAESTRO_WS_MAX_SUBS;

    for (i = 0; i < NGX_HTTP_MAESTRO_WS_MAX_SUBS; i++) {
        sub = ws->subs[i];

        if (sub != NULL && sub->used && ngx_strcmp(sub->id, id) == 0) {
            return NGX_DECLINED;
        }

        if (slot == NGX_HTTP_MAESTRO_WS_MAX_SUBS
            && (sub == NULL || !sub->used || sub->finished))
        {
            slot = i;
        }
    }

    if (slot == NGX_HTTP_MAESTRO_WS_MAX_SUBS) {
        return NGX_ERROR;
    }

    sub = ws->subs[slot];

    if (sub == NULL) {
        sub = ngx_alloc(sizeof(ngx_http_maestro_ws_sub_t), ngx_cycle->log);
        if (sub == NULL) {
            return NGX_ERROR;
        }
        sub->used = 0;
        ws->subs[slot] = sub;
    }

    if (sub->used) {
        ngx_http_maestro_watch_del(ws->mmcf, &sub->watch);
    }

    ngx_memzero(sub, sizeof(ngx_http_maestro_ws_sub_t));
    ngx_memcpy(sub->id, id, MST_ID_LEN);
    sub->last = last;
    sub->used = 1;

    sub->watch.wake = ngx_http_maestro_ws_sub_wake;
    sub->watch.data = ws;
    ngx_http_maestro_watch_add(ws->mmcf, &sub->watch, sub->id);

    return NGX_OK;
}


/* a session starts with the user's workflows that are still running */
static void
ngx_http_maestro_ws_session_start(ngx_http_maestro_ws_t *ws)
{
    char              next[MST_ID_LEN + 1];
    size_t            i;
    json_t           *items, *rec;
    const char       *status;
    mst_txn_t        *txn;
    mst_wf_filter_t   f;

    if (mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK) {
        return;
    }

    (void) mst_feed_last(txn, &ws->feed_last);

    ngx_memzero(&f, sizeof(mst_wf_filter_t));
    f.user_id = ws->user;
    f.limit = NGX_HTTP_MAESTRO_WS_MAX_SUBS / 2;

    if (mst_store_wf_list(txn, &f, &items, next) == MST_OK) {
        json_array_foreach(items, i, rec) {
            status = json_string_value(json_object_get(rec, "status"));

            if (status != NULL
                && (ngx_strcmp(status, "queued") == 0
                    || ngx_strcmp(status, "running") == 0))
            {
                (void) ngx_http_maestro_ws_subscribe(ws,
                    json_string_value(json_object_get(rec, "id")), 0);
            }
        }

        json_decref(items);
    }

    mst_txn_abort(txn);
}


ngx_int_t
ngx_http_maestro_ws_start(ngx_http_request_t *r, ngx_str_t *workflow_id,
    ngx_str_t *user_id)
{
    char                             id[MST_ID_LEN + 1];
    json_t                          *rec;
    uint64_t                         last;
    ngx_int_t                        rc;
    mst_txn_t                       *txn;
    ngx_http_maestro_ws_t           *ws;
    ngx_http_maestro_admit_t        *ad;
    ngx_http_maestro_main_conf_t    *mmcf;
    ngx_http_maestro_admit_error_t   e;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    /* what to follow, checked before the upgrade so errors are HTTP */

    last = 0;

    if (workflow_id != NULL) {
        if (!mst_id_valid((char *) workflow_id->data, workflow_id->len)) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                               "not_found",
                                               "no such workflow");
        }

        ngx_memcpy(id, workflow_id->data, MST_ID_LEN);
        id[MST_ID_LEN] = '\0';

        if (mst_txn_begin(mmcf->env.store, 1, &txn) != MST_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = mst_store_wf_get(txn, id, &rec);
        mst_txn_abort(txn);

        if (rc == MST_OK
            && !ngx_http_maestro_admit_may_see(r, json_string_value(
                   json_object_get(rec, "user_id"))))
        {
            /* another tenant's: as if it did not exist */
            json_decref(rec);
            rc = MST_NOTFOUND;
        }

        if (rc != MST_OK) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                               "not_found",
                                               "no such workflow");
        }

        if (json_is_true(json_object_get(rec, "events_pruned"))) {
            json_decref(rec);
            return ngx_http_maestro_send_error(r, NGX_HTTP_MAESTRO_GONE,
                                               "events_expired",
                                               "the events of this workflow "
                                               "were dropped "
                                               "(maestro_event_retention)");
        }

        json_decref(rec);

        last = ngx_http_maestro_sse_last_event_id(r);
        if (last == (uint64_t) -1) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalid_field",
                                               "last_event_id must be a "
                                               "number");
        }

    } else {
        /* a session: the URL names the caller's user */
        ad = ngx_http_maestro_admit_get(r);
        if (ad == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_maestro_admit_identify(r, ad, user_id, &e) != NGX_OK) {
            return ngx_http_maestro_send_error(r, e.status, e.code, "%s",
                                               e.message);
        }
    }

    ws = ngx_http_maestro_ws_accept(r, &rc);
    if (ws == NULL) {
        return rc;
    }

    if (workflow_id != NULL) {
        (void) ngx_http_maestro_ws_subscribe(ws, id, last);

    } else {
        ngx_memcpy(ws->user, user_id->data, user_id->len);
        ws->session = 1;
        ngx_queue_insert_tail(&mmcf->feed_ws, &ws->fqueue);
        ngx_http_maestro_ws_session_start(ws);
    }

    ngx_http_maestro_ws_pump(ws);
    ngx_http_maestro_ws_io(ws);

    return NGX_DONE;
}


/* the monitor over WebSocket: /api/v1/events with an upgrade */
ngx_int_t
ngx_http_maestro_ws_start_monitor(ngx_http_request_t *r, uint64_t last,
    ngx_str_t *status, ngx_str_t *user)
{
    ngx_int_t                      rc;
    ngx_http_maestro_ws_t         *ws;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    if (status->len >= sizeof(ws->status) || user->len >= sizeof(ws->user)) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_field",
                                           "status or user_id is too long");
    }

    ws = ngx_http_maestro_ws_accept(r, &rc);
    if (ws == NULL) {
        return rc;
    }

    ws->monitor = 1;
    ws->feed_last = last;
    ngx_memcpy(ws->status, status->data, status->len);
    ngx_memcpy(ws->user, user->data, user->len);

    ngx_queue_insert_tail(&mmcf->feed_ws, &ws->fqueue);

    ngx_http_maestro_ws_pump(ws);
    ngx_http_maestro_ws_io(ws);

    return NGX_DONE;
}


/* outbound: events as JSON messages */

typedef struct {
    ngx_http_maestro_ws_t      *ws;
    ngx_http_maestro_ws_sub_t  *sub;
    size_t                      n;
    ngx_uint_t                  fill;   /* into the shared cache too */
    ngx_uint_t                  full;   /* stopped: too much queued */
} ngx_http_maestro_ws_pump_t;


/* a workflow's messages formatted once per wake-up for its sockets */
static ngx_http_maestro_event_cache_t  ngx_http_maestro_ws_cache;


/* runs inside the read transaction: data points into the map */
static int
ngx_http_maestro_ws_event(uint64_t seq, const char *name, const char *data,
    size_t len, void *arg)
{
    ngx_http_maestro_ws_pump_t  *wp = arg;

    u_char      *buf, *p;
    size_t       size;
    ngx_uint_t   final;

    wp->n++;

    size = sizeof("{\"type\":\"\",\"workflow_id\":\"\",\"event_id\":,"
                  "\"data\":}") - 1
           + ngx_strlen(name) + MST_ID_LEN + NGX_INT64_LEN + len;

    buf = ngx_alloc(size, ngx_cycle->log);
    if (buf == NULL) {
        return 1;
    }

    p = ngx_sprintf(buf, "{\"type\":\"%s\",\"workflow_id\":\"%s\","
                    "\"event_id\":%uL,\"data\":", name, wp->sub->id, seq);
    p = ngx_cpymem(p, data, len);
    *p++ = '}';

    ngx_http_maestro_ws_queue_text(wp->ws, buf, p - buf);

    final = (ngx_strcmp(name, "done") == 0 || ngx_strcmp(name, "error") == 0);

    if (wp->fill) {
        ngx_http_maestro_event_cache_add(&ngx_http_maestro_ws_cache, seq,
                                         buf, p - buf, final);
    }

    ngx_free(buf);

    wp->sub->last = seq;

    if (final) {
        wp->sub->finished = 1;
        return 1;
    }

    if (ngx_http_maestro_ws_queued(wp->ws)
        >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED)
    {
        wp->full = 1;
        return 1;
    }

    return 0;
}


/* a session learns of its user's new workflows from the feed */
static int
ngx_http_maestro_ws_feed(uint64_t seq, const char *name, const char *data,
    size_t len, void *arg)
{
    ngx_http_maestro_ws_t  *ws = arg;

    json_t      *j;
    const char  *user, *id, *status;

    ws->feed_last = seq;

    j = json_loadb(data, len, 0, NULL);
    if (j == NULL) {
        return 0;
    }

    user = json_string_value(json_object_get(j, "user_id"));
    id = json_string_value(json_object_get(j, "id"));
    status = json_string_value(json_object_get(j, "status"));

    if (ws->monitor) {
        if ((ws->user[0] == '\0'
             || (user != NULL && ngx_strcmp(user, ws->user) == 0))
            && (ws->status[0] == '\0'
                || (status != NULL && ngx_strcmp(status, ws->status) == 0)))
        {
            ngx_http_maestro_ws_send(ws,
                json_pack("{s:s, s:I, s:s?, s:O}",
                          "type", name,
                          "feed_id", (json_int_t) seq,
                          "workflow_id", id,
                          "data", j));
        }

        json_decref(j);

        return ngx_http_maestro_ws_queued(ws)
               >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED;
    }

    if (user != NULL && id != NULL && status != NULL
        && ngx_strcmp(user, ws->user) == 0
        && ngx_strcmp(status, "queued") == 0)
    {
        (void) ngx_http_maestro_ws_subscribe(ws, id, 0);
    }

    json_decref(j);

    return 0;
}


void
ngx_http_maestro_ws_pump(ngx_http_maestro_ws_t *ws)
{
    size_t                           k;
    ngx_int_t                        rc;
    ngx_uint_t                       i, epoch;
    mst_txn_t                       *txn;
    ngx_http_maestro_event_cache_t  *c;
    ngx_http_maestro_ws_pump_t       wp;

    if (ws->closed
        || ngx_http_maestro_ws_queued(ws)
           >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED)
    {
        return;
    }

    txn = NULL;

    if (ws->session || ws->monitor) {
        if (mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK) {
            return;
        }

        (void) mst_feed_range(txn, ws->feed_last, 0,
                              ngx_http_maestro_ws_feed, ws);
    }

    wp.ws = ws;
    c = &ngx_http_maestro_ws_cache;
    epoch = ws->mmcf->wake_epoch;

    for (i = 0; i < NGX_HTTP_MAESTRO_WS_MAX_SUBS; i++) {
        if (ws->subs[i] == NULL || !ws->subs[i]->used
            || ws->subs[i]->finished)
        {
            continue;
        }

        wp.sub = ws->subs[i];

        /* what another socket of this workflow read in this wake-up */

        rc = ngx_http_maestro_event_cache_find(c, wp.sub->id, wp.sub->last,
                                               epoch, &k);
        if (rc == NGX_DONE) {
            continue;
        }

        if (rc == NGX_OK) {
            for ( /* void */ ;
                 k < c->n
                 && ngx_http_maestro_ws_queued(ws)
                    < NGX_HTTP_MAESTRO_WS_MAX_QUEUED;
                 k++)
            {
                ngx_http_maestro_ws_queue_text(ws, c->text + c->offs[k],
                                               c->offs[k + 1] - c->offs[k]);
                wp.sub->last = c->seqs[k];
            }

            if (k == c->n && c->final) {
                wp.sub->finished = 1;
            }

            continue;
        }

        if (txn == NULL
            && mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK)
        {
            return;
        }

        /* the first batch becomes the cache of this wake-up */
        ngx_http_maestro_event_cache_reset(c, wp.sub->id, wp.sub->last,
                                           epoch);
        wp.fill = 1;
        wp.full = 0;

        do {
            wp.n = 0;
            (void) mst_store_event_range(txn, wp.sub->id, wp.sub->last,
                                         NGX_HTTP_MAESTRO_WS_BATCH,
                                         ngx_http_maestro_ws_event, &wp);

            /* shareable when it reached the end of the log (or the
               final event), not when the socket's queue stopped it */
            if (wp.fill && !wp.full
                && (wp.n < NGX_HTTP_MAESTRO_WS_BATCH || wp.sub->finished))
            {
                ngx_http_maestro_event_cache_done(c);
            }

            wp.fill = 0;

        } while (wp.n == NGX_HTTP_MAESTRO_WS_BATCH && !wp.sub->finished
                 && ngx_http_maestro_ws_queued(ws)
                    < NGX_HTTP_MAESTRO_WS_MAX_QUEUED);

        if (ngx_http_maestro_ws_queued(ws)
            >= NGX_HTTP_MAESTRO_WS_MAX_QUEUED)
        {
            break;
        }
    }

    if (txn != NULL) {
        mst_txn_abort(txn);
    }
}


/* the sessions follow the feed (subscriptions wake through the watch) */
void
ngx_http_maestro_ws_wakeup(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_queue_t            *q, *next;
    ngx_http_maestro_ws_t  *ws;

    for (q = ngx_queue_head(&mmcf->feed_ws);
         q != ngx_queue_sentinel(&mmcf->feed_ws);
         q = next)
    {
        /* the I/O may close (and unlink) this connection */
        next = ngx_queue_next(q);
        ws = ngx_queue_data(q, ngx_http_maestro_ws_t, fqueue);

        ngx_http_maestro_ws_pump(ws);
        ngx_http_maestro_ws_io(ws);
    }
}


/* a malformed message gets an error message; the connection stays */
static void
ngx_http_maestro_ws_error(ngx_http_maestro_ws_t *ws, const char *code,
    const char *fmt, ...)
{
    char     msg[512];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (!mst_utf8_valid(msg, ngx_strlen(msg))) {
        ngx_cpystrn((u_char *) msg, (u_char *) "invalid message",
                    sizeof(msg));
    }

    ngx_http_maestro_ws_send(ws, json_pack("{s:s, s:s, s:s}", "type",
                                           "error", "code", code,
                                           "message", msg));
}


/* prompt_submission: the same submission as POST /api/v1/workflows */

static void
ngx_http_maestro_ws_submitted(ngx_http_maestro_submit_t *sb)
{
    ngx_http_maestro_ws_t  *ws = sb->data;

    if (!ws->closed) {
        if (sb->rc != MST_OK) {
            ngx_http_maestro_ws_error(ws, sb->rc == MST_MAPFULL
                                          ? "store_full" : "store_error",
                                      "cannot store workflow: %s",
                                      sb->rc == MST_MAPFULL && sb->err[0]
                                      ? sb->err : mst_strerror(sb->rc));

        } else {
            (void) ngx_http_maestro_ws_subscribe(ws, sb->id, 0);

            ngx_http_maestro_ws_send(ws,
                json_pack("{s:s, s:s, s:b, s:s, s:s}",
                          "type", "action_result",
                          "action", "prompt_submission",
                          "ok", 1,
                          "workflow_id", sb->id,
                          "status", "queued"));

            ngx_http_maestro_ws_pump(ws);
            ngx_http_maestro_ws_io(ws);
        }
    }

    ngx_http_maestro_submit_finish(sb);
    ngx_http_maestro_ws_release(ws);
}


static void
ngx_http_maestro_ws_submit(ngx_http_maestro_ws_t *ws, json_t *m)
{
    ngx_log_t                       *log;
    ngx_http_maestro_admit_t         ad;
    ngx_http_maestro_submit_t       *sb;
    ngx_http_maestro_admit_error_t   e;

    log = ws->r->connection->log;

    /* the admission path, for each message: the connection's caller */

    if (ngx_http_maestro_admit_message(&ad, ws->mmcf, &ws->caller,
                                       NGX_HTTP_MAESTRO_WAY_WS, ws->r, &e)
        != NGX_OK)
    {
        ngx_http_maestro_admit_release(&ad);
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    sb = ngx_http_maestro_admit_submission(&ad, ws->mmcf, m, ws->guard, log,
                                           &e);
    ngx_http_maestro_admit_release(&ad);

    if (sb == NULL) {
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    sb->done = ngx_http_maestro_ws_submitted;
    sb->data = ws;

    if (ngx_http_maestro_admit_dispatch(sb, &e) != NGX_OK) {
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    ws->refs++;
}


/* agent_action cancel */

/* runs on a pool thread */
static void
ngx_http_maestro_ws_cancel_thread(void *arg)
{
    ngx_http_maestro_ws_cancel_t  *wc = arg;

    wc->rc = mst_run_cancel(&wc->ws->mmcf->env, wc->id,
                            ngx_http_maestro_run_alive, &wc->rec,
                            &wc->final, wc->err, sizeof(wc->err));
}


/* runs in the event loop */
static void
ngx_http_maestro_ws_cancel_done(void *arg, ngx_int_t trc)
{
    ngx_http_maestro_ws_cancel_t  *wc = arg;

    ngx_http_maestro_ws_t  *ws;

    ws = wc->ws;

    if (!ws->closed) {
        if (trc != NGX_OK) {
            /* not posted */
            ngx_http_maestro_ws_error(ws, "queue_full",
                                      "the io thread pool queue is full");

        } else if (wc->rc != MST_OK && wc->rc != MST_EXISTS) {
            ngx_http_maestro_ws_error(ws, wc->rc == MST_NOTFOUND
                                          ? "not_found" : "store_error",
                                      "%s", wc->err);

        } else {
            ngx_http_maestro_ws_send(ws,
                json_pack("{s:s, s:s, s:b, s:s, s:O}",
                          "type", "action_result",
                          "action", "cancel",
                          "ok", wc->rc == MST_OK,
                          "workflow_id", wc->id,
                          "status", json_object_get(wc->rec, "status")
                                    ? json_object_get(wc->rec, "status")
                                    : json_null()));
        }

        ngx_http_maestro_ws_io(ws);
    }

    json_decref(wc->rec);
    ngx_free(wc);
    ngx_http_maestro_ws_release(ws);
}


/* a cancel of a valid workflow id (mst_ws_msg_parse() checked it) */
static void
ngx_http_maestro_ws_cancel(ngx_http_maestro_ws_t *ws, const char *id)
{
    ngx_http_maestro_ws_cancel_t  *wc;

    wc = ngx_calloc(sizeof(ngx_http_maestro_ws_cancel_t),
                    ws->r->connection->log);
    if (wc == NULL) {
        return;
    }

    wc->ws = ws;
    ngx_memcpy(wc->id, id, MST_ID_LEN);

    /* ngx_http_maestro_ws_cancel_done() answers and releases, also when
       not posted */
    ws->refs++;

    (void) ngx_http_maestro_io_post(ws->mmcf,
                                    ngx_http_maestro_ws_cancel_thread,
                                    ngx_http_maestro_ws_cancel_done, wc);
}


/* 1: it exists and has its events; 0: no such workflow; 2: pruned */
static ngx_uint_t
ngx_http_maestro_ws_exists(ngx_http_maestro_ws_t *ws, const char *id)
{
    int          rc;
    json_t      *rec;
    mst_txn_t   *txn;
    ngx_uint_t   found;

    if (mst_txn_begin(ws->mmcf->env.store, 1, &txn) != MST_OK) {
        return 0;
    }

    rc = mst_store_wf_get(txn, id, &rec);
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return 0;
    }

    if (!mst_caller_may_see(&ws->caller, json_string_value(
                                json_object_get(rec, "user_id"))))
    {
        json_decref(rec);
        return 0;
    }

    found = json_is_true(json_object_get(rec, "events_pruned")) ? 2 : 1;
    json_decref(rec);

    return found;
}


void
ngx_http_maestro_ws_message(ngx_http_maestro_ws_t *ws, const char *text,
    size_t len)
{
    ngx_uint_t           found;
    const char          *id;
    mst_ws_msg_t         m;
    mst_request_error_t  e;

    /* what it says is core's decision (mst_ws_msg.c); here, the acts */

    if (mst_ws_msg_parse(text, len, &m, &e) != MST_OK) {
        ngx_http_maestro_ws_error(ws, e.code, "%s", e.message);
        return;
    }

    id = m.workflow_id;

    switch (m.type) {

    case MST_WS_MSG_PROMPT:
        ngx_http_maestro_ws_submit(ws, m.json);
        break;

    case MST_WS_MSG_CANCEL:
        ngx_http_maestro_ws_cancel(ws, id);
        break;

    case MST_WS_MSG_SUBSCRIBE:

        if ((found = ngx_http_maestro_ws_exists(ws, id)) != 1) {
            if (found == 0) {
                ngx_http_maestro_ws_error(ws, "not_found",
                                          "no workflow \"%s\"", id);
            } else {
                ngx_http_maestro_ws_error(ws, "events_expired",
                                          "the events of \"%s\" were "
                                          "dropped "
                                          "(maestro_event_retention)", id);
            }

        } else {
            switch (ngx_http_maestro_ws_subscribe(ws, id, m.last)) {
            case NGX_ERROR:
                ngx_http_maestro_ws_error(ws, "too_many_subscriptions",
                                          "at most %d workflows per "
                                          "connection",
                                          NGX_HTTP_MAESTRO_WS_MAX_SUBS);
                break;
            default:
                ngx_http_maestro_ws_send(ws,
                    json_pack("{s:s, s:s, s:b, s:s}",
                              "type", "action_result",
                              "action", "subscribe",
                              "ok", 1,
                              "workflow_id", id));
                ngx_http_maestro_ws_pump(ws);
            }
        }

        break;
    }

    mst_ws_msg_free(&m);
}
