/*
 * Copyright (C) Maestro authors
 */

/**
 * @file maestro_plugin.h
 * @brief Maestro agent plugin ABI: the one header a plugin needs.
 *
 * @mainpage Maestro agent plugins
 *
 * An agent plugin is a shared object that Maestro loads with dlopen() at
 * configuration time (`nginx -t` already loads it). It exports exactly one
 * symbol, maestro_plugin_entry(), which returns a static descriptor
 * (#maestro_plugin_t). A plugin never links against Maestro: everything it
 * may ask of the host comes through the function table #maestro_host_t
 * that the host passes to every call.
 *
 * A plugin is written as plain blocking C. Its run() executes on a thread
 * of an nginx thread pool, never on the event loop, so it may sleep, call
 * the LLM, make HTTP requests and wait for them.
 *
 * @section example A complete plugin
 *
 * The plugin between MAESTRO_PLUGIN_EXAMPLE_BEGIN and _END right after
 * this comment (in an `#if 0` block, so that it may hold comments) is
 * complete: save it as hello.c and build it with
 *
 *     cc -shared -fPIC -fvisibility=hidden -I<maestro>/plugins/include \
 *         -o hello.so hello.c -ljansson
 *
 * then configure it and use it in a workflow graph:
 *
 *     maestro_plugins_dir /path/to/plugins;
 *     maestro_agent hello hello.so '{"greeting": "Answer kindly."}';
 *
 *     {"name": "hi", "entry": "h", "nodes": {"h": {"agent": "hello"}},
 *      "edges": []}
 *
 * A unit test (tests/unit/test_plugin.c, test_header_example) extracts
 * the example from this header, builds it with the line above and runs
 * it, so the example always builds and works.
 *
 * @section lifecycle Lifecycle
 *
 *  -# The host calls maestro_plugin_entry(MAESTRO_PLUGIN_ABI_VERSION). A
 *     plugin built for another ABI returns NULL (as the example does) or a
 *     descriptor whose abi_version differs; the host refuses it and
 *     `nginx -t` fails with a message that names the file.
 *  -# For every `maestro_agent` directive that names the plugin, the host
 *     calls init() once with the agent's JSON configuration, in the nginx
 *     master process at configuration time. A non-zero return fails the
 *     configuration with the message the plugin wrote to @a err. The
 *     worker processes are forked after it: each has its own copy of what
 *     init() returned.
 *  -# run() is called once per workflow step, on a pool thread of a
 *     worker, possibly on several threads at once for the same agent
 *     (parallel fan-out), and again for a retried step.
 *  -# fini() is called when the configuration is released (reload,
 *     exit). A process that exits may not call it.
 *
 * @section caveats Caveats
 *
 *  - Threads: run() may be called concurrently. The @a agent data returned
 *    by init() is shared by all calls and must be treated as read-only (or
 *    protected by the plugin). Every host function is thread-safe.
 *  - The step context (#maestro_ctx_t) is valid from the moment run() is
 *    called until it returns, on the thread that runs it and on threads
 *    the plugin starts during run() and joins before it returns; such
 *    threads may call host functions at the same time (the host guards
 *    the context's state with a mutex). Never keep it after run()
 *    returns, never pass it to another step. In init() there is no context: only
 *    log(NULL, ...) and strerror() do anything there.
 *  - Which free: memory the host hands out (llm_chat()'s response,
 *    memory_get()'s value, http()'s body and content_type) is released
 *    with maestro_host_t::free(), never with free() of the plugin's libc
 *    (a plugin may be linked against another allocator). Memory the plugin
 *    got from jansson (json_dumps()) is released with free(), as jansson
 *    says: the host and the plugins share one libjansson, and the host's
 *    allocator for it hands out plain malloc() blocks. A plugin must not
 *    call json_set_alloc_funcs().
 *  - Ownership: strings passed to the plugin (@a config, @a input) are
 *    owned by the host and valid only until the call returns. Strings the
 *    plugin passes to the host are copied before the call returns.
 *  - What is kept when a step fails: events, log lines and token counts
 *    are written in batches during the step and with its end, whatever
 *    run() returns; set_output() and set_state() go in only when run()
 *    returns 0. memory_put() is not part of the step: it is committed at
 *    once and stays, also when the step then fails, is retried or its
 *    worker dies; make it idempotent.
 *  - Fork: init() runs in the master before worker processes fork. Do not
 *    create threads or open sockets in init(); do it lazily in run().
 *  - Cancellation is cooperative: a long run() should poll cancelled()
 *    and return #MAESTRO_ECANCELLED when it is true. A step that outlives
 *    its deadline is abandoned by the host: its output is discarded.
 *  - A crash (SIGSEGV, abort) in a plugin kills the nginx worker. The
 *    workflow is resumed by another worker from its last checkpoint; a step
 *    that kills its worker more often than its retry policy allows fails
 *    the workflow instead of crashing workers forever.
 *  - Accounting: the host counts the tokens of every llm_chat() call
 *    itself; add_tokens() is for usage the host cannot see (a model the
 *    plugin reached through http()). The step's "memory_bytes" metric is
 *    the peak of what run() held through jansson on its thread.
 *  - Event names "done" and "error" are the host's: SSE, WebSocket and
 *    the OpenAI facade end a stream at them, so emit() refuses them. The
 *    host also emits "token", "log_entry", "agent_status" and
 *    "workflow_update"; use token(), log() and progress() for those.
 *  - JSON: inputs and outputs cross the ABI as UTF-8 JSON text, so a plugin
 *    is free to use any JSON library (the shipped ones use jansson).
 */

