/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Limits in shared memory, the way limit_req keeps them: a zone per
 * maestro_limit_zone, a slab with a red-black tree keyed by a hash of
 * the key string and an LRU queue. One node per key: a GCRA state
 * (requests, tokens; core/access mst_gcra) or a count in flight
 * (concurrent, streams), changed under the slab mutex, so counts are
 * exact across workers. A reload with the same size keeps the old zone.
 *
 * An API key's own limits (its record's rpm, tpm, tpd, max_parallel)
 * live in one more zone, "maestro_keys" (maestro_key_limits_zone_size),
 * so they hold wherever the key is used.
 *
 * What a request took is kept in its ledger: a refusal by a later rule
 * gives back what earlier ones took (all or nothing), slots are given
 * back when the request's pool goes (after its last byte: streams and
 * WebSocket connections included), and token reservations are settled
 * with the real usage, or given back if the call never ends with one.
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
#define NGX_HTTP_MAESTRO_LIMIT_MODEL     0x20  /* known after the body:
                                                  /v1 provider calls */


/* one maestro_limit */
typedef struct {
    ngx_shm_zone_t                 *zone;
    ngx_uint_t                      by;        /* NGX_HTTP_MAESTRO_LIMIT_* */
    ngx_uint_t                      index;     /* keys never shared */
    mst_limit_rule_t                rule;
} ngx_http_maestro_limit_rule_t;


/* what one request took: given back, or settled, later */
typedef struct {
    ngx_shm_zone_t                 *zone;
    mst_limit_rule_t                rule;
    ngx_str_t                       key;
    uint64_t                        cells;     /* requests, tokens */
    unsigned                        settled:1;
} ngx_http_maestro_limit_hold_t;


typedef struct {
    ngx_array_t                    *holds;     /* of _hold_t, or NULL */
    ngx_pool_t                     *pool;      /* NULL: keep nothing
                                                  (a WebSocket message) */
    unsigned                        cleanup:1;
} ngx_http_maestro_limit_ledger_t;


/* who and what a check is for */
typedef struct {
    const mst_caller_t             *caller;
    json_t                         *key;       /* its API key's record */
    ngx_str_t                      *addr;
    const char                     *endpoint;
    const char                     *model;     /* NULL at the door */
    unsigned                        stream:1;  /* a subscription */
} ngx_http_maestro_limit_who_t;


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
 * Stage 2 at the door: every request, slot and stream rule of lc and of
 * the caller's key, then the key's budget. Tokens are only looked at:
 * a caller whose token bucket is empty (or in debt) is refused. The
 * verdict of the tightest; refused: nothing is kept.
 */
void ngx_http_maestro_limit_check(ngx_http_maestro_limit_conf_t *lc,
    ngx_http_maestro_limit_who_t *who, ngx_http_maestro_limit_ledger_t *lg,
    mst_limit_verdict_t *v);

/*
 * Before a provider is called: reserve tokens (an estimate) on every
 * token rule of lc and of the caller's key. Refused: what the request
 * took at the door is given back too.
 */
void ngx_http_maestro_limit_reserve(ngx_http_maestro_limit_conf_t *lc,
    ngx_http_maestro_limit_who_t *who, ngx_http_maestro_limit_ledger_t *lg,
    uint64_t tokens, mst_limit_verdict_t *v);

/* the call ended having used tokens: reservations settled to them */
void ngx_http_maestro_limit_settle(ngx_http_maestro_limit_ledger_t *lg,
    uint64_t tokens);

/* a workflow's model call used tokens: its key's tpm and tpd pay them */
void ngx_http_maestro_limit_key_charge(const json_t *key, uint64_t tokens);

/* the key's own rules, their state now: for GET /api/v1/me */
json_t *ngx_http_maestro_limit_key_view(const json_t *key);

/* the zone of the keys' own limits (configuration) */
ngx_int_t ngx_http_maestro_limit_keys_zone(ngx_conf_t *cf, size_t size);

/* a subscription: SSE follows, the monitor, WebSocket upgrades */
ngx_uint_t ngx_http_maestro_limit_is_stream(ngx_http_request_t *r);

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

#endif /* _NGX_HTTP_MAESTRO_LIMIT_H_INCLUDED_ */
