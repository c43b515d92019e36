/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Intent and complexity analysis of a prompt, for routing.
 *
 * Intents are named PCRE2 rule sets, compiled once (at configuration, with
 * JIT where the platform has it) and tried in the order they were
 * declared: the first intent with a pattern that matches wins; with none,
 * the intent is "general". Patterns are UTF-8 and caseless. Each intent
 * may name a route (a workflow).
 *
 * Complexity is a heuristic on the text alone, cheap enough for every
 * request: more than 100 words, a code block, or several steps (numbered
 * or bulleted lines, sequencing words) is "complex"; more than 50 words
 * is "moderate"; else "simple".
 *
 * The analyzer is immutable once built, so any thread may use it; PCRE2
 * match data is allocated per call.
 */

#ifndef _MST_INTENT_H_INCLUDED_
#define _MST_INTENT_H_INCLUDED_

#include "mst_common.h"

#define MST_INTENT_DEFAULT  "general"

typedef struct mst_intents_s  mst_intents_t;

typedef struct {
    const char  *intent;        /* borrowed from the analyzer */
    const char  *route;         /* its workflow, or NULL */
    const char  *complexity;    /* "simple" | "moderate" | "complex" */
    size_t       words;
    size_t       code_blocks;
    size_t       steps;
    const char  *matched;       /* the pattern that matched, or NULL */
} mst_analysis_t;

mst_intents_t *mst_intents_new(void);
void mst_intents_free(mst_intents_t *in);

/* compiles pattern into intent name (created at first use); err says why
   a pattern does not compile, with the offset */
int mst_intents_add(mst_intents_t *in, const char *name, const char *pattern,
    char *err, size_t errlen);

/* the workflow an intent routes to */
int mst_intents_route(mst_intents_t *in, const char *name,
    const char *workflow, char *err, size_t errlen);

/* in may be NULL (complexity only, intent "general") */
void mst_analyze(const mst_intents_t *in, const char *text, size_t len,
    mst_analysis_t *out);

/* {"intent", "complexity", "route", "signals": {...}} */
json_t *mst_analysis_json(const mst_analysis_t *a);

#endif /* _MST_INTENT_H_INCLUDED_ */
