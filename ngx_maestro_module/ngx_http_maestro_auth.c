/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Who is calling: stage 1 of the admission path for HTTP requests, and
 * the directives that name the credentials.
 *
 * A request's credential is a bearer token: "Authorization: Bearer",
 * else (a browser cannot set headers there) a WebSocket subprotocol
 * "maestro.bearer.<token>". Browsers read SSE with fetch() and the
 * header: a token in the URL would reach the logs.
 * The token is, in this order: the admin credential (compared by its
 * SHA-256 in constant time; only the hash is kept after configuration),
 * an API key ("mk_..."; its record read from LMDB on every request, so a
 * revocation by any worker is seen at once), or a JWT (three base64url
 * segments; mst_jwt verifies it). Anything else is refused.
 *
 * With maestro_auth off (the default: a local single-user console) a
 * request without the admin credential is the local caller; the admin
 * credential is still recognised so the keys API can be used before
 * auth is turned on.
 *
 * Nothing here logs a token: refusals name the kind of credential, a
 * key's id (not secret) and why.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_auth.h"
#include "ngx_http_maestro_keys.h"
#include "ngx_http_maestro_response.h"
#include "mst_apikey.h"
#include "mst_jwt.h"
#include "mst_store.h"


#define NGX_HTTP_MAESTRO_ADMIN_ENV      "MAESTRO_ADMIN_KEY"
#define NGX_HTTP_MAESTRO_ADMIN_MIN      16      /* bytes of the credential */
#define NGX_HTTP_MAESTRO_TOKEN_MAX      8192    /* bytes of a bearer token */


static void ngx_http_maestro_auth_cleanup(void *data);
static void ngx_http_maestro_jwt_cleanup(void *data);
static ngx_int_t ngx_http_maestro_auth_token(ngx_http_request_t *r,
    ngx_str_t *tok);
static ngx_int_t ngx_http_maestro_auth_key(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, ngx_str_t *tok, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);
static ngx_int_t ngx_http_maestro_auth_jwt(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, ngx_str_t *tok, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);


/* configuration */

static char *
ngx_http_maestro_admin_set(ngx_conf_t *cf, ngx_http_maestro_main_conf_t *mmcf,
    ngx_str_t *secret)
{
    if (secret->len < NGX_HTTP_MAESTRO_ADMIN_MIN) {
        ngx_explicit_memzero(secret->data, secret->len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the admin credential must have at least %d "
                           "characters", NGX_HTTP_MAESTRO_ADMIN_MIN);
        return NGX_CONF_ERROR;
    }

    /* requests tell a key from the admin by its shape alone */
    if (mst_apikey_looks_like((char *) secret->data, secret->len)) {
        ngx_explicit_memzero(secret->data, secret->len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the admin credential must not look like an "
                           "API key (mk_...)");
        return NGX_CONF_ERROR;
    }

    if (mst_sha256(secret->data, secret->len, mmcf->admin_hash) != MST_OK) {
        ngx_explicit_memzero(secret->data, secret->len);
        return NGX_CONF_ERROR;
    }

    /* only the hash stays in memory */
    ngx_explicit_memzero(secret->data, secret->len);
    mmcf->admin_set = 1;

    return NGX_CONF_OK;
}


/* maestro_admin_key env=VAR | file=PATH */
char *
ngx_http_maestro_admin_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_int_t   rc;
    ngx_str_t  *value, secret;

    if (mmcf->admin_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rc = ngx_http_maestro_secret_param(cf, &value[1], "", &secret);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\": "
                           "use env=VAR or file=PATH", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_maestro_admin_set(cf, mmcf, &secret);
}


