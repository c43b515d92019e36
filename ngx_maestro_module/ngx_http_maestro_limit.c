/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see ngx_http_maestro_limit.h */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_limit.h"


/* one key; the key bytes follow */
typedef struct {
    u_char                        color;
    u_char                        counter;  /* inflight, not state */
    u_short                       len;
    ngx_queue_t                   queue;
    uint64_t                      rate;     /* the scale of state.tat */
    mst_gcra_state_t              state;
    uint64_t                      inflight;
    u_char                        data[1];
} ngx_http_maestro_limit_node_t;


/* what to do to a key's node under the lock */
typedef enum {
    NGX_HTTP_MAESTRO_LIMIT_TAKE = 0,    /* GCRA cells, if they fit */
    NGX_HTTP_MAESTRO_LIMIT_PEEK,        /* the verdict of a take, no change */
    NGX_HTTP_MAESTRO_LIMIT_CHARGE,      /* cells whatever the state */
    NGX_HTTP_MAESTRO_LIMIT_REFUND,      /* cells back */
    NGX_HTTP_MAESTRO_LIMIT_ACQUIRE,     /* a slot, if one is free */
    NGX_HTTP_MAESTRO_LIMIT_RELEASE      /* a slot back */
} ngx_http_maestro_limit_op_e;


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   queue;    /* LRU: oldest last */
} ngx_http_maestro_limit_shctx_t;


typedef struct {
    ngx_http_maestro_limit_shctx_t  *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_uint_t                       full_logged;
} ngx_http_maestro_limit_ctx_t;


static ngx_int_t ngx_http_maestro_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_maestro_limit_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_maestro_limit_node_t *ngx_http_maestro_limit_find(
    ngx_http_maestro_limit_ctx_t *ctx, ngx_str_t *key, uint32_t hash);
static void ngx_http_maestro_limit_expire(ngx_http_maestro_limit_ctx_t *ctx,
    uint64_t now_ms, ngx_uint_t force);
static ngx_shm_zone_t *ngx_http_maestro_limit_zone_add(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);
static ngx_int_t ngx_http_maestro_limit_op(ngx_shm_zone_t *zone,
    const mst_limit_rule_t *rule, ngx_str_t *key, ngx_uint_t op,
    uint64_t cells, mst_gcra_verdict_t *v);


/* the zone of the keys' own limits */
static ngx_shm_zone_t  *ngx_http_maestro_limit_keys;

/*
 * The zone whose mutex this worker holds: a request's rules in one zone
 * are taken under one lock (each lock moves a contended cache line
 * between the workers); ngx_http_maestro_limit_unlock() ends a batch.
 */
static ngx_shm_zone_t  *ngx_http_maestro_limit_locked;


static void
ngx_http_maestro_limit_lock(ngx_shm_zone_t *zone)
{
    ngx_http_maestro_limit_ctx_t  *ctx;

    if (ngx_http_maestro_limit_locked == zone) {
        return;
    }

    if (ngx_http_maestro_limit_locked != NULL) {
        ctx = ngx_http_maestro_limit_locked->data;
        ngx_shmtx_unlock(&ctx->shpool->mutex);
    }

    ctx = zone->data;
    ngx_shmtx_lock(&ctx->shpool->mutex);
    ngx_http_maestro_limit_locked = zone;
}


static void
ngx_http_maestro_limit_unlock(void)
{
    ngx_http_maestro_limit_ctx_t  *ctx;

    if (ngx_http_maestro_limit_locked != NULL) {
        ctx = ngx_http_maestro_limit_locked->data;
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        ngx_http_maestro_limit_locked = NULL;
    }
}


static ngx_int_t
ngx_http_maestro_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_maestro_limit_ctx_t  *octx = data;

    size_t                         len;
    ngx_http_maestro_limit_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* reload, same size (nginx checks): keep every key's state */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_maestro_limit_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_maestro_limit_insert);
    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in maestro_limit_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in maestro_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* expire-and-retry logs once; the slab need not */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_maestro_limit_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_maestro_limit_node_t  *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            ln = (ngx_http_maestro_limit_node_t *) &node->color;
            lnt = (ngx_http_maestro_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_maestro_limit_node_t *
ngx_http_maestro_limit_find(ngx_http_maestro_limit_ctx_t *ctx,
    ngx_str_t *key, uint32_t hash)
{
    ngx_int_t                       rc;
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_maestro_limit_node_t  *ln;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        ln = (ngx_http_maestro_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, ln->data, key->len, (size_t) ln->len);
        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* drop idle keys from the LRU end; force: the oldest even if not idle */
static void
ngx_http_maestro_limit_expire(ngx_http_maestro_limit_ctx_t *ctx,
    uint64_t now_ms, ngx_uint_t force)
{
    ngx_uint_t                      n;
    mst_gcra_rule_t                 rule;
    ngx_queue_t                    *q;
    ngx_rbtree_node_t              *node;
    ngx_http_maestro_limit_node_t  *ln;

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&ctx->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&ctx->sh->queue);
        ln = ngx_queue_data(q, ngx_http_maestro_limit_node_t, queue);

        ngx_memzero(&rule, sizeof(mst_gcra_rule_t));
        rule.rate = ln->rate;

        if (ln->counter ? ln->inflight != 0
            : !(force && n == 0) && !mst_gcra_idle(&rule, &ln->state, now_ms))
        {
            /* a slot in use is never forgotten: it would be given twice */
            return;
        }

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ctx->sh->rbtree, node);
        ngx_slab_free_locked(ctx->shpool, node);
    }
}


