/*
 * Copyright (C) Maestro authors
 */

/*
 * Events formatted once per wake-up (ngx_http_maestro_event_cache.c).
 */

#ifndef _NGX_HTTP_MAESTRO_EVENT_CACHE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_EVENT_CACHE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mst_common.h"


typedef struct {
    char                         id[MST_ID_LEN + 1];
    uint64_t                     from;      /* events after this ... */
    uint64_t                     to;        /* ... up to this one */
    ngx_uint_t                   epoch;     /* the wake-up */
    u_char                      *text;      /* messages back to back */
    size_t                       len;
    size_t                       cap;
    uint64_t                    *seqs;      /* message i's id ... */
    size_t                      *offs;      /* ... and its offset;
                                               offs[n] is the end */
    size_t                       n;
    size_t                       ncap;
    unsigned                     valid:1;
    unsigned                     final:1;   /* ends with done / error */
} ngx_http_maestro_event_cache_t;

void ngx_http_maestro_event_cache_reset(ngx_http_maestro_event_cache_t *c,
    const char *id, uint64_t from, ngx_uint_t epoch);
void ngx_http_maestro_event_cache_add(ngx_http_maestro_event_cache_t *c,
    uint64_t seq, const u_char *p, size_t len, ngx_uint_t final);
void ngx_http_maestro_event_cache_done(ngx_http_maestro_event_cache_t *c);
/* NGX_OK: *first is the first message after last; NGX_DONE: nothing new
   this wake-up; NGX_DECLINED: read LMDB */
ngx_int_t ngx_http_maestro_event_cache_find(ngx_http_maestro_event_cache_t *c,
    const char *id, uint64_t last, ngx_uint_t epoch, size_t *first);

#endif /* _NGX_HTTP_MAESTRO_EVENT_CACHE_H_INCLUDED_ */
