/*
 * Copyright (C) Maestro authors
 */

/*
 * The per-worker scheduler (ngx_http_maestro_run.c).
 */

#ifndef _NGX_HTTP_MAESTRO_RUN_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_RUN_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"


/* the scheduler's timers: event wake-up and housekeeping */
void ngx_http_maestro_run_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf);
/* adopt a workflow this worker created or claimed; takes next's steps */
void ngx_http_maestro_run_adopt(ngx_http_maestro_main_conf_t *mmcf,
    const char *id, mst_run_next_t *next);
ngx_int_t ngx_http_maestro_run_can_accept(
    ngx_http_maestro_main_conf_t *mmcf);
int ngx_http_maestro_run_alive(long pid);
/* start the steps that fit in the free slots (after a gate is lifted) */
void ngx_http_maestro_run_dispatch(ngx_http_maestro_main_conf_t *mmcf);
/* the slots and the workflows' cap, from the pool threads seen */
void ngx_http_maestro_run_slots(ngx_http_maestro_main_conf_t *mmcf);

#endif /* _NGX_HTTP_MAESTRO_RUN_H_INCLUDED_ */
