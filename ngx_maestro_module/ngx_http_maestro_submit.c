/*
 * Copyright (C) Maestro authors
 */

/*
 * A workflow submission, whatever front end it came through (REST, the
 * submit-and-stream endpoint, a WebSocket prompt_submission, a
 * maestro/<workflow> chat completion): validation of the request object,
 * the choice of its graph, the store write and claim on the io pool, and
 * the adoption of the workflow by this worker. The admission path
 * (_admit.c) calls these in its order, with the guard and the route in
 * between; the front end only turns the outcome into its own answer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_bounds.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"
#include "ngx_http_maestro_watch.h"
#include "mst_request.h"


static void ngx_http_maestro_submit_thread(void *arg);
static void ngx_http_maestro_submit_done(void *arg, ngx_int_t rc);
static void ngx_http_maestro_submit_keep(ngx_event_t *ev);


/*
 * Validates a request object: a non-blank prompt, the user it names (for
 * the caller's copy), the context files, the shape of "workflow". The
 * guard and the route come after (the admission path); then
 * ngx_http_maestro_submit_workflow() picks the graph.
 */
ngx_http_maestro_submit_t *
ngx_http_maestro_submit_new(ngx_http_maestro_main_conf_t *mmcf,
    json_t *body, const mst_caller_t *caller, ngx_log_t *log,
    ngx_http_maestro_admit_error_t *e)
{
    json_t                     *context;
    mst_caller_t                who;
    mst_request_error_t         re;
    ngx_http_maestro_submit_t  *sb;

    /* the decisions are core's (mst_request.c), as the fuzzer sees them */

    who = *caller;

    if (mst_request_submission(body, &who, &context, &re) != MST_OK) {
        (void) ngx_http_maestro_admit_error(e, re.status, re.code, "%s",
                                            re.message);
        return NULL;
    }

    if (ngx_http_maestro_limits_submit(mmcf, json_object_get(body, "prompt"),
                                       context, NULL, log, e)
        != NGX_OK)
    {
        json_decref(context);
        return NULL;
    }

    sb = ngx_calloc(sizeof(ngx_http_maestro_submit_t), log);
    if (sb == NULL) {
        json_decref(context);
        (void) ngx_http_maestro_admit_error(e,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "internal", "out of memory");
        return NULL;
    }

    sb->mmcf = mmcf;
    sb->rc = MST_ERROR;         /* until the store says otherwise */
    sb->claim_rc = MST_ERROR;
    sb->caller = who;
    sb->prompt = (char *) json_string_value(json_object_get(body,
                                                            "prompt"));
    sb->context = context;
    sb->body = json_incref(body);

    return sb;
}


/* "workflow": "auto", and no workflow has that name: routing decides */
ngx_uint_t
ngx_http_maestro_submit_auto(ngx_http_maestro_submit_t *sb)
{
    json_t  *wf;

    wf = json_object_get(sb->body, "workflow");

    return json_is_string(wf)
           && ngx_strcmp(json_string_value(wf), "auto") == 0
           && mst_run_graph(&sb->mmcf->env, "auto") == NULL;
}


/*
 * The graph to run: routed (the route's workflow), else the one named,
 * else the default, else the graph in the body; and a place for it on
 * this worker.
 */
