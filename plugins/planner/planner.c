/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The planner agent breaks the request (state.prompt) into ordered steps
 * that the "llm" node then runs in parallel (foreach "plan.steps").
 *
 * With an online LLM it asks for a JSON plan {"steps": [{"title",
 * "instruction"}]} (code fences and prose around the object tolerated).
 * When the host answers offline (model "maestro-offline"), or the call
 * fails, or the answer does not parse, deterministic rules decide:
 *
 *   1. a numbered or bulleted list (two items or more): one step per item;
 *   2. else the prompt is cut at sequencing markers ("first", "then",
 *      "after that", "next", "finally", ";", new lines) and at sentence
 *      ends; a short prompt without markers stays one step;
 *   3. more pieces than config.max_steps (default 5) are grouped into
 *      max_steps consecutive steps of balanced size.
 *
 * Each step is {"id": n (1-based), "title": <= 60 bytes cut on a word
 * boundary, "instruction": the full text}. The plan {"steps", "source":
 * "llm" | "rules"} is both the step's output and state.plan.
 *
 * Runs on a pool thread; keeps no state between calls (no init()).
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <maestro_plugin.h>


#define PLANNER_MAX_STEPS        5
#define PLANNER_STEPS_LIMIT      50
#define PLANNER_TITLE_MAX        60
#define PLANNER_SIMPLE_WORDS     25
#define PLANNER_OFFLINE_MODEL    "maestro-offline"


typedef struct {
    const char  *word;
    size_t       len;
    int          clause_start;   /* only a marker at the start of a clause */
} planner_marker_t;


static int planner_run(maestro_ctx_t *ctx, const maestro_host_t *host,
    void *agent, const char *input);
static int planner_ask_llm(maestro_ctx_t *ctx, const maestro_host_t *host,
    json_t *config, const char *prompt, int max_steps, json_t **steps);
static json_t *planner_parse_answer(const char *content, int max_steps);
static json_t *planner_rules(const char *prompt, int max_steps);
static json_t *planner_split_list(const char *prompt);
static json_t *planner_split_markers(const char *prompt, int *markers);
static json_t *planner_merge_short(json_t *pieces);
static json_t *planner_group(json_t *pieces, int max_steps);
static json_t *planner_step(int id, const char *title,
    const char *instruction);
static char *planner_clean(const char *s, size_t len);
static char *planner_title(const char *text);
static int planner_list_marker(const char *line, size_t len, size_t *skip);
static int planner_marker_at(const char *s, size_t i, size_t *len);
static size_t planner_words(const char *s);


static const maestro_plugin_t  planner_plugin = {
    MAESTRO_PLUGIN_ABI_VERSION,
    "planner",
    "1.0.0",
    "breaks a request into ordered steps (LLM, or deterministic rules)",
    "[\"plan\"]",
    NULL,
    planner_run,
    NULL
};


static const planner_marker_t  planner_markers[] = {
    { "after that", 10, 0 },
    { "afterwards", 10, 0 },
    { "and then", 8, 0 },
    { "then", 4, 0 },
    { "finally", 7, 0 },
    { "lastly", 6, 0 },
    { "firstly", 7, 1 },
    { "first", 5, 1 },
    { "secondly", 8, 1 },
    { "second", 6, 1 },
    { "thirdly", 7, 1 },
    { "third", 5, 1 },
    { "next", 4, 1 },
    { NULL, 0, 0 }
};


static const char  planner_system_prompt[] =
    "You are the planning agent of a multi-agent system. Break the user's "
    "request into at most %d concrete, ordered steps that together answer "
    "it completely; each step is done by another agent that sees only its "
    "instruction and the original request. A simple request is one step. "
    "Reply with only a JSON object, no prose: "
    "{\"steps\": [{\"title\": \"short title\", "
    "\"instruction\": \"what to do in this step\"}]}";


