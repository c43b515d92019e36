/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The OpenAI-compatible facade, so that any OpenAI SDK can run a Maestro
 * workflow: GET /v1/models lists "maestro/<workflow>" for every configured
 * workflow; POST /v1/chat/completions with such a model submits the
 * workflow (the last user message is the prompt, the earlier messages its
 * context, "user" its user id) and answers:
 *
 *   - not streaming: one chat.completion when the workflow is done, its
 *     content the workflow's result, its usage the workflow's tokens;
 *   - streaming: chat.completion.chunk events, the agents' tokens as they
 *     are generated, then a chunk with finish_reason "stop" (and usage
 *     when stream_options.include_usage), then "data: [DONE]".
 *
 * A failed workflow is an OpenAI-shaped error: a 500 before anything was
 * sent, an error chunk in a stream. Errors are always OpenAI's shape
 * {"error": {"message", "type", "param", "code"}} so SDKs raise the right
 * exception. Provider models and "auto" routing come with the LLM gateway.
 *
 * The response follows the workflow's event log in LMDB like an SSE
 * stream does (the same watch and wake-ups), so it works whichever worker
 * runs the workflow.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_admit.h"
#include "ngx_http_maestro_directive.h"
#include "ngx_http_maestro_response.h"
#include "ngx_http_maestro_openai.h"
#include "ngx_http_maestro_submit.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_engine.h"
#include "mst_oai.h"
#include "mst_request.h"


#define NGX_HTTP_MAESTRO_OAI_PREFIX  "maestro/"
#define NGX_HTTP_MAESTRO_OAI_BATCH   256


typedef struct {
    ngx_http_request_t             *r;
    ngx_http_maestro_main_conf_t   *mmcf;
    ngx_http_maestro_watch_t        watch;
    char                            id[MST_ID_LEN + 1];
    char                            model[160];
    uint64_t                        last;
    time_t                          created;
    unsigned                        stream:1;
    unsigned                        usage:1;
    unsigned                        finished:1;
    unsigned                        closed:1;
    unsigned                        linked:1;
} ngx_http_maestro_oai_t;


static void ngx_http_maestro_oai_body(ngx_http_request_t *r);
static ngx_http_maestro_main_conf_t *ngx_http_maestro_oai_mmcf(
    ngx_http_request_t *r);
static void ngx_http_maestro_oai_submitted(ngx_http_maestro_submit_t *sb);
static void ngx_http_maestro_oai_pump(ngx_http_maestro_oai_t *oai);
static void ngx_http_maestro_oai_wake(ngx_http_maestro_watch_t *w);
static void ngx_http_maestro_oai_cleanup(void *data);
static void ngx_http_maestro_oai_end(ngx_http_maestro_oai_t *oai,
    ngx_int_t rc);


static ngx_http_maestro_main_conf_t *
ngx_http_maestro_oai_mmcf(ngx_http_request_t *r)
{
    return ngx_http_get_module_main_conf(r, ngx_http_maestro_module);
}


ngx_int_t
ngx_http_maestro_openai_path(ngx_http_request_t *r)
{
    return r->uri.len > 4 && ngx_strncmp(r->uri.data, "/v1/", 4) == 0;
}


/* {"error": {"message", "type", "param", "code"}}: what OpenAI SDKs parse */
ngx_int_t
ngx_http_maestro_oai_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, const char *param,
    const char *fmt, ...)
{
    char     msg[512];
    va_list  args;

    va_start(args, fmt);
    ngx_http_maestro_error_message(r, status, "openai: ", code, msg,
                                   sizeof(msg), fmt, args);
    va_end(args);

    return ngx_http_maestro_send_json(r, status,
        json_pack("{s:{s:s, s:s, s:s?, s:s}}", "error",
                  "message", msg, "type", type, "param", param,
                  "code", code));
}


