/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Usage of the calls outside workflows (the /v1 pass-through), summed per
 * (user, API key, team, model) in the worker's memory and written to the
 * store once a second, or when 256 of them are pending, in one
 * transaction on the io pool
 * (mst_usage_add): a write per request would cost more than the request.
 * What a worker holds when it exits is written before it goes. A crash
 * loses at most the last second of counts, never stored data. When the
 * io pool's queue is full, the batch is kept and written with the next
 * flush; usage that cannot be kept or written is logged with its counts.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_thread.h"
#include "ngx_http_maestro_usage.h"


#define NGX_HTTP_MAESTRO_USAGE_MAX     256
#define NGX_HTTP_MAESTRO_USAGE_FLUSH   1000     /* ms */


typedef struct {
    ngx_http_maestro_main_conf_t  *mmcf;
    size_t                         n;
    mst_usage_delta_t              d[NGX_HTTP_MAESTRO_USAGE_MAX];
    int                            rc;
} ngx_http_maestro_usage_batch_t;


static ngx_http_maestro_usage_batch_t  *ngx_http_maestro_usage_pending;
static ngx_event_t                      ngx_http_maestro_usage_ev;
static ngx_http_maestro_main_conf_t    *ngx_http_maestro_usage_mmcf;


static void
ngx_http_maestro_usage_free(ngx_http_maestro_usage_batch_t *b)
{
    size_t  i;

    for (i = 0; i < b->n; i++) {
        ngx_free((char *) b->d[i].who.user);
        ngx_free((char *) b->d[i].who.key_id);
        ngx_free((char *) b->d[i].who.team);
        ngx_free((char *) b->d[i].model);
    }

    ngx_free(b);
}


/* runs on the io pool */
static void
ngx_http_maestro_usage_write(void *arg)
{
    ngx_http_maestro_usage_batch_t  *b = arg;

    b->rc = mst_usage_add(b->mmcf->env.store, b->mmcf->env.prices,
                          b->mmcf->env.nprices, b->d, b->n);
}


/* usage that will not be stored: at least its numbers are in the log */
static void
ngx_http_maestro_usage_lost(ngx_http_maestro_usage_batch_t *b,
    const char *why)
{
    long    calls, prompt, completion;
    size_t  i;

    calls = 0;
    prompt = 0;
    completion = 0;

    for (i = 0; i < b->n; i++) {
        calls += b->d[i].calls;
        prompt += b->d[i].prompt;
        completion += b->d[i].completion;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "maestro: usage of %l calls (%l prompt and %l completion "
                  "tokens) not recorded: %s", calls, prompt, completion,
                  why);
}


/* runs in the event loop */
static void
ngx_http_maestro_usage_written(void *arg, ngx_int_t rc)
{
    ngx_http_maestro_usage_batch_t  *b = arg;

    if (rc != NGX_OK) {
        /* not posted (the queue is full, logged): the next flush tries
           again; a flush has just taken pending, so it is free */
        if (ngx_http_maestro_usage_pending == NULL) {
            ngx_http_maestro_usage_pending = b;
            return;
        }

        ngx_http_maestro_usage_lost(b, "the io thread pool queue is full");

    } else if (b->rc != MST_OK) {
        ngx_http_maestro_usage_lost(b, mst_strerror(b->rc));
    }

    ngx_http_maestro_usage_free(b);
}


static void
ngx_http_maestro_usage_flush(void)
{
    ngx_http_maestro_usage_batch_t  *b;

    b = ngx_http_maestro_usage_pending;
    if (b == NULL || b->n == 0) {
        return;
    }

    ngx_http_maestro_usage_pending = NULL;

    /* a failed post keeps b pending (ngx_http_maestro_usage_written) */
    (void) ngx_http_maestro_io_post(b->mmcf, ngx_http_maestro_usage_write,
                                    ngx_http_maestro_usage_written, b);
}


static void
ngx_http_maestro_usage_timer(ngx_event_t *ev)
{
    ngx_http_maestro_usage_flush();

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_MAESTRO_USAGE_FLUSH);
    }
}


void
ngx_http_maestro_usage_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_http_maestro_usage_mmcf = mmcf;

    ngx_http_maestro_usage_ev.handler = ngx_http_maestro_usage_timer;
    ngx_http_maestro_usage_ev.log = cycle->log;
    ngx_http_maestro_usage_ev.data = mmcf;
    ngx_http_maestro_usage_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_maestro_usage_ev, NGX_HTTP_MAESTRO_USAGE_FLUSH);
}


