/*
 * Copyright (C) Maestro authors
 */

/*
 * Workflow retention on the io pool (ngx_http_maestro_retain.c,
 * core/flow/mst_retain.h): maestro_workflow_retention*, maestro_store_
 * pressure*. One worker (worker 0) runs a pass every 100 ms, or right again
 * while a pass stopped at its bound.
 */

#ifndef _NGX_HTTP_MAESTRO_RETAIN_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_RETAIN_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


void ngx_http_maestro_retain_init(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);

#endif /* _NGX_HTTP_MAESTRO_RETAIN_H_INCLUDED_ */
