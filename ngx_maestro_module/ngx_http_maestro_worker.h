/*
 * Copyright (C) Maestro authors
 */

/*
 * A worker's start and stop (ngx_http_maestro_worker.c).
 */

#ifndef _NGX_HTTP_MAESTRO_WORKER_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_WORKER_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* init_process and exit_process of the module */
ngx_int_t ngx_http_maestro_init_process(ngx_cycle_t *cycle);
void ngx_http_maestro_exit_process(ngx_cycle_t *cycle);

#endif /* _NGX_HTTP_MAESTRO_WORKER_H_INCLUDED_ */
