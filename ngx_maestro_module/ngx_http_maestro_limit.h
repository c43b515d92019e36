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
#include <ngx_http.h>

#include "mst_gcra.h"
#include "mst_caller.h"
#include "mst_limit.h"


/* what a rule counts by: any '+'-joined set */
#define NGX_HTTP_MAESTRO_LIMIT_KEY       0x01  /* the API key id */
#define NGX_HTTP_MAESTRO_LIMIT_USER      0x02  /* no user: the client IP */
#define NGX_HTTP_MAESTRO_LIMIT_TEAM      0x04
#define NGX_HTTP_MAESTRO_LIMIT_IP        0x08
#define NGX_HTTP_MAESTRO_LIMIT_ENDPOINT  0x10


/* one maestro_limit */
typedef struct {
    ngx_shm_zone_t                 *zone;
    ngx_uint_t                      by;        /* NGX_HTTP_MAESTRO_LIMIT_* */
    ngx_uint_t                      index;     /* keys never shared */
    mst_gcra_rule_t                 rule;
} ngx_http_maestro_limit_rule_t;


/* the location's maestro_limit* (one sub-struct of the loc conf) */
typedef struct {
    ngx_array_t                    *rules;     /* or NULL */
    ngx_flag_t                      dry_run;   /* maestro_limit_dry_run */
    ngx_uint_t                      log_level; /* maestro_limit_log_level */
} ngx_http_maestro_limit_conf_t;


/* maestro_limit_log_level's values */
extern ngx_conf_enum_t  ngx_http_maestro_limit_log_levels[];


/* maestro_limit zone= key= rate= [burst=]; */
char *ngx_http_maestro_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Every rule of lc for this caller, client address and endpoint class:
 * the verdict of the tightest (refused, else fewest remaining).
 */
void ngx_http_maestro_limit_check(ngx_http_maestro_limit_conf_t *lc,
    const mst_caller_t *caller, ngx_str_t *addr, const char *endpoint,
    mst_limit_verdict_t *v);

/* the endpoint class of an HTTP request, from its method and URI */
const char *ngx_http_maestro_limit_endpoint(ngx_http_request_t *r);

/* Retry-After (refused) and the RateLimit fields of a verdict */
ngx_int_t ngx_http_maestro_limit_headers(ngx_http_request_t *r,
    const mst_limit_verdict_t *v);


/* maestro_limit_zone name=<zone> size=<size>; */
/* preconfiguration: $maestro_limit_status */
ngx_int_t ngx_http_maestro_limit_variables(ngx_conf_t *cf);

/* $maestro_limit_status of r: PASSED, REJECTED or REJECTED_DRY_RUN */
void ngx_http_maestro_limit_status(ngx_http_request_t *r,
    const char *status);

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