#if 0   /* MAESTRO_PLUGIN_EXAMPLE_BEGIN */

/*
 * hello.c: an agent that answers the workflow's prompt through the
 * host's LLM, streaming the answer as it comes, with an instruction from
 * its configuration: {"greeting": "..."} (default "Say hello.").
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <maestro_plugin.h>


typedef struct {
    char                  *greeting;
} hello_agent_t;

typedef struct {
    maestro_ctx_t         *ctx;
    const maestro_host_t  *host;
} hello_stream_t;


static int hello_init(const maestro_host_t *host, const char *config,
    void **agent, char *err, size_t errlen);
static int hello_run(maestro_ctx_t *ctx, const maestro_host_t *host,
    void *agent, const char *input);
static void hello_fini(void *agent);


static const maestro_plugin_t  hello_plugin = {
    MAESTRO_PLUGIN_ABI_VERSION,
    "hello",
    "1.0.0",
    "answers the prompt through the LLM",
    "[\"llm\"]",
    hello_init,
    hello_run,
    hello_fini
};


MAESTRO_EXPORT const maestro_plugin_t *
maestro_plugin_entry(uint32_t host_abi_version)
{
    /* built for another ABI: say so, and nginx -t names this file */
    if (host_abi_version != MAESTRO_PLUGIN_ABI_VERSION) {
        return NULL;
    }

    return &hello_plugin;
}


/* in the master, at configuration time: no ctx, log(NULL, ...) only */
static int
hello_init(const maestro_host_t *host, const char *config, void **agent,
    char *err, size_t errlen)
{
    json_t         *conf, *v;
    hello_agent_t  *a;

    conf = json_loads(config, 0, NULL);
    v = json_object_get(conf, "greeting");

    if (!json_is_object(conf) || (v != NULL && !json_is_string(v))) {
        snprintf(err, errlen, "hello: \"greeting\" must be a string");
        json_decref(conf);
        return MAESTRO_EINVAL;
    }

    a = malloc(sizeof(hello_agent_t));
    if (a != NULL) {
        a->greeting = strdup(v ? json_string_value(v) : "Say hello.");
    }

    json_decref(conf);

    if (a == NULL || a->greeting == NULL) {
        free(a);
        snprintf(err, errlen, "hello: out of memory");
        return MAESTRO_ENOMEM;
    }

    *agent = a;

    return MAESTRO_OK;
}


/* each fragment of the answer, on the thread that called llm_chat() */
static int
hello_chunk(const char *text, size_t len, void *arg)
{
    hello_stream_t  *s = arg;

    /* non-zero stops the stream: the step was cancelled */
    return s->host->token(s->ctx, text, len) != MAESTRO_OK;
}


