/*
 * Copyright (C) Maestro authors
 */

/*
 * The custom directive setters (ngx_http_maestro_directive.c).
 */

#ifndef _NGX_HTTP_MAESTRO_DIRECTIVE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_DIRECTIVE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * A secret named by "<prefix>env=VAR" or "<prefix>file=PATH", read in the
 * master (workers' environment is cleared; a file without its trailing
 * newline): NGX_OK with out set, NGX_DECLINED when value is neither form,
 * NGX_ERROR (logged; the secret never is).
 */
ngx_int_t ngx_http_maestro_secret_param(ngx_conf_t *cf, ngx_str_t *value,
    const char *prefix, ngx_str_t *out);

char *ngx_http_maestro_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_agent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_workflow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_intent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_llm_fallback(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maestro_model_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* maestro_team_budget team=<name>|* usd=<n> [period=day|month|total] */
char *ngx_http_maestro_team_budget(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

char *ngx_http_maestro_llm_price(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_llm_health_check(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maestro_llm_breaker(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maestro_llm_provider(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maestro_store_encryption_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

#endif /* _NGX_HTTP_MAESTRO_DIRECTIVE_H_INCLUDED_ */
