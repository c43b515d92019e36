/*
 * Copyright (C) Maestro authors
 */

/*
 * The bounds of one workflow: see ngx_http_maestro_bounds.h. The
 * decisions are core's (mst_limits.c); this file gives them their
 * defaults, their log lines and their answers.
 *
 * The defaults hold every realistic workflow (the graphs in conf/ have
 * at most a dozen nodes) with a wide margin, and refuse a request that
 * would take a worker for itself: a 10,000-node fan-out needs the
 * operator to raise maestro_graph_max_nodes and _fanout.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_bounds.h"


#define NGX_HTTP_MAESTRO_DEFAULT_GRAPH_NODES    1000
#define NGX_HTTP_MAESTRO_DEFAULT_GRAPH_EDGES    4000
#define NGX_HTTP_MAESTRO_DEFAULT_GRAPH_FANOUT   1000
#define NGX_HTTP_MAESTRO_DEFAULT_GRAPH_STEPS    10000
#define NGX_HTTP_MAESTRO_DEFAULT_STATE_SIZE     (16 * 1024 * 1024)
#define NGX_HTTP_MAESTRO_DEFAULT_PROMPT_SIZE    (1024 * 1024)
#define NGX_HTTP_MAESTRO_DEFAULT_CONTEXT_SIZE   (4 * 1024 * 1024)


void
ngx_http_maestro_limits_init(mst_limits_t *l)
{
    ngx_conf_init_size_value(l->nodes, NGX_HTTP_MAESTRO_DEFAULT_GRAPH_NODES);
    ngx_conf_init_size_value(l->edges, NGX_HTTP_MAESTRO_DEFAULT_GRAPH_EDGES);
    ngx_conf_init_size_value(l->fanout,
                             NGX_HTTP_MAESTRO_DEFAULT_GRAPH_FANOUT);
    ngx_conf_init_size_value(l->steps, NGX_HTTP_MAESTRO_DEFAULT_GRAPH_STEPS);
    ngx_conf_init_size_value(l->state, NGX_HTTP_MAESTRO_DEFAULT_STATE_SIZE);
    ngx_conf_init_size_value(l->prompt,
                             NGX_HTTP_MAESTRO_DEFAULT_PROMPT_SIZE);
    ngx_conf_init_size_value(l->context,
                             NGX_HTTP_MAESTRO_DEFAULT_CONTEXT_SIZE);
}


ngx_int_t
ngx_http_maestro_limits_graph(ngx_conf_t *cf, const mst_limits_t *l,
    mst_graph_t *g, ngx_str_t *name, ngx_str_t *file)
{
    mst_limits_error_t  e;

    if (mst_limits_graph(l, mst_graph_json(g), &e) == MST_OK) {
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "maestro_workflow \"%V\" in \"%V\": %s", name, file,
                       e.message);

    return NGX_ERROR;
}


/* runs in the event loop */
ngx_int_t
ngx_http_maestro_limits_submit(ngx_http_maestro_main_conf_t *mmcf,
    json_t *prompt, json_t *context, json_t *def, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    int                 rc;
    mst_limits_error_t  le;

    rc = mst_limits_input(&mmcf->env.limits, prompt, context, &le);

    if (rc == MST_OK && def != NULL) {
        rc = mst_limits_graph(&mmcf->env.limits, def, &le);
    }

    if (rc == MST_OK) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0, "maestro: submission refused: %s",
                  le.message);

    return ngx_http_maestro_admit_error(e, le.status, le.code, "%s",
                                        le.message);
}
