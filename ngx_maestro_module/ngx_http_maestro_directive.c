/*
 * Copyright (C) Maestro authors
 */

/*
 * The custom directive setters: the key=value lists and the directives
 * that build something at configuration time (agents, guards, intents,
 * providers). The command table is in ngx_http_maestro_module.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_api.h"
#include "ngx_http_maestro_h1.h"


/* the limits of key=value parameters */
#define NGX_HTTP_MAESTRO_MIN_HEALTH_INTERVAL    100     /* ms */
#define NGX_HTTP_MAESTRO_MIN_HEALTH_TIMEOUT     1       /* ms */
#define NGX_HTTP_MAESTRO_MIN_BREAKER_RECOVERY   1       /* ms */
#define NGX_HTTP_MAESTRO_MAX_PROVIDER_WEIGHT    1000
#define NGX_HTTP_MAESTRO_MAX_PROVIDER_RETRIES   10


static void ngx_http_maestro_guard_cleanup(void *data);
static void ngx_http_maestro_crypt_cleanup(void *data);
static char *ngx_http_maestro_read_file(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *out);
static ngx_int_t ngx_http_maestro_time_param(ngx_str_t *value,
    const char *name, ngx_msec_t min, ngx_msec_t *out);


char *
ngx_http_maestro_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_maestro_main_conf_t  *mmcf;

    if (mlcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_maestro_api_handler;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maestro_module);
    mmcf->enabled = 1;

    return NGX_CONF_OK;
}


static void
ngx_http_maestro_guard_cleanup(void *data)
{
    mst_guard_free(data);
}


/*
 * maestro_guard_deny PATTERN...; maestro_guard_allow PATTERN...;
 * maestro_guard_redact on|off;
 */
