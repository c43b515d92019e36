/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The offline provider: answers a chat-completions request without a model,
 * deterministically, from what the request carries. It is extractive: the
 * question is the last user message; the sources are the other messages and
 * any sections inside them that start with a line "### Source: NAME" (the
 * llm plugin puts uploaded context files, the plan and previous outputs
 * there). Sentences are ranked by BM25-like overlap with the question's
 * terms (stop words dropped, case-folded), and the answer is an outline of
 * the best ones, each with its source:
 *
 *   [maestro-offline] No LLM provider is configured; this answer is
 *   extracted from the request.
 *   - <sentence> (source: NAME)
 *   ...
 *
 * Never a canned string: with nothing relevant it says which terms it
 * looked for and found nowhere. Model name "maestro-offline".
 *
 * mst_offline_chat() answers a plugin's llm_chat with it when the gateway
 * has no provider (or the host no engine): the whole system works on a
 * fresh machine without keys.
 */

#ifndef _MST_OFFLINE_H_INCLUDED_
#define _MST_OFFLINE_H_INCLUDED_

#include "mst_llm.h"

#define MST_OFFLINE_MODEL  "maestro-offline"

/* the answer text (malloc()ed) for an OpenAI chat request */
char *mst_offline_answer(json_t *request);

/*
 * The offline provider's chat call, with the contract of a provider's
 * (mst_llm.h): *response a chat.completion of model "maestro-offline",
 * usage estimated; when call->on_chunk is set, the text goes to it first
 * in word-sized pieces. MST_OK, MST_EINVAL (no messages), MST_ETIMEDOUT,
 * MST_ECANCELLED (cancelled, or the callback said stop), MST_ENOMEM.
 */
int mst_offline_chat(json_t *request, const mst_llm_call_t *call,
    json_t **response, char *err, size_t errlen);

#endif /* _MST_OFFLINE_H_INCLUDED_ */
