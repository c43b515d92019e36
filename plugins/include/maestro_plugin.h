/*
 * Copyright (C) Maestro authors
 */

/**
 * @file maestro_plugin.h
 * @brief Maestro agent plugin ABI.
 *
 * @mainpage Maestro agent plugins
 *
 * An agent plugin is a shared object that Maestro loads with dlopen() at
 * configuration time (`nginx -t` already loads it). It exports exactly one
 * symbol, #maestro_plugin_entry, which returns a static descriptor
 * (#maestro_plugin_t). A plugin never links against Maestro: everything it
 * may ask of the host comes through the function table #maestro_host_t that
 * the host passes to every call.
 *
 * A plugin is written as plain blocking C. Its run() executes on a thread of
 * an nginx thread pool, never on the event loop, so it may sleep, call the
 * LLM, make HTTP requests and wait for them.
 *
 * @section lifecycle Lifecycle
 *
 *  -# The host calls maestro_plugin_entry(MAESTRO_PLUGIN_ABI_VERSION). A
 *     plugin built for another ABI returns NULL or a descriptor whose
 *     abi_version differs; the host refuses it and `nginx -t` fails, naming
 *     the file.
 *  -# For every `maestro_agent` directive that names the plugin, the host
 *     calls init() once with the agent's JSON configuration, in the nginx
 *     master process at configuration time. A non-zero return fails the
 *     configuration with the message the plugin wrote to @a err.
 *  -# run() is called once per workflow step, on a pool thread, possibly
 *     on several threads at once for the same agent (parallel fan-out).
 *  -# fini() is called when the configuration is released (reload, exit).
 *
 * @section caveats Caveats
 *
 *  - Threads: run() may be called concurrently. The @a agent data returned
 *    by init() is shared by all calls and must be treated as read-only (or
 *    protected by the plugin). Every host function is thread-safe.
 *  - Ownership: strings passed to the plugin are owned by the host and valid
 *    only until run() returns. Strings the host returns to the plugin
 *    (e.g. from llm_chat()) are owned by the plugin and released with
 *    maestro_host_t::free().
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
 *    plugin reached through http()).
 *  - JSON: inputs and outputs cross the ABI as UTF-8 JSON text, so a plugin
 *    is free to use any JSON library (the shipped ones use jansson).
 */

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
/** storage failure (disk, LMDB map full: see maestro_store_map_size) */
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
 *  function. Valid only during that run() call. */
typedef struct maestro_ctx_s  maestro_ctx_t;

/** @brief Streaming callback for maestro_host_t::llm_chat().
 *  @param[in] text   a UTF-8 fragment of the assistant's answer
 *  @param[in] len    its length in bytes
 *  @param[in] arg    the @a arg given to llm_chat()
 *  @return 0 to go on, non-zero to stop the stream early. */
typedef int (*maestro_llm_chunk_pt)(const char *text, size_t len, void *arg);

/** @brief An HTTP request made by maestro_host_t::http(). */
typedef struct {
    const char         *method;     /**< "GET", "POST", ... */
    const char         *url;        /**< absolute http:// or https:// URL */
    const char *const  *headers;    /**< NULL-terminated "Name: value" list,
                                         or NULL */
    const char         *body;       /**< request body or NULL */
    size_t              body_len;
    long                timeout_ms; /**< 0: the step's remaining time */
} maestro_http_request_t;

/** @brief The answer to maestro_http_request_t. Release @a body with
 *  maestro_host_t::free(). */
typedef struct {
    long                status;     /**< HTTP status code */
    char               *body;       /**< NUL-terminated response body */
    size_t              body_len;
    char               *content_type; /**< or NULL; release with free() */
} maestro_http_response_t;

/**
 * @brief Services the host offers to a plugin.
 *
 * Check @a abi_version and @a size before using a function added after
 * ABI 1; functions are only ever appended.
 */