/*
 * One operation on key's node, created when missing (but for a refund or
 * a release, which have nothing to give back then). NGX_ERROR: no memory
 * for the key even after expiring the oldest; the caller admits, as
 * limit_req does.
 */
static ngx_int_t
ngx_http_maestro_limit_op(ngx_shm_zone_t *zone, const mst_limit_rule_t *rule,
    ngx_str_t *key, ngx_uint_t op, uint64_t cells, mst_gcra_verdict_t *v)
{
    size_t                          size;
    uint32_t                        hash;
    uint64_t                        now;
    mst_gcra_state_t                peek;
    ngx_rbtree_node_t              *node;
    ngx_http_maestro_limit_ctx_t   *ctx;
    ngx_http_maestro_limit_node_t  *ln;

    ctx = zone->data;
    /* murmur: a key is tens of bytes, and crc32_short's nibble table
       was most of a check's time */
    hash = ngx_murmur_hash2(key->data, key->len);
    now = ngx_current_msec;

    ngx_memzero(v, sizeof(mst_gcra_verdict_t));
    v->admitted = 1;

    ngx_http_maestro_limit_lock(zone);

    ln = ngx_http_maestro_limit_find(ctx, key, hash);

    if (ln == NULL) {
        if (op == NGX_HTTP_MAESTRO_LIMIT_REFUND
            || op == NGX_HTTP_MAESTRO_LIMIT_RELEASE)
        {
            return NGX_OK;
        }

        ngx_http_maestro_limit_expire(ctx, now, 0);

        size = offsetof(ngx_rbtree_node_t, color)
               + offsetof(ngx_http_maestro_limit_node_t, data)
               + key->len;

        node = ngx_slab_alloc_locked(ctx->shpool, size);

        if (node == NULL) {
            /* full: forget the least recently used key, then retry */
            ngx_http_maestro_limit_expire(ctx, now, 1);

            node = ngx_slab_alloc_locked(ctx->shpool, size);
            if (node == NULL) {
                if (!ctx->full_logged) {
                    ctx->full_logged = 1;
                    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                                  "maestro: could not allocate a key%s",
                                  ctx->shpool->log_ctx);
                }
                return NGX_ERROR;
            }
        }

        node->key = hash;

        ln = (ngx_http_maestro_limit_node_t *) &node->color;
        ln->len = (u_short) key->len;
        ln->counter = (rule->kind == MST_LIMIT_PARALLEL
                       || rule->kind == MST_LIMIT_STREAMS);
        ln->rate = rule->gcra.rate;
        ngx_memzero(&ln->state, sizeof(mst_gcra_state_t));
        ln->inflight = 0;
        ngx_memcpy(ln->data, key->data, key->len);

        ngx_rbtree_insert(&ctx->sh->rbtree, node);

    } else {
        ngx_queue_remove(&ln->queue);
    }

    ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

    switch (op) {

    case NGX_HTTP_MAESTRO_LIMIT_TAKE:
        mst_gcra_take(&rule->gcra, &ln->state, cells, now, v);
        break;

    case NGX_HTTP_MAESTRO_LIMIT_PEEK:
        peek = ln->state;
        mst_gcra_take(&rule->gcra, &peek, cells, now, v);
        break;

    case NGX_HTTP_MAESTRO_LIMIT_CHARGE:
        mst_gcra_charge(&rule->gcra, &ln->state, cells, now);
        break;

    case NGX_HTTP_MAESTRO_LIMIT_REFUND:
        mst_gcra_refund(&rule->gcra, &ln->state, cells);
        break;

    case NGX_HTTP_MAESTRO_LIMIT_ACQUIRE:
        /* cells: 1 takes a slot; 0 only says how many are in flight */
        v->admitted = (ln->inflight < rule->max);
        v->limit = rule->max;
        v->remaining = ln->inflight;            /* in flight before */
        if (v->admitted && cells) {
            ln->inflight++;
        }
        break;

    default: /* NGX_HTTP_MAESTRO_LIMIT_RELEASE */
        if (ln->inflight > 0) {
            ln->inflight--;
        }
        break;
    }

    return NGX_OK;
}


