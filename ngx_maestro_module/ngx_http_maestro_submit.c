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
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"


static json_t *ngx_http_maestro_submit_context(json_t *v, const char **why);
static void ngx_http_maestro_submit_thread(void *arg);
static void ngx_http_maestro_submit_done(void *arg, ngx_int_t rc);


/* context: a string, or [{name, content}] / [string] */
static json_t *
ngx_http_maestro_submit_context(json_t *v, const char **why)
{
    char     name[32];
    size_t   i;
    json_t  *out, *item, *n, *c;

    out = json_array();

    if (v == NULL || json_is_null(v)) {
        return out;
    }

    if (json_is_string(v)) {
        json_array_append_new(out, json_pack("{s:s, s:O}", "name", "context",
                                             "content", v));
        return out;
    }

    if (!json_is_array(v) || json_array_size(v) > 64) {
        *why = "context must be a string or an array of at most 64 "
               "{name, content} objects";
        json_decref(out);
        return NULL;
    }

    json_array_foreach(v, i, item) {
        if (json_is_string(item)) {
            snprintf(name, sizeof(name), "context-%zu", i + 1);
            json_array_append_new(out, json_pack("{s:s, s:O}", "name", name,
                                                 "content", item));
            continue;
        }

        n = json_object_get(item, "name");
        c = json_object_get(item, "content");

        if (!json_is_string(n) || !json_is_string(c)
            || json_string_length(n) == 0 || json_string_length(n) > 255)
        {
            *why = "each context item needs a name (1..255 characters) and "
                   "a content string";
            json_decref(out);
            return NULL;
        }

        json_array_append_new(out, json_pack("{s:O, s:O}", "name", n,
                                             "content", c));
    }

    return out;
}


static int
ngx_http_maestro_submit_blank(const char *s)
{
    for ( /* void */ ; *s; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
            return 0;
        }
    }

    return 1;
}


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
    char                        err[MST_ERRLEN];
    json_t                     *prompt, *wf, *user, *context;
    const char                 *why;
    mst_caller_t                who;
    ngx_http_maestro_submit_t  *sb;

    prompt = json_object_get(body, "prompt");

    if (prompt == NULL) {
        (void) ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                            "missing_field",
                                            "\"prompt\" is required");
        return NULL;
    }

    if (!json_is_string(prompt)
        || ngx_http_maestro_submit_blank(json_string_value(prompt)))
    {
        (void) ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field",
                                            "\"prompt\" must be a non-empty "
                                            "string");
        return NULL;
    }

    /* the user it is for: a session's, else the one the body names */

    who = *caller;
    user = json_object_get(body, "user_id");

    if (!who.fixed && user != NULL && !json_is_null(user)
        && (!json_is_string(user)
            || mst_caller_claim(&who, json_string_value(user),
                                json_string_length(user), err, sizeof(err))
               != MST_OK))
    {
        (void) ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field",
                                            "\"user_id\" must be a string of "
                                            "1..128 characters");
        return NULL;
    }

    why = NULL;
    context = ngx_http_maestro_submit_context(json_object_get(body,
                                                              "context"),
                                              &why);
    if (context == NULL) {
        (void) ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field", "%s",
                                            why ? why : "bad context");
        return NULL;
    }

    wf = json_object_get(body, "workflow");

    if (wf != NULL && !json_is_null(wf) && !json_is_string(wf)
        && !json_is_object(wf))
    {
        json_decref(context);
        (void) ngx_http_maestro_admit_error(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field",
                                            "\"workflow\" must be a name or "
                                            "a graph object");
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
    sb->prompt = (char *) json_string_value(prompt);
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


/* runs on a pool thread */
static void
ngx_http_maestro_submit_thread(void *arg)
{
    ngx_http_maestro_submit_t  *sb = arg;

    /* stored and claimed at once: the worker that accepted it runs it */
    sb->rc = mst_run_submit(&sb->mmcf->env, sb->graph, sb->workflow,
                            sb->prompt, sb->context,
                            mst_caller_user(&sb->caller),
                            sb->caller.key_id, sb->caller.team, sb->id,
                            &sb->rec, &sb->next, sb->err, sizeof(sb->err));
    sb->claim_rc = sb->rc;

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