static mst_jwt_keys_t *
ngx_http_maestro_jwt_keys(ngx_conf_t *cf, ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_pool_cleanup_t  *cln;

    if (mmcf->jwt_keys != NULL) {
        return mmcf->jwt_keys;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    mmcf->jwt_keys = mst_jwt_keys_new();
    if (mmcf->jwt_keys == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_maestro_jwt_cleanup;
    cln->data = mmcf->jwt_keys;

    return mmcf->jwt_keys;
}


static void
ngx_http_maestro_jwt_cleanup(void *data)
{
    mst_jwt_keys_free(data);
}


/* the value of an optional "kid=" second parameter, or NULL */
static char *
ngx_http_maestro_jwt_kid(ngx_conf_t *cf, const char **kid)
{
    ngx_str_t  *value;

    *kid = NULL;

    if (cf->args->nelts < 3) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    if (value[2].len <= 4 || value[2].len > 4 + 64
        || ngx_strncmp(value[2].data, "kid=", 4) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\": "
                           "use kid=ID (1..64 characters)", &value[2]);
        return NGX_CONF_ERROR;
    }

    *kid = (const char *) value[2].data + 4;

    return NGX_CONF_OK;
}


/* maestro_jwt_key file=PATH [kid=ID]: a PEM public key or a JWKS file */
char *
ngx_http_maestro_jwt_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char             err[MST_ERRLEN];
    ngx_str_t       *value, path;
    const char      *kid;
    mst_jwt_keys_t  *keys;

    value = cf->args->elts;

    if (value[1].len <= 5 || ngx_strncmp(value[1].data, "file=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\": "
                           "use file=PATH", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_maestro_jwt_kid(cf, &kid) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    path.data = value[1].data + 5;
    path.len = value[1].len - 5;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    keys = ngx_http_maestro_jwt_keys(cf, mmcf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mst_jwt_keys_load_file(keys, (const char *) path.data, kid, err,
                               sizeof(err))
        != MST_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &path, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* maestro_jwt_secret env=VAR | file=PATH [kid=ID]: an HS256 secret */
char *
ngx_http_maestro_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    int              rc;
    char             err[MST_ERRLEN];
    ngx_str_t       *value, secret;
    const char      *kid;
    mst_jwt_keys_t  *keys;

    value = cf->args->elts;

    if (ngx_http_maestro_jwt_kid(cf, &kid) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    switch (ngx_http_maestro_secret_param(cf, &value[1], "", &secret)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\": "
                           "use env=VAR or file=PATH", &value[1]);
        return NGX_CONF_ERROR;
    default:
        return NGX_CONF_ERROR;
    }

    keys = ngx_http_maestro_jwt_keys(cf, mmcf);
    if (keys == NULL) {
        ngx_explicit_memzero(secret.data, secret.len);
        return NGX_CONF_ERROR;
    }

    rc = mst_jwt_keys_add_secret(keys, secret.data, secret.len, kid, err,
                                 sizeof(err));
    ngx_explicit_memzero(secret.data, secret.len);

    if (rc != MST_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "maestro_jwt_secret: %s",
                           err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_maestro_auth_init_conf(ngx_conf_t *cf,
    ngx_http_maestro_main_conf_t *mmcf)
{
    char       *env;
    ngx_str_t   secret;

    ngx_conf_init_value(mmcf->jwt_leeway, 60);

    if (mmcf->jwt_team_claim.data == NULL) {
        ngx_str_set(&mmcf->jwt_team_claim, "team");
    }

    mmcf->jwt_policy.issuer = (const char *) mmcf->jwt_issuer.data;
    mmcf->jwt_policy.audience = (const char *) mmcf->jwt_audience.data;
    mmcf->jwt_policy.team_claim = (const char *) mmcf->jwt_team_claim.data;
    mmcf->jwt_policy.leeway_s = mmcf->jwt_leeway;
    mmcf->jwt_policy.require_exp = 1;

    if (mmcf->admin_set) {
        return NGX_CONF_OK;
    }

    /* the master's environment: workers' is cleared */
    env = getenv(NGX_HTTP_MAESTRO_ADMIN_ENV);
    if (env == NULL || env[0] == '\0') {
        return NGX_CONF_OK;
    }

    secret.len = ngx_strlen(env);
    secret.data = ngx_pnalloc(cf->pool, secret.len);
    if (secret.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(secret.data, env, secret.len);

    return ngx_http_maestro_admin_set(cf, mmcf, &secret);
}


/* stage 1 */

static void
ngx_http_maestro_auth_cleanup(void *data)
{
    ngx_http_maestro_admit_t  *ad = data;

    json_decref(ad->key);
    ad->key = NULL;
}


/* the bearer token of r; NGX_DECLINED: none */
static ngx_int_t
ngx_http_maestro_auth_token(ngx_http_request_t *r, ngx_str_t *tok)
{
    u_char           *p, *end, *item;
    size_t            blen;
    ngx_str_t         v;
    ngx_table_elt_t  *h;

    if (r->headers_in.authorization != NULL) {
        v = r->headers_in.authorization->value;

        if (v.len < 7 || ngx_strncasecmp(v.data, (u_char *) "Bearer ", 7)
                         != 0)
        {
            return NGX_ERROR;
        }

        p = v.data + 7;
        end = v.data + v.len;

        while (p < end && *p == ' ') { p++; }
        while (end > p && end[-1] == ' ') { end--; }

        tok->data = p;
        tok->len = end - p;

        return tok->len ? NGX_OK : NGX_ERROR;
    }

    h = (r->headers_in.upgrade != NULL)
        ? ngx_http_maestro_header_in(r, "Sec-WebSocket-Protocol") : NULL;

    if (h != NULL) {
        blen = sizeof(NGX_HTTP_MAESTRO_WS_BEARER) - 1;
        p = h->value.data;
        end = p + h->value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',')) { p++; }
            item = p;
            while (p < end && *p != ',' && *p != ' ') { p++; }

            if ((size_t) (p - item) > blen
                && ngx_strncmp(item, NGX_HTTP_MAESTRO_WS_BEARER, blen) == 0)
            {
                tok->data = item + blen;
                tok->len = p - item - blen;
                return NGX_OK;
            }
        }
    }

    /*
     * No "?access_token=": nginx writes the request line into the error
     * log of every request that logs anything, so a token in the URL
     * would reach the logs.
     */

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_maestro_auth_refuse(ngx_http_maestro_admit_error_t *e,
    ngx_log_t *log, const char *kind, const char *id, const char *why)
{
    ngx_log_error(NGX_LOG_INFO, log, 0, "maestro: %s%s%s refused: %s", kind,
                  id ? " " : "", id ? id : "", why);

    return ngx_http_maestro_admit_error(e, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized", "%s", why);
}


ngx_int_t
ngx_http_maestro_auth_identify(ngx_http_request_t *r,
    ngx_http_maestro_admit_t *ad, ngx_http_maestro_admit_error_t *e)
{
    ngx_int_t                      rc;
    ngx_str_t                      tok;
    ngx_uint_t                     key;
    unsigned char                  hash[32];
    ngx_pool_cleanup_t            *cln;
    ngx_http_maestro_loc_conf_t   *mlcf;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);

    mst_caller_local(&ad->caller);

    /* a health check needs no credential and shows no one's data */
    if (r->uri.len == sizeof("/healthz") - 1
        && ngx_strncmp(r->uri.data, "/healthz", r->uri.len) == 0)
    {
        return NGX_OK;
    }

    rc = ngx_http_maestro_auth_token(r, &tok);

    if (rc == NGX_DECLINED) {
        if (!mlcf->auth) {
            return NGX_OK;
        }

        return ngx_http_maestro_admit_error(e, NGX_HTTP_UNAUTHORIZED,
                                            "unauthorized",
                                            "an API key or a bearer token "
                                            "is required");
    }

    if (rc != NGX_OK || tok.len > NGX_HTTP_MAESTRO_TOKEN_MAX) {
        if (!mlcf->auth) {
            return NGX_OK;
        }

        return ngx_http_maestro_auth_refuse(e, r->connection->log, "token",
                                            NULL, "the Authorization header "
                                            "must be \"Bearer <token>\"");
    }

    key = mst_apikey_looks_like((char *) tok.data, tok.len);

    /* the admin credential never has a key's shape (checked at start) */
    if (mmcf->admin_set && !key
        && mst_sha256(tok.data, tok.len, hash) == MST_OK
        && CRYPTO_memcmp(hash, mmcf->admin_hash, 32) == 0)
    {
        mst_caller_admin(&ad->caller);
        return NGX_OK;
    }

    if (!mlcf->auth) {
        /* auth off: other credentials mean nothing */
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return ngx_http_maestro_admit_error(e, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "internal_error",
                                            "out of memory");
    }

    cln->handler = ngx_http_maestro_auth_cleanup;
    cln->data = ad;

    if (key) {
        return ngx_http_maestro_auth_key(mmcf, ad, &tok, r->connection->log,
                                         e);
    }

    if (mmcf->jwt_keys != NULL
        && mst_jwt_looks_like((char *) tok.data, tok.len))
    {
        return ngx_http_maestro_auth_jwt(mmcf, ad, &tok, r->connection->log,
                                         e);
    }

    return ngx_http_maestro_auth_refuse(e, r->connection->log, "token", NULL,
                                        "invalid credential");
}


/* a key's record, checked (hash NULL: only that it is still valid);
   ad->key keeps it */
static ngx_int_t
ngx_http_maestro_auth_record(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, const char *id, const char *hash,
    ngx_log_t *log, ngx_http_maestro_admit_error_t *e)
{
    int          rc;
    char         why[MST_ERRLEN];
    json_t      *rec, *team;
    int64_t      now;
    mst_txn_t   *txn;
    const char  *user;

    /* an LMDB read: no lock, the pages are mapped */

    rc = mst_txn_begin(mmcf->env.store, 1, &txn);
    if (rc != MST_OK) {
        return ngx_http_maestro_admit_error(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "store_error",
                                            "cannot read the keys");
    }

    /* parsed again only when its stored bytes changed */
    rc = mst_store_key_get_shared(txn, id, &rec);
    mst_txn_abort(txn);

    if (rc == MST_NOTFOUND) {
        return ngx_http_maestro_auth_refuse(e, log, "key", id,
                                            "invalid API key");
    }

    if (rc != MST_OK) {
        return ngx_http_maestro_admit_error(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "store_error",
                                            "cannot read the keys");
    }

    now = mst_now_ms();

    if (hash != NULL) {
        rc = mst_apikey_check(rec, hash, now, why, sizeof(why));

    } else {
        /* a connection's key again: its secret was checked at the start */
        rc = mst_apikey_valid(rec, now, why, sizeof(why));
    }

    if (rc != MST_OK) {
        json_decref(rec);
        ngx_log_error(NGX_LOG_INFO, log, 0, "maestro: key %s refused: %s",
                      id, why);

        /* the reason only to whom proved to hold the key */
        return ngx_http_maestro_admit_error(e, NGX_HTTP_UNAUTHORIZED,
                   "unauthorized", "%s",
                   ngx_strcmp(why, "revoked") == 0
                   ? "the API key was revoked"
                   : ngx_strcmp(why, "expired") == 0
                   ? "the API key has expired" : "invalid API key");
    }

    user = json_string_value(json_object_get(rec, "user_id"));
    team = json_object_get(rec, "team");

    if (user == NULL
        || mst_caller_tenant(&ad->caller, MST_CALLER_KEY, user,
                             strlen(user),
                             json_is_string(team) ? json_string_value(team)
                                                  : NULL,
                             json_string_length(team), id, why, sizeof(why))
           != MST_OK)
    {
        json_decref(rec);
        return ngx_http_maestro_auth_refuse(e, log, "key", id,
                                            "the key's record is damaged");
    }

    json_decref(ad->key);
    ad->key = rec;

    ngx_http_maestro_keys_touch(mmcf, rec, now, log);

    return NGX_OK;
}


static ngx_int_t
ngx_http_maestro_auth_key(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, ngx_str_t *tok, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    char  id[MST_APIKEY_ID_LEN + 1], hash[MST_APIKEY_HASH_HEX + 1];

    if (mst_apikey_parse((char *) tok->data, tok->len, id, hash) != MST_OK) {
        return ngx_http_maestro_auth_refuse(e, log, "key", NULL,
                                            "invalid API key");
    }

    return ngx_http_maestro_auth_record(mmcf, ad, id, hash, log, e);
}


static ngx_int_t
ngx_http_maestro_auth_jwt(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, ngx_str_t *tok, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    char              why[MST_ERRLEN];
    mst_jwt_claims_t  cl;

    if (mst_jwt_verify(mmcf->jwt_keys, &mmcf->jwt_policy,
                       (const char *) tok->data, tok->len, mst_now_ms() / 1000,
                       &cl, why, sizeof(why))
        != MST_OK)
    {
        return ngx_http_maestro_auth_refuse(e, log, "jwt", NULL, why);
    }

    if (mst_caller_tenant(&ad->caller, MST_CALLER_JWT, cl.sub,
                          strlen(cl.sub), cl.team[0] ? cl.team : NULL,
                          strlen(cl.team), NULL, why, sizeof(why))
        != MST_OK)
    {
        return ngx_http_maestro_auth_refuse(e, log, "jwt", NULL, why);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_maestro_auth_recheck(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_admit_t *ad, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    char  id[MST_CALLER_KEY_MAX + 1];

    if (ad->caller.kind != MST_CALLER_KEY) {
        return NGX_OK;
    }

    ngx_memcpy(id, ad->caller.key_id, sizeof(id));

    return ngx_http_maestro_auth_record(mmcf, ad, id, NULL, log, e);
}