MAESTRO_EXPORT const maestro_plugin_t *
maestro_plugin_entry(uint32_t host_abi_version)
{
    /* built for another ABI: refused, and nginx -t names this file */
    if (host_abi_version != MAESTRO_PLUGIN_ABI_VERSION) {
        return NULL;
    }

    return &planner_plugin;
}


/* runs on a pool thread */

static int
planner_run(maestro_ctx_t *ctx, const maestro_host_t *host, void *agent,
    const char *input)
{
    int          rc, max_steps, use_llm;
    char        *text;
    json_t      *in, *config, *v, *steps, *plan;
    const char  *prompt, *source;

    in = json_loads(input, 0, NULL);
    if (in == NULL) {
        host->log(ctx, MAESTRO_LOG_ERROR, "planner: input is not JSON");
        return MAESTRO_EINVAL;
    }

    config = json_object_get(in, "config");

    max_steps = PLANNER_MAX_STEPS;
    v = json_object_get(config, "max_steps");
    if (json_is_integer(v)) {
        max_steps = (int) json_integer_value(v);
        if (max_steps < 1) {
            max_steps = 1;
        } else if (max_steps > PLANNER_STEPS_LIMIT) {
            max_steps = PLANNER_STEPS_LIMIT;
        }
    }

    v = json_object_get(config, "use_llm");
    use_llm = ((v == NULL) || json_is_true(v))
              && host->llm_online != NULL && host->llm_online(ctx);

    prompt = json_string_value(
                 json_object_get(json_object_get(in, "state"), "prompt"));

    if (prompt == NULL || planner_words(prompt) == 0) {
        host->log(ctx, MAESTRO_LOG_ERROR, "planner: the prompt is empty");
        json_decref(in);
        return MAESTRO_EPERMANENT;
    }

    steps = NULL;
    source = "rules";

    if (use_llm) {
        host->progress(ctx, 0.1, "asking the LLM for a plan");

        rc = planner_ask_llm(ctx, host, config, prompt, max_steps, &steps);

        if (rc == MAESTRO_ECANCELLED) {
            json_decref(in);
            return rc;
        }

        if (steps != NULL) {
            source = "llm";
        }
    }

    if (steps == NULL) {
        host->progress(ctx, 0.5, "planning with rules");
        steps = planner_rules(prompt, max_steps);
    }

    json_decref(in);

    if (steps == NULL) {
        return MAESTRO_ENOMEM;
    }

    plan = json_pack("{s:o, s:s}", "steps", steps, "source", source);
    text = plan ? json_dumps(plan, JSON_COMPACT) : NULL;

    if (text == NULL) {
        json_decref(plan);
        return MAESTRO_ENOMEM;
    }

    host->log(ctx, MAESTRO_LOG_INFO, "planner: %zu steps (%s)",
              json_array_size(steps), source);

    rc = host->set_state(ctx, "plan", text);
    if (rc == MAESTRO_OK) {
        rc = host->set_output(ctx, text);
    }

    free(text);
    json_decref(plan);

    host->progress(ctx, 1.0, "planned");

    return rc;
}


/*
 * Asks the host's LLM for a plan. Returns MAESTRO_ECANCELLED, or another
 * code with *steps NULL when the rules must decide (offline, failure, an
 * answer that does not parse).
 */