static ngx_int_t
ngx_http_maestro_oai_models(ngx_http_request_t *r)
{
    char                           name[200];
    size_t                         i;
    json_t                        *data, *models, *m;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maestro_module);

    data = json_array();

    for (i = 0; i < mmcf->ngraphs; i++) {
        snprintf(name, sizeof(name), NGX_HTTP_MAESTRO_OAI_PREFIX "%s",
                 mst_graph_name(mmcf->graphs[i]));

        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}",
            "id", name, "object", "model",
            "created", (json_int_t) mmcf->created,
            "owned_by", "maestro"));
    }

    json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}",
        "id", "auto", "object", "model",
        "created", (json_int_t) mmcf->created, "owned_by", "maestro"));

    /* the providers' models: passed through the gateway */

    if (mmcf->env.gw != NULL) {
        models = mst_gateway_models(mmcf->env.gw);

        json_array_foreach(models, i, m) {
            json_array_append_new(data, json_pack("{s:O, s:s, s:I, s:O}",
                "id", json_object_get(m, "model"), "object", "model",
                "created", (json_int_t) mmcf->created,
                "owned_by", json_object_get(m, "provider")));
        }

        json_decref(models);
    }

    return ngx_http_maestro_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:o}", "object", "list", "data", data));
}


/*
 * "model": "auto": the route stage on the last user message (mst_route:
 * an intent's workflow, else the complexity tier's model, else the
 * default workflow). Returns the model to use (a provider's, or
 * maestro/<workflow>), or NULL with *rc set after an error was sent.
 */
static const char *
ngx_http_maestro_oai_auto(ngx_http_request_t *r, ngx_http_maestro_admit_t *ad,
    json_t *body, ngx_int_t *rc)
{
    u_char                          *name;
    size_t                           i, len;
    json_t                          *text;
    ngx_int_t                        routed;
    const char                      *wf;
    ngx_http_maestro_admit_error_t   e;

    text = mst_request_chat_prompt(json_object_get(body, "messages"), &i);

    if (text == NULL || json_string_length(text) == 0) {
        json_decref(text);
        *rc = ngx_http_maestro_oai_error(r, NGX_HTTP_BAD_REQUEST,
                  "invalid_request_error", "invalid_value", "messages",
                  "messages need a user message with text content");
        return NULL;
    }

    routed = ngx_http_maestro_admit_route(ad, ngx_http_maestro_oai_mmcf(r),
                                          json_string_value(text),
                                          json_string_length(text), 0, &e);
    json_decref(text);

    if (routed != NGX_OK) {
        *rc = ngx_http_maestro_oai_error(r, NGX_HTTP_NOT_FOUND,
                  "invalid_request_error", "model_not_found", "model",
                  "auto %s", e.message);
        return NULL;
    }

    ngx_http_maestro_admit_route_headers(r, ad);

    if (ad->route.kind == MST_ROUTE_TO_MODEL) {
        return ad->route.target;
    }

    wf = ad->route.target;
    len = sizeof(NGX_HTTP_MAESTRO_OAI_PREFIX) - 1 + ngx_strlen(wf) + 1;
    name = ngx_pnalloc(r->pool, len);
    if (name == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }

    ngx_snprintf(name, len, NGX_HTTP_MAESTRO_OAI_PREFIX "%s%Z", wf);

    return (const char *) name;
}


/* routes /v1/...; runs in the event loop */
ngx_int_t
ngx_http_maestro_openai_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->uri.len == sizeof("/v1/models") - 1
        && ngx_strncmp(r->uri.data, "/v1/models", r->uri.len) == 0)
    {
        if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
            return ngx_http_maestro_oai_error(r, NGX_HTTP_NOT_ALLOWED,
                       "invalid_request_error", "method_not_allowed", NULL,
                       "use GET");
        }

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_maestro_oai_models(r);
    }

    if ((r->uri.len == sizeof("/v1/chat/completions") - 1
         && ngx_strncmp(r->uri.data, "/v1/chat/completions", r->uri.len)
            == 0)
        || (r->uri.len == sizeof("/v1/embeddings") - 1
            && ngx_strncmp(r->uri.data, "/v1/embeddings", r->uri.len) == 0))
    {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_maestro_oai_error(r, NGX_HTTP_NOT_ALLOWED,
                       "invalid_request_error", "method_not_allowed", NULL,
                       "use POST");
        }

        rc = ngx_http_read_client_request_body(r, ngx_http_maestro_oai_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    return ngx_http_maestro_oai_error(r, NGX_HTTP_NOT_FOUND,
               "invalid_request_error", "unknown_url", NULL,
               "Unknown request URL: %V", &r->uri);
}