/* a zone of limits, or NULL (logged) */
static ngx_shm_zone_t *
ngx_http_maestro_limit_zone_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t                *zone;
    ngx_http_maestro_limit_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_maestro_limit_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    zone = ngx_shared_memory_add(cf, name, size, &ngx_http_maestro_module);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit_zone \"%V\" is duplicate%s", name,
                           ngx_strcmp(name->data, "maestro_keys") == 0
                           ? " (the API keys' own zone: name yours another "
                             "way)" : "");
        return NULL;
    }

    zone->init = ngx_http_maestro_limit_init_zone;
    zone->data = ctx;

    return zone;
}


char *
ngx_http_maestro_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t      size;
    ngx_str_t   *value, name, s;
    ngx_uint_t   i;

    value = cf->args->elts;
    size = 0;
    ngx_str_null(&name);

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            name.data = value[i].data + 5;
            name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_limit_zone \"%V\" is not a "
                                   "size of at least 32k", &value[i]);
                return NGX_CONF_ERROR;
            }
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit_zone: unknown parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0 || size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit_zone needs name= and size=");
        return NGX_CONF_ERROR;
    }

    return ngx_http_maestro_limit_zone_add(cf, &name, size) ? NGX_CONF_OK
                                                            : NGX_CONF_ERROR;
}


static ngx_str_t  ngx_http_maestro_limit_by[] = {
    ngx_string("key"), ngx_string("user"), ngx_string("team"),
    ngx_string("ip"), ngx_string("endpoint"), ngx_string("model")
};


static ngx_uint_t  ngx_http_maestro_limit_rules;


ngx_conf_enum_t  ngx_http_maestro_limit_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


char *
ngx_http_maestro_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_loc_conf_t *mlcf = conf;

    u_char                         *p, *last, *dot;
    uint64_t                        window, burst;
    ngx_int_t                       n;
    ngx_str_t                      *value, s;
    ngx_uint_t                      i, k, found, tokens, kinds;
    ngx_http_maestro_limit_rule_t  *rule;

    value = cf->args->elts;

    if (mlcf->limit.rules == NULL) {
        mlcf->limit.rules = ngx_array_create(cf->pool, 2,
                                sizeof(ngx_http_maestro_limit_rule_t));
        if (mlcf->limit.rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(mlcf->limit.rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_maestro_limit_rule_t));
    rule->index = ngx_http_maestro_limit_rules++;

    burst = 0;
    kinds = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            rule->zone = ngx_shared_memory_add(cf, &s, 0,
                                               &ngx_http_maestro_module);
            if (rule->zone == NULL) {
                return NGX_CONF_ERROR;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            p = value[i].data + 4;
            last = value[i].data + value[i].len;

            while (p < last) {
                dot = ngx_strlchr(p, last, '+');
                if (dot == NULL) {
                    dot = last;
                }

                found = 0;
                for (k = 0; k < 6; k++) {
                    if ((size_t) (dot - p) == ngx_http_maestro_limit_by[k].len
                        && ngx_strncmp(p, ngx_http_maestro_limit_by[k].data,
                                       dot - p) == 0)
                    {
                        rule->by |= (ngx_uint_t) 1 << k;
                        found = 1;
                    }
                }

                if (!found) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "maestro_limit: \"%V\" is not key, "
                                       "user, team, ip, endpoint, model or "
                                       "a '+' of them", &value[i]);
                    return NGX_CONF_ERROR;
                }

                p = dot + 1;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0
            || ngx_strncmp(value[i].data, "tokens=", 7) == 0)
        {
            tokens = (value[i].data[0] == 't');
            p = value[i].data + (tokens ? 7 : 5);
            last = value[i].data + value[i].len;

            /* rate=<n>r/<unit>, tokens=<n>/<unit> */
            if (last - p < 3 || last[-2] != '/'
                || (!tokens && (last - p < 4 || last[-3] != 'r')))
            {
                goto bad_rate;
            }

            switch (last[-1]) {
            case 's': window = MST_GCRA_SECOND; break;
            case 'm': window = MST_GCRA_MINUTE; break;
            case 'h': window = MST_GCRA_HOUR; break;
            case 'd': window = MST_GCRA_DAY; break;
            default: goto bad_rate;
            }

            n = ngx_atoi(p, last - (tokens ? 2 : 3) - p);
            if (n <= 0 || (uint64_t) n > (tokens ? MST_LIMIT_TOKENS_MAX
                                                 : 1000000))
            {
                goto bad_rate;
            }

            kinds++;
            rule->rule.kind = tokens ? MST_LIMIT_TOKENS : MST_LIMIT_REQUESTS;
            rule->rule.name = tokens ? "tokens" : "requests";
            rule->rule.gcra.window_ms = window;
            rule->rule.gcra.rate = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "concurrent=", 11) == 0
            || ngx_strncmp(value[i].data, "streams=", 8) == 0)
        {
            tokens = (value[i].data[0] == 's');
            p = value[i].data + (tokens ? 8 : 11);

            n = ngx_atoi(p, value[i].data + value[i].len - p);
            if (n <= 0 || (uint64_t) n > MST_LIMIT_PARALLEL_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_limit: \"%V\" is not "
                                   "1..1000000", &value[i]);
                return NGX_CONF_ERROR;
            }

            kinds++;
            rule->rule.kind = tokens ? MST_LIMIT_STREAMS : MST_LIMIT_PARALLEL;
            rule->rule.name = tokens ? "streams" : "concurrent";
            rule->rule.max = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || (uint64_t) n > MST_LIMIT_TOKENS_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_limit: \"%V\" is not a number "
                                   "of requests or tokens", &value[i]);
                return NGX_CONF_ERROR;
            }
            burst = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit: unknown parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (rule->zone == NULL || rule->by == 0 || kinds != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit needs zone=, key= and one of "
                           "rate=, tokens=, concurrent=, streams=");
        return NGX_CONF_ERROR;
    }

    switch (rule->rule.kind) {

    case MST_LIMIT_REQUESTS:
        if (burst > 1000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_limit: a request burst is "
                               "0..1000000");
            return NGX_CONF_ERROR;
        }
        rule->rule.gcra.burst = burst;
        break;

    case MST_LIMIT_TOKENS:
        /* a window's tokens at once, and burst more */
        (void) mst_limit_tokens_rule(&rule->rule, rule->rule.gcra.rate,
                                     rule->rule.gcra.window_ms, burst);
        break;

    default:
        if (burst || (rule->by & NGX_HTTP_MAESTRO_LIMIT_MODEL)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_limit: %s is for rate= and tokens=",
                               burst ? "burst=" : "key=model");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