static int
planner_ask_llm(maestro_ctx_t *ctx, const maestro_host_t *host,
    json_t *config, const char *prompt, int max_steps, json_t **steps)
{
    int          rc;
    char        *req, *resp, system[1024];
    json_t      *request, *response, *v;
    const char  *model, *content;

    *steps = NULL;

    snprintf(system, sizeof(system), planner_system_prompt, max_steps);

    request = json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:f}",
                        "messages",
                        "role", "system", "content", system,
                        "role", "user", "content", prompt,
                        "temperature", 0.2);
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

    if (rc != MAESTRO_OK) {
        if (resp != NULL) {
            host->free(resp);
        }

        if (rc == MAESTRO_ECANCELLED || host->cancelled(ctx)) {
            return MAESTRO_ECANCELLED;
        }

        host->log(ctx, MAESTRO_LOG_WARN,
                  "planner: the LLM failed (%s), planning with rules",
                  host->strerror(rc));
        return rc;
    }

    response = resp ? json_loads(resp, 0, NULL) : NULL;

    if (resp != NULL) {
        host->free(resp);
    }

    if (response == NULL) {
        host->log(ctx, MAESTRO_LOG_WARN,
                  "planner: the LLM response is not JSON, planning with "
                  "rules");
        return MAESTRO_ELLM;
    }

    /* the host accounts the tokens of llm_chat() */

    model = json_string_value(json_object_get(response, "model"));

    if (model != NULL && strcmp(model, PLANNER_OFFLINE_MODEL) == 0) {
        json_decref(response);
        return MAESTRO_ERROR;
    }

    content = json_string_value(
                  json_object_get(json_object_get(json_array_get(
                      json_object_get(response, "choices"), 0), "message"),
                      "content"));

    *steps = content ? planner_parse_answer(content, max_steps) : NULL;

    json_decref(response);

    if (*steps == NULL) {
        host->log(ctx, MAESTRO_LOG_WARN,
                  "planner: the LLM answer holds no plan, planning with "
                  "rules");
        return MAESTRO_ELLM;
    }

    return MAESTRO_OK;
}


/*
 * The steps of an LLM answer: a JSON object {"steps": [...]} or a bare
 * array, possibly inside code fences or prose. NULL when nothing usable.
 */

static json_t *
planner_parse_answer(const char *content, int max_steps)
{
    char        *instruction;
    size_t       i;
    json_t      *doc, *list, *steps, *v;
    const char  *a, *b, *title, *text;

    doc = NULL;

    a = strchr(content, '{');
    b = strrchr(content, '}');
    if (a != NULL && b != NULL && b > a) {
        doc = json_loadb(a, (size_t) (b - a + 1), 0, NULL);
    }

    if (doc == NULL) {
        a = strchr(content, '[');
        b = strrchr(content, ']');
        if (a != NULL && b != NULL && b > a) {
            doc = json_loadb(a, (size_t) (b - a + 1), 0, NULL);
        }
    }

    if (doc == NULL) {
        return NULL;
    }

    list = json_is_array(doc) ? doc : json_object_get(doc, "steps");

    if (!json_is_array(list)) {
        json_decref(doc);
        return NULL;
    }

    steps = json_array();

    json_array_foreach(list, i, v) {
        if ((int) json_array_size(steps) >= max_steps) {
            break;
        }

        if (json_is_string(v)) {
            title = NULL;
            text = json_string_value(v);

        } else {
            title = json_string_value(json_object_get(v, "title"));
            text = json_string_value(json_object_get(v, "instruction"));
            if (text == NULL || planner_words(text) == 0) {
                text = title;
            }
        }

        if (text == NULL || planner_words(text) == 0) {
            continue;
        }

        instruction = planner_clean(text, strlen(text));
        if (instruction == NULL) {
            continue;
        }

        if (title != NULL && planner_words(title) == 0) {
            title = NULL;
        }

        json_array_append_new(steps,
            planner_step((int) json_array_size(steps) + 1, title,
                         instruction));
        free(instruction);
    }

    json_decref(doc);

    if (json_array_size(steps) == 0) {
        json_decref(steps);
        return NULL;
    }

    return steps;
}


/* the deterministic plan: never fails but for memory */

