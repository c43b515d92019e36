/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_intent.h */

#define PCRE2_CODE_UNIT_WIDTH  8

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <pcre2.h>

#include "mst_intent.h"
#include "mst_regex.h"


#define MST_INTENT_MAX_PATTERNS  64


typedef struct {
    char          *name;
    char          *route;
    pcre2_code    *re[MST_INTENT_MAX_PATTERNS];
    char          *src[MST_INTENT_MAX_PATTERNS];
    size_t         n;
} mst_intent_t;


struct mst_intents_s {
    mst_intent_t  *intents;
    size_t         n;
    size_t         cap;
};


mst_intents_t *
mst_intents_new(void)
{
    return calloc(1, sizeof(mst_intents_t));
}


void
mst_intents_free(mst_intents_t *in)
{
    size_t  i, j;

    if (in == NULL) {
        return;
    }

    for (i = 0; i < in->n; i++) {
        for (j = 0; j < in->intents[i].n; j++) {
            pcre2_code_free(in->intents[i].re[j]);
            free(in->intents[i].src[j]);
        }
        free(in->intents[i].name);
        free(in->intents[i].route);
    }

    free(in->intents);
    free(in);
}


static mst_intent_t *
mst_intents_get(mst_intents_t *in, const char *name, int create)
{
    size_t         i;
    mst_intent_t  *it;

    for (i = 0; i < in->n; i++) {
        if (strcmp(in->intents[i].name, name) == 0) {
            return &in->intents[i];
        }
    }

    if (!create) {
        return NULL;
    }

    if (in->n == in->cap) {
        it = realloc(in->intents, (in->cap + 8) * sizeof(mst_intent_t));
        if (it == NULL) {
            return NULL;
        }
        in->intents = it;
        in->cap += 8;
    }

    it = &in->intents[in->n];
    memset(it, 0, sizeof(mst_intent_t));

    it->name = strdup(name);
    if (it->name == NULL) {
        return NULL;
    }

    in->n++;

    return it;
}