/* what is still pending, written now (the worker is exiting) */
void
ngx_http_maestro_usage_exit_worker(void)
{
    int                              rc;
    ngx_http_maestro_usage_batch_t  *b;

    b = ngx_http_maestro_usage_pending;
    ngx_http_maestro_usage_pending = NULL;

    if (b == NULL) {
        return;
    }

    if (b->n > 0 && b->mmcf->env.store != NULL) {
        rc = mst_usage_add(b->mmcf->env.store, b->mmcf->env.prices,
                           b->mmcf->env.nprices, b->d, b->n);
        if (rc != MST_OK) {
            ngx_http_maestro_usage_lost(b, mst_strerror(rc));
        }
    }

    ngx_http_maestro_usage_free(b);
}


static char *
ngx_http_maestro_usage_dup(const char *s, size_t len)
{
    char  *p;

    p = ngx_alloc(len + 1, ngx_cycle->log);
    if (p != NULL) {
        ngx_memcpy(p, s, len);
        p[len] = '\0';
    }

    return p;
}


/* the same string, or both NULL */
static ngx_uint_t
ngx_http_maestro_usage_same(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : ngx_strcmp(a, b) == 0;
}


/* a copy of s, or NULL for NULL; *failed set when out of memory */
static const char *
ngx_http_maestro_usage_copy(const char *s, ngx_uint_t *failed)
{
    char  *p;

    if (s == NULL) {
        return NULL;
    }

    p = ngx_http_maestro_usage_dup(s, ngx_strlen(s));
    if (p == NULL) {
        *failed = 1;
    }

    return p;
}


void
ngx_http_maestro_usage_record(const mst_usage_who_t *who, const char *model,
    long prompt, long completion)
{
    size_t                           i;
    ngx_uint_t                       failed;
    mst_usage_delta_t               *d;
    ngx_http_maestro_usage_batch_t  *b;

    if (ngx_http_maestro_usage_mmcf == NULL || model == NULL) {
        return;
    }

    b = ngx_http_maestro_usage_pending;

    if (b == NULL) {
        b = ngx_calloc(sizeof(ngx_http_maestro_usage_batch_t),
                       ngx_cycle->log);
        if (b == NULL) {
            return;
        }
        b->mmcf = ngx_http_maestro_usage_mmcf;
        ngx_http_maestro_usage_pending = b;
    }

    for (i = 0; i < b->n; i++) {
        d = &b->d[i];

        if (ngx_strcmp(d->model, model) == 0
            && ngx_http_maestro_usage_same(d->who.user, who->user)
            && ngx_http_maestro_usage_same(d->who.key_id, who->key_id)
            && ngx_http_maestro_usage_same(d->who.team, who->team))
        {
            d->prompt += prompt;
            d->completion += completion;
            d->calls++;
            return;
        }
    }

    if (b->n == NGX_HTTP_MAESTRO_USAGE_MAX) {
        /* a full batch kept while the io pool's queue was full */
        ngx_http_maestro_usage_flush();

        if (ngx_http_maestro_usage_pending != NULL) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "maestro: usage of 1 call (%l prompt and %l "
                          "completion tokens) not recorded: the io thread "
                          "pool queue is full", prompt, completion);
            return;
        }

        /* posted: a new batch */
        ngx_http_maestro_usage_record(who, model, prompt, completion);
        return;
    }

    d = &b->d[b->n];
    failed = 0;
    d->model = ngx_http_maestro_usage_copy(model, &failed);
    d->who.user = ngx_http_maestro_usage_copy(who->user, &failed);
    d->who.key_id = ngx_http_maestro_usage_copy(who->key_id, &failed);
    d->who.team = ngx_http_maestro_usage_copy(who->team, &failed);

    if (failed) {
        ngx_free((char *) d->model);
        ngx_free((char *) d->who.user);
        ngx_free((char *) d->who.key_id);
        ngx_free((char *) d->who.team);
        ngx_memzero(d, sizeof(mst_usage_delta_t));
        return;
    }

    d->prompt = prompt;
    d->completion = completion;
    d->calls = 1;
    b->n++;

    if (b->n == NGX_HTTP_MAESTRO_USAGE_MAX) {
        ngx_http_maestro_usage_flush();
    }
}