bad_rate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "maestro_limit: \"%V\" is not a rate (rate=<n>r/s"
                       "|m|h|d, n 1..1000000; tokens=<n>/s|m|h|d, "
                       "n 1..1000000000000)", &value[i]);
    return NGX_CONF_ERROR;
}


const char *
ngx_http_maestro_limit_endpoint(ngx_http_request_t *r)
{
    ngx_str_t  *u;

    u = &r->uri;

#define ngx_http_maestro_limit_is(s)                                         \
    (u->len >= sizeof(s) - 1 && ngx_strncmp(u->data, s, sizeof(s) - 1) == 0)

    if (ngx_http_maestro_limit_is("/v1/chat/")) {
        return "openai_chat";
    }
    if (ngx_http_maestro_limit_is("/v1/embeddings")) {
        return "openai_embeddings";
    }
    if (ngx_http_maestro_limit_is("/api/v1/stream/")) {
        return "stream";
    }
    if (ngx_http_maestro_limit_is("/api/v1/analyze")) {
        return "analyze";
    }
    if (ngx_http_maestro_limit_is("/api/v1/ws")) {
        return "ws";
    }
    if (r->method == NGX_HTTP_POST
        && u->len == sizeof("/api/v1/workflows") - 1
        && ngx_http_maestro_limit_is("/api/v1/workflows"))
    {
        return "submit";
    }

#undef ngx_http_maestro_limit_is

    return "api";
}


ngx_uint_t
ngx_http_maestro_limit_is_stream(ngx_http_request_t *r)
{
    ngx_str_t  *u;

    u = &r->uri;

    if (r->headers_in.upgrade != NULL) {
        return 1;                               /* a WebSocket */
    }

    if (u->len >= sizeof("/api/v1/stream/") - 1
        && ngx_strncmp(u->data, "/api/v1/stream/",
                       sizeof("/api/v1/stream/") - 1) == 0)
    {
        return 1;
    }

    /* GET .../events: a workflow's SSE follow, or the monitor */
    return r->method == NGX_HTTP_GET
           && u->len >= sizeof("/events") - 1
           && ngx_strncmp(u->data + u->len - (sizeof("/events") - 1),
                          "/events", sizeof("/events") - 1) == 0;
}


