/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The reviewer agent scores what the target node (config.target, default
 * "llm") produced, 0..1, and either accepts it or sends the workflow back
 * (the default graph routes reviewer -> llm when review.verdict is
 * "revise").
 *
 * The deterministic score, always computed:
 *
 *   coverage x usable     coverage: share of the prompt's content terms
 *                         (lower-cased words of four bytes or more, stop
 *                         words dropped, light suffix stemming) found in
 *                         the outputs' text; usable: share of outputs
 *                         that are neither empty nor look like an error
 *   + 0.1 x nonempty      share of outputs with content
 *   - 0.1 x errors        share of outputs that look like an error
 *
 * clamped to 0..1 (no output at all scores 0). An empty or failed step
 * thus costs its share of the answer, whatever the other steps cover.
 * Lines that only quote the request back (the offline provider labels
 * them "(source: prompt)", "(source: plan)", "(source: review)") cover
 * nothing. With an online LLM (the
 * answer's model is not "maestro-offline") the reviewer also asks it for
 * {"score", "feedback"} and averages the two scores.
 *
 * passes = state.review.passes + 1; verdict "accept" when score >=
 * config.threshold (default 0.6) or passes >= config.max_passes (default
 * 2), else "revise" with feedback naming what is missing. It sets
 * state.review, state.result (the final answer: the outputs' contents,
 * each under "## <title>" when there are several) and its output (the
 * review).
 *
 * Runs on a pool thread; no init(), no state between calls.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <maestro_plugin.h>


#define REVIEWER_THRESHOLD      0.6
#define REVIEWER_MAX_PASSES     2
#define REVIEWER_MIN_TERM       4
#define REVIEWER_MAX_TERM       64
#define REVIEWER_LLM_BYTES      24000
#define REVIEWER_OFFLINE_MODEL  "maestro-offline"


typedef struct {
    json_t      *outputs;       /* array of {"title", "content"} */
    size_t       empty;
    size_t       errors;
    json_t      *covered;       /* array of terms */
    json_t      *missing;       /* array of terms */
    double       score;
} reviewer_eval_t;


static int reviewer_run(maestro_ctx_t *ctx, const maestro_host_t *host,
    void *agent, const char *input);
static json_t *reviewer_collect(json_t *state, const char *target);
static void reviewer_evaluate(reviewer_eval_t *ev, const char *prompt);
static int reviewer_ask_llm(maestro_ctx_t *ctx, const maestro_host_t *host,
    json_t *config, const char *prompt, const char *result, double *score,
    char **feedback);
static char *reviewer_result(json_t *outputs);
static char *reviewer_feedback(reviewer_eval_t *ev, const char *verdict,
    int passes, const char *llm_feedback);
static json_t *reviewer_terms(const char *text, int drop_stop_words);
static char *reviewer_strip_echoes(const char *text);
static void reviewer_stem(char *w);
static int reviewer_stop_word(const char *w);
static int reviewer_looks_like_error(const char *text);
static char *reviewer_join(json_t *terms, size_t max);
static int reviewer_set(maestro_ctx_t *ctx, const maestro_host_t *host,
    const char *key, json_t *value, int output);


static const maestro_plugin_t  reviewer_plugin = {
    MAESTRO_PLUGIN_ABI_VERSION,
    "reviewer",
    "1.0.0",
    "scores the answer and accepts it or sends it back for revision",
    "[\"review\", \"score\"]",
    NULL,
    reviewer_run,
    NULL
};


/* words of four bytes or more that carry no topic */
static const char  *reviewer_stop_words[] = {
    "about", "above", "across", "after", "again", "against", "also",
    "although", "among", "another", "answer", "anything", "based", "because",
    "been", "before", "being", "below", "between", "both", "brief",
    "briefly", "can't", "cannot", "could", "create", "describe", "detail",
    "details", "does", "doing", "done", "down", "during", "each", "either",
    "else", "even", "every", "explain", "finally", "first", "from",
    "further", "give", "have", "having", "help", "here", "hers", "herself",
    "himself", "into", "itself", "just", "least", "less", "like", "list",
    "make", "many", "more", "most", "much", "must", "myself", "need",
    "next", "only", "other", "others", "ours", "over", "please", "provide",
    "question", "really", "same", "second", "should", "show", "some",
    "something", "step", "steps", "such", "summarise", "summarize", "tell",
    "than", "that", "their", "theirs", "them", "then", "there", "these",
    "they", "thing", "things", "third", "this", "those", "though",
    "through", "under", "until", "upon", "using", "very", "want", "well",
    "were", "what", "when", "where", "whether", "which", "while", "whom",
    "whose", "will", "with", "within", "without", "would", "write", "your",
    "yours", "yourself",
    NULL
};


static const char  reviewer_system_prompt[] =
    "You review the answer that other agents produced for a user's "
    "request. Judge how completely and correctly it satisfies the request. "
    "Reply with only a JSON object, no prose: {\"score\": <a number from 0 "
    "to 1>, \"feedback\": \"what must be fixed or added; empty if "
    "nothing\"}";


MAESTRO_EXPORT const maestro_plugin_t *
maestro_plugin_entry(uint32_t host_abi_version)
{
    /* built for another ABI: refused, and nginx -t names this file */
    if (host_abi_version != MAESTRO_PLUGIN_ABI_VERSION) {
        return NULL;
    }

    return &reviewer_plugin;
}


/* runs on a pool thread */

static int
reviewer_run(maestro_ctx_t *ctx, const maestro_host_t *host, void *agent,
    const char *input)
{
    int               rc, passes, max_passes, use_llm, asked;
    char             *result, *feedback, *llm_feedback;
    double            threshold, llm_score;
    json_t           *in, *config, *state, *v, *review;
    const char       *prompt, *target, *verdict;
    reviewer_eval_t   ev;

    in = json_loads(input, 0, NULL);
    if (in == NULL) {
        host->log(ctx, MAESTRO_LOG_ERROR, "reviewer: input is not JSON");
        return MAESTRO_EINVAL;
    }

    config = json_object_get(in, "config");
    state = json_object_get(in, "state");

    target = json_string_value(json_object_get(config, "target"));
    if (target == NULL || target[0] == '\0') {
        target = "llm";
    }

    threshold = REVIEWER_THRESHOLD;
    v = json_object_get(config, "threshold");
    if (json_is_number(v)) {
        threshold = json_number_value(v);
    }

    max_passes = REVIEWER_MAX_PASSES;
    v = json_object_get(config, "max_passes");
    if (json_is_integer(v) && json_integer_value(v) >= 1) {
        max_passes = (int) json_integer_value(v);
    }

    v = json_object_get(config, "use_llm");
    use_llm = ((v == NULL) || json_is_true(v))
              && host->llm_online != NULL && host->llm_online(ctx);

    prompt = json_string_value(json_object_get(state, "prompt"));
    if (prompt == NULL) {
        prompt = "";
    }

    v = json_object_get(json_object_get(state, "review"), "passes");
    passes = (json_is_integer(v) ? (int) json_integer_value(v) : 0) + 1;

    host->progress(ctx, 0.1, "scoring the answer");

    memset(&ev, 0, sizeof(reviewer_eval_t));

    ev.outputs = reviewer_collect(state, target);
    reviewer_evaluate(&ev, prompt);

    result = reviewer_result(ev.outputs);
    if (result == NULL) {
        rc = MAESTRO_ENOMEM;
        goto done;
    }

    llm_feedback = NULL;
    asked = 0;

    if (use_llm && json_array_size(ev.outputs) > ev.empty) {
        host->progress(ctx, 0.4, "asking the LLM for a review");

        rc = reviewer_ask_llm(ctx, host, config, prompt, result, &llm_score,
                              &llm_feedback);

        if (rc == MAESTRO_ECANCELLED) {
            free(result);
            goto done;
        }

        if (rc == MAESTRO_OK) {
            host->log(ctx, MAESTRO_LOG_INFO,
                      "reviewer: rules score %.3f, LLM score %.3f",
                      ev.score, llm_score);
            ev.score = (ev.score + llm_score) / 2;
            asked = 1;
        }
    }

    ev.score = (double) (long) (ev.score * 1000 + 0.5) / 1000;

    verdict = (ev.score >= threshold || passes >= max_passes)
              ? "accept" : "revise";

    feedback = reviewer_feedback(&ev, verdict, passes, llm_feedback);
    free(llm_feedback);

    review = json_pack("{s:f, s:s, s:i, s:s, s:O, s:O, s:s}",
                       "score", ev.score,
                       "verdict", verdict,
                       "passes", passes,
                       "feedback", feedback ? feedback : "",
                       "covered", ev.covered,
                       "missing", ev.missing,
                       "source", asked ? "rules+llm" : "rules");
    free(feedback);

    if (review == NULL) {
        free(result);
        rc = MAESTRO_ENOMEM;
        goto done;
    }

    host->log(ctx, MAESTRO_LOG_INFO,
              "reviewer: score %.3f, %s (pass %d of %d, %zu outputs of "
              "\"%s\")", ev.score, verdict, passes, max_passes,
              json_array_size(ev.outputs), target);

    rc = reviewer_set(ctx, host, "review", json_incref(review), 0);

    if (rc == MAESTRO_OK) {
        rc = reviewer_set(ctx, host, "result", json_string(result), 0);
    }

    if (rc == MAESTRO_OK) {
        rc = reviewer_set(ctx, host, NULL, json_incref(review), 1);
    }

    json_decref(review);
    free(result);

    host->progress(ctx, 1.0, "reviewed");

done:

    json_decref(ev.outputs);
    json_decref(ev.covered);
    json_decref(ev.missing);
    json_decref(in);

    return rc;
}


/*
 * The target's outputs as [{"title", "content"}]: a foreach node's array,
 * or a single output; an object's "content" (else the whole value as
 * JSON), a string as is.
 */

static json_t *
reviewer_collect(json_t *state, const char *target)
{
    char        *dump, title[32];
    size_t       i;
    json_t      *out, *list, *v, *single;
    const char  *content, *t;

    out = json_array();

    v = json_object_get(json_object_get(state, "outputs"), target);

    if (v == NULL || json_is_null(v)) {
        return out;
    }

    single = NULL;
    list = v;

    if (!json_is_array(v)) {
        single = json_array();
        json_array_append(single, v);
        list = single;
    }

    json_array_foreach(list, i, v) {
        dump = NULL;

        if (json_is_string(v)) {
            content = json_string_value(v);
            t = NULL;

        } else if (json_is_object(v)
                   && json_is_string(json_object_get(v, "content")))
        {
            content = json_string_value(json_object_get(v, "content"));
            t = json_string_value(json_object_get(v, "title"));

        } else if (v == NULL || json_is_null(v)) {
            content = "";
            t = NULL;

        } else {
            dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            content = dump ? dump : "";
            t = json_string_value(json_object_get(v, "title"));
        }

        if (t == NULL || t[0] == '\0') {
            snprintf(title, sizeof(title), "Step %zu", i + 1);
            t = title;
        }

        json_array_append_new(out, json_pack("{s:s, s:s}", "title", t,
                                             "content", content));
        free(dump);
    }

    json_decref(single);

    return out;
}


/* the deterministic score and the covered / missing terms */

static void
reviewer_evaluate(reviewer_eval_t *ev, const char *prompt)
{
    char        *text;
    size_t       i, n, nonempty, usable;
    double       score;
    json_t      *terms, *words, *v;
    const char  *content, *term, *p;
    char         stem[REVIEWER_MAX_TERM + 1];

    ev->covered = json_array();
    ev->missing = json_array();
    ev->score = 0;

    n = json_array_size(ev->outputs);

    /* the outputs' words, stemmed, as a set */

    words = json_object();

    json_array_foreach(ev->outputs, i, v) {
        content = json_string_value(json_object_get(v, "content"));

        for (p = content; *p != '\0' && isspace((unsigned char) *p); p++) {
            /* void */
        }

        if (*p == '\0') {
            ev->empty++;
            continue;
        }

        if (reviewer_looks_like_error(p)) {
            ev->errors++;
        }

        text = reviewer_strip_echoes(content);
        terms = reviewer_terms(text ? text : content, 0);
        free(text);
        json_object_update(words, terms);
        json_decref(terms);
    }

    /* the prompt's content terms */

    terms = reviewer_terms(prompt, 1);

    json_object_foreach(terms, term, v) {
        snprintf(stem, sizeof(stem), "%s", term);
        reviewer_stem(stem);

        if (json_object_get(words, stem) != NULL) {
            json_array_append_new(ev->covered, json_string(term));

        } else {
            json_array_append_new(ev->missing, json_string(term));
        }
    }

    json_decref(words);

    if (n == 0) {
        json_decref(terms);
        return;
    }

    nonempty = n - ev->empty;
    usable = nonempty - ev->errors;

    if (json_object_size(terms) == 0) {
        score = 1.0;

    } else {
        score = (double) json_array_size(ev->covered)
                / (double) json_object_size(terms);
    }

    json_decref(terms);

    score *= (double) usable / (double) n;
    score += 0.1 * (double) nonempty / (double) n;
    score -= 0.1 * (double) ev->errors / (double) n;

    ev->score = score < 0 ? 0 : (score > 1 ? 1 : score);
}


/*
 * The words of text, lower-cased, as an object used as an ordered set
 * (jansson keeps insertion order). For the prompt (drop_stop_words) the
 * keys are the words themselves; for outputs the keys are their stems.
 */

static json_t *
reviewer_terms(const char *text, int drop_stop_words)
{
    char                  w[REVIEWER_MAX_TERM + 1];
    size_t                n;
    json_t               *set;
    const unsigned char  *p;

    set = json_object();
    p = (const unsigned char *) text;

    while (*p != '\0') {
        n = 0;

        while (*p != '\0' && (isalnum(*p) || *p >= 0x80 || *p == '\''
                              || *p == '-'))
        {
            if (n < REVIEWER_MAX_TERM) {
                w[n++] = (char) tolower(*p);
            }
            p++;
        }

        /* trim quotes and hyphens around the word */
        while (n > 0 && (w[n - 1] == '\'' || w[n - 1] == '-')) {
            n--;
        }

        w[n] = '\0';

        if (n >= REVIEWER_MIN_TERM && (w[0] != '\'' && w[0] != '-')) {
            if (drop_stop_words) {
                if (!reviewer_stop_word(w)) {
                    json_object_set_new(set, w, json_true());
                }

            } else {
                reviewer_stem(w);
                json_object_set_new(set, w, json_true());
            }
        }

        while (*p != '\0' && !(isalnum(*p) || *p >= 0x80)) {
            p++;
        }
    }

    return set;
}


/* a copy of text without the lines that quote the request back */

static char *
reviewer_strip_echoes(const char *text)
{
    char         *out;
    size_t        n, len;
    const char   *line, *eol, *end, **s;

    static const char  *echoes[] = {
        "(source: prompt)", "(source: plan)", "(source: review)", NULL
    };

    /* a new line may be added after the last line */
    out = malloc(strlen(text) + 2);
    if (out == NULL) {
        return NULL;
    }

    n = 0;

    for (line = text; *line != '\0'; line = *eol ? eol + 1 : eol) {
        eol = strchr(line, '\n');
        if (eol == NULL) {
            eol = line + strlen(line);
        }

        end = eol;
        while (end > line && isspace((unsigned char) end[-1])) {
            end--;
        }

        len = (size_t) (end - line);

        for (s = echoes; *s != NULL; s++) {
            if (len >= strlen(*s)
                && strncmp(end - strlen(*s), *s, strlen(*s)) == 0)
            {
                break;
            }
        }

        if (*s != NULL) {
            continue;
        }

        memcpy(out + n, line, (size_t) (eol - line));
        n += (size_t) (eol - line);
        out[n++] = '\n';
    }

    out[n] = '\0';

    return out;
}


/* strips a plural or verb suffix, keeping at least four bytes */

static void
reviewer_stem(char *w)
{
    size_t        n, k;
    const char  **s;

    static const char  *suffixes[] = {
        "ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly",
        "s", NULL
    };

    n = strlen(w);

    if (n > 2 && strcmp(w + n - 2, "'s") == 0) {
        n -= 2;
        w[n] = '\0';
    }

    for (s = suffixes; *s != NULL; s++) {
        k = strlen(*s);

        if (n >= k + REVIEWER_MIN_TERM && strcmp(w + n - k, *s) == 0) {
            if (k == 1 && w[n - 2] == 's') {
                /* "class", "process" */
                continue;
            }

            w[n - k] = '\0';
            return;
        }
    }
}


static int
reviewer_stop_word(const char *w)
{
    const char  **s;

    for (s = reviewer_stop_words; *s != NULL; s++) {
        if (strcmp(*s, w) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
reviewer_looks_like_error(const char *text)
{
    size_t        i, n;
    const char  **s;

    /* kept narrow: a false positive costs the step its share */

    static const char  *prefixes[] = {
        "error:", "exception:", "fatal:", "failed:", "traceback", NULL
    };

    static const char  *whole[] = {
        "null", "undefined", "none", "error", "nan", NULL
    };

    static const char  *inside[] = {
        "traceback (most recent call last)", "internal server error",
        "segmentation fault (core dumped)", NULL
    };

    for (s = prefixes; *s != NULL; s++) {
        if (strncasecmp(text, *s, strlen(*s)) == 0) {
            return 1;
        }
    }

    n = strlen(text);
    while (n > 0 && (isspace((unsigned char) text[n - 1])
                     || text[n - 1] == '.'))
    {
        n--;
    }

    for (s = whole; *s != NULL; s++) {
        if (n == strlen(*s) && strncasecmp(text, *s, n) == 0) {
            return 1;
        }
    }

    for (s = inside; *s != NULL; s++) {
        for (i = 0; text[i] != '\0' && i < 4096; i++) {
            if (strncasecmp(text + i, *s, strlen(*s)) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * Asks the host's LLM for {"score", "feedback"}. MAESTRO_OK with *score
 * and *feedback (malloc()ed, may be NULL); MAESTRO_ECANCELLED; any other
 * code: no LLM opinion (offline, failed, unparsable).
 */

static int
reviewer_ask_llm(maestro_ctx_t *ctx, const maestro_host_t *host,
    json_t *config, const char *prompt, const char *result, double *score,
    char **feedback)
{
    int          rc;
    char        *user, *req, *resp;
    size_t       len;
    json_t      *request, *response, *doc, *v;
    const char  *model, *content, *a, *b;

    *feedback = NULL;

    len = strlen(result);
    if (len > REVIEWER_LLM_BYTES) {
        len = REVIEWER_LLM_BYTES;
        while (len > 0 && ((unsigned char) result[len] & 0xc0) == 0x80) {
            len--;
        }
    }

    if (asprintf(&user, "### Request\n%s\n\n### Answer\n%.*s", prompt,
                 (int) len, result) < 0)
    {
        return MAESTRO_ENOMEM;
    }

    request = json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:f}",
                        "messages",
                        "role", "system", "content", reviewer_system_prompt,
                        "role", "user", "content", user,
                        "temperature", 0.0);
    free(user);

    if (request == NULL) {
        return MAESTRO_ENOMEM;
    }

    v = json_object_get(config, "model");
    if (json_is_string(v)) {
        json_object_set(request, "model", v);
    }

    req = json_dumps(request, JSON_COMPACT);
    json_decref(request);

    if (req == NULL) {
        return MAESTRO_ENOMEM;
    }

    resp = NULL;
    rc = host->llm_chat(ctx, req, NULL, NULL, &resp);
    free(req);

    response = (rc == MAESTRO_OK && resp) ? json_loads(resp, 0, NULL) : NULL;

    if (resp != NULL) {
        host->free(resp);
    }

    if (rc != MAESTRO_OK) {
        if (rc == MAESTRO_ECANCELLED || host->cancelled(ctx)) {
            return MAESTRO_ECANCELLED;
        }

        host->log(ctx, MAESTRO_LOG_WARN,
                  "reviewer: the LLM failed (%s), scoring with rules only",
                  host->strerror(rc));
        return rc;
    }

    if (response == NULL) {
        return MAESTRO_ELLM;
    }

    /* the host accounts the tokens of llm_chat() */

    model = json_string_value(json_object_get(response, "model"));

    if (model != NULL && strcmp(model, REVIEWER_OFFLINE_MODEL) == 0) {
        json_decref(response);
        return MAESTRO_ERROR;
    }

    content = json_string_value(
                  json_object_get(json_object_get(json_array_get(
                      json_object_get(response, "choices"), 0), "message"),
                      "content"));

    doc = NULL;

    if (content != NULL) {
        a = strchr(content, '{');
        b = strrchr(content, '}');
        if (a != NULL && b != NULL && b > a) {
            doc = json_loadb(a, (size_t) (b - a + 1), 0, NULL);
        }
    }

    json_decref(response);

    v = json_object_get(doc, "score");

    if (!json_is_number(v)) {
        json_decref(doc);
        host->log(ctx, MAESTRO_LOG_WARN,
                  "reviewer: the LLM answer holds no score, scoring with "
                  "rules only");
        return MAESTRO_ELLM;
    }

    *score = json_number_value(v);
    if (*score < 0) {
        *score = 0;
    } else if (*score > 1) {
        *score = (*score <= 10) ? *score / 10 : 1;
    }

    content = json_string_value(json_object_get(doc, "feedback"));
    if (content != NULL && content[0] != '\0') {
        *feedback = strdup(content);
    }

    json_decref(doc);

    return MAESTRO_OK;
}


/* the final answer: one output as is, several under "## <title>" */

static char *
reviewer_result(json_t *outputs)
{
    char        *text, *next;
    size_t       i, n;
    json_t      *v;
    const char  *content, *title;

    n = json_array_size(outputs);

    if (n == 1) {
        return strdup(json_string_value(
                   json_object_get(json_array_get(outputs, 0), "content")));
    }

    text = strdup("");

    json_array_foreach(outputs, i, v) {
        if (text == NULL) {
            return NULL;
        }

        title = json_string_value(json_object_get(v, "title"));
        content = json_string_value(json_object_get(v, "content"));

        if (asprintf(&next, "%s%s## %s\n\n%s", text, i ? "\n\n" : "",
                     title, content) < 0)
        {
            free(text);
            return NULL;
        }

        free(text);
        text = next;
    }

    return text;
}


static char *
reviewer_feedback(reviewer_eval_t *ev, const char *verdict, int passes,
    const char *llm_feedback)
{
    char        *missing, *text, *next;
    size_t       i, nterms;
    json_t      *v;
    const char  *content;

    nterms = json_array_size(ev->covered) + json_array_size(ev->missing);
    missing = reviewer_join(ev->missing, 12);
    if (missing == NULL) {
        return NULL;
    }

    if (json_array_size(ev->outputs) == 0) {
        if (asprintf(&text, "There is no answer to review.") < 0) {
            text = NULL;
        }

    } else if (strcmp(verdict, "accept") == 0) {
        if (asprintf(&text, "Accepted on pass %d with score %.2f: the answer "
                     "covers %zu of %zu key terms of the request%s%s.",
                     passes, ev->score, json_array_size(ev->covered),
                     nterms, missing[0] ? "; still missing: " : "",
                     missing) < 0)
        {
            text = NULL;
        }

    } else if (missing[0] != '\0') {
        if (asprintf(&text, "Revise the answer (score %.2f): it does not "
                     "cover these points of the request: %s.", ev->score,
                     missing) < 0)
        {
            text = NULL;
        }

    } else {
        if (asprintf(&text, "Revise the answer (score %.2f).", ev->score)
            < 0)
        {
            text = NULL;
        }
    }

    free(missing);

    if (text == NULL) {
        return NULL;
    }

    if (strcmp(verdict, "revise") == 0) {
        json_array_foreach(ev->outputs, i, v) {
            content = json_string_value(json_object_get(v, "content"));

            while (isspace((unsigned char) *content)) {
                content++;
            }

            if (*content != '\0' && !reviewer_looks_like_error(content)) {
                continue;
            }

            if (asprintf(&next, "%s Step \"%s\" %s.", text,
                         json_string_value(json_object_get(v, "title")),
                         (*content == '\0') ? "has no content"
                                            : "looks like an error") < 0)
            {
                continue;
            }

            free(text);
            text = next;
        }
    }

    if (llm_feedback != NULL) {
        if (asprintf(&next, "%s Reviewer: %s", text, llm_feedback) >= 0) {
            free(text);
            text = next;
        }
    }

    return text;
}


/* "a, b, c" of at most max terms (", ..." beyond); NULL: out of memory */

static char *
reviewer_join(json_t *terms, size_t max)
{
    char        *text, *next;
    size_t       i;
    json_t      *v;

    text = strdup("");

    json_array_foreach(terms, i, v) {
        if (text == NULL) {
            break;
        }

        if (i == max) {
            if (asprintf(&next, "%s, ...", text) >= 0) {
                free(text);
                text = next;
            }
            break;
        }

        if (asprintf(&next, "%s%s%s", text, i ? ", " : "",
                     json_string_value(v)) < 0)
        {
            break;
        }

        free(text);
        text = next;
    }

    return text;
}


/* sets a state key (or the output, when output is set); steals value */

static int
reviewer_set(maestro_ctx_t *ctx, const maestro_host_t *host,
    const char *key, json_t *value, int output)
{
    int    rc;
    char  *text;

    text = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY
                                     | JSON_REAL_PRECISION(6))
                 : NULL;
    json_decref(value);

    if (text == NULL) {
        return MAESTRO_ENOMEM;
    }

    rc = output ? host->set_output(ctx, text)
                : host->set_state(ctx, key, text);

    free(text);

    return rc;
}
