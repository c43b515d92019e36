/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The admission path: every way in (POST /api/v1/workflows, the stream
 * endpoint, /v1/chat/completions for workflows, "auto" and provider
 * models, /v1/embeddings, a WebSocket prompt_submission) passes the same
 * stages, in this order, each one function in this file:
 *
 *   1. identify the caller   mst_caller (core/access), from the
 *                            request's credential (_auth.c): an API key,
 *                            a JWT, the admin; with auth off the local
 *                            caller, its user fixed by a session or
 *                            claimed by the body
 *   2. limits                request rates per key, user, team, client
 *                            or endpoint (_limit.c: GCRA in shared
 *                            memory, core/access/mst_gcra.c)
 *   3. validate + guard      the request's shape (_submit.c for
 *                            submissions), then mst_guard_submission /
 *                            mst_guard_openai (core/text) on every text
 *                            that reaches a model or the store
 *   4. route                 mst_route (core/text): "auto" to a
 *                            workflow or a provider model
 *   5. cache                 a seam: always a miss today
 *   6. dispatch              run a workflow (_submit.c) or call a
 *                            provider (the engine)
 *   7. account               tokens and cost of calls outside workflows
 *                            (_usage.c); workflows account their own
 *
 * For HTTP, stages 1 and 2 run as ACCESS phase handlers of maestro_api
 * locations, identify first, as auth_request does; limits come after it
 * in the same phase because a per-caller limit needs the caller (the
 * PREACCESS phase, where limit_req runs, comes before any identity).
 * The WebSocket message path calls the same stage functions for each
 * prompt_submission, with the connection's caller.
 *
 * The admission is the request's module ctx, allocated from its pool.
 * Front ends that keep their own state there later (the engine's
 * pass-through) take it over after stage 6; nothing reads it then.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_audit.h"
#include "ngx_http_maestro_auth.h"
#include "ngx_http_maestro_cors.h"
#include "ngx_http_maestro_openai.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_usage.h"
#include "mst_guard_request.h"
#include "mst_apikey.h"
#include "mst_usage.h"


