/*
 * Copyright (C) Maestro authors
 */

/*
 * A workflow submission, whatever front end it came through (REST, the
 * submit-and-stream endpoint, a WebSocket prompt_submission): validation
 * of the request object, the store write and claim on the io pool, and
 * the adoption of the workflow by this worker. The front end only turns
 * the outcome into its own kind of answer.
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


static ngx_http_maestro_submit_t *
ngx_http_maestro_submit_fail(ngx_http_maestro_submit_error_t *e,
    ngx_uint_t status, const char *code, const char *fmt, ...)
{
    va_list  args;

    e->status = status;
    e->code = code;

    va_start(args, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, args);
    va_end(args);

    return NULL;
}


ngx_http_maestro_submit_t *
ngx_http_maestro_submit_new(ngx_http_maestro_main_conf_t *mmcf,
    json_t *body, const char *user_id, const mst_guard_t *guard,
    ngx_log_t *log, ngx_http_maestro_submit_error_t *e)
{
    char                        err[MST_ERRLEN], blocked[MST_ERRLEN];
    char                       *checked;
    size_t                      i;
    ngx_uint_t                  routed;
    mst_analysis_t              analysis;
    json_t                     *prompt, *wf, *user, *context;
    const char                 *why, *name;
    mst_graph_t                *graph;
    const mst_node_t           *n;
    ngx_http_maestro_submit_t  *sb;

    prompt = json_object_get(body, "prompt");

    if (prompt == NULL) {
        return ngx_http_maestro_submit_fail(e, NGX_HTTP_BAD_REQUEST,
                                            "missing_field",
                                            "\"prompt\" is required");
    }

    if (!json_is_string(prompt)
        || ngx_http_maestro_submit_blank(json_string_value(prompt)))
    {
        return ngx_http_maestro_submit_fail(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field",
                                            "\"prompt\" must be a non-empty "
                                            "string");
    }

    if (guard != NULL) {
        /* after normalisation, so look-alikes cannot slip through */
        if (mst_guard_check(guard, json_string_value(prompt),
                            json_string_length(prompt), &checked, blocked,
                            sizeof(blocked))
            != MST_OK)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0, "maestro: prompt blocked: %s",
                          blocked);
            return ngx_http_maestro_submit_fail(e, NGX_HTTP_BAD_REQUEST,
                                                "prompt_blocked", "%s",
                                                blocked);
        }

        /* what goes on: normalised, and redacted when that is on */
        json_object_set_new(body, "prompt", json_string(checked));
        free(checked);
        prompt = json_object_get(body, "prompt");
    }

    user = json_object_get(body, "user_id");

    if (user_id == NULL && user != NULL && !json_is_null(user)
        && (!json_is_string(user) || json_string_length(user) == 0
            || json_string_length(user) > 128))
    {
        return ngx_http_maestro_submit_fail(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field",
                                            "\"user_id\" must be a string of "
                                            "1..128 characters");
    }

    if (user_id == NULL && json_is_string(user)) {
        user_id = json_string_value(user);
    }

    why = NULL;
    context = ngx_http_maestro_submit_context(json_object_get(body,
                                                              "context"),
                                              &why);
    if (context == NULL) {
        return ngx_http_maestro_submit_fail(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field", "%s",
                                            why ? why : "bad context");
    }

    wf = json_object_get(body, "workflow");
    graph = NULL;
    routed = 0;

    if (json_is_string(wf) && ngx_strcmp(json_string_value(wf), "auto") == 0
        && mst_run_graph(&mmcf->env, "auto") == NULL)
    {
        /* routed by intent (maestro_intent_route), else the default */
        mst_analyze(mmcf->intents, json_string_value(prompt),
                    json_string_length(prompt), &analysis);
        routed = 1;
        wf = NULL;
    }

    if (wf == NULL || json_is_null(wf) || json_is_string(wf)) {
        name = wf && json_is_string(wf)
               ? json_string_value(wf)
               : (routed && analysis.route)
                 ? analysis.route
                 : (char *) mmcf->default_workflow.data;

        graph = name ? mst_run_graph(&mmcf->env, name) : NULL;

        if (graph == NULL) {
            json_decref(context);

            if (name == NULL) {
                return ngx_http_maestro_submit_fail(e,
                           NGX_HTTP_MAESTRO_UNPROCESSABLE, "unknown_workflow",
                           "no default workflow is configured");
            }

            return ngx_http_maestro_submit_fail(e,
                       NGX_HTTP_MAESTRO_UNPROCESSABLE, "unknown_workflow",
                       "no workflow named \"%s\"", name);
        }

    } else if (json_is_object(wf)) {
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
            json_decref(context);
            return ngx_http_maestro_submit_fail(e,
                       NGX_HTTP_MAESTRO_UNPROCESSABLE, "invalid_graph", "%s",
                       err);
        }

        name = mst_graph_name(graph);

    } else {
        json_decref(context);
        return ngx_http_maestro_submit_fail(e, NGX_HTTP_BAD_REQUEST,
                                            "invalid_field",
                                            "\"workflow\" must be a name or "
                                            "a graph object");
    }

    if (!ngx_http_maestro_run_can_accept(mmcf)) {
        if (json_is_object(wf)) {
            mst_graph_free(graph);
        }
        json_decref(context);
        return ngx_http_maestro_submit_fail(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "queue_full",
                                            "%lu workflows are active on "
                                            "this worker "
                                            "(maestro_queue_size)",
                                            (unsigned long) mmcf->nactive);
    }

    sb = ngx_calloc(sizeof(ngx_http_maestro_submit_t), log);
    if (sb == NULL) {
        if (json_is_object(wf)) {
            mst_graph_free(graph);
        }
        json_decref(context);
        return ngx_http_maestro_submit_fail(e,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "internal", "out of memory");
    }

    sb->mmcf = mmcf;
    sb->graph = graph;
    sb->graph_owned = json_is_object(wf);
    ngx_cpystrn((u_char *) sb->workflow, (u_char *) name,
                sizeof(sb->workflow));
    sb->prompt = (char *) json_string_value(prompt);
    sb->context = context;
    sb->body = json_incref(body);

    if (routed) {
        /* static strings, or the analyzer's (it outlives requests) */
        sb->routed = 1;
        sb->intent = analysis.intent;
        sb->complexity = analysis.complexity;
    }

    if (user_id != NULL) {
        ngx_cpystrn((u_char *) sb->user_id, (u_char *) user_id,
                    sizeof(sb->user_id));
        sb->has_user = 1;
    }

    return sb;
}


/* runs on a pool thread */
static void
ngx_http_maestro_submit_thread(void *arg)
{
    ngx_http_maestro_submit_t  *sb = arg;

    /* stored and claimed at once: the worker that accepted it runs it */
    sb->rc = mst_run_submit(&sb->mmcf->env, sb->graph, sb->workflow,
                            sb->prompt, sb->context,
                            sb->has_user ? sb->user_id : NULL, sb->id,
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
