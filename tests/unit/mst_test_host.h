/*
 * Copyright (C) Maestro authors
 */

/*
 * A recording plugin host for the unit tests: a maestro_host_t whose
 * functions write what the plugin did into the step context (tokens,
 * events, output, state keys, logs, progress, token usage, memory), and
 * whose llm_chat() is answered by a scripted function of the test.
 */

#ifndef _MST_TEST_HOST_H_INCLUDED_
#define _MST_TEST_HOST_H_INCLUDED_

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "maestro_plugin.h"


/*
 * A scripted LLM: given the parsed request, sets *model and *content
 * (static strings or owned by the test) and returns MAESTRO_OK or an
 * error code for llm_chat() to return.
 */
typedef int (*mst_test_llm_pt)(json_t *request, void *arg,
    const char **model, const char **content);


struct maestro_ctx_s {
    json_t           *tokens;       /* array of strings */
    json_t           *events;       /* array of {"event", "data"} */
    json_t           *output;       /* last set_output(), or NULL */
    json_t           *state;        /* object: set_state() keys */
    json_t           *logs;         /* array of strings */
    json_t           *progress;     /* array of numbers */
    json_t           *memory;       /* object: key -> string */
    json_t           *requests;     /* array: llm_chat() requests */
    long              prompt_tokens;
    long              completion_tokens;
    int               outputs_set;
    int               cancel_after; /* cancelled() true after N calls;
                                       -1: never */
    int               cancel_calls;
    int64_t           remaining;    /* remaining_ms() */
    size_t            chunk_size;   /* streaming chunk size */
    size_t            chunks_sent;
    mst_test_llm_pt   llm;
    void             *llm_arg;
};


static inline void
mst_test_ctx_init(maestro_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(maestro_ctx_t));
    ctx->tokens = json_array();
    ctx->events = json_array();
    ctx->state = json_object();
    ctx->logs = json_array();
    ctx->progress = json_array();
    ctx->memory = json_object();
    ctx->requests = json_array();
    ctx->cancel_after = -1;
    ctx->remaining = 60000;
    ctx->chunk_size = 7;
}


static inline void
mst_test_ctx_free(maestro_ctx_t *ctx)
{
    json_decref(ctx->tokens);
    json_decref(ctx->events);
    json_decref(ctx->output);
    json_decref(ctx->state);
    json_decref(ctx->logs);
    json_decref(ctx->progress);
    json_decref(ctx->memory);
    json_decref(ctx->requests);
    memset(ctx, 0, sizeof(maestro_ctx_t));
}


/* the streamed tokens joined (malloc()ed) */
static inline char *
mst_test_ctx_tokens(maestro_ctx_t *ctx)
{
    char    *text;
    size_t   i, len;
    json_t  *v;

    len = 0;
    json_array_foreach(ctx->tokens, i, v) {
        len += json_string_length(v);
    }

    text = calloc(1, len + 1);
    len = 0;

    json_array_foreach(ctx->tokens, i, v) {
        memcpy(text + len, json_string_value(v), json_string_length(v));
        len += json_string_length(v);
    }

    return text;
}


/* whether a log line contains s */
static inline int
mst_test_ctx_logged(maestro_ctx_t *ctx, const char *s)
{
    size_t   i;
    json_t  *v;

    json_array_foreach(ctx->logs, i, v) {
        if (strstr(json_string_value(v), s) != NULL) {
            return 1;
        }
    }

    return 0;
}


static inline void
mst_test_host_log(maestro_ctx_t *ctx, int level, const char *fmt, ...)
{
    char     buf[1024];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (ctx != NULL) {
        json_array_append_new(ctx->logs, json_string(buf));
    }
}


static inline int
mst_test_host_emit(maestro_ctx_t *ctx, const char *event, const char *json)
{
    json_t  *data;

    data = json_loads(json, 0, NULL);
    if (data == NULL) {
        return MAESTRO_EINVAL;
    }

    json_array_append_new(ctx->events,
                          json_pack("{s:s, s:o}", "event", event,
                                    "data", data));
    return MAESTRO_OK;
}


static inline int
mst_test_host_token(maestro_ctx_t *ctx, const char *text, size_t len)
{
    json_array_append_new(ctx->tokens, json_stringn(text, len));
    return MAESTRO_OK;
}


static inline void
mst_test_host_progress(maestro_ctx_t *ctx, double fraction,
    const char *current_task)
{
    json_array_append_new(ctx->progress, json_real(fraction));
}


static inline int
mst_test_host_set_output(maestro_ctx_t *ctx, const char *json)
{
    json_t  *v;

    v = json_loads(json, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        return MAESTRO_EINVAL;
    }

    json_decref(ctx->output);
    ctx->output = v;
    ctx->outputs_set++;

    return MAESTRO_OK;
}


static inline int
mst_test_host_set_state(maestro_ctx_t *ctx, const char *key,
    const char *json)
{
    json_t  *v;

    if (strcmp(key, "prompt") == 0 || strcmp(key, "context") == 0
        || strcmp(key, "outputs") == 0)
    {
        return MAESTRO_EINVAL;
    }

    v = json_loads(json, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        return MAESTRO_EINVAL;
    }

    json_object_set_new(ctx->state, key, v);

    return MAESTRO_OK;
}


