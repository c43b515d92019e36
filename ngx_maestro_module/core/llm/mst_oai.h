/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The OpenAI wire, in one place and without nginx: what the gateway's
 * engine (ngx_http_maestro_engine.c, on the event loop) needs to know
 * about the chat-completions and embeddings protocol. The engine moves
 * bytes; every decision about what they mean is made here, where unit
 * tests and a fuzzer (tests/fuzz/fuzz_oai.c) reach it.
 *
 *  - The request: "model" set to the provider's, and when streaming
 *    stream_options.include_usage forced, so usage is always known.
 *  - The response head: Retry-After (delta-seconds or an HTTP-date) and
 *    whether the body is an event stream.
 *  - The stream: an incremental framer (bytes in pieces of any size, LF
 *    or CRLF, comments and event:/id:/retry: lines skipped, data: lines
 *    of one event joined by LF, a line size limit) that hands over each
 *    event's data; [DONE]; which chunks may carry usage (only those are
 *    parsed, so forwarding a stream stays cheap); a usage-only chunk
 *    (empty choices) told apart.
 *  - The answer for a plugin: a streamed answer assembled into one
 *    chat.completion, or a whole one completed (id, created, model,
 *    usage estimated at ~4 bytes per token when the provider gave none).
 *  - An attempt's outcome: the answer, retry the same provider (after a
 *    full-jitter exponential backoff or Retry-After), the next provider
 *    at once, or the client's fault (400, 413, 422: passed back).
 *  - Error excerpts of a provider's body, printable, with the API key
 *    masked.
 *
 * Nothing here allocates per byte: the framer keeps one line buffer and
 * one event buffer, reused.
 */

#ifndef _MST_OAI_H_INCLUDED_
#define _MST_OAI_H_INCLUDED_

#include <time.h>

#include "mst_common.h"


#define MST_OAI_LINE_MAX        (4 * 1024 * 1024)   /* one SSE line/event */
#define MST_OAI_BODY_MAX        (16 * 1024 * 1024)  /* a whole answer */
#define MST_OAI_BACKOFF_MAX_MS  30000               /* one wait, at most */
#define MST_OAI_EXCERPT         160                 /* bytes of a message */


/* one growable byte buffer (NUL-terminated past len) */
typedef struct {
    char                 *data;
    size_t                len;
    size_t                cap;
} mst_oai_buf_t;

/* MST_OK; MST_EINVAL past max bytes; MST_ENOMEM */
int mst_oai_buf_add(mst_oai_buf_t *b, const char *p, size_t n, size_t max);
void mst_oai_buf_free(mst_oai_buf_t *b);


/* ---- the request ---- */

/*
 * Rewrites body for a provider: "model" set to model (NULL: as it is);
 * streaming: "stream": true and stream_options.include_usage forced;
 * else a "stream" other than false becomes false. MST_OK or MST_ENOMEM.
 */
int mst_oai_rewrite(json_t *body, const char *model, int stream);


/* ---- the response head ---- */

typedef struct {
    long                  retry_after_ms;   /* -1: none */
    unsigned              sse:1;            /* text/event-stream */
} mst_oai_head_t;

void mst_oai_head_init(mst_oai_head_t *h);

/*
 * One header line as the clients give it ("Name: value\r\n"; a status
 * line "HTTP/..." starts a new head, after a 1xx). now: the wall clock,
 * for an HTTP-date.
 */
void mst_oai_header(mst_oai_head_t *h, const char *line, size_t n,
    time_t now);

/* Retry-After's value: the wait in ms (0 for a date past), or -1 */
long mst_oai_retry_after(const char *v, size_t n, time_t now);


/* ---- the event stream ---- */

/* an event's data (not NUL-terminated); non-zero stops the feed */
typedef int (*mst_oai_event_pt)(void *arg, const char *data, size_t n);

typedef struct {
    mst_oai_buf_t         line;     /* a line not yet ended */
    mst_oai_buf_t         data;     /* the event's data so far */
    size_t                max;      /* per line and per event */
    unsigned              has_data:1;
    unsigned              error:1;  /* "event: error" */
} mst_oai_sse_t;

/* max 0: MST_OAI_LINE_MAX */
void mst_oai_sse_init(mst_oai_sse_t *s, size_t max);
void mst_oai_sse_reset(mst_oai_sse_t *s);
void mst_oai_sse_free(mst_oai_sse_t *s);

/*
 * Bytes of the stream, in pieces of any size: each complete event's data
 * goes to on_event. Returns MST_OK, what on_event returned (non-zero), or
 * MST_EINVAL (a line or event over max; s->error is not that) /
 * MST_ENOMEM. An "event: error" event is handed over with s->error set.
 */
int mst_oai_sse_feed(mst_oai_sse_t *s, const char *p, size_t n,
    mst_oai_event_pt on_event, void *arg);

/* the end of the stream: an event it did not end with a blank line */
int mst_oai_sse_end(mst_oai_sse_t *s, mst_oai_event_pt on_event, void *arg);


/* ---- usage and chunks ---- */

typedef struct {
    long                  prompt_tokens;
    long                  completion_tokens;
    unsigned              known:1;          /* the provider said */
} mst_oai_usage_t;

#define MST_OAI_BAD         (-1)  /* not a JSON object */
#define MST_OAI_CHUNK        0    /* a chunk to pass on */
#define MST_OAI_DONE         1    /* data: [DONE] */
#define MST_OAI_USAGE_ONLY   2    /* usage with "choices": [] */

