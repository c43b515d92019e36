/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see ngx_http_maestro_limit.h */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_limit.h"


/* one key; the key bytes follow */
typedef struct {
    u_char                        color;
    u_char                        dummy;
    u_short                       len;
    ngx_queue_t                   queue;
    uint64_t                      rate;     /* the scale of state.tat */
    mst_gcra_state_t              state;
    u_char                        data[1];
} ngx_http_maestro_limit_node_t;


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

        if (!(force && n == 0) && !mst_gcra_idle(&rule, &ln->state, now_ms))
        {
            return;
        }

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ctx->sh->rbtree, node);
        ngx_slab_free_locked(ctx->shpool, node);
    }
}


ngx_int_t
ngx_http_maestro_limit_take(ngx_shm_zone_t *zone,
    const mst_gcra_rule_t *rule, ngx_str_t *key, uint64_t cost,
    uint64_t now_ms, mst_gcra_verdict_t *v)
{
    size_t                          size;
    uint32_t                        hash;
    ngx_rbtree_node_t              *node;
    ngx_http_maestro_limit_ctx_t   *ctx;
    ngx_http_maestro_limit_node_t  *ln;

    ctx = zone->data;
    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_maestro_limit_find(ctx, key, hash);

    if (ln != NULL) {
        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);
        mst_gcra_take(rule, &ln->state, cost, now_ms, v);
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_OK;
    }

    ngx_http_maestro_limit_expire(ctx, now_ms, 0);

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_maestro_limit_node_t, data)
           + key->len;

    node = ngx_slab_alloc_locked(ctx->shpool, size);

    if (node == NULL) {
        /* full: forget the least recently used key, then retry */
        ngx_http_maestro_limit_expire(ctx, now_ms, 1);

        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node == NULL) {
            if (!ctx->full_logged) {
                ctx->full_logged = 1;
                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                              "maestro: could not allocate a key%s",
                              ctx->shpool->log_ctx);
            }
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }
    }

    node->key = hash;

    ln = (ngx_http_maestro_limit_node_t *) &node->color;
    ln->len = (u_short) key->len;
    ln->rate = rule->rate;
    ln->state.tat = 0;
    ngx_memcpy(ln->data, key->data, key->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

    mst_gcra_take(rule, &ln->state, cost, now_ms, v);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


void
ngx_http_maestro_limit_refund(ngx_shm_zone_t *zone,
    const mst_gcra_rule_t *rule, ngx_str_t *key, uint64_t cost)
{
    ngx_http_maestro_limit_ctx_t   *ctx;
    ngx_http_maestro_limit_node_t  *ln;

    ctx = zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_maestro_limit_find(ctx, key,
                                     ngx_crc32_short(key->data, key->len));
    if (ln != NULL) {
        mst_gcra_refund(rule, &ln->state, cost);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


char *
ngx_http_maestro_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                        size;
    ngx_str_t                     *value, name, s;
    ngx_uint_t                     i;
    ngx_shm_zone_t                *zone;
    ngx_http_maestro_limit_ctx_t  *ctx;

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

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_maestro_limit_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_maestro_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit_zone \"%V\" is duplicate", &name);
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_maestro_limit_init_zone;
    zone->data = ctx;

    return NGX_CONF_OK;
}


static ngx_str_t  ngx_http_maestro_limit_by[] = {
    ngx_string("key"), ngx_string("user"), ngx_string("team"),
    ngx_string("ip"), ngx_string("endpoint")
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
    ngx_int_t                       n;
    ngx_str_t                      *value, s;
    ngx_uint_t                      i, k, found;
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
                for (k = 0; k < 5; k++) {
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
                                       "user, team, ip, endpoint or a "
                                       "'+' of them", &value[i]);
                    return NGX_CONF_ERROR;
                }

                p = dot + 1;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            p = value[i].data + 5;
            last = value[i].data + value[i].len;

            if (last - p < 4 || last[-3] != 'r' || last[-2] != '/') {
                goto bad_rate;
            }

            switch (last[-1]) {
            case 's': rule->rule.window_ms = MST_GCRA_SECOND; break;
            case 'm': rule->rule.window_ms = MST_GCRA_MINUTE; break;
            case 'h': rule->rule.window_ms = MST_GCRA_HOUR; break;
            case 'd': rule->rule.window_ms = MST_GCRA_DAY; break;
            default: goto bad_rate;
            }

            n = ngx_atoi(p, last - 3 - p);
            if (n <= 0 || (uint64_t) n > MST_GCRA_RATE_MAX) {
                goto bad_rate;
            }

            rule->rule.rate = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || (uint64_t) n > MST_GCRA_RATE_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_limit: \"%V\" is not 0..1000000",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
            rule->rule.burst = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit: unknown parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (rule->zone == NULL || rule->by == 0 || rule->rule.rate == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_limit needs zone=, key= and rate=");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

bad_rate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "maestro_limit: \"%V\" is not <n>r/s, r/m, r/h or r/d "
                       "with n 1..1000000", &value[i]);
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


void
ngx_http_maestro_limit_check(ngx_http_maestro_limit_conf_t *lc,
    const mst_caller_t *caller, ngx_str_t *addr, const char *endpoint,
    mst_limit_verdict_t *v)
{
    u_char                         *p, buf[512];
    ngx_str_t                       key;
    ngx_uint_t                      i;
    mst_gcra_verdict_t              g;
    ngx_http_maestro_limit_rule_t  *rule;

    ngx_memzero(v, sizeof(mst_limit_verdict_t));
    v->admitted = 1;

    if (lc->rules == NULL) {
        return;
    }

    rule = lc->rules->elts;

    for (i = 0; i < lc->rules->nelts; i++) {
        p = ngx_snprintf(buf, sizeof(buf), "%ui", rule[i].index);

        if (rule[i].by & NGX_HTTP_MAESTRO_LIMIT_KEY) {
            p = ngx_snprintf(p, buf + sizeof(buf) - p, "\x1f%s",
                             caller->key_id);
        }
        if (rule[i].by & NGX_HTTP_MAESTRO_LIMIT_USER) {
            /* no user known at ACCESS (auth off): the client address */
            p = caller->has_user && caller->fixed
                ? ngx_snprintf(p, buf + sizeof(buf) - p, "\x1fu%s",
                               caller->user_id)
                : ngx_snprintf(p, buf + sizeof(buf) - p, "\x1fi%V", addr);
        }
        if (rule[i].by & NGX_HTTP_MAESTRO_LIMIT_TEAM) {
            p = ngx_snprintf(p, buf + sizeof(buf) - p, "\x1f%s",
                             caller->team);
        }
        if (rule[i].by & NGX_HTTP_MAESTRO_LIMIT_IP) {
            p = ngx_snprintf(p, buf + sizeof(buf) - p, "\x1f%V", addr);
        }
        if (rule[i].by & NGX_HTTP_MAESTRO_LIMIT_ENDPOINT) {
            p = ngx_snprintf(p, buf + sizeof(buf) - p, "\x1f%s", endpoint);
        }

        key.data = buf;
        key.len = p - buf;

        if (ngx_http_maestro_limit_take(rule[i].zone, &rule[i].rule, &key, 1,
                                        ngx_current_msec, &g)
            != NGX_OK)
        {
            continue;
        }

        if (!g.admitted || (v->admitted && (v->limit == 0
                                            || g.remaining < v->remaining)))
        {
            if (!g.admitted && !v->admitted
                && g.retry_after_ms <= v->retry_after_ms)
            {
                continue;
            }

            v->admitted = g.admitted;
            v->limit = g.limit;
            v->remaining = g.remaining;
            v->reset_ms = g.reset_ms;
            v->window_ms = rule[i].rule.window_ms;
            v->retry_after_ms = g.retry_after_ms;
        }
    }

    if (!v->admitted) {
        ngx_snprintf((u_char *) v->why, sizeof(v->why) - 1,
                     "too many requests: retry in %uL ms%Z",
                     v->retry_after_ms);
    }
}


static ngx_int_t
ngx_http_maestro_limit_header(ngx_http_request_t *r, const char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


ngx_int_t
ngx_http_maestro_limit_headers(ngx_http_request_t *r,
    const mst_limit_verdict_t *v)
{
    u_char  *p, *b;

    if (v->limit == 0) {
        return NGX_OK;
    }

    b = ngx_pnalloc(r->pool, 5 * NGX_INT64_LEN + 64);
    if (b == NULL) {
        return NGX_ERROR;
    }

    /* draft-ietf-httpapi-ratelimit-headers: seconds, rounded up */
    p = ngx_sprintf(b, "\"default\";q=%uL;w=%uL", v->limit,
                    (v->window_ms + 999) / 1000);
    if (ngx_http_maestro_limit_header(r, "RateLimit-Policy", b, p - b)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    b = p;
    p = ngx_sprintf(b, "\"default\";r=%uL;t=%uL", v->remaining,
                    (v->reset_ms + 999) / 1000);
    if (ngx_http_maestro_limit_header(r, "RateLimit", b, p - b) != NGX_OK) {
        return NGX_ERROR;
    }

    if (v->admitted) {
        return NGX_OK;
    }

    b = p;
    p = ngx_sprintf(b, "%uL", (v->retry_after_ms + 999) / 1000);

    return ngx_http_maestro_limit_header(r, "Retry-After", b, p - b);
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
