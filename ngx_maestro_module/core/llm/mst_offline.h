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
 */

#ifndef _MST_OFFLINE_H_INCLUDED_
#define _MST_OFFLINE_H_INCLUDED_

#include "mst_common.h"

#define MST_OFFLINE_MODEL  "maestro-offline"

/* the answer text (malloc()ed) for an OpenAI chat request */
char *mst_offline_answer(json_t *request);

#endif /* _MST_OFFLINE_H_INCLUDED_ */
