/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Request-rate limits in shared memory, the way limit_req keeps them: a
 * zone per maestro_limit_zone, a slab with a red-black tree keyed by a
 * hash of the key string and an LRU queue. One GCRA state (core/access
 * mst_gcra) per key, changed under the slab mutex, so counts are exact
 * across workers. A reload with the same size keeps the old zone.
 */

#ifndef _NGX_HTTP_MAESTRO_LIMIT_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_LIMIT_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>

#include "mst_gcra.h"


/* maestro_limit_zone name=<zone> size=<size>; */
char *ngx_http_maestro_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Charge cost cells to key in zone by rule at now_ms (ngx_current_msec).
 * NGX_OK with the verdict; NGX_ERROR: no memory for the key even after
 * expiring the oldest (the caller admits, as limit_req does not).
 */
ngx_int_t ngx_http_maestro_limit_take(ngx_shm_zone_t *zone,
    const mst_gcra_rule_t *rule, ngx_str_t *key, uint64_t cost,
    uint64_t now_ms, mst_gcra_verdict_t *v);

/* give cost cells back to key (tokens charged but not used) */
void ngx_http_maestro_limit_refund(ngx_shm_zone_t *zone,
    const mst_gcra_rule_t *rule, ngx_str_t *key, uint64_t cost);

#endif /* _NGX_HTTP_MAESTRO_LIMIT_H_INCLUDED_ */
