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
char *ngx_http_maestro_llm_price(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maestro_llm_health_check(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maestro_llm_breaker(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maestro_llm_provider(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* 0 simple, 1 moderate, 2 complex; NGX_ERROR for another name */
ngx_int_t ngx_http_maestro_tier(const u_char *name);

#endif /* _NGX_HTTP_MAESTRO_DIRECTIVE_H_INCLUDED_ */
