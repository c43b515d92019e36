/*
 * Copyright (C) Maestro authors
 */

/*
 * The read-only information routes of /api/v1: health, agents and their
 * logs, providers and their breakers, usage.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_watch.h"


ngx_int_t
ngx_http_maestro_health(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                            level;
    mst_store_space_t              sp;
    ngx_http_maestro_main_conf_t  *mmcf;

    static const char  *states[] = { "ok", "closed", "reserve" };

    mmcf = ngx_http_maestro_mmcf(r);

    /* a measure at most MST_STORE_LEVEL_MS old: a read of LMDB's free
       list then, a lock otherwise */
    level = mst_store_level(mmcf->env.store);

    if (mst_store_space_last(mmcf->env.store, &sp) != MST_OK) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "store_error",
                                           "store is not readable");
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:b, s:s},"
                  " s:{s:I, s:I}, s:i, s:s}",
                  "status", "ok",
                  "store", "used_bytes", (json_int_t) sp.used,
                           "map_bytes", (json_int_t) sp.map,
                           "free_bytes", (json_int_t) sp.free,
                           "headroom_bytes", (json_int_t) sp.headroom,
                           "full", level != MST_STORE_ROOM,
                           "state", states[level],
                  "workflows", "active", (json_int_t) mmcf->sh->active,
                               "worker_active", (json_int_t) mmcf->nactive,
                  "agents", (int) mmcf->nagents,
                  "llm", mst_gateway_online(mmcf->gw) ? "online"
                                                      : "offline"));
}


/* what spans every tenant: NGX_OK for others, else the 403 sent */
static ngx_int_t
ngx_http_maestro_api_tenant_refuse(ngx_http_request_t *r, ngx_int_t *rc)
{
    const char  *own;

    own = NULL;

    if (ngx_http_maestro_api_tenant(r, &own) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (own == NULL) {
        return NGX_OK;
    }

    *rc = ngx_http_maestro_send_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                      "this covers every user: the admin "
                                      "credential is required");
    return NGX_ERROR;
}


/* GET /api/v1/usage: everyone's tokens and cost (workflows and /v1) */
ngx_int_t
ngx_http_maestro_usage_all(ngx_http_request_t *r, ngx_str_t *arg)
{
    char                           err[MST_ERRLEN];
    json_t                        *usage;
    ngx_int_t                      rc;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    if (ngx_http_maestro_api_tenant_refuse(r, &rc) != NGX_OK) {
        return rc;
    }

    rc = mst_usage_get(mmcf->env.store, NULL, &usage, err, sizeof(err));
    if (rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "maestro: %s",
                      err);
        return ngx_http_maestro_store_error(r, (int) rc, "usage");
    }

    json_object_del(usage, "user_id");

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, usage);
}


/* GET /api/v1/users/{user_id}/usage: tokens and cost of all their calls */
ngx_int_t
ngx_http_maestro_user_usage(ngx_http_request_t *r, ngx_str_t *arg)
{
    char                           err[MST_ERRLEN];
    json_t                        *usage;
    ngx_int_t                      rc;
    ngx_str_t                      user;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    if (ngx_http_maestro_user_id(r, arg, &user, &rc) != NGX_OK) {
        return rc;
    }

    if (!ngx_http_maestro_admit_may_see(r, (char *) user.data)) {
        return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no such user");
    }

    rc = mst_run_user_usage(&mmcf->env, (char *) user.data, &usage, err,
                            sizeof(err));
    if (rc != MST_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "maestro: %s",
                      err);
        return ngx_http_maestro_store_error(r, (int) rc, "usage");
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK, usage);
}


/* GET /api/v1/providers: the gateway's providers and their breakers */
ngx_int_t
ngx_http_maestro_providers(ngx_http_request_t *r, ngx_str_t *arg)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:o, s:b}", "items", mst_gateway_status(mmcf->gw),
                  "offline", !mst_gateway_online(mmcf->gw)));
}


ngx_int_t
ngx_http_maestro_agents(ngx_http_request_t *r, ngx_str_t *arg)
{
    json_t                        *items;
    ngx_uint_t                     i;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    items = json_array();

    for (i = 0; i < mmcf->nagents; i++) {
        json_array_append_new(items, mst_agent_describe(&mmcf->agents[i]));
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
                                      json_pack("{s:o}", "items", items));
}


ngx_int_t
ngx_http_maestro_agent_logs(ngx_http_request_t *r, ngx_str_t *arg)
{
    int                            rc;
    char                           name[65], lim[16];
    json_t                        *list;
    ngx_int_t                      n, limit;
    ngx_str_t                      v;
    mst_txn_t                     *txn;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_maestro_mmcf(r);

    /* an agent's log holds every workflow's inputs: not a tenant's */
    if (ngx_http_maestro_api_tenant_refuse(r, &n) != NGX_OK) {
        return n;
    }

    if (arg->len >= sizeof(name)) {
        goto unknown;
    }

    ngx_memcpy(name, arg->data, arg->len);
    name[arg->len] = '\0';

    if (mst_run_agent(&mmcf->env, name) == NULL) {
        goto unknown;
    }

    limit = 100;

    n = ngx_http_maestro_arg(r, "limit", &v, lim, sizeof(lim));
    if (n != NGX_DECLINED) {
        limit = (n == NGX_OK) ? ngx_atoi(v.data, v.len) : NGX_ERROR;
        if (limit < 1 || limit > 1000) {
            return ngx_http_maestro_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalid_field",
                                               "limit must be 1..1000");
        }
    }

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "store");
    }

    rc = mst_store_agent_log_list(txn, name, (size_t) limit, &list);
    mst_txn_abort(txn);

    if (rc != MST_OK) {
        return ngx_http_maestro_store_error(r, rc, "agent logs");
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:o}", "agent", name, "items", list));

unknown:

    return ngx_http_maestro_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such agent");
}
