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


/* 0 simple, 1 moderate, 2 complex; NGX_ERROR for another name */
ngx_int_t ngx_http_maestro_tier(const u_char *name);

#endif /* _NGX_HTTP_MAESTRO_DIRECTIVE_H_INCLUDED_ */