static json_t *
planner_rules(const char *prompt, int max_steps)
{
    int      markers;
    char    *text;
    size_t   i;
    json_t  *pieces, *grouped, *steps, *v;

    markers = 0;

    pieces = planner_split_list(prompt);

    if (pieces == NULL) {
        pieces = planner_split_markers(prompt, &markers);
        if (pieces == NULL) {
            return NULL;
        }

        if (json_array_size(pieces) <= 1
            || (!markers && planner_words(prompt) <= PLANNER_SIMPLE_WORDS))
        {
            /* a short, simple request: one step */
            json_array_clear(pieces);
            text = planner_clean(prompt, strlen(prompt));
            if (text == NULL) {
                json_decref(pieces);
                return NULL;
            }
            json_array_append_new(pieces, json_string(text));
            free(text);
        }
    }

    grouped = planner_group(pieces, max_steps);
    json_decref(pieces);

    if (grouped == NULL) {
        return NULL;
    }

    steps = json_array();

    json_array_foreach(grouped, i, v) {
        json_array_append_new(steps,
            planner_step((int) i + 1, NULL, json_string_value(v)));
    }

    json_decref(grouped);

    return steps;
}


/*
 * A numbered ("1.", "2)", "Step 3:") or bulleted ("-", "*", "+", "•")
 * list: one piece per item; lines that follow an item without a blank
 * line continue it. NULL when fewer than two items.
 */

static json_t *
planner_split_list(const char *prompt)
{
    int          in_item;
    char        *text, *cur;
    size_t       len, skip, n, cur_len;
    json_t      *items;
    const char  *line, *eol;

    items = json_array();
    cur = NULL;
    cur_len = 0;
    in_item = 0;

    for (line = prompt; *line != '\0'; line = *eol ? eol + 1 : eol) {
        eol = strchr(line, '\n');
        if (eol == NULL) {
            eol = line + strlen(line);
        }

        len = (size_t) (eol - line);

        if (planner_list_marker(line, len, &skip)) {
            if (cur != NULL) {
                text = planner_clean(cur, cur_len);
                if (text != NULL && planner_words(text) > 0) {
                    json_array_append_new(items, json_string(text));
                }
                free(text);
            }

            free(cur);
            cur_len = len - skip;
            cur = strndup(line + skip, cur_len);
            in_item = 1;
            continue;
        }

        n = 0;
        while (n < len && isspace((unsigned char) line[n])) {
            n++;
        }

        if (n == len) {
            /* a blank line ends the item */
            in_item = 0;
            continue;
        }

        if (in_item && cur != NULL) {
            text = realloc(cur, cur_len + 1 + (len - n) + 1);
            if (text == NULL) {
                continue;
            }
            cur = text;
            cur[cur_len++] = ' ';
            memcpy(cur + cur_len, line + n, len - n);
            cur_len += len - n;
            cur[cur_len] = '\0';
        }
    }

    if (cur != NULL) {
        text = planner_clean(cur, cur_len);
        if (text != NULL && planner_words(text) > 0) {
            json_array_append_new(items, json_string(text));
        }
        free(text);
        free(cur);
    }

    if (json_array_size(items) < 2) {
        json_decref(items);
        return NULL;
    }

    return items;
}


/* whether a line starts a list item; *skip: bytes up to the item text */

static int
planner_list_marker(const char *line, size_t len, size_t *skip)
{
    size_t  i, d;

    i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }

    if (i + 5 < len && strncasecmp(line + i, "step ", 5) == 0
        && isdigit((unsigned char) line[i + 5]))
    {
        i += 5;
    }

    d = i;
    while (i < len && isdigit((unsigned char) line[i])) {
        i++;
    }

    if (i > d) {
        if (i - d > 3 || i + 1 >= len
            || (line[i] != '.' && line[i] != ')' && line[i] != ':')
            || !isspace((unsigned char) line[i + 1]))
        {
            return 0;
        }

        *skip = i + 2;
        return 1;
    }

    if (i + 1 < len && (line[i] == '-' || line[i] == '*' || line[i] == '+')
        && isspace((unsigned char) line[i + 1]))
    {
        *skip = i + 2;
        return 1;
    }

    /* U+2022 BULLET */
    if (i + 3 < len && (unsigned char) line[i] == 0xe2
        && (unsigned char) line[i + 1] == 0x80
        && (unsigned char) line[i + 2] == 0xa2
        && isspace((unsigned char) line[i + 3]))
    {
        *skip = i + 4;
        return 1;
    }

    return 0;
}


