/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The prompt guard over whole requests: every text of a request that
 * reaches a model or the store goes through mst_guard_text(), in place.
 *
 *   - a submission: its prompt, and each context file's name (it is
 *     stored) and content;
 *   - an OpenAI body: each message's content, whatever its role (system,
 *     earlier turns, the last user message), as a string or the text of
 *     each part; and an embeddings request's input, a string or an array
 *     of strings (token arrays carry no text to check).
 *
 * Every text gets the whole guard: deny rules, allow rules, redaction.
 * A text the guard changed (normalised or redacted) is replaced in its
 * JSON holder and *changed is set, so the caller knows the bytes it
 * received are no longer what goes on. Blocked: MST_EINVAL, why names the
 * text ("context[0] (\"notes.txt\")", "messages[0] (system)") and the
 * rule; the texts before it may have been replaced already.
 */

#ifndef _MST_GUARD_REQUEST_H_INCLUDED_
#define _MST_GUARD_REQUEST_H_INCLUDED_

#include "mst_guard.h"

/*
 * req: an object with a string "prompt"; context: the submission's
 * context files, [{name, content}] (strings), or NULL.
 */
int mst_guard_submission(const mst_guard_t *g, json_t *req, json_t *context,
    int *changed, char *why, size_t whylen);

/* an OpenAI chat completions or embeddings body */
int mst_guard_openai(const mst_guard_t *g, json_t *body, int *changed,
    char *why, size_t whylen);

#endif /* _MST_GUARD_REQUEST_H_INCLUDED_ */
