/*
 * Copyright (C) Maestro authors
 */

/*
 * The bounds of one workflow (core/flow/mst_limits.h) in nginx: their
 * directives' defaults, the check of configured graphs at nginx -t, and
 * of a submission's graph, prompt and context before anything is parsed
 * or stored.
 */

#ifndef _NGX_HTTP_MAESTRO_BOUNDS_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_BOUNDS_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "mst_limits.h"


/* the defaults of the bounds left unset */
void ngx_http_maestro_limits_init(mst_limits_t *l);

/* a maestro_workflow graph within the bounds, else an emerg naming it */
ngx_int_t ngx_http_maestro_limits_graph(ngx_conf_t *cf,
    const mst_limits_t *l, mst_graph_t *g, ngx_str_t *name,
    ngx_str_t *file);

/*
 * A submission's prompt, context and, when def is not NULL, its inline
 * graph; a refusal fills e (413 / 422 with its code) and is logged.
 */
ngx_int_t ngx_http_maestro_limits_submit(ngx_http_maestro_main_conf_t *mmcf,
    json_t *prompt, json_t *context, json_t *def, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);

#endif /* _NGX_HTTP_MAESTRO_BOUNDS_H_INCLUDED_ */
