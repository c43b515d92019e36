/*
 * Copyright (C) Maestro authors
 */

/*
 * The types of an LLM call, shared by the gateway (mst_gateway.h), the
 * host services (a plugin's llm_chat, mst_host.c), the offline provider
 * (mst_offline.h) and the nginx worker's engine that makes the calls on
 * its event loop (ngx_http_maestro_engine.c, speaking the OpenAI wire of
 * mst_oai.h): one provider's configuration, and the contract of a call.
 *
 * A call's response is always an OpenAI chat.completion object:
 *   { "id", "object": "chat.completion", "created", "model",
 *     "choices": [ { "index": 0, "message": { "role": "assistant",
 *                    "content": "..." }, "finish_reason": "stop" } ],
 *     "usage": { "prompt_tokens", "completion_tokens", "total_tokens" } }
 * When streaming, text goes to on_chunk as it arrives and the assembled
 * answer is returned in the same shape.
 */

#ifndef _MST_LLM_H_INCLUDED_
#define _MST_LLM_H_INCLUDED_

#include "mst_common.h"


typedef struct {
    const char  *name;              /* provider name, for logs */
    const char  *base_url;          /* e.g. http://127.0.0.1:9000/v1 */
    const char  *api_key;           /* may be NULL; never logged */
    const char  *ca_file;           /* https: trusted CAs; NULL: system */
    const char  *model;             /* the model it serves, or NULL */
    long         connect_timeout_ms;
    long         timeout_ms;        /* to the first byte of the answer */
    long         idle_timeout_ms;   /* between two reads of it */
    long         total_timeout_ms;  /* the whole request */
    int          max_retries;
    long         backoff_ms;        /* base of the exponential backoff */
} mst_llm_provider_t;

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
    const char         *key_id;     /* a workflow's API key: its tokens
                                       count there; NULL or "": none */
} mst_llm_call_t;

#endif /* _MST_LLM_H_INCLUDED_ */
