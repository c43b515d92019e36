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


typedef struct ngx_http_maestro_submit_s  ngx_http_maestro_submit_t;
typedef void (*ngx_http_maestro_submit_pt)(ngx_http_maestro_submit_t *sb);

struct ngx_http_maestro_submit_s {
    ngx_http_maestro_main_conf_t   *mmcf;
    mst_graph_t                    *graph;
    char                            workflow[128];  /* a copy: an inline
                                                       graph is freed first */
    char                           *prompt;
    char                            user_id[129];
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
    const char                     *complexity; /* when routed "auto" */
    const char                     *intent;
    unsigned                        graph_owned:1;
    unsigned                        has_user:1;
    unsigned                        stream:1;
    unsigned                        routed:1;
};

typedef struct {
    ngx_uint_t                      status;     /* HTTP status */
    const char                     *code;
    char                            message[384];
} ngx_http_maestro_submit_error_t;

/* validates body (prompt, workflow, user_id, context); user_id, when not
   NULL, overrides the body's; NULL and *e filled when invalid */
ngx_http_maestro_submit_t *ngx_http_maestro_submit_new(
    ngx_http_maestro_main_conf_t *mmcf, json_t *body, const char *user_id,
    const mst_guard_t *guard, ngx_log_t *log,
    ngx_http_maestro_submit_error_t *e);
/* stores and claims it on the io pool, then calls sb->done() */
ngx_int_t ngx_http_maestro_submit_post(ngx_http_maestro_submit_t *sb);
/* after the front end answered: this worker runs it; frees sb */
void ngx_http_maestro_submit_finish(ngx_http_maestro_submit_t *sb);

#endif /* _NGX_HTTP_MAESTRO_SUBMIT_H_INCLUDED_ */
