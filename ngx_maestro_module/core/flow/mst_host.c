/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The services behind maestro_host_t. Everything here runs on the pool
 * thread that runs the plugin (or a thread the plugin made: each context
 * has a mutex). Events are queued in the context and written in batches:
 * at most every flush_ms, and always with the step's final commit, so a
 * token-per-call plugin does not cost a transaction per token. Consecutive
 * token fragments of one batch are merged into one event.
 */

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "mst_host.h"
#include "mst_offline.h"
#include "mst_plugin.h"


static void mst_host_account(maestro_ctx_t *ctx, const char *model, long pt,
    long ct);
static void mst_host_log(maestro_ctx_t *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


static const char *mst_host_levels[] = { "debug", "info", "warn", "error" };


int
mst_host_code(int rc)
{
    switch (rc) {
    case MST_OK:         return MAESTRO_OK;
    case MST_NOTFOUND:   return MAESTRO_ENOTFOUND;
    case MST_EINVAL:     return MAESTRO_EINVAL;
    case MST_ENOMEM:     return MAESTRO_ENOMEM;
    case MST_ECANCELLED: return MAESTRO_ECANCELLED;
    case MST_ETIMEDOUT:  return MAESTRO_ETIMEDOUT;
    case MST_EUPSTREAM:  return MAESTRO_ELLM;
    case MST_MAPFULL:
    case MST_EIO:        return MAESTRO_EIO;
    default:             return MAESTRO_ERROR;
    }
}


int
mst_host_ctx_init(maestro_ctx_t *ctx, mst_run_env_t *env, const char *id,
    uint64_t epoch, const mst_run_step_t *step, volatile int *state)
{
    memset(ctx, 0, sizeof(maestro_ctx_t));

    ctx->env = env;
    ctx->id = id;
    ctx->epoch = epoch;
    ctx->step = step;
    ctx->state = state;
    ctx->started = mst_mono_ms();
    ctx->deadline = ctx->started + step->timeout_ms;
    ctx->last_flush = ctx->started;
    ctx->progress = -1;

    ctx->events = json_array();
    if (ctx->events == NULL) {
        return MST_ENOMEM;
    }

    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        json_decref(ctx->events);
        return MST_ENOMEM;
    }

    return MST_OK;
}


void
mst_host_ctx_free(maestro_ctx_t *ctx)
{
    json_decref(ctx->events);
    json_decref(ctx->output);
    json_decref(ctx->patch);
    json_decref(ctx->by_model);
    pthread_mutex_destroy(&ctx->lock);
}


/* lock held */
void
mst_host_event(maestro_ctx_t *ctx, const char *name, json_t *data)
{
    size_t   n;
    json_t  *last, *ldata, *text, *ntext;
    char    *joined;

    if (data == NULL) {
        return;
    }

    n = json_array_size(ctx->events);
    last = n ? json_array_get(ctx->events, n - 1) : NULL;

    /* merge consecutive tokens of one batch */

    if (last != NULL && strcmp(name, "token") == 0
        && strcmp(json_string_value(json_array_get(last, 0)), "token") == 0)
    {
        ldata = json_array_get(last, 1);
        text = json_object_get(ldata, "text");
        ntext = json_object_get(data, "text");

        joined = malloc(json_string_length(text) + json_string_length(ntext)
                        + 1);
        if (joined != NULL) {
            memcpy(joined, json_string_value(text), json_string_length(text));
            memcpy(joined + json_string_length(text),
                   json_string_value(ntext), json_string_length(ntext));
            json_object_set_new(ldata, "text", json_stringn(joined,
                json_string_length(text) + json_string_length(ntext)));
            free(joined);
            json_decref(data);
            goto flush;
        }
    }

    json_array_append_new(ctx->events, json_pack("[s, o]", name, data));

flush:

    if (mst_mono_ms() - ctx->last_flush >= ctx->env->flush_ms) {
        (void) mst_run_ctx_flush(ctx);
    }
}