/*
 * Cuts the prompt at sequencing markers, ";", new lines and sentence ends.
 * *markers: whether anything but sentence ends cut it.
 */

static json_t *
planner_split_markers(const char *prompt, int *markers)
{
    char    *text;
    size_t   i, start, end, mlen;
    json_t  *pieces;

    pieces = json_array();
    *markers = 0;
    start = 0;

    for (i = 0; prompt[i] != '\0'; /* void */) {
        end = (size_t) -1;
        mlen = 0;

        if (prompt[i] == '\n' || prompt[i] == ';') {
            end = i;
            mlen = 1;
            *markers = 1;

        } else if ((prompt[i] == '.' || prompt[i] == '!' || prompt[i] == '?')
                   && (prompt[i + 1] == '\0'
                       || isspace((unsigned char) prompt[i + 1])))
        {
            end = i + 1;
            mlen = 1;

        } else if (planner_marker_at(prompt, i, &mlen)) {
            end = i;
            *markers = 1;
        }

        if (end == (size_t) -1) {
            i++;
            continue;
        }

        text = planner_clean(prompt + start, end - start);
        if (text != NULL && planner_words(text) > 0) {
            json_array_append_new(pieces, json_string(text));
        }
        free(text);

        i += mlen;
        start = i;
    }

    text = planner_clean(prompt + start, i - start);
    if (text != NULL && planner_words(text) > 0) {
        json_array_append_new(pieces, json_string(text));
    }
    free(text);

    return planner_merge_short(pieces);
}


/* whether a sequencing marker starts at s[i]; *len: its length */

static int
planner_marker_at(const char *s, size_t i, size_t *len)
{
    size_t                   j, k;
    const planner_marker_t  *m;

    if (i > 0 && (isalnum((unsigned char) s[i - 1]) || s[i - 1] == '\'')) {
        return 0;
    }

    for (m = planner_markers; m->word != NULL; m++) {
        if (strncasecmp(s + i, m->word, m->len) != 0
            || isalnum((unsigned char) s[i + m->len])
            || s[i + m->len] == '\'')
        {
            continue;
        }

        if (m->clause_start) {
            /* at the start, after punctuation, or after "and" */
            j = i;
            while (j > 0 && isspace((unsigned char) s[j - 1])) {
                j--;
            }

            if (j > 0 && strchr(",.;:!?", s[j - 1]) == NULL) {
                k = j;
                while (k > 0 && isalpha((unsigned char) s[k - 1])) {
                    k--;
                }

                if (j - k != 3 || strncasecmp(s + k, "and", 3) != 0) {
                    continue;
                }
            }
        }

        *len = m->len;
        return 1;
    }

    return 0;
}


/* a one-word piece joins the piece before it (or after it, if first) */

static json_t *
planner_merge_short(json_t *pieces)
{
    char        *joined;
    size_t       i, n;
    json_t      *out, *last, *v;
    const char  *a, *b;

    out = json_array();

    json_array_foreach(pieces, i, v) {
        n = json_array_size(out);
        last = n ? json_array_get(out, n - 1) : NULL;
        b = json_string_value(v);

        if (last != NULL
            && (planner_words(b) < 2
                || planner_words(json_string_value(last)) < 2))
        {
            a = json_string_value(last);
            if (asprintf(&joined, "%s %s", a, b) < 0) {
                continue;
            }
            json_array_set_new(out, n - 1, json_string(joined));
            free(joined);
            continue;
        }

        json_array_append(out, v);
    }

    json_decref(pieces);

    return out;
}


/* at most max_steps consecutive groups of balanced size */

