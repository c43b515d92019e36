/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The one interface every LLM call goes through (plugins via the host's
 * llm_chat, later the gateway). P0 speaks the OpenAI chat-completions
 * protocol to one OpenAI-compatible provider with libcurl (blocking; called
 * on pool threads only), streaming (SSE "data:" chunks) and not, with
 * retries on connect errors, timeouts, 429 and 5xx (exponential backoff with
 * full jitter, Retry-After honoured, never past the deadline).
 *
 * With no provider configured, the offline provider answers (mst_offline.h):
 * deterministic, model "maestro-offline".
 *
 * Responses are always OpenAI chat.completion objects:
 *   { "id", "object": "chat.completion", "created", "model",
 *     "choices": [ { "index": 0, "message": { "role": "assistant",
 *                    "content": "..." }, "finish_reason": "stop" } ],
 *     "usage": { "prompt_tokens", "completion_tokens", "total_tokens" } }
 * When streaming, chunks go to on_chunk as they arrive and the assembled
 * answer is returned in the same shape. usage is taken from the provider
 * (stream_options.include_usage is forced) or estimated (~4 bytes/token).
 */

#ifndef _MST_LLM_H_INCLUDED_
#define _MST_LLM_H_INCLUDED_

#include "mst_common.h"

typedef struct mst_llm_s  mst_llm_t;

typedef struct {
    const char  *name;              /* provider name, for logs */
    const char  *base_url;          /* e.g. http://127.0.0.1:9000/v1 */
    const char  *api_key;           /* may be NULL; never logged */
    const char  *ca_file;           /* https: trusted CAs; NULL: system */
    const char  *model;             /* default model when the request has
                                       none */
    long         connect_timeout_ms;
    long         timeout_ms;        /* whole request */
    int          max_retries;
    long         backoff_ms;        /* base of the exponential backoff */
} mst_llm_provider_t;

/* provider NULL: offline only. Strings are copied. */
mst_llm_t *mst_llm_create(const mst_llm_provider_t *provider, char *err,
    size_t errlen);
void mst_llm_free(mst_llm_t *llm);

/* whether a real provider is configured (else offline) */
int mst_llm_online(const mst_llm_t *llm);

/* returns non-zero to abort the call (cancellation) */
typedef int (*mst_llm_cancel_pt)(void *arg);
/* a streamed fragment; returns non-zero to stop */
typedef int (*mst_llm_chunk_pt)(const char *text, size_t len, void *arg);

typedef struct {
    mst_llm_chunk_pt    on_chunk;   /* NULL: not streaming */
    void               *chunk_arg;
    mst_llm_cancel_pt   cancelled;  /* may be NULL */
    void               *cancel_arg;
    int64_t             deadline;   /* mst_mono_ms() time, 0: none */
} mst_llm_call_t;

/*
 * request: an OpenAI chat-completions body (not stolen; "stream" is set by
 * this function). *response: new chat.completion object.
 * Returns MST_OK, MST_EUPSTREAM (err says why: status, body excerpt),
 * MST_ETIMEDOUT, MST_ECANCELLED, MST_EINVAL.
 */
int mst_llm_chat(mst_llm_t *llm, json_t *request, const mst_llm_call_t *call,
    json_t **response, char *err, size_t errlen);

/*
 * An active health check: GET base_url/models (with the key), blocking,
 * within timeout_ms. MST_OK on 2xx; else MST_EUPSTREAM or MST_ETIMEDOUT
 * with the reason in err. Always MST_OK offline.
 */
int mst_llm_probe(mst_llm_t *llm, long timeout_ms, char *err, size_t errlen);

/* rough token estimate for text without usage (~4 bytes per token) */
long mst_llm_estimate_tokens(const char *text, size_t len);

/* call once per process before threads start (curl_global_init) */
int mst_llm_global_init(void);

#endif /* _MST_LLM_H_INCLUDED_ */