/* the text of a message's content: a string or [{type: text, text}] */
static void
ngx_http_maestro_oai_body(ngx_http_request_t *r)
{
    json_t                          *body, *req, *stream, *opts, *t;
    ngx_int_t                        rc;
    ngx_str_t                        raw;
    const char                      *m;
    ngx_uint_t                       embeddings, routed;
    mst_request_error_t              re;
    ngx_http_maestro_oai_t          *oai;
    ngx_http_maestro_admit_t        *ad;
    ngx_http_maestro_submit_t       *sb;
    ngx_http_maestro_loc_conf_t     *mlcf;
    ngx_http_maestro_admit_error_t   e;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maestro_module);
    body = NULL;
    req = NULL;

    /* the admission path: stages 1-2 ran in the access phase */

    ad = ngx_http_maestro_admit_get(r);
    if (ad == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ad->way = NGX_HTTP_MAESTRO_WAY_OPENAI;

    rc = ngx_http_maestro_request_body(r, &raw, mlcf->max_body);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_maestro_oai_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                 "invalid_request_error", "body_too_large", NULL,
                 "body is larger than %lu bytes",
                 (unsigned long) mlcf->max_body);
        goto done;
    }

    if (rc != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    body = mst_request_parse((char *) raw.data, raw.len, &re);

    if (body == NULL) {
        rc = ngx_http_maestro_oai_error(r, re.status,
                 "invalid_request_error", re.code, NULL,
                 "We could not parse the JSON body of your request (%s)",
                 re.message);
        goto done;
    }

    m = mst_request_openai(body, &re);

    if (m == NULL) {
        rc = ngx_http_maestro_oai_error(r, re.status,
                 "invalid_request_error", re.code, re.field, "%s",
                 re.message);
        goto done;
    }


    /* 3. guard every message and embeddings input; the caller's user */

    if (ngx_http_maestro_admit_openai(ad, body, mlcf->guard,
                                      r->connection->log, &e)
        != NGX_OK)
    {
        rc = ngx_http_maestro_oai_error(r, e.status,
                 "invalid_request_error", e.code, NULL, "%s", e.message);
        goto done;
    }

    /* a provider's model: the gateway's pass-through */

    embeddings = (r->uri.len == sizeof("/v1/embeddings") - 1);
    routed = 0;

    if (embeddings
        || ngx_strncmp(m, NGX_HTTP_MAESTRO_OAI_PREFIX,
                       sizeof(NGX_HTTP_MAESTRO_OAI_PREFIX) - 1) != 0)
    {
        /* 4. route */

        if (!embeddings && ngx_strcmp(m, "auto") == 0) {
            m = ngx_http_maestro_oai_auto(r, ad, body, &rc);
            if (m == NULL) {
                goto done;
            }

            json_object_set_new(body, "model", json_string(m));
            m = json_string_value(json_object_get(body, "model"));
            routed = 1;
        }

        if (embeddings
            || ngx_strncmp(m, NGX_HTTP_MAESTRO_OAI_PREFIX,
                           sizeof(NGX_HTTP_MAESTRO_OAI_PREFIX) - 1) != 0)
        {
            /* 2. tokens: the estimate reserved before the provider is
               asked, settled at the answer's usage */

            t = json_object_get(body, "max_completion_tokens");
            if (!json_is_integer(t)) {
                t = json_object_get(body, "max_tokens");
            }

            if (ngx_http_maestro_admit_reserve(r, ad, m,
                    mst_oai_input_len(body),
                    embeddings ? 0 : json_is_integer(t)
                                     && json_integer_value(t) >= 0
                                     ? json_integer_value(t) : -1, &e)
                != NGX_OK)
            {
                rc = ngx_http_maestro_oai_error(r, e.status, "requests",
                         "rate_limit_exceeded", NULL, "%s", e.message);
                goto done;
            }

            /* 5. cache: a miss; 6. dispatch to the engine */

            (void) ngx_http_maestro_admit_cache(ad);

            /* the bytes as they came, unless "auto" or the guard
               changed the body */
            rc = ngx_http_maestro_passthru(r, ad, body,
                                           (routed || ad->changed) ? NULL
                                                                   : &raw,
                                           embeddings ? "embeddings"
                                                      : "chat/completions");
            if (rc == NGX_DONE) {
                json_decref(body);
                return;
            }

            if (rc == NGX_DECLINED) {
                rc = ngx_http_maestro_oai_error(r, NGX_HTTP_NOT_FOUND,
                         "invalid_request_error", "model_not_found", "model",
                         "The model `%s` does not exist: use a provider's "
                         "model, maestro/<workflow> or auto (GET /v1/models "
                         "lists them)", m);
            }

            goto done;
        }
    }

    if (ngx_strncmp(m, NGX_HTTP_MAESTRO_OAI_PREFIX,
                    sizeof(NGX_HTTP_MAESTRO_OAI_PREFIX) - 1) != 0
        || mst_run_graph(&ngx_http_maestro_oai_mmcf(r)->env,
                         m + sizeof(NGX_HTTP_MAESTRO_OAI_PREFIX) - 1)
           == NULL)
    {
        rc = ngx_http_maestro_oai_error(r, NGX_HTTP_NOT_FOUND,
                 "invalid_request_error", "model_not_found", "model",
                 "The model `%s` does not exist: use maestro/<workflow> "
                 "(GET /v1/models lists them)", m);
        goto done;
    }

    /* the last user message is the prompt; the others are its context;
       "user" went to the caller (stage 3); the texts are guarded */

    if (mst_request_chat(body, m + sizeof(NGX_HTTP_MAESTRO_OAI_PREFIX) - 1,
                         &req, &re)
        != MST_OK)
    {
        rc = ngx_http_maestro_oai_error(r, re.status,
                 "invalid_request_error", re.code, re.field, "%s",
                 re.message);
        goto done;
    }

    sb = ngx_http_maestro_admit_submission(ad, ngx_http_maestro_oai_mmcf(r),
                                           req, NULL, r->connection->log,
                                           &e);
    if (sb == NULL) {
        rc = ngx_http_maestro_oai_error(r, e.status,
                 e.status >= 500 ? "server_error" : "invalid_request_error",
                 e.code, NULL, "%s", e.message);
        goto done;
    }

    oai = ngx_pcalloc(r->pool, sizeof(ngx_http_maestro_oai_t));
    if (oai == NULL) {
        ngx_http_maestro_submit_finish(sb);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    stream = json_object_get(body, "stream");
    opts = json_object_get(body, "stream_options");

    oai->r = r;
    oai->mmcf = ngx_http_maestro_oai_mmcf(r);
    oai->stream = json_is_true(stream);
    oai->usage = json_is_true(json_object_get(opts, "include_usage"));
    oai->created = ngx_time();
    ngx_cpystrn((u_char *) oai->model, (u_char *) m, sizeof(oai->model));

    sb->done = ngx_http_maestro_oai_submitted;
    sb->data = oai;

    if (ngx_http_maestro_admit_dispatch(sb, &e) != NGX_OK) {
        rc = ngx_http_maestro_oai_error(r, e.status, "server_error", e.code,
                 NULL, "%s", e.message);
        goto done;
    }

    json_decref(req);
    json_decref(body);

    /* ngx_http_maestro_oai_submitted() goes on */
    return;

done:

    json_decref(req);
    json_decref(body);
    ngx_http_finalize_request(r, rc);
}


/* the chunk prefix "data: {...chat.completion.chunk..." */
static json_t *
ngx_http_maestro_oai_chunk(ngx_http_maestro_oai_t *oai, json_t *delta,
    const char *finish)
{
    char  id[64];

    snprintf(id, sizeof(id), "chatcmpl-%s", oai->id);

    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}",
                     "id", id,
                     "object", "chat.completion.chunk",
                     "created", (json_int_t) oai->created,
                     "model", oai->model,
                     "choices",
                       "index", 0,
                       "delta", delta,
                       "finish_reason", finish);
}