static json_t *
planner_group(json_t *pieces, int max_steps)
{
    char        *text, *joined;
    size_t       n, k, g, i, from, to;
    json_t      *out;
    const char  *piece;

    n = json_array_size(pieces);
    k = (size_t) max_steps;

    if (n <= k) {
        return json_deep_copy(pieces);
    }

    out = json_array();

    for (g = 0; g < k; g++) {
        from = g * n / k;
        to = (g + 1) * n / k;
        text = NULL;

        for (i = from; i < to; i++) {
            piece = json_string_value(json_array_get(pieces, i));

            if (text == NULL) {
                text = strdup(piece);

            } else if (asprintf(&joined, "%s %s", text, piece) >= 0) {
                free(text);
                text = joined;
            }
        }

        if (text != NULL) {
            json_array_append_new(out, json_string(text));
            free(text);
        }
    }

    return out;
}


static json_t *
planner_step(int id, const char *title, const char *instruction)
{
    char    *t;
    json_t  *step;

    t = planner_title(title ? title : instruction);

    step = json_pack("{s:i, s:s, s:s}",
                     "id", id,
                     "title", t ? t : "",
                     "instruction", instruction);
    free(t);

    return step;
}


/*
 * A copy of s[0..len) with white space collapsed, and leading connectors
 * (",", ":", "-", "and") and trailing ",", ";", ":", "and" removed; the
 * first letter upper-cased.
 */

static char *
planner_clean(const char *s, size_t len)
{
    int      space;
    char    *out;
    size_t   i, n;

    out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }

    n = 0;
    space = 0;

    for (i = 0; i < len && s[i] != '\0'; i++) {
        if (isspace((unsigned char) s[i])) {
            space = (n > 0);
            continue;
        }

        if (space) {
            out[n++] = ' ';
            space = 0;
        }

        out[n++] = s[i];
    }

    out[n] = '\0';

    for ( ;; ) {
        i = 0;
        while (out[i] != '\0' && strchr(",:;- ", out[i]) != NULL) {
            i++;
        }

        if (strncasecmp(out + i, "and ", 4) == 0) {
            i += 4;
        }

        if (i == 0) {
            break;
        }

        n -= i;
        memmove(out, out + i, n + 1);
    }

    for ( ;; ) {
        while (n > 0 && strchr(",;: ", out[n - 1]) != NULL) {
            n--;
        }

        if (n >= 4 && strncasecmp(out + n - 4, " and", 4) == 0) {
            n -= 4;
            continue;
        }

        if (n == 3 && strncasecmp(out, "and", 3) == 0) {
            n = 0;
        }

        break;
    }

    out[n] = '\0';

    if (out[0] >= 'a' && out[0] <= 'z') {
        out[0] = (char) (out[0] - 'a' + 'A');
    }

    return out;
}


/* at most PLANNER_TITLE_MAX bytes, cut on a word (and UTF-8) boundary */

static char *
planner_title(const char *text)
{
    char    *t;
    size_t   n, cut;

    t = planner_clean(text, strlen(text));
    if (t == NULL) {
        return NULL;
    }

    n = strlen(t);

    if (n > PLANNER_TITLE_MAX) {
        cut = PLANNER_TITLE_MAX;

        while (cut > 0 && t[cut] != ' ') {
            cut--;
        }

        if (cut == 0) {
            /* one long word: cut on a UTF-8 boundary */
            cut = PLANNER_TITLE_MAX;
            while (cut > 0 && ((unsigned char) t[cut] & 0xc0) == 0x80) {
                cut--;
            }
        }

        n = cut;
    }

    while (n > 0 && strchr(" .,;:!?-", t[n - 1]) != NULL) {
        n--;
    }

    t[n] = '\0';

    return t;
}


static size_t
planner_words(const char *s)
{
    size_t  n;
    int     in;

    n = 0;
    in = 0;

    for ( /* void */ ; *s != '\0'; s++) {
        if (isspace((unsigned char) *s)) {
            in = 0;

        } else if (!in) {
            in = 1;
            n++;
        }
    }

    return n;
}