/*
 * One event's data, for passing on as it came: MST_OAI_*. Every chunk
 * is checked for syntax; only the usage object of one that carries usage
 * is parsed (it then sets *u).
 */
int mst_oai_event(const char *p, size_t n, mst_oai_usage_t *u);

/*
 * A whole (not streamed) answer body: MST_OK when it is a JSON object
 * with "choices" (chat) or "data" (embeddings), its usage in *u if it has
 * one; else MST_EINVAL. root: when not NULL, the parsed body (new ref);
 * when NULL, the body is checked for syntax and only its usage object
 * (the last "usage": {...}) is parsed.
 */
int mst_oai_body(const char *p, size_t n, mst_oai_usage_t *u, json_t **root);

/* rough token estimate for text without usage (~4 bytes per token) */
long mst_oai_estimate_tokens(size_t len);

/*
 * The bytes of text a request gives the model: every message's content
 * (chat), or "input" (embeddings; a token array counts 4 bytes a token)
 */
size_t mst_oai_input_len(const json_t *request);


/* ---- a plugin's answer ---- */

typedef struct {
    mst_oai_buf_t         content;      /* the text so far */
    char                  id[128];
    char                  model[128];
    char                  finish[32];
    json_int_t            created;
    json_t               *usage;
    unsigned              done:1;       /* [DONE] came */
    char                  error[MST_ERRLEN];
} mst_oai_answer_t;

/*
 * One event's data of a streamed answer. *added: how many bytes of
 * content it appended (at the end of a->content). MST_OK; MST_EUPSTREAM
 * (a malformed chunk, an error chunk or event: a->error says which).
 */
int mst_oai_answer_event(mst_oai_answer_t *a, const char *p, size_t n,
    int error_event, size_t *added);

/* whether the stream was complete: [DONE] or a finish_reason */
int mst_oai_answer_complete(const mst_oai_answer_t *a);

/*
 * The assembled chat.completion (new ref, NULL: out of memory); model
 * when the chunks named none; usage estimated from request when the
 * provider gave none.
 */
json_t *mst_oai_answer_json(mst_oai_answer_t *a, json_t *request,
    const char *model);
void mst_oai_answer_free(mst_oai_answer_t *a);

/*
 * A whole chat.completion, completed in place: id, object, created,
 * model (model when it has none), choices, usage (estimated from request
 * and the message when the provider gave none).
 */
void mst_oai_complete(json_t *resp, json_t *request, const char *model);


/* ---- an attempt's outcome ---- */

/* the failures of a provider, as maestro_llm_fallback on= names them */
#define MST_FAIL_CONNECT     0x01   /* refused, reset, no answer */
#define MST_FAIL_TIMEOUT     0x02
#define MST_FAIL_429         0x04
#define MST_FAIL_5XX         0x08   /* and other statuses not the client's */
#define MST_FAIL_MALFORMED   0x10   /* bad JSON, not an event stream, ... */
#define MST_FAIL_ALL         0x1f

/* how the transfer ended */
#define MST_OAI_XFER_OK       0     /* a whole response came */
#define MST_OAI_XFER_CONNECT  1     /* refused, reset, cut short */
#define MST_OAI_XFER_TIMEOUT  2

/* what to do next */
#define MST_OAI_ANSWER        0     /* it is the answer */
#define MST_OAI_RETRY         1     /* again on this provider, then next */
#define MST_OAI_NEXT          2     /* the next provider at once */
#define MST_OAI_CLIENT        3     /* the client's: pass it back */

/*
 * xfer: MST_OAI_XFER_*; status: the HTTP status (0: none); malformed: a
 * 2xx whose body is not an answer. *fail: MST_FAIL_* of a provider's
 * failure, else 0.
 */
int mst_oai_classify(int xfer, long status, int malformed, unsigned *fail);


/* ---- backoff ---- */

/* a random 64-bit number (tests inject their own) */
typedef uint64_t (*mst_oai_random_pt)(void *arg);

/* xorshift64*, per thread, seeded from getrandom(): not cryptographic */
uint64_t mst_oai_random(void *arg);

/*
 * The wait before retry number attempt + 1 (attempt 0: the first
 * retry): Retry-After when the provider sent one (retry_after_ms >= 0),
 * else full jitter, random(0, min(MST_OAI_BACKOFF_MAX_MS,
 * base_ms * 2^attempt)). left_ms: the time to the caller's deadline (-1:
 * none); the jitter is cut to it. -1: do not wait, go on (a Retry-After
 * over MST_OAI_BACKOFF_MAX_MS or past the deadline, or no time left).
 * rnd NULL: mst_oai_random.
 */
long mst_oai_backoff(unsigned attempt, long base_ms, long retry_after_ms,
    long left_ms, mst_oai_random_pt rnd, void *arg);


/* ---- errors ---- */

/*
 * The provider's error message (error.message, error or message of a
 * JSON body), else the start of the body: printable, at most
 * MST_OAI_EXCERPT bytes cut on a character, "..." when cut, key (may be
 * NULL) masked as "[redacted]".
 */
void mst_oai_excerpt(const char *body, size_t len, const char *key,
    char *out, size_t outlen);

/* every occurrence of key in the NUL-terminated s, as "[redacted]" */
void mst_oai_mask(char *s, size_t size, const char *key);

#endif /* _MST_OAI_H_INCLUDED_ */