static inline void
mst_test_host_add_tokens(maestro_ctx_t *ctx, long prompt_tokens,
    long completion_tokens)
{
    ctx->prompt_tokens += prompt_tokens;
    ctx->completion_tokens += completion_tokens;
}


static inline int
mst_test_host_cancelled(maestro_ctx_t *ctx)
{
    ctx->cancel_calls++;

    return ctx->cancel_after >= 0 && ctx->cancel_calls > ctx->cancel_after;
}


static inline int64_t
mst_test_host_remaining_ms(maestro_ctx_t *ctx)
{
    return ctx->remaining;
}


/* answers with the scripted LLM, streaming its content in chunk_size
   pieces when on_chunk is given */
static inline int
mst_test_host_llm_chat(maestro_ctx_t *ctx, const char *request,
    maestro_llm_chunk_pt on_chunk, void *arg, char **response)
{
    int          rc;
    size_t       off, n, len;
    json_t      *req, *resp;
    const char  *model, *content;

    *response = NULL;

    req = json_loads(request, 0, NULL);
    if (req == NULL) {
        return MAESTRO_EINVAL;
    }

    json_array_append(ctx->requests, req);

    model = "maestro-offline";
    content = "";

    rc = ctx->llm ? ctx->llm(req, ctx->llm_arg, &model, &content)
                  : MAESTRO_OK;
    json_decref(req);

    if (rc != MAESTRO_OK) {
        return rc;
    }

    len = strlen(content);

    if (on_chunk != NULL) {
        for (off = 0; off < len; off += n) {
            n = len - off < ctx->chunk_size ? len - off : ctx->chunk_size;
            ctx->chunks_sent++;
            if (on_chunk(content + off, n, arg) != 0) {
                return MAESTRO_ECANCELLED;
            }
        }
    }

    resp = json_pack("{s:s, s:s, s:s, s:[{s:i, s:{s:s, s:s}, s:s}],"
                     " s:{s:i, s:i, s:i}}",
                     "id", "chatcmpl-test",
                     "object", "chat.completion",
                     "model", model,
                     "choices",
                       "index", 0,
                       "message", "role", "assistant", "content", content,
                       "finish_reason", "stop",
                     "usage",
                       "prompt_tokens", 11,
                       "completion_tokens", 22,
                       "total_tokens", 33);

    *response = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);

    /* as the real host does: accounting happens here, not in plugins */
    ctx->prompt_tokens += 11;
    ctx->completion_tokens += 22;

    return *response ? MAESTRO_OK : MAESTRO_ENOMEM;
}


static inline int
mst_test_host_http(maestro_ctx_t *ctx, const maestro_http_request_t *req,
    maestro_http_response_t *resp)
{
    return MAESTRO_EHTTP;
}


static inline int
mst_test_host_memory_get(maestro_ctx_t *ctx, const char *key, char **value,
    size_t *len)
{
    json_t  *v;

    v = json_object_get(ctx->memory, key);
    if (v == NULL) {
        return MAESTRO_ENOTFOUND;
    }

    *value = strdup(json_string_value(v));
    *len = json_string_length(v);

    return MAESTRO_OK;
}


static inline int
mst_test_host_memory_put(maestro_ctx_t *ctx, const char *key,
    const char *value, size_t len)
{
    json_object_set_new(ctx->memory, key, json_stringn(value, len));
    return MAESTRO_OK;
}


static inline const char *
mst_test_host_strerror(int rc)
{
    switch (rc) {
    case MAESTRO_OK:         return "success";
    case MAESTRO_ELLM:       return "LLM provider failed";
    case MAESTRO_ECANCELLED: return "cancelled";
    default:                 return "error";
    }
}


static inline void
mst_test_host_free(void *p)
{
    free(p);
}


static inline int
mst_test_host_llm_online(maestro_ctx_t *ctx)
{
    return ctx->llm != NULL;
}


static inline maestro_host_t
mst_test_host(void)
{
    maestro_host_t  host;

    memset(&host, 0, sizeof(maestro_host_t));

    host.abi_version = MAESTRO_PLUGIN_ABI_VERSION;
    host.size = sizeof(maestro_host_t);
    host.log = mst_test_host_log;
    host.emit = mst_test_host_emit;
    host.token = mst_test_host_token;
    host.progress = mst_test_host_progress;
    host.set_output = mst_test_host_set_output;
    host.set_state = mst_test_host_set_state;
    host.add_tokens = mst_test_host_add_tokens;
    host.cancelled = mst_test_host_cancelled;
    host.remaining_ms = mst_test_host_remaining_ms;
    host.llm_chat = mst_test_host_llm_chat;
    host.http = mst_test_host_http;
    host.memory_get = mst_test_host_memory_get;
    host.memory_put = mst_test_host_memory_put;
    host.strerror = mst_test_host_strerror;
    host.free = mst_test_host_free;
    host.llm_online = mst_test_host_llm_online;

    return host;
}

#endif /* _MST_TEST_HOST_H_INCLUDED_ */