char *
ngx_http_maestro_guard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_loc_conf_t *mlcf = conf;

    char                 err[MST_ERRLEN];
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    if (mlcf->guard == NULL) {
        mlcf->guard = mst_guard_new();
        if (mlcf->guard == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            mst_guard_free(mlcf->guard);
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_maestro_guard_cleanup;
        cln->data = mlcf->guard;
    }

    if (cmd->offset == 2) {
        if (ngx_strcmp(value[1].data, "on") == 0) {
            mst_guard_redact(mlcf->guard, 1);
        } else if (ngx_strcmp(value[1].data, "off") == 0) {
            mst_guard_redact(mlcf->guard, 0);
        } else {
            return "must be \"on\" or \"off\"";
        }
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if ((cmd->offset == 0
             ? mst_guard_deny(mlcf->guard, (char *) value[i].data, err,
                              sizeof(err))
             : mst_guard_allow(mlcf->guard, (char *) value[i].data, err,
                               sizeof(err)))
            != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: %s", &cmd->name,
                               err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* reads a whole small file (agent config, secrets) into the pool */
static char *
ngx_http_maestro_read_file(ngx_conf_t *cf, ngx_str_t *path, ngx_str_t *out)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", path);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 16 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot be read or is larger than 16M",
                           path);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, out->data, out->len);
    ngx_close_file(fd);

    if (n != (ssize_t) out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", path);
        return NGX_CONF_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_maestro_secret_param(ngx_conf_t *cf, ngx_str_t *value,
    const char *prefix, ngx_str_t *out)
{
    char       name[32], *env;
    size_t     plen;
    ngx_str_t  s;

    plen = ngx_snprintf((u_char *) name, sizeof(name) - 1, "%senv=", prefix)
           - (u_char *) name;
    name[plen] = '\0';

    if (value->len > plen && ngx_strncmp(value->data, name, plen) == 0) {
        /* the master reads it: workers' environment is cleared */
        env = getenv((char *) value->data + plen);
        if (env == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "environment variable \"%s\" is not set",
                               value->data + plen);
            return NGX_ERROR;
        }

        out->len = ngx_strlen(env);
        out->data = ngx_pnalloc(cf->pool, out->len + 1);
        if (out->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(out->data, env, out->len + 1);

        return NGX_OK;
    }

    plen = ngx_snprintf((u_char *) name, sizeof(name) - 1, "%sfile=", prefix)
           - (u_char *) name;
    name[plen] = '\0';

    if (value->len <= plen || ngx_strncmp(value->data, name, plen) != 0) {
        return NGX_DECLINED;
    }

    s.data = value->data + plen;
    s.len = value->len - plen;

    if (ngx_http_maestro_read_file(cf, &s, out) != NGX_CONF_OK) {
        return NGX_ERROR;
    }

    while (out->len
           && (out->data[out->len - 1] == '\n'
               || out->data[out->len - 1] == '\r'))
    {
        out->data[--out->len] = '\0';
    }

    return NGX_OK;
}


/* maestro_agent NAME plugin=FILE.so [config=FILE.json] [config_json=...] */
char *
ngx_http_maestro_agent(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    u_char                         *p;
    json_t                         *cfg;
    ngx_str_t                      *value, path;
    ngx_uint_t                      i;
    json_error_t                    jerr;
    ngx_http_maestro_agent_conf_t  *ac;

    value = cf->args->elts;

    ac = ngx_array_push(mmcf->agent_confs);
    if (ac == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(ac, sizeof(ngx_http_maestro_agent_conf_t));
    ac->name = value[1];

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!(isalnum(*p) || *p == '_' || *p == '-')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid agent name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "plugin=", 7) == 0) {
            ac->plugin.data = value[i].data + 7;
            ac->plugin.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "config=", 7) == 0) {
            path.data = value[i].data + 7;
            path.len = value[i].len - 7;

            if (ngx_http_maestro_read_file(cf, &path, &ac->config)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            cfg = json_loadb((char *) ac->config.data, ac->config.len, 0,
                             &jerr);
            if (cfg == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_agent \"%V\": bad JSON in \"%V\" "
                                   "line %d column %d: %s", &value[1], &path,
                                   jerr.line, jerr.column, jerr.text);
                return NGX_CONF_ERROR;
            }

            if (!json_is_object(cfg)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maestro_agent \"%V\": \"%V\" is not a "
                                   "JSON object", &value[1], &path);
                json_decref(cfg);
                return NGX_CONF_ERROR;
            }
            json_decref(cfg);
            continue;
        }

        if (ngx_strncmp(value[i].data, "config_json=", 12) == 0) {
            ac->config.data = value[i].data + 12;
            ac->config.len = value[i].len - 12;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ac->plugin.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_agent \"%V\" needs plugin=FILE.so",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /* NUL-terminate the plugin path for dlopen() */
    p = ngx_pnalloc(cf->pool, ac->plugin.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_memcpy(p, ac->plugin.data, ac->plugin.len);
    p[ac->plugin.len] = '\0';
    ac->plugin.data = p;

    return NGX_CONF_OK;
}


/* maestro_workflow NAME FILE.json */
char *
ngx_http_maestro_workflow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_maestro_workflow_conf_t  *wc;

    value = cf->args->elts;

    wc = mmcf->workflow_confs->elts;
    for (i = 0; i < mmcf->workflow_confs->nelts; i++) {
        if (wc[i].name.len == value[1].len
            && ngx_strncmp(wc[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            return "is duplicate";
        }
    }

    wc = ngx_array_push(mmcf->workflow_confs);
    if (wc == NULL) {
        return NGX_CONF_ERROR;
    }

    wc->name = value[1];
    wc->file = value[2];

    if (ngx_conf_full_name(cf->cycle, &wc->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * maestro_intent NAME PATTERN...;  maestro_intent_route NAME WORKFLOW;
 * Patterns compile now (PCRE2, JIT), so nginx -t reports a bad one.
 */
char *
ngx_http_maestro_intent(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char        err[MST_ERRLEN];
    ngx_str_t  *value, *route;
    ngx_uint_t  i;

    value = cf->args->elts;

    if (mmcf->intents == NULL) {
        mmcf->intents = mst_intents_new();
        if (mmcf->intents == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "out of memory");
            return NGX_CONF_ERROR;
        }
    }

    if (cmd->offset == 1) {
        if (mst_intents_route(mmcf->intents, (char *) value[1].data,
                              (char *) value[2].data, err, sizeof(err))
            != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }

        route = ngx_array_push(&mmcf->intent_routes);
        if (route == NULL) {
            return NGX_CONF_ERROR;
        }
        *route = value[2];

        return NGX_CONF_OK;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (mst_intents_add(mmcf->intents, (char *) value[1].data,
                            (char *) value[i].data, err, sizeof(err))
            != MST_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* maestro_llm_fallback model next [next ...] [on=class,...] */
char *
ngx_http_maestro_llm_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t  *mmcf = conf;

    u_char                       *p, *last, *comma;
    const char                  **name;
    ngx_str_t                    *value, cls;
    ngx_uint_t                    i, n, k;
    ngx_http_maestro_fallback_t  *fb;

    static const struct {
        const char  *name;
        ngx_uint_t   bit;
    } classes[] = {
        { "connect", MST_FAIL_CONNECT }, { "timeout", MST_FAIL_TIMEOUT },
        { "429", MST_FAIL_429 }, { "5xx", MST_FAIL_5XX },
        { "malformed", MST_FAIL_MALFORMED }, { "all", MST_FAIL_ALL },
    };

    value = cf->args->elts;
    n = cf->args->nelts;

    if (mmcf->fallbacks == NULL) {
        mmcf->fallbacks = ngx_array_create(cf->pool, 4,
                              sizeof(ngx_http_maestro_fallback_t));
        if (mmcf->fallbacks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    fb = mmcf->fallbacks->elts;

    for (i = 0; i < mmcf->fallbacks->nelts; i++) {
        if (ngx_strcmp(((const char **) fb[i].names.elts)[0], value[1].data)
            == 0)
        {
            return "is duplicate";
        }
    }

    if (mmcf->fallbacks->nelts == MST_GATEWAY_MAX) {
        return "is declared too often (at most 16 models)";
    }

    fb = ngx_array_push(mmcf->fallbacks);
    if (fb == NULL
        || ngx_array_init(&fb->names, cf->pool, n, sizeof(char *)) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    fb->on = 0;

    /* on=connect,timeout,429,5xx,malformed (default: all of them) */

    if (ngx_strncmp(value[n - 1].data, "on=", 3) == 0) {
        n--;
        p = value[n].data + 3;
        last = value[n].data + value[n].len;

        while (p < last) {
            comma = ngx_strlchr(p, last, ',');
            cls.data = p;
            cls.len = (comma ? comma : last) - p;

            for (k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
                if (cls.len == ngx_strlen(classes[k].name)
                    && ngx_strncmp(cls.data, classes[k].name, cls.len) == 0)
                {
                    fb->on |= classes[k].bit;
                    break;
                }
            }

            if (k == sizeof(classes) / sizeof(classes[0])) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown failure \"%V\" in \"%V\": use "
                                   "connect, timeout, 429, 5xx, malformed "
                                   "or all", &cls, &value[n]);
                return NGX_CONF_ERROR;
            }

            p += cls.len + 1;
        }

        if (fb->on == 0) {
            return "has an empty on=";
        }
    }

    if (n < 3) {
        return "needs a model and at least one fallback";
    }

    if (n - 2 > MST_GATEWAY_MAX_FALLBACK) {
        return "has too many models (at most 8 after the first)";
    }

    for (i = 1; i < n; i++) {
        if (value[i].len == 0) {
            return "needs model names";
        }

        name = ngx_array_push(&fb->names);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        /* ngx_conf strings are NUL-terminated */
        *name = (const char *) value[i].data;
    }

    return NGX_CONF_OK;
}


/* maestro_model_tier simple | moderate | complex model */
char *
ngx_http_maestro_model_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t  *mmcf = conf;

    int         tier;
    ngx_str_t  *value;

    value = cf->args->elts;

    tier = mst_route_tier((const char *) value[1].data);

    if (tier < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid tier \"%V\": use simple, moderate or "
                           "complex", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (mmcf->tier_model[tier].data != NULL) {
        return "is duplicate";
    }

    if (value[2].len == 0) {
        return "needs a model name";
    }

    mmcf->tier_model[tier] = value[2];

    return NGX_CONF_OK;
}


/* maestro_llm_price MODEL input=USD output=USD (per million tokens) */
char *
ngx_http_maestro_llm_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char         *end;
    double        v;
    ngx_str_t    *value;
    ngx_uint_t    i;
    mst_price_t  *p;

    value = cf->args->elts;

    p = ngx_array_push(&mmcf->prices);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    p->model = (char *) value[1].data;
    p->input = -1;
    p->output = -1;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "input=", 6) == 0) {
            v = strtod((char *) value[i].data + 6, &end);
            if (*end != '\0' || v < 0) {
                goto invalid;
            }
            p->input = v;

        } else if (ngx_strncmp(value[i].data, "output=", 7) == 0) {
            v = strtod((char *) value[i].data + 7, &end);
            if (*end != '\0' || v < 0) {
                goto invalid;
            }
            p->output = v;

        } else {
            goto invalid;
        }
    }

    if (p->input < 0 || p->output < 0) {
        return "needs input= and output= (USD per million tokens)";
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


char *
ngx_http_maestro_team_budget(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    char          *end;
    ngx_str_t     *value;
    ngx_uint_t     i;
    mst_budget_t  *b, *all;

    value = cf->args->elts;

    b = ngx_array_push(&mmcf->team_budgets);
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    b->team = NULL;
    b->usd = -1;
    b->period = "month";

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "team=", 5) == 0
            && value[i].len > 5)
        {
            b->team = (char *) value[i].data + 5;

        } else if (ngx_strncmp(value[i].data, "usd=", 4) == 0) {
            b->usd = strtod((char *) value[i].data + 4, &end);
            if (*end != '\0' || end == (char *) value[i].data + 4
                || b->usd < 0)
            {
                goto invalid;
            }

        } else if (ngx_strcmp(value[i].data, "period=day") == 0
                   || ngx_strcmp(value[i].data, "period=month") == 0
                   || ngx_strcmp(value[i].data, "period=total") == 0)
        {
            b->period = (char *) value[i].data + 7;

        } else {
            goto invalid;
        }
    }

    if (b->team == NULL || b->usd < 0) {
        return "needs team= and usd=";
    }

    all = mmcf->team_budgets.elts;

    for (i = 0; i + 1 < mmcf->team_budgets.nelts; i++) {
        if (ngx_strcmp(all[i].team, b->team) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maestro_team_budget: team \"%s\" twice",
                               b->team);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * A "name=TIME" parameter: NGX_DECLINED when value is another parameter,
 * NGX_ERROR when the time is invalid or below min (ms). Callers only test
 * NGX_OK: whatever no parameter takes is reported as invalid.
 */
static ngx_int_t
ngx_http_maestro_time_param(ngx_str_t *value, const char *name,
    ngx_msec_t min, ngx_msec_t *out)
{
    size_t     len;
    ngx_int_t  n;
    ngx_str_t  s;

    len = ngx_strlen(name);

    if (value->len < len || ngx_strncmp(value->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    s.data = value->data + len;
    s.len = value->len - len;

    n = ngx_parse_time(&s, 0);
    if (n == NGX_ERROR || (ngx_msec_t) n < min) {
        return NGX_ERROR;
    }

    *out = (ngx_msec_t) n;

    return NGX_OK;
}


/* maestro_llm_health_check off | interval=TIME [timeout=TIME] */
char *
ngx_http_maestro_llm_health_check(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (mmcf->health_interval != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        mmcf->health_interval = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_maestro_time_param(&value[i], "interval=",
                                        NGX_HTTP_MAESTRO_MIN_HEALTH_INTERVAL,
                                        &mmcf->health_interval)
            == NGX_OK)
        {
            continue;
        }

        if (ngx_http_maestro_time_param(&value[i], "timeout=",
                                        NGX_HTTP_MAESTRO_MIN_HEALTH_TIMEOUT,
                                        &mmcf->health_timeout)
            == NGX_OK)
        {
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/* maestro_llm_breaker failures=N recovery=TIME */
char *
ngx_http_maestro_llm_breaker(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n < 1) {
                goto invalid;
            }
            mmcf->breaker_failures = (ngx_uint_t) n;
            continue;
        }

        if (ngx_http_maestro_time_param(&value[i], "recovery=",
                                        NGX_HTTP_MAESTRO_MIN_BREAKER_RECOVERY,
                                        &mmcf->breaker_recovery)
            == NGX_OK)
        {
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * maestro_llm_provider URL [name=NAME] [model=NAME] [priority=N]
 *     [weight=N] [api_key_env=VAR] [api_key_file=PATH] [timeout=TIME]
 *     [retries=N] [client=nginx|libcurl] [ca=FILE]
 * May repeat: the gateway tries providers by priority, then weight.
 */
char *
ngx_http_maestro_llm_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    u_char                            *p;
    ngx_int_t                          n, rc;
    ngx_str_t                         *value;
    ngx_uint_t                         i, libcurl;
    ngx_http_maestro_provider_conf_t  *pc;

    value = cf->args->elts;

    if (mmcf->providers.nelts == MST_GATEWAY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d maestro_llm_provider",
                           MST_GATEWAY_MAX);
        return NGX_CONF_ERROR;
    }

    if (ngx_strncmp(value[1].data, "http://", 7) != 0
        && ngx_strncmp(value[1].data, "https://", 8) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid provider URL \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    pc = ngx_array_push(&mmcf->providers);
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(pc, sizeof(ngx_http_maestro_provider_conf_t));
    pc->url = value[1];
    /* https: libcurl unless asked, for its DNS at run time */
    libcurl = value[1].data[4] == 's';
    /* defaults in ngx_http_maestro_init_main_conf() */
    pc->timeout = NGX_CONF_UNSET_MSEC;
    pc->idle_timeout = NGX_CONF_UNSET_MSEC;
    pc->total_timeout = NGX_CONF_UNSET_MSEC;
    pc->retries = NGX_CONF_UNSET_UINT;
    pc->weight = NGX_CONF_UNSET_UINT;

    /* a default name: provider1, provider2, ... */
    p = ngx_pnalloc(cf->pool, sizeof("provider") + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }
    pc->name.data = p;
    pc->name.len = ngx_sprintf(p, "provider%ui%Z", mmcf->providers.nelts)
                   - p - 1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            pc->name.data = value[i].data + 5;
            pc->name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            pc->model.data = value[i].data + 6;
            pc->model.len = value[i].len - 6;
            continue;
        }

        if (ngx_strncmp(value[i].data, "priority=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR) {
                goto invalid;
            }
            pc->priority = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "weight=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);
            if (n == NGX_ERROR || n < 1
                || n > NGX_HTTP_MAESTRO_MAX_PROVIDER_WEIGHT)
            {
                goto invalid;
            }
            pc->weight = (ngx_uint_t) n;
            continue;
        }

        rc = ngx_http_maestro_secret_param(cf, &value[i], "api_key_",
                                           &pc->key);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }
        if (rc == NGX_OK) {
            continue;
        }

        if (ngx_http_maestro_time_param(&value[i], "timeout=", 0,
                                        &pc->timeout)
            == NGX_OK
            || ngx_http_maestro_time_param(&value[i], "idle_timeout=", 0,
                                           &pc->idle_timeout)
               == NGX_OK
            || ngx_http_maestro_time_param(&value[i], "total_timeout=", 0,
                                           &pc->total_timeout)
               == NGX_OK)
        {
            continue;
        }

        if (ngx_strncmp(value[i].data, "ca=", 3) == 0) {
            pc->ca.data = value[i].data + 3;
            pc->ca.len = value[i].len - 3;
            if (pc->ca.len == 0
                || ngx_conf_full_name(cf->cycle, &pc->ca, 1) != NGX_OK)
            {
                goto invalid;
            }
            if (access((char *) pc->ca.data, R_OK) != 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                                   "cannot read ca file \"%V\"", &pc->ca);
                return NGX_CONF_ERROR;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "client=", 7) == 0) {
            if (ngx_strcmp(value[i].data + 7, "libcurl") == 0) {
                libcurl = 1;
            } else if (ngx_strcmp(value[i].data + 7, "nginx") == 0) {
                libcurl = 0;
            } else {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "retries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR || n > NGX_HTTP_MAESTRO_MAX_PROVIDER_RETRIES) {
                goto invalid;
            }
            pc->retries = (ngx_uint_t) n;
            continue;
        }

        goto invalid;
    }

    if (libcurl) {
        return NGX_CONF_OK;
    }

    /* resolved now, for the gateway's own client */
    if (ngx_http_maestro_h1_peer_conf(cf, &pc->url, &pc->ca, &pc->peer)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * maestro_store_encryption_key id=N file=PATH|env=NAME [active]
 * May repeat: one active key seals, the others still open what they
 * sealed (rotation). The key is read now, by the master, so nginx -t
 * fails on a bad one; no message holds a byte of it, and the ring is
 * wiped when this configuration goes.
 */
char *
ngx_http_maestro_store_encryption_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maestro_main_conf_t *mmcf = conf;

    int                  rc;
    char                 err[MST_ERRLEN];
    ngx_int_t            id;
    ngx_str_t           *value, file, env;
    ngx_uint_t           i, active;
    ngx_file_info_t      fi;
    ngx_pool_cleanup_t  *cln;
    unsigned char        key[MST_CRYPT_KEY_LEN];

    value = cf->args->elts;

    id = NGX_CONF_UNSET;
    active = 0;
    ngx_str_null(&file);
    ngx_str_null(&env);

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "id=", 3) == 0) {
            id = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (id < 1 || id > 255) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid key id \"%V\" (1..255)",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "file=", 5) == 0
            && value[i].len > 5)
        {
            file.data = value[i].data + 5;
            file.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "env=", 4) == 0 && value[i].len > 4) {
            env.data = value[i].data + 4;
            env.len = value[i].len - 4;
            continue;
        }

        if (ngx_strcmp(value[i].data, "active") == 0) {
            active = 1;
            continue;
        }

        /* not echoed: a key pasted here must not reach the log */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter %ui of "
                           "\"maestro_store_encryption_key\" (id=N, "
                           "file=PATH or env=NAME, active)", i);
        return NGX_CONF_ERROR;
    }

    if (id == NGX_CONF_UNSET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"maestro_store_encryption_key\" needs id=N");
        return NGX_CONF_ERROR;
    }

    if ((file.len == 0) == (env.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"maestro_store_encryption_key\" needs one of "
                           "file=PATH or env=NAME");
        return NGX_CONF_ERROR;
    }

    if (mmcf->store_crypt == NULL) {
        mmcf->store_crypt = mst_crypt_create(err, sizeof(err));
        if (mmcf->store_crypt == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            mst_crypt_free(mmcf->store_crypt);
            mmcf->store_crypt = NULL;
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_maestro_crypt_cleanup;
        cln->data = mmcf->store_crypt;
    }

    if (file.len) {
        if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rc = mst_crypt_key_file((char *) file.data, key, err, sizeof(err));

        if (rc == MST_OK
            && ngx_file_info(file.data, &fi) != NGX_FILE_ERROR
            && (fi.st_mode & (S_IRWXG | S_IRWXO)))
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "key file \"%V\" can be read by group or "
                               "others (chmod 600 it)", &file);
        }

    } else {
        rc = mst_crypt_key_env((char *) env.data, key, err, sizeof(err));
    }

    if (rc == MST_OK) {
        rc = mst_crypt_add_key(mmcf->store_crypt, (unsigned) id, key,
                               (int) active, err, sizeof(err));
    }

    ngx_explicit_memzero(key, sizeof(key));

    if (rc != MST_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maestro_store_encryption_key: %s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_maestro_crypt_cleanup(void *data)
{
    mst_crypt_free(data);
}