static void
mst_host_vlog(maestro_ctx_t *ctx, int level, const char *fmt, va_list args)
{
    char  buf[1024];
    char  line[1200];

    vsnprintf(buf, sizeof(buf), fmt, args);

    if (level < MAESTRO_LOG_DEBUG || level > MAESTRO_LOG_ERROR) {
        level = MAESTRO_LOG_INFO;
    }

    if (ctx == NULL) {
        /* configuration time: nginx -t shows stderr */
        fprintf(stderr, "maestro plugin: %s\n", buf);
        return;
    }

    if (ctx->env->log != NULL) {
        snprintf(line, sizeof(line), "workflow \"%s\" agent \"%s\": %s",
                 ctx->id, ctx->step->node, buf);
        ctx->env->log(ctx->env->log_arg, level, line);
    }

    if (!mst_utf8_valid(buf, strlen(buf))) {
        snprintf(buf, sizeof(buf), "(log line with invalid UTF-8 dropped)");
    }

    pthread_mutex_lock(&ctx->lock);
    mst_host_event(ctx, "log_entry",
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}",
                  "timestamp", (json_int_t) mst_now_ms(),
                  "level", mst_host_levels[level],
                  "agent", ctx->step->agent->name,
                  "node", ctx->step->node,
                  "workflow_id", ctx->id,
                  "message", buf));
    pthread_mutex_unlock(&ctx->lock);
}


static void
mst_host_log(maestro_ctx_t *ctx, int level, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    mst_host_vlog(ctx, level, fmt, args);
    va_end(args);
}


static int
mst_host_name_valid(const char *name)
{
    size_t  i;

    for (i = 0; name[i] != '\0'; i++) {
        if (i >= 32 || !((name[i] >= 'a' && name[i] <= 'z')
                         || name[i] == '_'))
        {
            return 0;
        }
    }

    return i > 0;
}


static int
mst_host_cancelled(maestro_ctx_t *ctx)
{
    int64_t  now;

    if (ctx == NULL) {
        return 0;
    }

    if (ctx->fenced || ctx->cancel_seen || *ctx->state != MST_STEP_RUNNING) {
        return 1;
    }

    now = mst_mono_ms();

    if (now >= ctx->deadline) {
        return 1;
    }

    /* a read transaction: cheap, but not on every token */

    if (now - ctx->cancel_checked >= 100) {
        ctx->cancel_checked = now;
        if (mst_run_cancel_requested(ctx->env, ctx->id)) {
            ctx->cancel_seen = 1;
            return 1;
        }
    }

    return 0;
}


/*
 * Names only the host emits: SSE, WebSocket and the OpenAI facade end a
 * stream at "done" or "error", so a plugin's would end it early.
 */
static int
mst_host_name_reserved(const char *name)
{
    return strcmp(name, "done") == 0 || strcmp(name, "error") == 0;
}


static int
mst_host_emit(maestro_ctx_t *ctx, const char *event, const char *json)
{
    json_t  *data;

    if (ctx == NULL || event == NULL || json == NULL
        || !mst_host_name_valid(event) || mst_host_name_reserved(event))
    {
        return MAESTRO_EINVAL;
    }

    data = json_loads(json, 0, NULL);
    if (!json_is_object(data)) {
        json_decref(data);
        return MAESTRO_EINVAL;
    }

    if (mst_host_cancelled(ctx)) {
        json_decref(data);
        return MAESTRO_ECANCELLED;
    }

    pthread_mutex_lock(&ctx->lock);
    mst_host_event(ctx, event, data);
    pthread_mutex_unlock(&ctx->lock);

    return MAESTRO_OK;
}


static int
mst_host_token(maestro_ctx_t *ctx, const char *text, size_t len)
{
    json_t  *data;

    if (ctx == NULL || text == NULL) {
        return MAESTRO_EINVAL;
    }

    if (mst_host_cancelled(ctx)) {
        return MAESTRO_ECANCELLED;
    }

    if (len == 0) {
        return MAESTRO_OK;
    }

    /* jansson refuses invalid UTF-8: a fragment cut inside a character
       by the plugin is replaced rather than lost silently */
    data = json_pack("{s:s, s:s, s:s%}", "agent", ctx->step->agent->name,
                     "node", ctx->step->node, "text", text, len);
    if (data == NULL) {
        data = json_pack("{s:s, s:s, s:s}", "agent", ctx->step->agent->name,
                         "node", ctx->step->node, "text", "\xef\xbf\xbd");
    }

    pthread_mutex_lock(&ctx->lock);
    mst_host_event(ctx, "token", data);
    pthread_mutex_unlock(&ctx->lock);

    return MAESTRO_OK;
}