typedef struct {
    uint32_t    abi_version;    /**< MAESTRO_PLUGIN_ABI_VERSION of the host */
    uint32_t    size;           /**< sizeof(maestro_host_t) of the host */

    /** @brief Write a log line: to nginx's error.log, to the agent's log
     *  (GET /api/v1/agents/{name}/logs) and as a `log_entry` event of the
     *  workflow.
     *  @param[in] ctx    the step context (NULL in init(): error.log only)
     *  @param[in] level  one of MAESTRO_LOG_*
     *  @param[in] fmt    printf-style format */
    void        (*log)(maestro_ctx_t *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
                __attribute__((format(printf, 3, 4)))
#endif
                ;

    /** @brief Emit a custom event on the workflow's event stream.
     *  @param[in] ctx    the step context
     *  @param[in] event  event name ([a-z_]{1,32}); "done" and "error" are
     *                    the host's (they end SSE, WebSocket and /v1
     *                    streams) and are refused
     *  @param[in] json   event data, a JSON object as text
     *  @return 0, #MAESTRO_EINVAL (bad or reserved name, bad JSON),
     *          #MAESTRO_ECANCELLED */
    int         (*emit)(maestro_ctx_t *ctx, const char *event,
                        const char *json);

    /** @brief Stream a fragment of generated text as a `token` event.
     *  @return 0 or #MAESTRO_ECANCELLED */
    int         (*token)(maestro_ctx_t *ctx, const char *text, size_t len);

    /** @brief Report the step's progress, as an `agent_status` event.
     *  @param[in] fraction      0.0 .. 1.0 of this step
     *  @param[in] current_task  short human-readable text, or NULL */
    void        (*progress)(maestro_ctx_t *ctx, double fraction,
                            const char *current_task);

    /** @brief Set the step's output. The output is stored in the workflow
     *  state under `outputs.<node>` (for a `foreach` node, at the item's
     *  index). Calling it again replaces the previous output.
     *  @param[in] json  any JSON value as text
     *  @return 0 or #MAESTRO_EINVAL */
    int         (*set_output)(maestro_ctx_t *ctx, const char *json);

    /** @brief Set a top-level key of the workflow state, e.g. "plan".
     *  Applied atomically with the step's checkpoint. Keys "prompt",
     *  "context" and "outputs" are reserved.
     *  @return 0 or #MAESTRO_EINVAL */
    int         (*set_state)(maestro_ctx_t *ctx, const char *key,
                             const char *json);

    /** @brief Add token usage to the workflow's accounting. */
    void        (*add_tokens)(maestro_ctx_t *ctx, long prompt_tokens,
                              long completion_tokens);

    /** @brief Whether the step should stop: the workflow was cancelled,
     *  its deadline passed, or the host abandoned the step.
     *  @return non-zero when the plugin should return #MAESTRO_ECANCELLED */
    int         (*cancelled)(maestro_ctx_t *ctx);

    /** @brief Milliseconds left before the step's deadline (>= 0). */
    int64_t     (*remaining_ms)(maestro_ctx_t *ctx);

    /** @brief A chat completion through the host's LLM client (providers,
     *  retries and fallbacks are the host's; with no provider configured the
     *  offline provider answers, with model "maestro-offline").
     *  @param[in]  request  an OpenAI chat-completions request body as JSON
     *                       text; "model" may be omitted
     *  @param[in]  on_chunk streaming callback, or NULL for a single answer
     *  @param[in]  arg      passed to @a on_chunk
     *  @param[out] response the OpenAI chat.completion response as JSON text
     *                       (also when streaming: the assembled answer);
     *                       release with free()
     *  @return 0, #MAESTRO_ELLM, #MAESTRO_ETIMEDOUT, #MAESTRO_ECANCELLED,
     *          #MAESTRO_EINVAL */
    int         (*llm_chat)(maestro_ctx_t *ctx, const char *request,
                            maestro_llm_chunk_pt on_chunk, void *arg,
                            char **response);

    /** @brief Make an HTTP request (blocking; bounded by the deadline).
     *  @return 0 (any HTTP status), #MAESTRO_EHTTP, #MAESTRO_ETIMEDOUT */
    int         (*http)(maestro_ctx_t *ctx, const maestro_http_request_t *req,
                        maestro_http_response_t *resp);

    /** @brief Read from the agent's own persistent key-value namespace.
     *  @param[out] value  NUL-terminated copy; release with free()
     *  @return 0, #MAESTRO_ENOTFOUND, #MAESTRO_EIO */
    int         (*memory_get)(maestro_ctx_t *ctx, const char *key,
                              char **value, size_t *len);

    /** @brief Write to the agent's own persistent key-value namespace.
     *  @return 0, #MAESTRO_EINVAL, #MAESTRO_EIO */
    int         (*memory_put)(maestro_ctx_t *ctx, const char *key,
                              const char *value, size_t len);

    /** @brief Describe a MAESTRO_* return code. */
    const char *(*strerror)(int rc);

    /** @brief Release memory the host handed to the plugin. */
    void        (*free)(void *p);

    /** @brief Whether llm_chat() reaches a real provider. When it does not,
     *  the offline provider answers: deterministic and extractive, useful
     *  for an answer, not for planning or judging, so a plugin may prefer
     *  its own rules instead of calling it.
     *  @return non-zero when a provider is configured */
    int         (*llm_online)(maestro_ctx_t *ctx);
} maestro_host_t;

/**
 * @brief The descriptor a plugin returns from #maestro_plugin_entry.
 */
typedef struct {
    uint32_t     abi_version;   /**< must be MAESTRO_PLUGIN_ABI_VERSION */
    const char  *name;          /**< plugin name, e.g. "planner" */
    const char  *version;       /**< plugin version, e.g. "1.0.0" */
    const char  *description;   /**< one line */
    const char  *capabilities;  /**< JSON array text, e.g. "[\"plan\"]" */

    /** @brief Configure one agent. Runs in the master at config time.
     *  @param[in]  host     the host's services (log with ctx NULL only)
     *  @param[in]  config   the agent's JSON configuration ("{}" if none)
     *  @param[out] agent    the plugin's per-agent data, passed to run()
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
     *                    where "item"/"index" are present for foreach nodes
     *  @return 0 on success; a MAESTRO_E* code on failure (retried by the
     *          step's retry policy unless #MAESTRO_EPERMANENT or
     *          #MAESTRO_ECANCELLED). */
    int        (*run)(maestro_ctx_t *ctx, const maestro_host_t *host,
                      void *agent, const char *input);

    /** @brief Release what init() allocated. May be NULL. */
    void       (*fini)(void *agent);
} maestro_plugin_t;

/**
 * @brief The plugin's entry point; the only symbol it must export.
 * @param[in] host_abi_version  MAESTRO_PLUGIN_ABI_VERSION of the host
 * @return the plugin's static descriptor, or NULL if the plugin cannot
 *         work with that ABI.
 */
typedef const maestro_plugin_t *(*maestro_plugin_entry_pt)(
    uint32_t host_abi_version);

#if defined(__GNUC__)
#define MAESTRO_EXPORT  __attribute__((visibility("default")))
#else
#define MAESTRO_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif /* _MAESTRO_PLUGIN_H_INCLUDED_ */