/* the key string of a configured rule for this caller: in buf */
static ngx_str_t
ngx_http_maestro_limit_key(ngx_http_maestro_limit_rule_t *rule,
    ngx_http_maestro_limit_who_t *who, u_char *buf, size_t size)
{
    u_char              *p, *last;
    ngx_str_t            key;
    const mst_caller_t  *c;

    c = who->caller;
    last = buf + size;

    p = ngx_snprintf(buf, size, "%ui", rule->index);

    if (rule->by & NGX_HTTP_MAESTRO_LIMIT_KEY) {
        p = ngx_snprintf(p, last - p, "\x1f%s", c->key_id);
    }
    if (rule->by & NGX_HTTP_MAESTRO_LIMIT_USER) {
        /* no user known at ACCESS (auth off): the client address */
        p = c->has_user && c->fixed
            ? ngx_snprintf(p, last - p, "\x1fu%s", c->user_id)
            : ngx_snprintf(p, last - p, "\x1fi%V", who->addr);
    }
    if (rule->by & NGX_HTTP_MAESTRO_LIMIT_TEAM) {
        p = ngx_snprintf(p, last - p, "\x1f%s", c->team);
    }
    if (rule->by & NGX_HTTP_MAESTRO_LIMIT_IP) {
        p = ngx_snprintf(p, last - p, "\x1f%V", who->addr);
    }
    if (rule->by & NGX_HTTP_MAESTRO_LIMIT_ENDPOINT) {
        p = ngx_snprintf(p, last - p, "\x1f%s", who->endpoint);
    }
    if (rule->by & NGX_HTTP_MAESTRO_LIMIT_MODEL) {
        p = ngx_snprintf(p, last - p, "\x1f%s", who->model);
    }

    key.data = buf;
    key.len = p - buf;

    return key;
}


/* a key's own rule: "\x1fk" + id + its name (never a configured one's) */
static ngx_str_t
ngx_http_maestro_limit_key_own(const char *id, const mst_limit_rule_t *r,
    u_char *buf, size_t size)
{
    ngx_str_t  key;

    key.data = buf;
    key.len = ngx_snprintf(buf, size, "\x1fk%s\x1f%s", id, r->name) - buf;

    return key;
}


static void
ngx_http_maestro_limit_cleanup(void *data)
{
    ngx_http_maestro_limit_ledger_t *lg = data;

    ngx_uint_t                      i;
    mst_gcra_verdict_t              g;
    ngx_http_maestro_limit_hold_t  *h;

    if (lg->holds == NULL) {
        return;
    }

    h = lg->holds->elts;

    /* the last byte went: slots back; reservations never settled back */
    for (i = 0; i < lg->holds->nelts; i++) {
        if (h[i].settled) {
            continue;
        }

        if (h[i].rule.kind == MST_LIMIT_PARALLEL
            || h[i].rule.kind == MST_LIMIT_STREAMS)
        {
            (void) ngx_http_maestro_limit_op(h[i].zone, &h[i].rule, &h[i].key,
                                             NGX_HTTP_MAESTRO_LIMIT_RELEASE,
                                             0, &g);

        } else if (h[i].rule.kind == MST_LIMIT_TOKENS) {
            (void) ngx_http_maestro_limit_op(h[i].zone, &h[i].rule, &h[i].key,
                                             NGX_HTTP_MAESTRO_LIMIT_REFUND,
                                             h[i].cells, &g);
        }

        h[i].settled = 1;
    }

    ngx_http_maestro_limit_unlock();
}


/* keep what a rule took, to give back or settle */
static ngx_int_t
ngx_http_maestro_limit_keep(ngx_http_maestro_limit_ledger_t *lg,
    ngx_shm_zone_t *zone, const mst_limit_rule_t *rule, ngx_str_t *key,
    uint64_t cells)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_maestro_limit_hold_t  *h;

    if (lg->holds == NULL) {
        lg->holds = ngx_array_create(lg->pool, 4,
                                     sizeof(ngx_http_maestro_limit_hold_t));
        if (lg->holds == NULL) {
            return NGX_ERROR;
        }
    }

    if (!lg->cleanup) {
        cln = ngx_pool_cleanup_add(lg->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_maestro_limit_cleanup;
        cln->data = lg;
        lg->cleanup = 1;
    }

    h = ngx_array_push(lg->holds);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->zone = zone;
    h->rule = *rule;
    h->cells = cells;
    h->settled = 0;

    h->key.len = key->len;
    h->key.data = ngx_pnalloc(lg->pool, key->len);
    if (h->key.data == NULL) {
        lg->holds->nelts--;
        return NGX_ERROR;
    }

    ngx_memcpy(h->key.data, key->data, key->len);

    return NGX_OK;
}