/* on a pool thread, maybe on several at once: agent is read-only */
static int
hello_run(maestro_ctx_t *ctx, const maestro_host_t *host, void *agent,
    const char *input)
{
    int             rc;
    char           *request, *response, *output;
    json_t         *in, *req, *resp, *out;
    const char     *prompt, *answer;
    hello_agent_t  *a = agent;
    hello_stream_t  s;

    in = json_loads(input, 0, NULL);
    prompt = json_string_value(json_object_get(json_object_get(in, "state"),
                                               "prompt"));
    if (prompt == NULL) {
        json_decref(in);
        host->log(ctx, MAESTRO_LOG_ERROR, "hello: no prompt");
        return MAESTRO_EPERMANENT;      /* a retry would not help */
    }

    req = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "messages",
                    "role", "system", "content", a->greeting,
                    "role", "user", "content", prompt);
    json_decref(in);

    request = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);

    if (request == NULL) {
        return MAESTRO_ENOMEM;
    }

    if (host->cancelled(ctx)) {
        free(request);
        return MAESTRO_ECANCELLED;
    }

    host->progress(ctx, 0.1, "asking the LLM");

    s.ctx = ctx;
    s.host = host;

    rc = host->llm_chat(ctx, request, hello_chunk, &s, &response);
    free(request);                      /* jansson's: free() */

    if (rc != MAESTRO_OK) {
        host->log(ctx, MAESTRO_LOG_WARN, "hello: llm_chat() failed: %s",
                  host->strerror(rc));
        return rc;                      /* retried by the node's policy */
    }

    resp = json_loads(response, 0, NULL);
    host->free(response);               /* the host's: host->free() */

    answer = json_string_value(json_object_get(json_object_get(
        json_array_get(json_object_get(resp, "choices"), 0), "message"),
        "content"));

    out = json_pack("{s:s}", "content", answer ? answer : "");
    json_decref(resp);

    output = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);

    if (output == NULL) {
        return MAESTRO_ENOMEM;
    }

    rc = host->set_output(ctx, output);
    free(output);

    host->progress(ctx, 1.0, "answered");

    return rc;
}


static void
hello_fini(void *agent)
{
    hello_agent_t  *a = agent;

    free(a->greeting);
    free(a);
}

#endif  /* MAESTRO_PLUGIN_EXAMPLE_END */


#ifndef _MAESTRO_PLUGIN_H_INCLUDED_
#define _MAESTRO_PLUGIN_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The ABI version this header describes. Bumped on any change of
 *  #maestro_plugin_t or an incompatible change of #maestro_host_t. */
#define MAESTRO_PLUGIN_ABI_VERSION  1

/** @brief Name of the single symbol a plugin exports. */
#define MAESTRO_PLUGIN_ENTRY        "maestro_plugin_entry"

/** @defgroup errors Return codes
 *  Host functions and plugin callbacks return 0 on success or one of these
 *  negative codes. maestro_host_t::strerror() describes them.
 *  @{ */
#define MAESTRO_OK              0
/** generic failure */
#define MAESTRO_ERROR       (-30900)
/** invalid argument (bad JSON, NULL where a value is required) */
#define MAESTRO_EINVAL      (-30901)
/** out of memory */
#define MAESTRO_ENOMEM      (-30902)
/** the workflow was cancelled or the step was abandoned */
#define MAESTRO_ECANCELLED  (-30903)
/** the step deadline passed, or a network call timed out */
#define MAESTRO_ETIMEDOUT   (-30904)
/** the key was not found */
#define MAESTRO_ENOTFOUND   (-30905)
/** storage failure (disk, or the LMDB map is full: raise the
 *  maestro_store_size directive) */
#define MAESTRO_EIO         (-30906)
/** the LLM provider failed (after the host's retries and fallbacks) */
#define MAESTRO_ELLM        (-30907)
/** an HTTP request failed at the transport level */
#define MAESTRO_EHTTP       (-30908)
/** the step asks not to be retried (permanent failure) */
#define MAESTRO_EPERMANENT  (-30909)
/** @} */

/** @defgroup levels Log levels for maestro_host_t::log()
 *  @{ */