/* an SSE "data:" line from a JSON value (taken) or raw text */
static ngx_int_t
ngx_http_maestro_oai_data(ngx_http_maestro_oai_t *oai, json_t *v,
    const char *raw, ngx_uint_t flush)
{
    char         *text;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);

    if (v != NULL && text == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(text ? text : raw);

    b = ngx_create_temp_buf(oai->r->pool, len + sizeof("data: \n\n") - 1);
    if (b == NULL) {
        free(text);
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, "data: ", 6);
    b->last = ngx_cpymem(b->last, text ? text : raw, len);
    *b->last++ = '\n';
    *b->last++ = '\n';
    b->flush = flush;

    free(text);

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(oai->r, &out);
}


static ngx_int_t
ngx_http_maestro_oai_start_stream(ngx_http_maestro_oai_t *oai)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = oai->r;

    if (ngx_http_maestro_sse_headers(r) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    /* the first chunk carries the role, as OpenAI's do */
    return ngx_http_maestro_oai_data(oai,
               ngx_http_maestro_oai_chunk(oai,
                   json_pack("{s:s, s:s}", "role", "assistant",
                             "content", ""), NULL),
               NULL, 1);
}


/* runs in the event loop */
static void
ngx_http_maestro_oai_submitted(ngx_http_maestro_submit_t *sb)
{
    ngx_int_t                rc;
    ngx_table_elt_t         *h;
    ngx_pool_cleanup_t      *cln;
    ngx_http_request_t      *r;
    ngx_http_maestro_oai_t  *oai;

    oai = sb->data;
    r = oai->r;

    if (sb->rc != MST_OK) {
        rc = ngx_http_maestro_oai_error(r, sb->rc == MST_MAPFULL ? 507 : 500,
                 "server_error", sb->rc == MST_MAPFULL ? "store_full"
                                                      : "store_error",
                 NULL, "cannot store the workflow: %s",
                 sb->rc == MST_MAPFULL && sb->err[0] ? sb->err
                                                     : mst_strerror(sb->rc));
        ngx_http_maestro_submit_finish(sb);
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_memcpy(oai->id, sb->id, MST_ID_LEN + 1);

    h = ngx_list_push(&r->headers_out.headers);
    if (h != NULL) {
        h->hash = 1;
        ngx_str_set(&h->key, "X-Maestro-Workflow-Id");
        h->value.data = (u_char *) oai->id;
        h->value.len = MST_ID_LEN;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL
        || (oai->stream && ngx_http_maestro_oai_start_stream(oai) != NGX_OK))
    {
        ngx_http_maestro_submit_finish(sb);
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    cln->handler = ngx_http_maestro_oai_cleanup;
    cln->data = oai;

    /* a client that goes away ends the request (and the watch) */
    r->read_event_handler = ngx_http_test_reading;

    oai->watch.wake = ngx_http_maestro_oai_wake;
    oai->watch.data = oai;
    ngx_http_maestro_watch_add(oai->mmcf, &oai->watch, oai->id);
    oai->linked = 1;

    /* answered (or started) first: then this worker runs it */
    ngx_http_maestro_submit_finish(sb);

    ngx_http_maestro_oai_pump(oai);

    /* the request lives on until the workflow is done; the body handler's
       reference is released when it ends */
}


static void
ngx_http_maestro_oai_cleanup(void *data)
{
    ngx_http_maestro_oai_t  *oai = data;

    oai->closed = 1;

    if (oai->linked) {
        oai->linked = 0;
        ngx_http_maestro_watch_del(oai->mmcf, &oai->watch);
    }
}


static void
ngx_http_maestro_oai_wake(ngx_http_maestro_watch_t *w)
{
    ngx_http_maestro_oai_pump(w->data);
}


typedef struct {
    ngx_http_maestro_oai_t  *oai;
    size_t                   n;
    ngx_int_t                rc;
    json_t                  *final;     /* the done / error data */
    char                     name[8];
} ngx_http_maestro_oai_ctx_t;


static int
ngx_http_maestro_oai_event(uint64_t seq, const char *name, const char *data,
    size_t len, void *arg)
{
    ngx_http_maestro_oai_ctx_t  *oc = arg;

    json_t  *j, *text;

    oc->n++;
    oc->oai->last = seq;

    if (ngx_strcmp(name, "done") == 0 || ngx_strcmp(name, "error") == 0) {
        oc->final = json_loadb(data, len, 0, NULL);
        ngx_cpystrn((u_char *) oc->name, (u_char *) name, sizeof(oc->name));
        return 1;
    }

    if (!oc->oai->stream || ngx_strcmp(name, "token") != 0) {
        return 0;
    }

    j = json_loadb(data, len, 0, NULL);
    text = json_object_get(j, "text");

    if (json_is_string(text)) {
        oc->rc = ngx_http_maestro_oai_data(oc->oai,
                     ngx_http_maestro_oai_chunk(oc->oai,
                         json_pack("{s:O}", "content", text), NULL),
                     NULL, 0);
    }

    json_decref(j);

    return oc->rc == NGX_ERROR;
}


/* the workflow's record: its tokens for "usage" */
static json_t *
ngx_http_maestro_oai_usage(ngx_http_maestro_oai_t *oai)
{
    json_t     *rec, *t, *usage;
    mst_txn_t  *txn;

    usage = NULL;

    if (mst_txn_begin(oai->mmcf->env.store, 1, &txn) != MST_OK) {
        return json_pack("{s:i, s:i, s:i}", "prompt_tokens", 0,
                         "completion_tokens", 0, "total_tokens", 0);
    }

    if (mst_store_wf_get(txn, oai->id, &rec) == MST_OK) {
        t = json_object_get(rec, "tokens");
        usage = json_pack("{s:I, s:I, s:I}",
            "prompt_tokens", json_integer_value(json_object_get(t, "prompt")),
            "completion_tokens",
                json_integer_value(json_object_get(t, "completion")),
            "total_tokens", json_integer_value(json_object_get(t, "total")));
        json_decref(rec);
    }

    mst_txn_abort(txn);

    return usage ? usage : json_pack("{s:i, s:i, s:i}", "prompt_tokens", 0,
                                     "completion_tokens", 0,
                                     "total_tokens", 0);
}


static void
ngx_http_maestro_oai_final(ngx_http_maestro_oai_t *oai, const char *name,
    json_t *final)
{
    char         id[64];
    json_t      *result, *chunk;
    ngx_int_t    rc;
    const char  *status, *error;

    status = json_string_value(json_object_get(final, "status"));
    result = json_object_get(final, "result");
    error = json_string_value(json_object_get(final, "error"));

    oai->finished = 1;

    if (ngx_strcmp(name, "error") == 0 || status == NULL
        || ngx_strcmp(status, "complete") != 0)
    {
        /* failed or cancelled: never a quiet success */

        if (oai->stream) {
            rc = ngx_http_maestro_oai_data(oai,
                     json_pack("{s:{s:s, s:s, s:n, s:s}}", "error",
                               "message", error ? error
                                                : "the workflow was "
                                                  "cancelled",
                               "type", "server_error", "param",
                               "code", ngx_strcmp(name, "error") == 0
                                       ? "workflow_failed"
                                       : "workflow_cancelled"),
                     NULL, 0);

            if (rc != NGX_ERROR) {
                rc = ngx_http_maestro_oai_data(oai, NULL, "[DONE]", 1);
            }

            ngx_http_maestro_oai_end(oai, rc);
            return;
        }

        ngx_http_maestro_oai_end(oai,
            ngx_http_maestro_oai_error(oai->r,
                NGX_HTTP_INTERNAL_SERVER_ERROR, "server_error",
                ngx_strcmp(name, "error") == 0 ? "workflow_failed"
                                               : "workflow_cancelled",
                NULL, "workflow %s %s: %s", oai->id,
                status ? status : "failed", error ? error : "cancelled"));
        return;
    }

    if (oai->stream) {
        rc = ngx_http_maestro_oai_data(oai,
                 ngx_http_maestro_oai_chunk(oai, json_object(), "stop"),
                 NULL, 0);

        if (rc != NGX_ERROR && oai->usage) {
            /* as OpenAI: a last chunk with no choices and the usage */
            chunk = ngx_http_maestro_oai_chunk(oai, json_object(), NULL);
            json_object_set_new(chunk, "choices", json_array());
            json_object_set_new(chunk, "usage",
                                ngx_http_maestro_oai_usage(oai));
            rc = ngx_http_maestro_oai_data(oai, chunk, NULL, 0);
        }

        if (rc != NGX_ERROR) {
            rc = ngx_http_maestro_oai_data(oai, NULL, "[DONE]", 1);
        }

        ngx_http_maestro_oai_end(oai, rc);
        return;
    }

    snprintf(id, sizeof(id), "chatcmpl-%s", oai->id);

    ngx_http_maestro_oai_end(oai,
        ngx_http_maestro_send_json(oai->r, NGX_HTTP_OK,
            json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:O}, s:s}],"
                      " s:o}",
                      "id", id,
                      "object", "chat.completion",
                      "created", (json_int_t) oai->created,
                      "model", oai->model,
                      "choices",
                        "index", 0,
                        "message", "role", "assistant",
                                   "content", json_is_string(result)
                                              ? result : json_string(""),
                        "finish_reason", "stop",
                      "usage", ngx_http_maestro_oai_usage(oai))));
}


