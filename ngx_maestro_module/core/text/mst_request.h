/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * A request body, from the bytes a client sent to the request object the
 * admission path goes on with: the decisions the front ends used to make
 * each in its own glue, here once, where unit tests and a fuzzer
 * (tests/fuzz/fuzz_request.c) reach them.
 *
 *   mst_request_parse()       the body: not empty, UTF-8, one JSON
 *                             object (jansson's parser, nesting limited
 *                             to MST_REQUEST_MAX_DEPTH)
 *   mst_request_submission()  a submission (POST /api/v1/workflows, the
 *                             stream endpoint, a WebSocket
 *                             prompt_submission, maestro/<workflow> on
 *                             /v1): prompt, user_id, context, workflow
 *   mst_request_openai()      a /v1 body: its model
 *   mst_request_chat()        a /v1/chat/completions body for a
 *                             workflow: its messages made a submission
 *                             (the last user message is the prompt, the
 *                             others its context)
 *
 * A refusal fills mst_request_error_t: the HTTP status, a stable code
 * (invalid_json, invalid_utf8, missing_field, invalid_field, and on /v1
 * missing_required_parameter, invalid_value), the field at fault for the
 * OpenAI "param", and a message that is valid UTF-8.
 */

#ifndef _MST_REQUEST_H_INCLUDED_
#define _MST_REQUEST_H_INCLUDED_

#include "mst_common.h"
#include "mst_caller.h"

/* deeper JSON is refused: no request needs it, and every later walk of
   the value (guard, dump, graph parse) would pay for it */
#define MST_REQUEST_MAX_DEPTH     64
#define MST_REQUEST_MAX_CONTEXT   64    /* context files of a submission */

typedef struct {
    int          status;            /* HTTP status: 400 */
    const char  *code;              /* stable, for clients */
    const char  *field;             /* the parameter at fault, or NULL */
    char         message[MST_ERRLEN];
} mst_request_error_t;

/* fills *e (a 400; printf-style message); returns MST_EINVAL */
int mst_request_refuse(mst_request_error_t *e, const char *code,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * The n bytes at p as a JSON object (a new reference), or NULL and *e
 * filled: "invalid_json" (empty, not JSON, not an object, nested deeper
 * than MST_REQUEST_MAX_DEPTH) or "invalid_utf8".
 */
json_t *mst_request_parse(const char *p, size_t n, mst_request_error_t *e);

/*
 * A submission body: a non-blank string "prompt"; "user_id", claimed for
 * *who unless the connection fixed its user; "context", a string or an
 * array of at most MST_REQUEST_MAX_CONTEXT strings or {name, content}
 * objects, returned in *context as [{name, content}] (a new reference);
 * "workflow", a name or a graph object. MST_OK, or MST_EINVAL and *e.
 */
int mst_request_submission(json_t *body, mst_caller_t *who,
    json_t **context, mst_request_error_t *e);

/*
 * An OpenAI body (chat completions, embeddings): its "model", a string;
 * NULL and *e filled ("missing_required_parameter") without one, or when
 * a typed field (stream, temperature, n, stop, max_tokens, ...) has the
 * wrong type ("invalid_type") or is out of OpenAI's range
 * ("invalid_value"); e->field names it.
 */
const char *mst_request_openai(json_t *body, mst_request_error_t *e);

/*
 * The text of an OpenAI message content (a string, or the "text" of
 * each part joined by newlines): a new reference, or NULL.
 */
json_t *mst_request_chat_text(json_t *content);

/*
 * The text of the last user message of messages (a new reference, or
 * NULL), and its position + 1 in *at (0: none).
 */
json_t *mst_request_chat_prompt(json_t *messages, size_t *at);

/*
 * A /v1/chat/completions body for workflow: a non-empty "messages" with
 * a user message that has text. *req: the submission
 * {prompt, workflow, context}, each other message with text a context
 * file named "<role>-<n>". MST_OK, or MST_EINVAL and *e.
 */
int mst_request_chat(json_t *body, const char *workflow, json_t **req,
    mst_request_error_t *e);

#endif /* _MST_REQUEST_H_INCLUDED_ */