static void
mst_host_progress(maestro_ctx_t *ctx, double fraction,
    const char *current_task)
{
    if (ctx == NULL) {
        return;
    }

    if (fraction < 0 || fraction != fraction) {
        fraction = 0;
    }

    if (fraction > 1) {
        fraction = 1;
    }

    pthread_mutex_lock(&ctx->lock);

    ctx->progress = fraction;
    if (current_task != NULL
        && mst_utf8_valid(current_task, strlen(current_task)))
    {
        snprintf(ctx->current_task, sizeof(ctx->current_task), "%s",
                 current_task);
    }
    ctx->progress_dirty = 1;

    if (mst_mono_ms() - ctx->last_flush >= ctx->env->flush_ms) {
        (void) mst_run_ctx_flush(ctx);
    }

    pthread_mutex_unlock(&ctx->lock);
}


static int
mst_host_set_output(maestro_ctx_t *ctx, const char *json)
{
    json_t  *v;

    if (ctx == NULL || json == NULL) {
        return MAESTRO_EINVAL;
    }

    v = json_loads(json, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        return MAESTRO_EINVAL;
    }

    pthread_mutex_lock(&ctx->lock);
    json_decref(ctx->output);
    ctx->output = v;
    pthread_mutex_unlock(&ctx->lock);

    return MAESTRO_OK;
}


static int
mst_host_set_state(maestro_ctx_t *ctx, const char *key, const char *json)
{
    json_t  *v;

    if (ctx == NULL || key == NULL || json == NULL || key[0] == '\0'
        || strcmp(key, "prompt") == 0 || strcmp(key, "context") == 0
        || strcmp(key, "outputs") == 0)
    {
        return MAESTRO_EINVAL;
    }

    v = json_loads(json, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        return MAESTRO_EINVAL;
    }

    pthread_mutex_lock(&ctx->lock);

    if (ctx->patch == NULL) {
        ctx->patch = json_object();
    }

    json_object_set_new(ctx->patch, key, v);

    pthread_mutex_unlock(&ctx->lock);

    return MAESTRO_OK;
}


static void
mst_host_add_tokens(maestro_ctx_t *ctx, long prompt_tokens,
    long completion_tokens)
{
    if (ctx == NULL || prompt_tokens < 0 || completion_tokens < 0) {
        return;
    }

    pthread_mutex_lock(&ctx->lock);
    ctx->prompt_tokens += prompt_tokens;
    ctx->completion_tokens += completion_tokens;
    pthread_mutex_unlock(&ctx->lock);
}


static int64_t
mst_host_remaining_ms(maestro_ctx_t *ctx)
{
    int64_t  left;

    if (ctx == NULL) {
        return 0;
    }

    left = ctx->deadline - mst_mono_ms();

    return left > 0 ? left : 0;
}


typedef struct {
    maestro_ctx_t         *ctx;
    maestro_llm_chunk_pt   cb;
    void                  *arg;
} mst_host_llm_arg_t;


static int
mst_host_llm_chunk(const char *text, size_t len, void *arg)
{
    mst_host_llm_arg_t  *la = arg;

    return la->cb(text, len, la->arg);
}


static int
mst_host_llm_cancel(void *arg)
{
    return mst_host_cancelled(arg);
}