static void
ngx_http_maestro_oai_pump(ngx_http_maestro_oai_t *oai)
{
    int                          rc;
    mst_txn_t                   *txn;
    ngx_http_maestro_oai_ctx_t   oc;

    while (!oai->closed && !oai->finished) {

        if (mst_txn_begin(oai->mmcf->env.store, 1, &txn) != MST_OK) {
            return;
        }

        ngx_memzero(&oc, sizeof(ngx_http_maestro_oai_ctx_t));
        oc.oai = oai;
        oc.rc = NGX_OK;

        rc = mst_store_event_range(txn, oai->id, oai->last,
                                   NGX_HTTP_MAESTRO_OAI_BATCH,
                                   ngx_http_maestro_oai_event, &oc);
        mst_txn_abort(txn);

        if (oc.rc == NGX_ERROR || rc != MST_OK) {
            json_decref(oc.final);
            ngx_http_maestro_oai_end(oai, NGX_ERROR);
            return;
        }

        if (oc.final != NULL) {
            ngx_http_maestro_oai_final(oai, oc.name, oc.final);
            json_decref(oc.final);
            return;
        }

        if (oai->stream && oc.n > 0) {
            /* push what this batch wrote */
            (void) ngx_http_send_special(oai->r, NGX_HTTP_FLUSH);
        }

        if (oc.n < NGX_HTTP_MAESTRO_OAI_BATCH) {
            return;
        }
    }
}


static void
ngx_http_maestro_oai_end(ngx_http_maestro_oai_t *oai, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = oai->r;
    c = r->connection;

    oai->finished = 1;

    if (oai->linked) {
        oai->linked = 0;
        ngx_http_maestro_watch_del(oai->mmcf, &oai->watch);
    }

    if (oai->stream && rc != NGX_ERROR) {
        rc = ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    ngx_http_finalize_request(r, rc == NGX_ERROR ? NGX_ERROR : rc);

    /* from a wake-up, no connection event runs what was posted */
    ngx_http_run_posted_requests(c);
}