/* a refusal: everything this request took is given back */
static void
ngx_http_maestro_limit_undo(ngx_http_maestro_limit_ledger_t *lg,
    ngx_uint_t from)
{
    ngx_uint_t                      i;
    mst_gcra_verdict_t              g;
    ngx_http_maestro_limit_hold_t  *h;

    if (lg->holds == NULL) {
        ngx_http_maestro_limit_unlock();
        return;
    }

    h = lg->holds->elts;

    for (i = from; i < lg->holds->nelts; i++) {
        if (h[i].settled) {
            continue;
        }

        (void) ngx_http_maestro_limit_op(h[i].zone, &h[i].rule, &h[i].key,
                   (h[i].rule.kind == MST_LIMIT_PARALLEL
                    || h[i].rule.kind == MST_LIMIT_STREAMS)
                   ? NGX_HTTP_MAESTRO_LIMIT_RELEASE
                   : NGX_HTTP_MAESTRO_LIMIT_REFUND, h[i].cells, &g);

        h[i].settled = 1;
    }

    ngx_http_maestro_limit_unlock();
}


/*
 * One rule at the door (tokens: reserve 0 means "at the door": look
 * only). NGX_DECLINED: the rule does not apply; NGX_ERROR: refused.
 */
static ngx_int_t
ngx_http_maestro_limit_one(ngx_shm_zone_t *zone, const mst_limit_rule_t *r,
    ngx_str_t *key, ngx_http_maestro_limit_who_t *who,
    ngx_http_maestro_limit_ledger_t *lg, uint64_t reserve,
    mst_limit_verdict_t *v)
{
    uint64_t            cells;
    mst_gcra_verdict_t  g;

    switch (r->kind) {

    case MST_LIMIT_REQUESTS:
        if (ngx_http_maestro_limit_op(zone, r, key,
                                      NGX_HTTP_MAESTRO_LIMIT_TAKE, 1, &g)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        mst_limit_verdict_add(v, &g, r->gcra.window_ms, "requests");

        /* kept to be given back if a later rule refuses */
        if (g.admitted && lg->pool != NULL) {
            (void) ngx_http_maestro_limit_keep(lg, zone, r, key, 1);
        }

        break;

    case MST_LIMIT_TOKENS:
        cells = reserve ? mst_limit_cells(r, reserve) : 1;

        if (ngx_http_maestro_limit_op(zone, r, key,
                                      reserve ? NGX_HTTP_MAESTRO_LIMIT_TAKE
                                              : NGX_HTTP_MAESTRO_LIMIT_PEEK,
                                      cells, &g)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        mst_limit_verdict_add(v, &g, r->gcra.window_ms, "tokens");

        if (g.admitted && reserve
            && ngx_http_maestro_limit_keep(lg, zone, r, key, cells) != NGX_OK)
        {
            (void) ngx_http_maestro_limit_op(zone, r, key,
                                             NGX_HTTP_MAESTRO_LIMIT_REFUND,
                                             cells, &g);
        }

        break;

    default: /* MST_LIMIT_PARALLEL, MST_LIMIT_STREAMS */
        if (reserve || lg->pool == NULL
            || (r->kind == MST_LIMIT_STREAMS && !who->stream))
        {
            /* a WebSocket message: its connection holds the slot */
            return NGX_DECLINED;
        }

        if (ngx_http_maestro_limit_op(zone, r, key,
                                      NGX_HTTP_MAESTRO_LIMIT_ACQUIRE, 1, &g)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (!g.admitted) {
            mst_limit_verdict_count(v, r, g.remaining);
            break;
        }

        if (ngx_http_maestro_limit_keep(lg, zone, r, key, 0) != NGX_OK) {
            (void) ngx_http_maestro_limit_op(zone, r, key,
                                             NGX_HTTP_MAESTRO_LIMIT_RELEASE,
                                             0, &g);
        }
    }

    return v->admitted ? NGX_OK : NGX_ERROR;
}


/* every rule of lc and of the caller's key: at the door, or reserve */
static void
ngx_http_maestro_limit_all(ngx_http_maestro_limit_conf_t *lc,
    ngx_http_maestro_limit_who_t *who, ngx_http_maestro_limit_ledger_t *lg,
    uint64_t reserve, mst_limit_verdict_t *v)
{
    u_char                          buf[512];
    size_t                          n;
    ngx_str_t                       key;
    ngx_uint_t                      i, from, model;
    mst_limit_rule_t                own[MST_LIMIT_KEY_RULES];
    ngx_http_maestro_limit_rule_t  *rule;

    mst_limit_verdict_init(v);

    from = lg->holds ? lg->holds->nelts : 0;

    if (lc != NULL && lc->rules != NULL) {
        rule = lc->rules->elts;

        for (i = 0; i < lc->rules->nelts; i++) {
            model = (rule[i].by & NGX_HTTP_MAESTRO_LIMIT_MODEL) != 0;

            /*
             * A rule by model waits for the body (the reservation); the
             * others' requests and slots are counted at the door
             */
            if ((model && who->model == NULL)
                || (reserve && !model
                    && rule[i].rule.kind != MST_LIMIT_TOKENS))
            {
                continue;
            }

            key = ngx_http_maestro_limit_key(&rule[i], who, buf, sizeof(buf));

            if (ngx_http_maestro_limit_one(rule[i].zone, &rule[i].rule, &key,
                                           who, lg, reserve, v)
                == NGX_ERROR)
            {
                goto refused;
            }
        }
    }

    if (who->key == NULL || ngx_http_maestro_limit_keys == NULL) {
        ngx_http_maestro_limit_unlock();
        return;
    }

    n = mst_limit_key_rules(who->key, own);

    for (i = 0; i < n; i++) {
        if (reserve && own[i].kind != MST_LIMIT_TOKENS) {
            continue;
        }

        key = ngx_http_maestro_limit_key_own(who->caller->key_id, &own[i],
                                             buf, sizeof(buf));

        if (ngx_http_maestro_limit_one(ngx_http_maestro_limit_keys, &own[i],
                                       &key, who, lg, reserve, v)
            == NGX_ERROR)
        {
            goto refused;
        }
    }

    ngx_http_maestro_limit_unlock();
    return;

refused:

    /* all or nothing: a reservation refused gives back the door's too */
    ngx_http_maestro_limit_undo(lg, reserve ? 0 : from);
}


void
ngx_http_maestro_limit_check(ngx_http_maestro_limit_conf_t *lc,
    ngx_http_maestro_limit_who_t *who, ngx_http_maestro_limit_ledger_t *lg,
    mst_limit_verdict_t *v)
{
    ngx_http_maestro_limit_all(lc, who, lg, 0, v);
}


void
ngx_http_maestro_limit_reserve(ngx_http_maestro_limit_conf_t *lc,
    ngx_http_maestro_limit_who_t *who, ngx_http_maestro_limit_ledger_t *lg,
    uint64_t tokens, mst_limit_verdict_t *v)
{
    ngx_http_maestro_limit_all(lc, who, lg, tokens ? tokens : 1, v);
}


void
ngx_http_maestro_limit_settle(ngx_http_maestro_limit_ledger_t *lg,
    uint64_t tokens)
{
    ngx_uint_t                      i;
    mst_gcra_verdict_t              g;
    ngx_http_maestro_limit_hold_t  *h;

    if (lg == NULL || lg->holds == NULL) {
        return;
    }

    h = lg->holds->elts;

    for (i = 0; i < lg->holds->nelts; i++) {
        if (h[i].settled || h[i].rule.kind != MST_LIMIT_TOKENS) {
            continue;
        }

        /* used more than reserved: the rest is owed; less: given back */
        (void) ngx_http_maestro_limit_op(h[i].zone, &h[i].rule, &h[i].key,
                   tokens > h[i].cells ? NGX_HTTP_MAESTRO_LIMIT_CHARGE
                                       : NGX_HTTP_MAESTRO_LIMIT_REFUND,
                   tokens > h[i].cells ? tokens - h[i].cells
                                       : h[i].cells - tokens, &g);
        h[i].settled = 1;
    }

    ngx_http_maestro_limit_unlock();
}


void
ngx_http_maestro_limit_key_charge(const json_t *key, uint64_t tokens)
{
    u_char              buf[128];
    size_t              n, i;
    ngx_str_t           k;
    const char         *id;
    mst_limit_rule_t    own[MST_LIMIT_KEY_RULES];
    mst_gcra_verdict_t  g;

    id = json_string_value(json_object_get(key, "id"));

    if (id == NULL || tokens == 0 || ngx_http_maestro_limit_keys == NULL) {
        return;
    }

    n = mst_limit_key_rules(key, own);

    for (i = 0; i < n; i++) {
        if (own[i].kind != MST_LIMIT_TOKENS) {
            continue;
        }

        k = ngx_http_maestro_limit_key_own(id, &own[i], buf, sizeof(buf));

        (void) ngx_http_maestro_limit_op(ngx_http_maestro_limit_keys, &own[i],
                                         &k, NGX_HTTP_MAESTRO_LIMIT_CHARGE,
                                         tokens, &g);
    }

    ngx_http_maestro_limit_unlock();
}


json_t *
ngx_http_maestro_limit_key_view(const json_t *key)
{
    u_char              buf[128];
    size_t              n, i;
    json_t             *out, *o;
    ngx_str_t           k;
    const char         *id;
    mst_limit_rule_t    own[MST_LIMIT_KEY_RULES];
    mst_gcra_verdict_t  g;

    out = json_object();
    id = json_string_value(json_object_get(key, "id"));

    if (out == NULL || id == NULL || ngx_http_maestro_limit_keys == NULL) {
        return out;
    }

    n = mst_limit_key_rules(key, own);

    for (i = 0; i < n; i++) {
        k = ngx_http_maestro_limit_key_own(id, &own[i], buf, sizeof(buf));

        if (ngx_http_maestro_limit_op(ngx_http_maestro_limit_keys, &own[i],
                                      &k,
                                      own[i].kind == MST_LIMIT_PARALLEL
                                      ? NGX_HTTP_MAESTRO_LIMIT_ACQUIRE
                                      : NGX_HTTP_MAESTRO_LIMIT_PEEK, 0, &g)
            != NGX_OK)
        {
            continue;
        }

        if (own[i].kind == MST_LIMIT_PARALLEL) {
            o = json_pack("{s:I, s:I}", "limit", (json_int_t) own[i].max,
                          "in_flight", (json_int_t) g.remaining);

        } else {
            /* the tokens a request could use now, and when all are back */
            o = json_pack("{s:I, s:I, s:I}",
                          "limit", (json_int_t) g.limit,
                          "remaining",
                          (json_int_t) (g.admitted
                                        ? g.remaining + 1
                                        : 0),
                          "reset_ms", (json_int_t) g.reset_ms);
        }

        json_object_set_new(out, own[i].name, o);
    }

    ngx_http_maestro_limit_unlock();

    return out;
}


ngx_int_t
ngx_http_maestro_limit_keys_zone(ngx_conf_t *cf, size_t size)
{
    ngx_str_t  name = ngx_string("maestro_keys");

    ngx_http_maestro_limit_keys = ngx_http_maestro_limit_zone_add(cf, &name,
                                                                  size);

    return ngx_http_maestro_limit_keys ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_maestro_limit_headers(ngx_http_request_t *r,
    const mst_limit_verdict_t *v)
{
    u_char  *p, *b;

    if (v->limit == 0 && (v->admitted || v->retry_after_ms == 0)) {
        return NGX_OK;
    }

    b = ngx_pnalloc(r->pool, 5 * NGX_INT64_LEN + 64);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = b;

    if (v->limit == 0) {
        /* a budget: when the period turns, no rate to tell */
        goto retry;
    }

    /* draft-ietf-httpapi-ratelimit-headers: seconds, rounded up */
    p = ngx_sprintf(b, "\"default\";q=%uL;w=%uL", v->limit,
                    (v->window_ms + 999) / 1000);
    if (ngx_http_maestro_header_out(r, "RateLimit-Policy", b, p - b)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    b = p;
    p = ngx_sprintf(b, "\"default\";r=%uL;t=%uL", v->remaining,
                    (v->reset_ms + 999) / 1000);
    if (ngx_http_maestro_header_out(r, "RateLimit", b, p - b) != NGX_OK) {
        return NGX_ERROR;
    }

    if (v->admitted) {
        return NGX_OK;
    }

retry:

    b = p;
    p = ngx_sprintf(b, "%uL", (v->retry_after_ms + 999) / 1000);

    return ngx_http_maestro_header_out(r, "Retry-After", b, p - b);
}


/* $maestro_limit_status, like $limit_req_status */

static ngx_int_t  ngx_http_maestro_limit_status_index = NGX_ERROR;


/* not set by the limits stage: no rule applied, or not a maestro_api */
static ngx_int_t
ngx_http_maestro_limit_status_get(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_maestro_limit_variables(ngx_conf_t *cf)
{
    ngx_str_t             name = ngx_string("maestro_limit_status");
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &name, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_maestro_limit_status_get;

    ngx_http_maestro_limit_status_index = ngx_http_get_variable_index(cf,
                                                                      &name);

    return (ngx_http_maestro_limit_status_index == NGX_ERROR) ? NGX_ERROR
                                                              : NGX_OK;
}


void
ngx_http_maestro_limit_status(ngx_http_request_t *r, const char *status)
{
    ngx_http_variable_value_t  *v;

    if (ngx_http_maestro_limit_status_index == NGX_ERROR) {
        return;
    }

    v = &r->variables[ngx_http_maestro_limit_status_index];

    v->data = (u_char *) status;
    v->len = ngx_strlen(status);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
}