static int
mst_host_llm_chat(maestro_ctx_t *ctx, const char *request,
    maestro_llm_chunk_pt on_chunk, void *arg, char **response)
{
    int                  rc;
    char                 err[MST_ERRLEN];
    json_t              *req, *resp, *usage;
    const char          *used;
    long                 pt, ct;
    mst_llm_call_t       call;
    mst_host_llm_arg_t   la;

    if (ctx == NULL || request == NULL || response == NULL) {
        return MAESTRO_EINVAL;
    }

    *response = NULL;

    req = json_loads(request, 0, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        return MAESTRO_EINVAL;
    }

    la.ctx = ctx;
    la.cb = on_chunk;
    la.arg = arg;

    memset(&call, 0, sizeof(mst_llm_call_t));
    call.on_chunk = on_chunk ? mst_host_llm_chunk : NULL;
    call.chunk_arg = &la;
    call.cancelled = mst_host_llm_cancel;
    call.cancel_arg = ctx;
    call.deadline = ctx->deadline;
    call.key_id = ctx->step->key_id;

    err[0] = '\0';

    /* the host's engine makes the calls; without one, or offline, the
       offline provider answers */
    if (ctx->env->llm_chat != NULL && mst_gateway_online(ctx->env->gw)) {
        rc = ctx->env->llm_chat(ctx->env->llm_chat_arg, req, &call, &resp,
                                &used, err, sizeof(err));

    } else {
        rc = mst_offline_chat(req, &call, &resp, err, sizeof(err));
    }
    json_decref(req);

    if (rc != MST_OK) {
        mst_host_log(ctx, MAESTRO_LOG_ERROR, "llm call failed: %s", err);
        snprintf(ctx->error, sizeof(ctx->error), "llm: %s", err);
        return mst_host_code(rc);
    }

    /* accounting lives here, once for every plugin: tokens, and per
       model with its cost (maestro_llm_price) */
    usage = json_object_get(resp, "usage");
    pt = (long) json_integer_value(json_object_get(usage, "prompt_tokens"));
    ct = (long) json_integer_value(json_object_get(usage,
                                                   "completion_tokens"));
    mst_host_add_tokens(ctx, pt, ct);
    mst_host_account(ctx, json_string_value(json_object_get(resp, "model")),
                     pt, ct);

    *response = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);

    return *response ? MAESTRO_OK : MAESTRO_ENOMEM;
}


/* per model: tokens and, when priced, USD */
static void
mst_host_account(maestro_ctx_t *ctx, const char *model, long pt, long ct)
{
    json_t  *m;
    double   cost;

    if (model == NULL || pt < 0 || ct < 0) {
        return;
    }

    cost = mst_run_price(ctx->env, model, pt, ct);

    pthread_mutex_lock(&ctx->lock);

    if (ctx->by_model == NULL) {
        ctx->by_model = json_object();
    }

    m = json_object_get(ctx->by_model, model);
    if (m == NULL) {
        m = json_pack("{s:i, s:i, s:n, s:i}", "prompt", 0, "completion", 0,
                      "cost_usd", "calls", 0);
        json_object_set_new(ctx->by_model, model, m);
    }

    json_object_set_new(m, "prompt", json_integer(
        json_integer_value(json_object_get(m, "prompt")) + pt));
    json_object_set_new(m, "completion", json_integer(
        json_integer_value(json_object_get(m, "completion")) + ct));
    json_object_set_new(m, "calls", json_integer(
        json_integer_value(json_object_get(m, "calls")) + 1));

    if (cost >= 0) {
        json_object_set_new(m, "cost_usd", json_real(
            json_number_value(json_object_get(m, "cost_usd")) + cost));
    }

    pthread_mutex_unlock(&ctx->lock);
}


typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    size_t   max;
} mst_host_buf_t;


static size_t
mst_host_http_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    size_t           n;
    char            *p;
    mst_host_buf_t  *b = arg;

    n = size * nmemb;

    if (b->len + n + 1 > b->max) {
        return 0;
    }

    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        p = realloc(b->data, b->cap);
        if (p == NULL) {
            return 0;
        }
        b->data = p;
    }

    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';

    return n;
}


static int
mst_host_http_progress(void *arg, curl_off_t dt, curl_off_t dn,
    curl_off_t ut, curl_off_t un)
{
    return mst_host_cancelled(arg);
}


