/*
 * Copyright (C) Maestro authors
 */

/*
 * Active health checks of the LLM providers (ngx_http_maestro_health.c).
 */

#ifndef _NGX_HTTP_MAESTRO_HEALTH_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_HEALTH_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


void ngx_http_maestro_health_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);

#endif /* _NGX_HTTP_MAESTRO_HEALTH_H_INCLUDED_ */
