/*
 * Copyright (C) Maestro authors
 */

/*
 * Cross-worker wake-up (ngx_http_maestro_watch.c): the shared zone's
 * notification ring and counters, and the watchers on this worker.
 */

#ifndef _NGX_HTTP_MAESTRO_WATCH_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_WATCH_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


#define NGX_HTTP_MAESTRO_RING_SIZE  16384


/* a notification: this workflow has new events */
typedef struct {
    ngx_atomic_t                 seq;           /* position + 1; 0: being
                                                   written */
    u_char                       id[MST_ID_LEN];
} ngx_http_maestro_ring_slot_t;


/* shared memory: cross-worker wake-up and counters */
struct ngx_http_maestro_shctx_s {
    ngx_atomic_t                 generation;    /* bumped on every commit
                                                   that appended events */
    mst_census_t                 census;        /* workflows running, by
                                                   owner process */
    ngx_atomic_t                 submitted;
    ngx_atomic_t                 handoff;       /* bumped by a worker in
                                                   graceful exit that
                                                   stored a submission */
    ngx_atomic_t                 ring_head;
    mst_breaker_t                breakers[MST_GATEWAY_MAX];
    ngx_http_maestro_ring_slot_t ring[NGX_HTTP_MAESTRO_RING_SIZE];
};


/* the watchers of one workflow on this worker */
typedef struct {
    ngx_rbtree_node_t            node;          /* key: crc32 of the id */
    u_char                       id[MST_ID_LEN];
    ngx_queue_t                  watchers;
    unsigned                     waking:1;
} ngx_http_maestro_watch_node_t;


typedef struct ngx_http_maestro_watch_s  ngx_http_maestro_watch_t;

struct ngx_http_maestro_watch_s {
    ngx_queue_t                     queue;
    ngx_http_maestro_watch_node_t  *node;
    void                          (*wake)(ngx_http_maestro_watch_t *w);
    void                           *data;
};

void ngx_http_maestro_watch_init(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_watch_notify(ngx_http_maestro_shctx_t *sh,
    const char *id);
ngx_uint_t ngx_http_maestro_watch_drain(ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_watch_add(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_t *w, const char *id);
void ngx_http_maestro_watch_del(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_t *w);
void ngx_http_maestro_watch_wake_all(ngx_http_maestro_main_conf_t *mmcf);

#endif /* _NGX_HTTP_MAESTRO_WATCH_H_INCLUDED_ */