static int
mst_host_http(maestro_ctx_t *ctx, const maestro_http_request_t *req,
    maestro_http_response_t *resp)
{
    long                  timeout;
    char                 *ct;
    CURL                 *curl;
    CURLcode              cc;
    size_t                i;
    mst_host_buf_t        buf;
    struct curl_slist    *headers;

    if (ctx == NULL || req == NULL || resp == NULL || req->url == NULL
        || (strncmp(req->url, "http://", 7) != 0
            && strncmp(req->url, "https://", 8) != 0))
    {
        return MAESTRO_EINVAL;
    }

    memset(resp, 0, sizeof(maestro_http_response_t));

    timeout = (long) mst_host_remaining_ms(ctx);
    if (req->timeout_ms > 0 && req->timeout_ms < timeout) {
        timeout = req->timeout_ms;
    }

    if (timeout <= 0) {
        return MAESTRO_ETIMEDOUT;
    }

    curl = curl_easy_init();
    if (curl == NULL) {
        return MAESTRO_ENOMEM;
    }

    memset(&buf, 0, sizeof(mst_host_buf_t));
    buf.max = 64 * 1024 * 1024;

    headers = NULL;
    for (i = 0; req->headers && req->headers[i]; i++) {
        headers = curl_slist_append(headers, req->headers[i]);
    }

    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST,
                     req->method ? req->method : "GET");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, mst_host_http_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, mst_host_http_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, ctx);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");

    if (req->body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) req->body_len);
    }

    cc = curl_easy_perform(curl);

    if (cc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        ct = NULL;
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        resp->content_type = ct ? strdup(ct) : NULL;
        resp->body = buf.data ? buf.data : strdup("");
        resp->body_len = buf.len;
        buf.data = NULL;

    } else {
        free(buf.data);
        mst_host_log(ctx, MAESTRO_LOG_WARN, "http %s %s failed: %s",
                     req->method ? req->method : "GET", req->url,
                     curl_easy_strerror(cc));
    }

    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    switch (cc) {
    case CURLE_OK:
        return MAESTRO_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return MAESTRO_ETIMEDOUT;
    case CURLE_ABORTED_BY_CALLBACK:
        return MAESTRO_ECANCELLED;
    default:
        return MAESTRO_EHTTP;
    }
}


static int
mst_host_memory_get(maestro_ctx_t *ctx, const char *key, char **value,
    size_t *len)
{
    int         rc;
    mst_txn_t  *txn;

    if (ctx == NULL || key == NULL || value == NULL) {
        return MAESTRO_EINVAL;
    }

    rc = mst_txn_begin(ctx->env->store, 1, &txn);
    if (rc != MST_OK) {
        return mst_host_code(rc);
    }

    rc = mst_store_kv_get(txn, ctx->step->agent->name, key, value, len);
    mst_txn_abort(txn);

    return mst_host_code(rc);
}


static int
mst_host_memory_put(maestro_ctx_t *ctx, const char *key, const char *value,
    size_t len)
{
    int         rc;
    mst_txn_t  *txn;

    if (ctx == NULL || key == NULL || key[0] == '\0' || value == NULL) {
        return MAESTRO_EINVAL;
    }

    rc = mst_txn_begin(ctx->env->store, 0, &txn);
    if (rc != MST_OK) {
        return mst_host_code(rc);
    }

    rc = mst_store_kv_put(txn, ctx->step->agent->name, key, value, len);
    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return mst_host_code(rc);
    }

    return mst_host_code(mst_txn_commit(txn));
}


static void
mst_host_free(void *p)
{
    free(p);
}


static int
mst_host_llm_online(maestro_ctx_t *ctx)
{
    if (ctx == NULL) {
        return 0;
    }

    return ctx->env->llm_chat != NULL && mst_gateway_online(ctx->env->gw);
}


const maestro_host_t  mst_host = {
    MAESTRO_PLUGIN_ABI_VERSION,
    sizeof(maestro_host_t),
    mst_host_log,
    mst_host_emit,
    mst_host_token,
    mst_host_progress,
    mst_host_set_output,
    mst_host_set_state,
    mst_host_add_tokens,
    mst_host_cancelled,
    mst_host_remaining_ms,
    mst_host_llm_chat,
    mst_host_http,
    mst_host_memory_get,
    mst_host_memory_put,
    mst_plugin_strerror,
    mst_host_free,
    mst_host_llm_online
};


const maestro_host_t *
mst_host_config_table(void)
{
    return &mst_host;
}
