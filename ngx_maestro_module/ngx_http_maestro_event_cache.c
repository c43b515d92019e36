/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * A workflow's new events, formatted once per wake-up for all its streams
 * on this worker: the first stream to pump reads them from LMDB and keeps
 * the text; the others that were at the same place take it from here
 * (the usual fan-out: many watchers of one workflow, all caught up)
 * instead of each running a read transaction and formatting the same
 * bytes. SSE and WebSocket each keep one (their formats differ).
 *
 * Valid only for the wake-up it was built in (the epoch): events
 * committed after it wake everyone again, so none is skipped. Messages
 * are stored back to back, with their ids and offsets.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_event_cache.h"


void
ngx_http_maestro_event_cache_reset(ngx_http_maestro_event_cache_t *c,
    const char *id, uint64_t from, ngx_uint_t epoch)
{
    ngx_memcpy(c->id, id, MST_ID_LEN);
    c->id[MST_ID_LEN] = '\0';
    c->from = from;
    c->to = from;
    c->epoch = epoch;
    c->len = 0;
    c->n = 0;
    c->final = 0;
    c->valid = 0;
}


static void
ngx_http_maestro_event_cache_fail(ngx_http_maestro_event_cache_t *c)
{
    c->valid = 0;
    c->epoch = (ngx_uint_t) -1;
}


void
ngx_http_maestro_event_cache_add(ngx_http_maestro_event_cache_t *c,
    uint64_t seq, const u_char *p, size_t len, ngx_uint_t final)
{
    u_char    *text;
    size_t    *offs, cap;
    uint64_t  *seqs;

    if (c->epoch == (ngx_uint_t) -1) {
        return;
    }

    if (c->len + len > c->cap) {
        cap = ngx_max(c->cap * 2, c->len + len + 4096);

        text = ngx_alloc(cap, ngx_cycle->log);
        if (text == NULL) {
            ngx_http_maestro_event_cache_fail(c);
            return;
        }

        ngx_memcpy(text, c->text, c->len);
        ngx_free(c->text);
        c->text = text;
        c->cap = cap;
    }

    if (c->n + 1 >= c->ncap) {
        seqs = ngx_alloc((c->ncap + 64) * sizeof(uint64_t), ngx_cycle->log);
        offs = ngx_alloc((c->ncap + 64) * sizeof(size_t), ngx_cycle->log);

        if (seqs == NULL || offs == NULL) {
            ngx_free(seqs);
            ngx_free(offs);
            ngx_http_maestro_event_cache_fail(c);
            return;
        }

        ngx_memcpy(seqs, c->seqs, c->n * sizeof(uint64_t));
        ngx_memcpy(offs, c->offs, c->n * sizeof(size_t));
        ngx_free(c->seqs);
        ngx_free(c->offs);
        c->seqs = seqs;
        c->offs = offs;
        c->ncap += 64;
    }

    c->seqs[c->n] = seq;
    c->offs[c->n] = c->len;
    c->n++;

    /* the end of the last message */
    c->offs[c->n] = c->len + len;

    ngx_memcpy(c->text + c->len, p, len);
    c->len += len;
    c->to = seq;
    c->final = final;
}


void
ngx_http_maestro_event_cache_done(ngx_http_maestro_event_cache_t *c)
{
    if (c->epoch != (ngx_uint_t) -1) {
        c->valid = 1;
    }
}


ngx_int_t
ngx_http_maestro_event_cache_find(ngx_http_maestro_event_cache_t *c,
    const char *id, uint64_t last, ngx_uint_t epoch, size_t *first)
{
    size_t  i;

    if (!c->valid || c->epoch != epoch || c->n == 0
        || ngx_strcmp(c->id, id) != 0 || last < c->from)
    {
        return NGX_DECLINED;
    }

    if (last >= c->to) {
        return NGX_DONE;
    }

    for (i = 0; i < c->n && c->seqs[i] <= last; i++) { /* void */ }

    *first = i;

    return NGX_OK;
}