#define MAESTRO_LOG_DEBUG   0
#define MAESTRO_LOG_INFO    1
#define MAESTRO_LOG_WARN    2
#define MAESTRO_LOG_ERROR   3
/** @} */

/** @brief Opaque per-step context, passed to run() and back to every host
 *  function. Valid only during that run() call (see Caveats). */
typedef struct maestro_ctx_s  maestro_ctx_t;

/** @brief Streaming callback for maestro_host_t::llm_chat(). Runs on the
 *  thread that called llm_chat(), inside that call.
 *  @param[in] text   a UTF-8 fragment of the assistant's answer, not
 *                    NUL-terminated, valid only during the callback
 *  @param[in] len    its length in bytes
 *  @param[in] arg    the @a arg given to llm_chat()
 *  @return 0 to go on, non-zero to stop the stream early (llm_chat() then
 *          returns #MAESTRO_ECANCELLED, or 0 when the answer was already
 *          complete). */
typedef int (*maestro_llm_chunk_pt)(const char *text, size_t len, void *arg);

/** @brief An HTTP request made by maestro_host_t::http(). The host copies
 *  what it needs; nothing here must outlive the call. */
typedef struct {
    const char         *method;     /**< "GET", "POST", ...; NULL: "GET" */
    const char         *url;        /**< absolute http:// or https:// URL */
    const char *const  *headers;    /**< NULL-terminated "Name: value" list,
                                         or NULL */
    const char         *body;       /**< request body (any bytes) or NULL */
    size_t              body_len;   /**< bytes of @a body */
    long                timeout_ms; /**< 0: the step's remaining time; more
                                         than that is cut to it */
} maestro_http_request_t;

/** @brief The answer to a #maestro_http_request_t, filled by http() when
 *  it returns 0; release @a body and @a content_type with
 *  maestro_host_t::free(). */
typedef struct {
    long                status;     /**< HTTP status code */
    char               *body;       /**< NUL-terminated response body ("" when
                                         empty; at most 64 MB) */
    size_t              body_len;   /**< bytes of @a body, without the NUL */
    char               *content_type; /**< the Content-Type, or NULL */
} maestro_http_response_t;

/**
 * @brief Services the host offers to a plugin.
 *
 * Check @a abi_version and @a size before using a function added after
 * ABI 1; functions are only ever appended. Every function may be called
 * from any thread that may use the context (see Caveats); with a NULL
 * @a ctx, functions that return a code return #MAESTRO_EINVAL and the
 * others do nothing (log() writes to stderr).
 */