static ngx_http_maestro_admit_t *ngx_http_maestro_admit_ctx(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_maestro_admit_identify_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_maestro_admit_limits_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_maestro_admit_phase(ngx_http_request_t *r,
    ngx_uint_t stage);
static ngx_int_t ngx_http_maestro_admit_refuse(ngx_http_request_t *r,
    ngx_http_maestro_admit_error_t *e);


ngx_int_t
ngx_http_maestro_admit_error(ngx_http_maestro_admit_error_t *e,
    ngx_uint_t status, const char *code, const char *fmt, ...)
{
    va_list  args;

    e->status = status;
    e->code = code;

    va_start(args, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, args);
    va_end(args);

    return NGX_ERROR;
}


/* the request's admission; created at the first stage that needs it */
static ngx_http_maestro_admit_t *
ngx_http_maestro_admit_ctx(ngx_http_request_t *r)
{
    ngx_http_maestro_admit_t  *ad;

    ad = ngx_http_get_module_ctx(r, ngx_http_maestro_module);
    if (ad != NULL) {
        return ad;
    }

    ad = ngx_pcalloc(r->pool, sizeof(ngx_http_maestro_admit_t));
    if (ad == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ad, ngx_http_maestro_module);

    return ad;
}


ngx_http_maestro_admit_t *
ngx_http_maestro_admit_get(ngx_http_request_t *r)
{
    ngx_http_maestro_admit_t        *ad;
    ngx_http_maestro_admit_error_t   e;

    ad = ngx_http_maestro_admit_ctx(r);
    if (ad == NULL) {
        return NULL;
    }

    /*
     * The ACCESS phase does not run for subrequests (nginx checks the
     * main request, limits count it alone): the caller is known anyway.
     */

    if (!ad->identified) {
        (void) ngx_http_maestro_admit_identify(r, ad, NULL, &e);
    }

    return ad;
}


/* 1. identify */

ngx_int_t
ngx_http_maestro_admit_identify(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, ngx_str_t *session,
    ngx_http_maestro_admit_error_t *e)
{
    int   rc;
    char  err[MST_ERRLEN];

    if (!ad->identified) {
        ad->identified = 1;

        if (ngx_http_maestro_auth_identify(r, ad, e) != NGX_OK) {
            ad->refused = 1;
            return NGX_ERROR;
        }
    }

    if (ad->refused) {
        return ngx_http_maestro_admit_error(e, NGX_HTTP_UNAUTHORIZED,
                                            "unauthorized",
                                            "not authenticated");
    }

    if (session == NULL) {
        return NGX_OK;
    }

    rc = mst_caller_session(&ad->caller, (char *) session->data,
                            session->len, err, sizeof(err));

    if (rc == MST_EDENIED) {
        /* another tenant's session: as if it did not exist */
        return ngx_http_maestro_admit_error(e, NGX_HTTP_NOT_FOUND,
                                            "not_found", "no such session");
    }

    if (rc != MST_OK) {
        return ngx_http_maestro_admit_error(e, NGX_HTTP_NOT_FOUND,
                                            "not_found",
                                            "a user id of 1..128 characters "
                                            "is required");
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_maestro_admit_message(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, const mst_caller_t *conn,
    ngx_uint_t way, ngx_http_request_t *r,
    ngx_http_maestro_admit_error_t *e)
{
    ngx_http_maestro_loc_conf_t  *mlcf;

    ngx_memzero(ad, sizeof(ngx_http_maestro_admit_t));

    ad->caller = *conn;
    ad->identified = 1;
    ad->way = way;

    /* a key revoked since the upgrade ends what the connection submits */
    if (ngx_http_maestro_auth_recheck(mmcf, ad, r->connection->log, e)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* every prompt_submission counts, as endpoint "ws"; its connection
       holds the slots (ledger without a pool) */
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);
    ad->limits = &mlcf->limit;
    ad->addr = r->connection->addr_text;
    ad->endpoint = "ws";

    return ngx_http_maestro_admit_limits(ad, r->connection->log, e);
}


void
ngx_http_maestro_admit_release(ngx_http_maestro_admit_t *ad)
{
    json_decref(ad->key);
    ad->key = NULL;
}


ngx_int_t
ngx_http_maestro_admit_allows(ngx_http_maestro_admit_t *ad,
    const char *field, const char *name, ngx_http_maestro_admit_error_t *e)
{
    if (ad->key == NULL || name == NULL
        || mst_apikey_allows(ad->key, field, name))
    {
        return NGX_OK;
    }

    return ngx_http_maestro_admit_error(e, NGX_HTTP_FORBIDDEN, "forbidden",
                                        "this API key may not use the %s "
                                        "\"%s\"", field[0] == 'w'
                                        ? "workflow" : "model", name);
}


ngx_int_t
ngx_http_maestro_admit_may_see(ngx_http_request_t *r, const char *owner)
{
    ngx_http_maestro_admit_t  *ad;

    ad = ngx_http_maestro_admit_get(r);

    return ad != NULL && mst_caller_may_see(&ad->caller, owner);
}


/* 2. limits */

static void
ngx_http_maestro_admit_who(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_limit_who_t *who)
{
    who->caller = &ad->caller;
    who->key = ad->key;
    who->addr = &ad->addr;
    who->endpoint = ad->endpoint;
    who->model = NULL;
    who->stream = ad->stream;
}


/* what a key (team 0) or a team spent this period, from the store */
static double
ngx_http_maestro_admit_spent(ngx_http_maestro_main_conf_t *mmcf, int team,
    const char *id, const char *period, int64_t now, ngx_log_t *log)
{
    char     err[MST_ERRLEN];
    double   spent;
    json_t  *usage;

    /* a read transaction: the event loop may */
    if (mst_usage_period_get(mmcf->env.store, team, id, period, now, &usage,
                             err, sizeof(err))
        != MST_OK)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0, "maestro: budget of %s: %s", id,
                      err);
        return 0;
    }

    spent = json_number_value(json_object_get(usage, "cost_usd"));
    json_decref(usage);

    return spent;
}


/* the budgets of the caller's key and team */
static ngx_int_t
ngx_http_maestro_admit_budget(ngx_http_maestro_admit_t *ad, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    int                            rc;
    char                           bucket[32];
    int64_t                        now, reset;
    ngx_uint_t                     level;
    const char                    *period;
    const mst_budget_t            *tb;
    ngx_http_maestro_main_conf_t  *mmcf;

    /* reads spend nothing: a caller out of budget still sees its usage */
    if (ad->endpoint == NULL || ngx_strcmp(ad->endpoint, "api") == 0) {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_maestro_module);
    now = mst_now_ms();
    rc = MST_OK;
    period = NULL;

    if (ad->key != NULL
        && json_is_number(json_object_get(ad->key, "budget_usd")))
    {
        period = json_string_value(json_object_get(ad->key,
                                                   "budget_period"));
        rc = mst_limit_budget(ad->key,
                              ngx_http_maestro_admit_spent(mmcf, 0,
                                  ad->caller.key_id, period, now, log),
                              ad->limit.why, sizeof(ad->limit.why));
    }

    tb = mst_limit_team_budget(mmcf->team_budgets.elts,
                               mmcf->team_budgets.nelts, ad->caller.team);

    if (rc == MST_OK && tb != NULL) {
        period = tb->period;
        rc = mst_limit_spent(tb->usd,
                             ngx_http_maestro_admit_spent(mmcf, 1,
                                 ad->caller.team, period, now, log),
                             period, "the team's", ad->limit.why,
                             sizeof(ad->limit.why));
    }

    if (rc == MST_OK) {
        return NGX_OK;
    }

    (void) mst_limit_period(period, now, bucket, sizeof(bucket), &reset);

    ad->limit.admitted = 0;
    ad->limit.limit = 0;            /* no RateLimit fields: not a rate */
    ad->limit.retry_after_ms = (uint64_t) reset;

    level = ad->limits ? ad->limits->log_level : NGX_LOG_ERR;
    ngx_log_error(level, log, 0, "maestro: %s caller refused: %s",
                  mst_caller_kind_name(&ad->caller), ad->limit.why);

    return ngx_http_maestro_admit_error(e, NGX_HTTP_TOO_MANY_REQUESTS,
                                        "insufficient_quota", "%s",
                                        ad->limit.why);
}


/* the verdict of limits or a reservation: dry run, log, 429 */
static ngx_int_t
ngx_http_maestro_admit_verdict(ngx_http_maestro_admit_t *ad, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    ngx_uint_t  level;

    if (!ad->limit.admitted && ad->limits != NULL && ad->limits->dry_run) {
        /* dry run: say who would have been refused, then admit */
        ngx_log_error(ad->limits->log_level, log, 0,
                      "maestro: %s caller would be refused (dry run): %s",
                      mst_caller_kind_name(&ad->caller), ad->limit.why);
        ad->limit.admitted = 1;
        ad->limit.retry_after_ms = 0;
        ad->limit_dry_run = 1;
    }

    if (!ad->limit.admitted) {
        level = (ad->limits != NULL) ? ad->limits->log_level : NGX_LOG_INFO;
        ngx_log_error(level, log, 0, "maestro: %s caller refused: %s",
                      mst_caller_kind_name(&ad->caller), ad->limit.why);
        return ngx_http_maestro_admit_error(e, NGX_HTTP_TOO_MANY_REQUESTS,
                                            "rate_limited", "%s",
                                            ad->limit.why);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_maestro_admit_limits(ngx_http_maestro_admit_t *ad, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    ngx_http_maestro_limit_who_t  who;

    ngx_http_maestro_admit_who(ad, &who);
    ngx_http_maestro_limit_check(ad->limits, &who, &ad->ledger, &ad->limit);

    if (ngx_http_maestro_admit_verdict(ad, log, e) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_maestro_admit_budget(ad, log, e);
}


ngx_int_t
ngx_http_maestro_admit_reserve(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, const char *model, size_t input_bytes,
    int64_t max_tokens, ngx_http_maestro_admit_error_t *e)
{
    uint64_t                       tokens;
    ngx_http_maestro_limit_who_t   who;
    ngx_http_maestro_main_conf_t  *mmcf;

    if (ad->ledger.pool == NULL) {
        return NGX_OK;                  /* not through the door */
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    tokens = mst_limit_estimate(input_bytes, max_tokens,
                                mmcf->limit_max_tokens);

    ngx_http_maestro_admit_who(ad, &who);
    who.model = model;
    ngx_http_maestro_limit_reserve(ad->limits, &who, &ad->ledger, tokens,
                                   &ad->limit);

    if (ngx_http_maestro_admit_verdict(ad, r->connection->log, e) == NGX_OK)
    {
        return NGX_OK;
    }

    ngx_http_maestro_limit_status(r, "REJECTED");

    /* refused either way; the headers go with the answer when they can */
    (void) ngx_http_maestro_limit_headers(r, &ad->limit);

    return NGX_ERROR;
}


/*
 * Runs in the event loop: stage 1 or 2 as an ACCESS phase handler of
 * maestro_api locations. NGX_DECLINED goes to the next handler whatever
 * "satisfy" says.
 */
static ngx_int_t
ngx_http_maestro_admit_phase(ngx_http_request_t *r, ngx_uint_t stage)
{
    ngx_int_t                        rc;
    ngx_http_maestro_admit_t        *ad;
    ngx_http_maestro_loc_conf_t     *mlcf;
    ngx_http_maestro_admit_error_t   e;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    if (!mlcf->api) {
        return NGX_DECLINED;
    }

    /* a CORS preflight carries no credential: answered before stage 1 */
    if (stage == 1 && (rc = ngx_http_maestro_cors_preflight(r))
                      != NGX_DECLINED)
    {
        return rc;
    }

    ad = ngx_http_maestro_admit_ctx(r);
    if (ad == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (stage == 2) {
        /* the address as realip set it; the route class from the URI;
           what it takes lives as long as the request */
        ad->limits = &mlcf->limit;
        ad->addr = r->connection->addr_text;
        ad->endpoint = ngx_http_maestro_limit_endpoint(r);
        ad->stream = ngx_http_maestro_limit_is_stream(r);
        ad->ledger.pool = r->pool;
    }

    rc = (stage == 1) ? ngx_http_maestro_admit_identify(r, ad, NULL, &e)
                      : ngx_http_maestro_admit_limits(ad, r->connection->log,
                                                      &e);

    if (stage == 2 && ngx_http_maestro_limit_headers(r, &ad->limit) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (stage == 2 && (ad->limits->rules != NULL || ad->limit.limit != 0
                       || rc != NGX_OK))
    {
        ngx_http_maestro_limit_status(r, rc != NGX_OK ? "REJECTED"
                                         : ad->limit_dry_run
                                         ? "REJECTED_DRY_RUN" : "PASSED");
    }

    if (rc != NGX_OK) {
        return ngx_http_maestro_admit_refuse(r, &e);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_maestro_admit_identify_handler(ngx_http_request_t *r)
{
    return ngx_http_maestro_admit_phase(r, 1);
}


static ngx_int_t
ngx_http_maestro_admit_limits_handler(ngx_http_request_t *r)
{
    return ngx_http_maestro_admit_phase(r, 2);
}


/*
 * A refusal in a phase handler: the JSON error (OpenAI's shape on /v1),
 * a 401 with WWW-Authenticate, then done.
 */
static ngx_int_t
ngx_http_maestro_admit_refuse(ngx_http_request_t *r,
    ngx_http_maestro_admit_error_t *e)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (e->status == NGX_HTTP_UNAUTHORIZED) {
        ngx_http_maestro_audit(r, "auth_failed",
                               json_pack("{s:s}", "reason", e->message));

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer realm=\"maestro\"");
    }

    if (ngx_http_maestro_openai_path(r)) {
        rc = ngx_http_maestro_oai_error(r, e->status,
                 e->status == NGX_HTTP_UNAUTHORIZED
                 ? "invalid_request_error"
                 : ngx_strcmp(e->code, "insufficient_quota") == 0
                 ? "insufficient_quota" : "requests",
                 e->status == NGX_HTTP_UNAUTHORIZED ? "invalid_api_key"
                 : ngx_strcmp(e->code, "rate_limited") == 0
                 ? "rate_limit_exceeded" : e->code,
                 NULL, "%s", e->message);

    } else {
        rc = ngx_http_maestro_send_error(r, e->status, e->code, "%s",
                                         e->message);
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* 3. validate + guard */

ngx_int_t
ngx_http_maestro_admit_openai(ngx_http_maestro_admit_t *ad, json_t *body,
    const mst_guard_t *guard, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    int      changed;
    char     why[MST_ERRLEN];
    json_t  *user;

    /* "user": the OpenAI field; one that is not 1..128 bytes is ignored */

    user = json_object_get(body, "user");

    if (json_is_string(user)) {
        (void) mst_caller_claim(&ad->caller, json_string_value(user),
                                json_string_length(user), why, sizeof(why));
    }

    if (guard == NULL) {
        return NGX_OK;
    }

    changed = 0;

    if (mst_guard_openai(guard, body, &changed, why, sizeof(why)) != MST_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0, "maestro: prompt blocked: %s",
                      why);
        return ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                            "prompt_blocked", "%s", why);
    }

    ad->changed |= changed;

    return NGX_OK;
}


/* 4. route */

ngx_int_t
ngx_http_maestro_admit_route(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, const char *text, size_t len,
    int flags, ngx_http_maestro_admit_error_t *e)
{
    char          err[MST_ERRLEN];
    ngx_uint_t    i;
    mst_router_t  rt;

    rt.intents = mmcf->intents;
    rt.default_workflow = (const char *) mmcf->default_workflow.data;

    for (i = 0; i < MST_ROUTE_TIERS; i++) {
        rt.tier_model[i] = (const char *) mmcf->tier_model[i].data;
    }

    if (mst_route(&rt, text, len, flags, &ad->route, err, sizeof(err))
        != MST_OK)
    {
        return ngx_http_maestro_admit_error(e,
                                            NGX_HTTP_MAESTRO_UNPROCESSABLE,
                                            "unknown_workflow", "%s", err);
    }

    ad->routed = 1;

    return NGX_OK;
}


void
ngx_http_maestro_admit_route_headers(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad)
{
    if (ad->routed) {
        ngx_http_maestro_route_headers(r, ad->route.target,
                                       ad->route.complexity);
    }
}


/* 5. cache */

ngx_int_t
ngx_http_maestro_admit_cache(ngx_http_maestro_admit_t *ad)
{
    /* no response cache yet: every request is a miss */
    return NGX_DECLINED;
}


/* stages 3-5 of a submission */

ngx_http_maestro_submit_t *
ngx_http_maestro_admit_submission(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, json_t *body,
    const mst_guard_t *guard, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    int                         changed;
    char                        why[MST_ERRLEN];
    const char                 *routed;
    ngx_http_maestro_submit_t  *sb;

    /* 3. validate: the request object, the user it names */

    sb = ngx_http_maestro_submit_new(mmcf, body, &ad->caller, log, e);
    if (sb == NULL) {
        return NULL;
    }

    /* 3. guard: the prompt and every context file, in place */

    if (guard != NULL) {
        changed = 0;

        if (mst_guard_submission(guard, sb->body, sb->context, &changed,
                                 why, sizeof(why))
            != MST_OK)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "maestro: prompt blocked: %s", why);
            ngx_http_maestro_submit_finish(sb);
            (void) ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                                "prompt_blocked", "%s", why);
            return NULL;
        }

        ad->changed |= changed;
        sb->prompt = (char *) json_string_value(json_object_get(sb->body,
                                                                "prompt"));
    }

    /* 4. route: "workflow": "auto" */

    routed = NULL;

    if (ngx_http_maestro_submit_auto(sb)) {
        if (ngx_http_maestro_admit_route(ad, mmcf, sb->prompt,
                                         ngx_strlen(sb->prompt),
                                         MST_ROUTE_WORKFLOW, e)
            != NGX_OK)
        {
            ngx_http_maestro_submit_finish(sb);
            return NULL;
        }

        routed = ad->route.target;
    }

    if (ngx_http_maestro_submit_workflow(sb, routed, e) != NGX_OK) {
        ngx_http_maestro_submit_finish(sb);
        return NULL;
    }

    /* a key limited to some workflows runs no graph of its own */
    if (ngx_http_maestro_admit_allows(ad, "workflows",
                                      sb->graph_owned ? "(inline graph)"
                                                      : sb->workflow, e)
        != NGX_OK)
    {
        ngx_http_maestro_submit_finish(sb);
        return NULL;
    }

    /* 5. cache: workflows are not cached */

    (void) ngx_http_maestro_admit_cache(ad);

    return sb;
}


/* 6. dispatch */

ngx_int_t
ngx_http_maestro_admit_dispatch(ngx_http_maestro_submit_t *sb,
    ngx_http_maestro_admit_error_t *e)
{
    if (ngx_http_maestro_submit_post(sb) != NGX_OK) {
        ngx_http_maestro_submit_finish(sb);
        return ngx_http_maestro_admit_error(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "queue_full",
                                            "the io thread pool queue is "
                                            "full");
    }

    return NGX_OK;
}


/* 7. account */

double
ngx_http_maestro_admit_account(ngx_http_maestro_admit_t *ad,
    ngx_http_maestro_main_conf_t *mmcf, const char *model, long prompt,
    long completion)
{
    mst_usage_who_t  who;

    if (ad != NULL) {
        ngx_http_maestro_limit_settle(&ad->ledger, prompt + completion);
    }

    ngx_memzero(&who, sizeof(mst_usage_who_t));

    if (ad != NULL) {
        who.user = mst_caller_user(&ad->caller);
        who.key_id = ad->caller.key_id[0] ? ad->caller.key_id : NULL;
        who.team = ad->caller.team[0] ? ad->caller.team : NULL;
    }

    ngx_http_maestro_usage_record(&who, model, prompt, completion);

    return mst_usage_price(mmcf->env.prices, mmcf->env.nprices, model,
                           prompt, completion);
}


/* configuration: runs in the master */

ngx_int_t
ngx_http_maestro_admit_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt           *h;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maestro_module);

    if (!mmcf->enabled) {
        return NGX_OK;          /* no maestro_api: nothing to admit */
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* a phase runs its handlers last registered first: limits go first */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_maestro_admit_limits_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_maestro_admit_identify_handler;

    return ngx_http_maestro_cors_init(cf);
}