int
mst_intents_add(mst_intents_t *in, const char *name, const char *pattern,
    char *err, size_t errlen)
{
    char           why[300];
    pcre2_code    *re;
    mst_intent_t  *it;

    it = mst_intents_get(in, name, 1);
    if (it == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    if (it->n == MST_INTENT_MAX_PATTERNS) {
        return mst_err(err, errlen, MST_EINVAL,
                       "intent \"%s\": more than %d patterns", name,
                       MST_INTENT_MAX_PATTERNS);
    }

    re = mst_regex_compile(pattern, PCRE2_ZERO_TERMINATED, MST_REGEX_TEXT,
                           why, sizeof(why));
    if (re == NULL) {
        return mst_err(err, errlen, MST_EINVAL,
                       "intent \"%s\": pattern \"%s\": %s", name, pattern,
                       why);
    }

    it->re[it->n] = re;
    it->src[it->n] = strdup(pattern);
    it->n++;

    return MST_OK;
}


int
mst_intents_route(mst_intents_t *in, const char *name, const char *workflow,
    char *err, size_t errlen)
{
    mst_intent_t  *it;

    it = mst_intents_get(in, name, 1);
    if (it == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    free(it->route);
    it->route = strdup(workflow);

    if (it->route == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    return MST_OK;
}


/* lines that start a numbered or bulleted item: "1.", "2)", "-", "*" */
static int
mst_intent_item(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p < end && (*p == '-' || *p == '*' || *p == '+')) {
        return p + 1 < end && p[1] == ' ';
    }

    if (p < end && isdigit((unsigned char) *p)) {
        while (p < end && isdigit((unsigned char) *p)) {
            p++;
        }
        return p + 1 < end && (*p == '.' || *p == ')') && p[1] == ' ';
    }

    return 0;
}


static const char  *mst_intent_sequencers[] = {
    "first", "then", "next", "finally", "afterwards", "after that",
    "step 1", "step 2", "second,", "lastly", NULL
};


static void
mst_intent_signals(const char *text, size_t len, mst_analysis_t *out)
{
    int          inword, fence, seq;
    size_t       i, k, items;
    const char  *p, *end, *line, *nl;
    char         lower[64];

    out->words = 0;
    out->code_blocks = 0;
    out->steps = 0;

    /* words */

    inword = 0;
    for (i = 0; i < len; i++) {
        if (isspace((unsigned char) text[i])) {
            inword = 0;
        } else if (!inword) {
            inword = 1;
            out->words++;
        }
    }

    /* code blocks: ``` fences, and runs of 4-space indented lines */

    fence = 0;
    items = 0;
    end = text + len;

    for (line = text; line < end; line = nl + 1) {
        nl = memchr(line, '\n', end - line);
        if (nl == NULL) {
            nl = end;
        }

        p = line;
        while (p < nl && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (nl - p >= 3 && strncmp(p, "```", 3) == 0) {
            if (!fence) {
                out->code_blocks++;
            }
            fence = !fence;
            continue;
        }

        if (!fence && mst_intent_item(line, nl)) {
            items++;
        }

        if (nl == end) {
            break;
        }
    }

    /* steps: list items, or sequencing words */

    seq = 0;

    for (k = 0; mst_intent_sequencers[k] != NULL; k++) {
        size_t  wl = strlen(mst_intent_sequencers[k]);

        for (i = 0; i + wl <= len; i++) {
            if ((i == 0 || !isalnum((unsigned char) text[i - 1]))
                && (i + wl == len || !isalnum((unsigned char) text[i + wl])
                    || text[i + wl - 1] == ',')
                && wl < sizeof(lower))
            {
                size_t  j;

                for (j = 0; j < wl; j++) {
                    lower[j] = (char) tolower((unsigned char) text[i + j]);
                }

                if (memcmp(lower, mst_intent_sequencers[k], wl) == 0) {
                    seq++;
                    break;
                }
            }
        }
    }

    out->steps = items >= 2 ? items : (seq >= 2 ? (size_t) seq : 0);
}


void
mst_analyze(const mst_intents_t *in, const char *text, size_t len,
    mst_analysis_t *out)
{
    int                rc;
    size_t             i, j;
    pcre2_match_data  *md;

    memset(out, 0, sizeof(mst_analysis_t));
    out->intent = MST_INTENT_DEFAULT;

    mst_intent_signals(text, len, out);

    if (out->words > 100 || out->code_blocks > 0 || out->steps >= 2) {
        out->complexity = "complex";

    } else if (out->words > 50) {
        out->complexity = "moderate";

    } else {
        out->complexity = "simple";
    }

    if (in == NULL) {
        return;
    }

    for (i = 0; i < in->n; i++) {
        for (j = 0; j < in->intents[i].n; j++) {
            md = pcre2_match_data_create_from_pattern(in->intents[i].re[j],
                                                      NULL);
            if (md == NULL) {
                continue;
            }

            rc = pcre2_match(in->intents[i].re[j], (PCRE2_SPTR) text, len,
                             0, 0, md, NULL);
            pcre2_match_data_free(md);

            if (rc >= 0) {
                out->intent = in->intents[i].name;
                out->route = in->intents[i].route;
                out->matched = in->intents[i].src[j];
                return;
            }
        }
    }

    /* "general" may have a route of its own */
    for (i = 0; i < in->n; i++) {
        if (strcmp(in->intents[i].name, MST_INTENT_DEFAULT) == 0) {
            out->route = in->intents[i].route;
        }
    }
}


json_t *
mst_analysis_json(const mst_analysis_t *a)
{
    return json_pack("{s:s, s:s, s:s?, s:s?, s:{s:I, s:I, s:I}}",
                     "intent", a->intent,
                     "complexity", a->complexity,
                     "route", a->route,
                     "matched", a->matched,
                     "signals",
                       "words", (json_int_t) a->words,
                       "code_blocks", (json_int_t) a->code_blocks,
                       "steps", (json_int_t) a->steps);
}
