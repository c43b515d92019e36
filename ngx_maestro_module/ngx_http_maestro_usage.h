/*
 * Copyright (C) Maestro authors
 */

/*
 * Usage of calls outside workflows, batched (ngx_http_maestro_usage.c).
 */

#ifndef _NGX_HTTP_MAESTRO_USAGE_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_USAGE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


void ngx_http_maestro_usage_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
void ngx_http_maestro_usage_exit_worker(void);
/* one call's tokens, for whom it was (see mst_usage.h) */
void ngx_http_maestro_usage_record(const mst_usage_who_t *who,
    const char *model, long prompt, long completion);

#endif /* _NGX_HTTP_MAESTRO_USAGE_H_INCLUDED_ */