ngx_int_t
ngx_http_maestro_submit_workflow(ngx_http_maestro_submit_t *sb,
    const char *routed, ngx_http_maestro_admit_error_t *e)
{
    char                           err[MST_ERRLEN];
    size_t                         i;
    json_t                        *wf;
    const char                    *name;
    mst_graph_t                   *graph;
    const mst_node_t              *n;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = sb->mmcf;
    wf = json_object_get(sb->body, "workflow");

    if (routed != NULL || !json_is_object(wf)) {
        name = routed ? routed
                      : json_is_string(wf)
                        ? json_string_value(wf)
                        : (char *) mmcf->default_workflow.data;

        graph = name ? mst_run_graph(&mmcf->env, name) : NULL;

        if (graph == NULL) {
            if (name == NULL) {
                return ngx_http_maestro_admit_error(e,
                           NGX_HTTP_MAESTRO_UNPROCESSABLE, "unknown_workflow",
                           "no default workflow is configured");
            }

            return ngx_http_maestro_admit_error(e,
                       NGX_HTTP_MAESTRO_UNPROCESSABLE, "unknown_workflow",
                       "no workflow named \"%s\"", name);
        }

    } else {
        /* counted before it is parsed: a client's graph can be large */
        if (ngx_http_maestro_limits_submit(mmcf, NULL, NULL, wf,
                                           ngx_cycle->log, e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        graph = mst_graph_parse(wf, NULL, NULL, err, sizeof(err));

        /* agents are checked here: the graph came from the client */

        for (i = 0; graph != NULL && i < mst_graph_node_count(graph); i++) {
            n = mst_graph_node_at(graph, i);

            if (mst_run_agent(&mmcf->env, n->agent) == NULL) {
                snprintf(err, sizeof(err),
                         "node \"%s\": unknown agent \"%s\"", n->name,
                         n->agent);
                mst_graph_free(graph);
                graph = NULL;
            }
        }

        if (graph == NULL) {
            return ngx_http_maestro_admit_error(e,
                       NGX_HTTP_MAESTRO_UNPROCESSABLE, "invalid_graph", "%s",
                       err);
        }

        sb->graph_owned = 1;
        name = mst_graph_name(graph);
    }

    sb->graph = graph;
    ngx_cpystrn((u_char *) sb->workflow, (u_char *) name,
                sizeof(sb->workflow));

    if (ngx_exiting || ngx_terminate) {
        /*
         * A request that reached a worker in graceful exit (a reload)
         * is stored unowned, and a live worker claims it at once: not
         * refused for a queue that is not full.
         */
        sb->handoff = 1;
        return NGX_OK;
    }

    if (!ngx_http_maestro_run_can_accept(mmcf)) {
        return ngx_http_maestro_admit_error(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "queue_full",
                                            "%lu workflows are active on "
                                            "this worker "
                                            "(maestro_queue_size)",
                                            (unsigned long) mmcf->nactive);
    }

    return NGX_OK;
}


/* runs in the event loop: the store write took a minute */
static void
ngx_http_maestro_submit_keep(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "maestro: a submission is still being stored after "
                  "60 s");
}


/* runs on a pool thread */
static void
ngx_http_maestro_submit_thread(void *arg)
{
    ngx_http_maestro_submit_t  *sb = arg;

    /* stored and claimed at once: the worker that accepted it runs it,
       unless it is exiting (stored queued, for a live worker) */
    sb->rc = mst_run_submit(&sb->mmcf->env, sb->graph, sb->workflow,
                            sb->prompt, sb->context,
                            mst_caller_user(&sb->caller),
                            sb->caller.key_id, sb->caller.team, sb->id,
                            &sb->rec, sb->handoff ? NULL : &sb->next,
                            sb->err, sizeof(sb->err));
    sb->claim_rc = sb->handoff ? MST_CONFLICT : sb->rc;

    if (sb->graph_owned) {
        mst_graph_free(sb->graph);
        sb->graph = NULL;
        sb->graph_owned = 0;
    }
}


/* runs in the event loop */
static void
ngx_http_maestro_submit_done(void *arg, ngx_int_t rc)
{
    ngx_http_maestro_submit_t  *sb = arg;

    if (rc != NGX_OK) {
        /* not posted: ngx_http_maestro_submit_post() returns NGX_ERROR
           and sb stays the front end's, which answers */
        return;
    }

    sb->done(sb);
}


ngx_int_t
ngx_http_maestro_submit_post(ngx_http_maestro_submit_t *sb)
{
    /*
     * A timer that is not cancelable keeps a worker that begins a
     * graceful exit until the store write is done and answered: with
     * none, nginx saw no work left and closed the request ("open socket
     * left"), so the client never learnt the id of what was stored.
     */
    sb->keep.handler = ngx_http_maestro_submit_keep;
    sb->keep.data = sb;
    sb->keep.log = ngx_cycle->log;
    ngx_add_timer(&sb->keep, 60000);

    return ngx_http_maestro_io_post(sb->mmcf, ngx_http_maestro_submit_thread,
                                    ngx_http_maestro_submit_done, sb);
}


void
ngx_http_maestro_submit_finish(ngx_http_maestro_submit_t *sb)
{
    /*
     * Called after the front end answered: should the first step crash
     * this worker, the client still knows the id of its stored workflow.
     */
    if (sb->rc == MST_OK && sb->claim_rc == MST_OK) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "maestro: workflow \"%s\" submitted (%s)", sb->id,
                      sb->workflow);

        ngx_http_maestro_run_adopt(sb->mmcf, sb->id, &sb->next);

    } else if (sb->rc == MST_OK && sb->handoff) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "maestro: workflow \"%s\" submitted (%s) to a worker "
                      "in graceful exit: queued for a live one", sb->id,
                      sb->workflow);

        /* the live workers' housekeeping looks now, not in a tick */
        (void) ngx_atomic_fetch_add(&sb->mmcf->sh->handoff, 1);
    }

    if (sb->keep.timer_set) {
        ngx_del_timer(&sb->keep);
    }

    if (sb->graph_owned) {
        mst_graph_free(sb->graph);
    }

    mst_run_next_free(&sb->next);
    json_decref(sb->rec);
    json_decref(sb->context);
    json_decref(sb->body);
    ngx_free(sb);
}
