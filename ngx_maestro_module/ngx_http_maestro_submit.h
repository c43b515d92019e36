/*
 * Copyright (C) Maestro authors
 */

/*
 * A submission from any front end (ngx_http_maestro_submit.c).
 */

#ifndef _NGX_HTTP_MAESTRO_SUBMIT_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_SUBMIT_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"


typedef void (*ngx_http_maestro_submit_pt)(ngx_http_maestro_submit_t *sb);

struct ngx_http_maestro_submit_s {
    ngx_http_maestro_main_conf_t   *mmcf;
    mst_graph_t                    *graph;
    char                            workflow[128];  /* a copy: an inline
                                                       graph is freed first */
    char                           *prompt;
    mst_caller_t                    caller;     /* and the user it is for */
    json_t                         *context;
    json_t                         *body;       /* owns the strings */

    /* the outcome, for done() */
    char                            id[MST_ID_LEN + 1];
    json_t                         *rec;
    mst_run_next_t                  next;
    int                             rc;
    int                             claim_rc;
    char                            err[MST_ERRLEN];

    ngx_http_maestro_submit_pt      done;       /* in the event loop */
    void                           *data;       /* the front end's */
    unsigned                        graph_owned:1;
    unsigned                        handoff:1;  /* stored, not claimed */
    ngx_event_t                     keep;       /* an exiting worker
                                                   waits for its store
                                                   write */
    unsigned                        stream:1;
};

/* validates body (prompt, user_id, context, the shape of workflow) for
   caller; NULL and *e filled when invalid */
ngx_http_maestro_submit_t *ngx_http_maestro_submit_new(
    ngx_http_maestro_main_conf_t *mmcf, json_t *body,
    const mst_caller_t *caller, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e);
/* "workflow": "auto" that routing resolves */
ngx_uint_t ngx_http_maestro_submit_auto(ngx_http_maestro_submit_t *sb);
/* the graph: routed (a workflow name) or as the body says; NGX_ERROR
   and *e filled when there is none, or no room on this worker */
ngx_int_t ngx_http_maestro_submit_workflow(ngx_http_maestro_submit_t *sb,
    const char *routed, ngx_http_maestro_admit_error_t *e);
/* stores and claims it on the io pool, then calls sb->done() */
ngx_int_t ngx_http_maestro_submit_post(ngx_http_maestro_submit_t *sb);
/* after the front end answered: this worker runs it; frees sb */
void ngx_http_maestro_submit_finish(ngx_http_maestro_submit_t *sb);

#endif /* _NGX_HTTP_MAESTRO_SUBMIT_H_INCLUDED_ */