typedef struct {
    uint32_t    abi_version;    /**< MAESTRO_PLUGIN_ABI_VERSION of the host */
    uint32_t    size;           /**< sizeof(maestro_host_t) of the host */

    /** @brief Write a log line: to nginx's error.log (prefixed with the
     *  workflow id and the node), to the agent's log (the last
     *  maestro_agent_log_size lines, GET /api/v1/agents/{name}/logs) and
     *  as a `log_entry` event of the workflow.
     *  @param[in] ctx    the step context; NULL (in init()): to stderr
     *                    only, which `nginx -t` and the startup show
     *  @param[in] level  one of MAESTRO_LOG_*; others count as INFO
     *  @param[in] fmt    printf-style format; the line is cut at 1023
     *                    bytes, and one that is not valid UTF-8 is
     *                    replaced in the event and the agent's log */
    void        (*log)(maestro_ctx_t *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
                __attribute__((format(printf, 3, 4)))
#endif
                ;

    /** @brief Emit a custom event on the workflow's event stream (SSE,
     *  WebSocket, GET .../events). Events are written in batches, at most
     *  every maestro_flush_interval and with the step's end.
     *  @param[in] ctx    the step context
     *  @param[in] event  event name ([a-z_]{1,32}); "done" and "error" are
     *                    the host's (they end SSE, WebSocket and /v1
     *                    streams) and are refused
     *  @param[in] json   event data, a JSON object as UTF-8 text; the host
     *                    adds "ts" (ms since the epoch) when it is absent
     *  @return 0, #MAESTRO_EINVAL (bad or reserved name, bad JSON),
     *          #MAESTRO_ECANCELLED (the step should stop: see cancelled();
     *          the event is dropped) */
    int         (*emit)(maestro_ctx_t *ctx, const char *event,
                        const char *json);

    /** @brief Stream a fragment of generated text as a `token` event
     *  ({"agent", "node", "text"}). Fragments of one batch are merged.
     *  @param[in] ctx   the step context
     *  @param[in] text  UTF-8 text, not necessarily NUL-terminated; a
     *                   fragment that is not valid UTF-8 (cut inside a
     *                   character) is sent as U+FFFD instead
     *  @param[in] len   bytes of @a text; 0 sends nothing
     *  @return 0, #MAESTRO_EINVAL (@a text NULL), #MAESTRO_ECANCELLED (the
     *          step should stop; nothing is sent) */
    int         (*token)(maestro_ctx_t *ctx, const char *text, size_t len);

    /** @brief Report the step's progress, as an `agent_status` event at the
     *  next batch.
     *  @param[in] ctx           the step context
     *  @param[in] fraction      0.0 .. 1.0 of this step (clamped; NaN is 0)
     *  @param[in] current_task  short UTF-8 text (cut at 199 bytes; invalid
     *                           UTF-8 is ignored), or NULL to keep the
     *                           previous one */
    void        (*progress)(maestro_ctx_t *ctx, double fraction,
                            const char *current_task);

    /** @brief Set the step's output. The output is stored in the workflow
     *  state under `outputs.<node>` (for a `foreach` node, at the item's
     *  index) when run() returns 0. Calling it again replaces the
     *  previous output.
     *  @param[in] ctx   the step context
     *  @param[in] json  any JSON value as UTF-8 text
     *  @return 0 or #MAESTRO_EINVAL (NULL or bad JSON) */
    int         (*set_output)(maestro_ctx_t *ctx, const char *json);

    /** @brief Set a top-level key of the workflow state, e.g. "plan".
     *  Applied atomically with the step's checkpoint when run() returns 0.
     *  @param[in] ctx   the step context
     *  @param[in] key   the key: not empty, not "prompt", "context" or
     *                   "outputs" (the host's)
     *  @param[in] json  any JSON value as UTF-8 text
     *  @return 0 or #MAESTRO_EINVAL (reserved or empty key, bad JSON) */
    int         (*set_state)(maestro_ctx_t *ctx, const char *key,
                             const char *json);

    /** @brief Add token usage that the host cannot see (llm_chat() is
     *  counted by the host already) to the workflow's and the agent's
     *  "tokens". Counted whatever run() returns; no cost is computed (no
     *  model is known).
     *  @param[in] ctx                the step context
     *  @param[in] prompt_tokens      >= 0
     *  @param[in] completion_tokens  >= 0; a negative count makes the call
     *                                do nothing */
    void        (*add_tokens)(maestro_ctx_t *ctx, long prompt_tokens,
                              long completion_tokens);

    /** @brief Whether the step should stop: the workflow was cancelled
     *  (checked in the store at most every 100 ms), its deadline passed,
     *  the host abandoned the step, or this worker lost the workflow to
     *  another one.
     *  @param[in] ctx  the step context
     *  @return non-zero when the plugin should return #MAESTRO_ECANCELLED;
     *          0 with a NULL @a ctx */
    int         (*cancelled)(maestro_ctx_t *ctx);

    /** @brief Time left before the step's deadline (the node's timeout_ms
     *  from the start of run()).
     *  @param[in] ctx  the step context
     *  @return milliseconds, >= 0; 0 once the deadline passed or with a
     *          NULL @a ctx */
    int64_t     (*remaining_ms)(maestro_ctx_t *ctx);

    /** @brief A chat completion through the host's LLM client (providers,
     *  retries and fallbacks are the host's; with no provider configured the
     *  offline provider answers, with model "maestro-offline"). Blocks this
     *  thread until the answer, the deadline, or cancellation.
     *  @param[in]  ctx      the step context
     *  @param[in]  request  an OpenAI chat-completions request body as JSON
     *                       text (an object); "model" may be omitted
     *  @param[in]  on_chunk streaming callback, or NULL for a single answer
     *  @param[in]  arg      passed to @a on_chunk
     *  @param[out] response the OpenAI chat.completion response as JSON text
     *                       (also when streaming: the assembled answer);
     *                       release with maestro_host_t::free(). Set to
     *                       NULL first, and left NULL on any error.
     *  @return 0, #MAESTRO_ELLM (the providers failed), #MAESTRO_ETIMEDOUT,
     *          #MAESTRO_ECANCELLED, #MAESTRO_EINVAL (NULL or not a JSON
     *          object), #MAESTRO_ENOMEM. A failure is logged, and becomes
     *          the step's error message if run() returns it. */
    int         (*llm_chat)(maestro_ctx_t *ctx, const char *request,
                            maestro_llm_chunk_pt on_chunk, void *arg,
                            char **response);

    /** @brief Make an HTTP request (blocking; redirects are not followed;
     *  bounded by the smaller of @a req->timeout_ms and remaining_ms()).
     *  @param[in]  ctx   the step context
     *  @param[in]  req   the request
     *  @param[out] resp  the answer, on 0. On any other code it holds
     *                    nothing to free (on #MAESTRO_EINVAL it is not
     *                    written at all).
     *  @return 0 (any HTTP status, 4xx and 5xx included), #MAESTRO_EINVAL
     *          (NULL, or a URL that is not http:// or https://),
     *          #MAESTRO_ETIMEDOUT (no time left, or the transfer timed
     *          out), #MAESTRO_ECANCELLED (cancelled() became true),
     *          #MAESTRO_ENOMEM, #MAESTRO_EHTTP (connection, TLS, a body
     *          over 64 MB; logged as a warning) */
    int         (*http)(maestro_ctx_t *ctx, const maestro_http_request_t *req,
                        maestro_http_response_t *resp);

    /** @brief Read from the agent's own persistent key-value namespace: one
     *  per `maestro_agent` name, shared by all its steps, workflows and
     *  workers, kept across restarts. Sees what is committed: every
     *  memory_put() so far, also of steps running at the same time (there
     *  is no transaction across a get and a put: two steps may both read
     *  n and write n + 1).
     *  @param[in]  ctx    the step context
     *  @param[in]  key    the key; the agent's name + 1 + the key's length
     *                     must be at most 511 bytes
     *  @param[out] value  a NUL-terminated copy (values may hold NUL bytes:
     *                     trust @a len); release with
     *                     maestro_host_t::free()
     *  @param[out] len    its length in bytes, without the NUL; may be NULL
     *  @return 0, #MAESTRO_ENOTFOUND, #MAESTRO_EINVAL (NULL, key too long),
     *          #MAESTRO_ENOMEM, #MAESTRO_EIO */
    int         (*memory_get)(maestro_ctx_t *ctx, const char *key,
                              char **value, size_t *len);

    /** @brief Write to the agent's own persistent key-value namespace. The
     *  write is its own transaction, committed before the call returns: it
     *  does not wait for the step's checkpoint and stays when the step
     *  fails or is retried. It waits for LMDB's single writer (all commits
     *  of all workers), so do not call it per token.
     *  @param[in] ctx    the step context
     *  @param[in] key    a non-empty key (limits as for memory_get())
     *  @param[in] value  the bytes to store (any bytes), not NULL
     *  @param[in] len    bytes of @a value (0: an empty value)
     *  @return 0, #MAESTRO_EINVAL (NULL, empty or too long key),
     *          #MAESTRO_EIO (disk, or the map is full: maestro_store_size) */
    int         (*memory_put)(maestro_ctx_t *ctx, const char *key,
                              const char *value, size_t len);

    /** @brief Describe a MAESTRO_* return code. Any thread, init() too.
     *  @param[in] rc  a MAESTRO_* code
     *  @return a static string, never NULL ("unknown error" for a code
     *          that is not one of these) */
    const char *(*strerror)(int rc);

    /** @brief Release memory the host handed to the plugin: llm_chat()'s
     *  @a response, memory_get()'s @a value, http()'s @a body and
     *  @a content_type. Not for the plugin's own memory, nor for what
     *  jansson returned (see Caveats).
     *  @param[in] p  the pointer, or NULL (nothing is done) */
    void        (*free)(void *p);

    /** @brief Whether llm_chat() reaches a real provider. When it does not,
     *  the offline provider answers: deterministic and extractive, useful
     *  for an answer, not for planning or judging, so a plugin may prefer
     *  its own rules instead of calling it.
     *  @param[in] ctx  the step context
     *  @return non-zero when a provider is configured and available */
    int         (*llm_online)(maestro_ctx_t *ctx);
} maestro_host_t;

/**
 * @brief The descriptor a plugin returns from maestro_plugin_entry(): a
 * static object, which must stay valid while the plugin is loaded.
 */
typedef struct {
    uint32_t     abi_version;   /**< must be MAESTRO_PLUGIN_ABI_VERSION */
    const char  *name;          /**< plugin name, e.g. "planner"; not empty */
    const char  *version;       /**< plugin version, e.g. "1.0.0" */
    const char  *description;   /**< one line (GET /api/v1/agents) */
    const char  *capabilities;  /**< JSON array of strings as text, e.g.
                                     "[\"plan\"]" (an agent whose plugin
                                     can "plan" shows as "planning" while
                                     it runs) */

    /** @brief Configure one agent. Runs in the master at config time.
     *  @param[in]  host     the host's services (log with ctx NULL and
     *                       strerror only)
     *  @param[in]  config   the agent's JSON configuration ("{}" if none)
     *  @param[out] agent    the plugin's per-agent data, passed to run()
     *                       and fini()
     *  @param[out] err      a message for `nginx -t` on failure
     *  @param[in]  errlen   size of @a err
     *  @return 0 or a MAESTRO_E* code. May be NULL. */
    int        (*init)(const maestro_host_t *host, const char *config,
                       void **agent, char *err, size_t errlen);

    /** @brief Run one workflow step. Runs on a pool thread.
     *  @param[in] ctx    the step context
     *  @param[in] host   the host's services
     *  @param[in] agent  what init() returned (NULL if no init)
     *  @param[in] input  JSON object text: {"node", "agent", "config",
     *                    "state", "item", "index", "attempt", "workflow_id"}
     *                    where "state" is the workflow state ("prompt",
     *                    "context", "outputs" and the set_state() keys),
     *                    "item"/"index" are present for foreach nodes and
     *                    "attempt" counts from 1
     *  @return 0 on success; a MAESTRO_E* code on failure, retried by the
     *          node's retry policy, except #MAESTRO_EPERMANENT,
     *          #MAESTRO_EINVAL and #MAESTRO_ECANCELLED (but a
     *          #MAESTRO_ECANCELLED or #MAESTRO_ETIMEDOUT returned at the
     *          deadline is a timeout, retried). */
    int        (*run)(maestro_ctx_t *ctx, const maestro_host_t *host,
                      void *agent, const char *input);

    /** @brief Release what init() allocated. May be NULL.
     *  @param[in] agent  what init() returned */
    void       (*fini)(void *agent);
} maestro_plugin_t;

/**
 * @brief The type of maestro_plugin_entry(), for the host's dlsym().
 */
typedef const maestro_plugin_t *(*maestro_plugin_entry_pt)(
    uint32_t host_abi_version);

/** @brief Marks the entry point exported when the plugin is built with
 *  -fvisibility=hidden (recommended: nothing else need be visible). */
#if defined(__GNUC__)
#define MAESTRO_EXPORT  __attribute__((visibility("default")))
#else
#define MAESTRO_EXPORT
#endif

/**
 * @brief The plugin's entry point; the only symbol it must export (define
 * it with #MAESTRO_EXPORT). Called once, at load, in the master.
 * @param[in] host_abi_version  MAESTRO_PLUGIN_ABI_VERSION of the host
 * @return the plugin's static descriptor, or NULL when the plugin cannot
 *         work with that ABI (the host then refuses the file).
 */
MAESTRO_EXPORT const maestro_plugin_t *maestro_plugin_entry(
    uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* _MAESTRO_PLUGIN_H_INCLUDED_ */
