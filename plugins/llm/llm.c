/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The llm agent: one chat completion through the host's LLM client, its
 * answer streamed as `token` events while it arrives.
 *
 * Run as a foreach instance over plan.steps, "item" is a plan step and the
 * user message is the step's instruction followed by its sources, each in
 * a section that the offline provider (and any model) can tell apart:
 *
 *   <instruction>
 *
 *   ### Source: prompt          the original request
 *   ### Source: <name>          each context file (config.max_context_bytes,
 *                               default 16384, cut on a UTF-8 boundary)
 *   ### Source: plan            the plan's step titles
 *   ### Source: review          state.review.feedback, on a revision
 *
 * Without an item the instruction is the prompt itself (and there is no
 * "prompt" source). Output: {"step", "title", "content", "model",
 * "usage"}; token usage is added to the workflow's accounting.
 *
 * Runs on a pool thread. Cancellation is checked in the chunk callback,
 * which stops the stream; the step then returns MAESTRO_ECANCELLED.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <maestro_plugin.h>


#define LLM_MAX_CONTEXT_BYTES  16384
#define LLM_TITLE_MAX          60


typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    int      failed;
} llm_buf_t;


typedef struct {
    maestro_ctx_t         *ctx;
    const maestro_host_t  *host;
    llm_buf_t              streamed;
    size_t                 chunks;
    int                    cancelled;
} llm_stream_t;


static int llm_run(maestro_ctx_t *ctx, const maestro_host_t *host,
    void *agent, const char *input);
static int llm_on_chunk(const char *text, size_t len, void *arg);
static int llm_user_message(json_t *in, json_t *config, char **out);
static json_t *llm_request(json_t *config, const char *user);
static json_t *llm_output(json_t *item, const char *prompt,
    json_t *response, const char *streamed);
static char *llm_title(const char *text);
static size_t llm_utf8_cut(const char *s, size_t len, size_t max);
static void llm_buf_add(llm_buf_t *b, const char *s, size_t len);
static void llm_buf_str(llm_buf_t *b, const char *s);


static const maestro_plugin_t  llm_plugin = {
    MAESTRO_PLUGIN_ABI_VERSION,
    "llm",
    "1.0.0",
    "answers a request or a plan step with the host's LLM, streaming",
    "[\"chat\", \"stream\"]",
    NULL,
    llm_run,
    NULL
};


static const char  llm_default_system_prompt[] =
    "You are a precise, helpful assistant in a multi-agent workflow. Do "
    "the task in the user's message. Sections that start with "
    "\"### Source:\" are material to work from: the original request, "
    "uploaded files, the plan, and a reviewer's feedback on a previous "
    "answer; use what is relevant, address the feedback, and say so when "
    "the sources do not contain what the task needs.";


MAESTRO_EXPORT const maestro_plugin_t *
maestro_plugin_entry(uint32_t host_abi_version)
{
    /* built for another ABI: refused, and nginx -t names this file */
    if (host_abi_version != MAESTRO_PLUGIN_ABI_VERSION) {
        return NULL;
    }

    return &llm_plugin;
}


/* runs on a pool thread */

static int
llm_run(maestro_ctx_t *ctx, const maestro_host_t *host, void *agent,
    const char *input)
{
    int            rc;
    char          *user, *req, *resp, *text;
    json_t        *in, *config, *item, *request, *response, *output;
    const char    *prompt;
    llm_stream_t   stream;

    in = json_loads(input, 0, NULL);
    if (in == NULL) {
        host->log(ctx, MAESTRO_LOG_ERROR, "llm: input is not JSON");
        return MAESTRO_EINVAL;
    }

    config = json_object_get(in, "config");
    item = json_object_get(in, "item");
    prompt = json_string_value(
                 json_object_get(json_object_get(in, "state"), "prompt"));

    user = NULL;

    rc = llm_user_message(in, config, &user);
    if (rc != MAESTRO_OK) {
        if (rc == MAESTRO_EPERMANENT) {
            host->log(ctx, MAESTRO_LOG_ERROR,
                      "llm: nothing to do: no prompt and no step "
                      "instruction");
        }
        json_decref(in);
        return rc;
    }

    request = llm_request(config, user);
    free(user);

    req = request ? json_dumps(request, JSON_COMPACT) : NULL;
    json_decref(request);

    if (req == NULL) {
        json_decref(in);
        return MAESTRO_ENOMEM;
    }

    host->progress(ctx, 0.05, "calling the LLM");

    memset(&stream, 0, sizeof(llm_stream_t));
    stream.ctx = ctx;
    stream.host = host;

    resp = NULL;
    rc = host->llm_chat(ctx, req, llm_on_chunk, &stream, &resp);
    free(req);

    if (stream.cancelled || rc == MAESTRO_ECANCELLED) {
        if (resp != NULL) {
            host->free(resp);
        }
        free(stream.streamed.data);
        json_decref(in);
        host->log(ctx, MAESTRO_LOG_INFO, "llm: cancelled after %zu chunks",
                  stream.chunks);
        return MAESTRO_ECANCELLED;
    }

    if (rc != MAESTRO_OK) {
        if (resp != NULL) {
            host->free(resp);
        }
        free(stream.streamed.data);
        json_decref(in);
        host->log(ctx, MAESTRO_LOG_ERROR, "llm: llm_chat() failed: %s",
                  host->strerror(rc));
        return rc;
    }

    response = resp ? json_loads(resp, 0, NULL) : NULL;
    if (resp != NULL) {
        host->free(resp);
    }

    if (!json_is_object(response)) {
        json_decref(response);
        free(stream.streamed.data);
        json_decref(in);
        host->log(ctx, MAESTRO_LOG_ERROR,
                  "llm: the LLM response is not a JSON object");
        return MAESTRO_ELLM;
    }

    /* the host accounts the tokens of llm_chat() */

    output = llm_output(item, prompt, response,
                        stream.streamed.failed ? NULL : stream.streamed.data);

    json_decref(response);
    free(stream.streamed.data);
    json_decref(in);

    text = output ? json_dumps(output, JSON_COMPACT) : NULL;
    json_decref(output);

    if (text == NULL) {
        return MAESTRO_ENOMEM;
    }

    host->log(ctx, MAESTRO_LOG_INFO, "llm: answered in %zu chunks",
              stream.chunks);

    rc = host->set_output(ctx, text);
    free(text);

    host->progress(ctx, 1.0, "answered");

    return rc;
}


/* runs on a pool thread, inside llm_chat() */

static int
llm_on_chunk(const char *text, size_t len, void *arg)
{
    llm_stream_t  *s;

    s = arg;

    if (s->host->cancelled(s->ctx)) {
        s->cancelled = 1;
        return 1;
    }

    if (len == 0) {
        return 0;
    }

    s->chunks++;
    llm_buf_add(&s->streamed, text, len);

    if (s->host->token(s->ctx, text, len) == MAESTRO_ECANCELLED) {
        s->cancelled = 1;
        return 1;
    }

    return 0;
}


/*
 * The instruction and its sources. MAESTRO_EPERMANENT when there is no
 * instruction (retrying cannot help), MAESTRO_ENOMEM.
 */

static int
llm_user_message(json_t *in, json_t *config, char **out)
{
    size_t       i, n, max;
    json_t      *state, *item, *v, *steps;
    llm_buf_t    b;
    const char  *prompt, *instruction, *name, *content, *feedback;

    state = json_object_get(in, "state");
    item = json_object_get(in, "item");
    prompt = json_string_value(json_object_get(state, "prompt"));

    max = LLM_MAX_CONTEXT_BYTES;
    v = json_object_get(config, "max_context_bytes");
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        max = (size_t) json_integer_value(v);
    }

    instruction = NULL;

    if (json_is_string(item)) {
        instruction = json_string_value(item);

    } else if (json_is_object(item)) {
        instruction = json_string_value(json_object_get(item, "instruction"));
        if (instruction == NULL) {
            instruction = json_string_value(json_object_get(item, "title"));
        }
    }

    if (item == NULL || json_is_null(item)) {
        item = NULL;
        instruction = prompt;
    }

    if (instruction == NULL || instruction[0] == '\0') {
        return MAESTRO_EPERMANENT;
    }

    memset(&b, 0, sizeof(llm_buf_t));

    llm_buf_str(&b, instruction);

    if (item != NULL && prompt != NULL && prompt[0] != '\0') {
        llm_buf_str(&b, "\n\n### Source: prompt\n");
        llm_buf_str(&b, prompt);
    }

    json_array_foreach(json_object_get(state, "context"), i, v) {
        name = json_string_value(json_object_get(v, "name"));
        content = json_string_value(json_object_get(v, "content"));

        if (content == NULL || content[0] == '\0') {
            continue;
        }

        n = llm_utf8_cut(content, strlen(content), max);

        llm_buf_str(&b, "\n\n### Source: ");
        llm_buf_str(&b, (name && name[0]) ? name : "context");
        llm_buf_str(&b, "\n");
        llm_buf_add(&b, content, n);
    }

    steps = json_object_get(json_object_get(state, "plan"), "steps");

    if (json_array_size(steps) > 0) {
        llm_buf_str(&b, "\n\n### Source: plan");

        json_array_foreach(steps, i, v) {
            content = json_string_value(json_object_get(v, "title"));
            if (content == NULL) {
                content = json_string_value(json_object_get(v,
                                                            "instruction"));
            }

            if (content != NULL) {
                llm_buf_str(&b, "\n");
                llm_buf_str(&b, content);
            }
        }
    }

    feedback = json_string_value(
                   json_object_get(json_object_get(state, "review"),
                                   "feedback"));

    if (feedback != NULL && feedback[0] != '\0') {
        llm_buf_str(&b, "\n\n### Source: review\n");
        llm_buf_str(&b, feedback);
    }

    if (b.failed) {
        free(b.data);
        return MAESTRO_ENOMEM;
    }

    *out = b.data;

    return MAESTRO_OK;
}


static json_t *
llm_request(json_t *config, const char *user)
{
    json_t      *request, *v;
    const char  *system;

    system = json_string_value(json_object_get(config, "system_prompt"));
    if (system == NULL || system[0] == '\0') {
        system = llm_default_system_prompt;
    }

    request = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}",
                        "messages",
                        "role", "system", "content", system,
                        "role", "user", "content", user);
    if (request == NULL) {
        return NULL;
    }

    v = json_object_get(config, "model");
    if (json_is_string(v)) {
        json_object_set(request, "model", v);
    }

    v = json_object_get(config, "temperature");
    if (json_is_number(v)) {
        json_object_set(request, "temperature", v);
    }

    v = json_object_get(config, "max_tokens");
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        json_object_set(request, "max_tokens", v);
    }

    return request;
}


/* {"step", "title", "content", "model", "usage"} */

static json_t *
llm_output(json_t *item, const char *prompt, json_t *response,
    const char *streamed)
{
    char        *title;
    json_t      *output, *step, *usage;
    const char  *content, *model, *t;

    content = json_string_value(
                  json_object_get(json_object_get(json_array_get(
                      json_object_get(response, "choices"), 0), "message"),
                      "content"));

    if (content == NULL) {
        content = streamed ? streamed : "";
    }

    model = json_string_value(json_object_get(response, "model"));

    step = json_object_get(item, "id");
    step = json_is_integer(step) ? json_incref(step) : json_null();

    t = json_string_value(json_object_get(item, "title"));
    if (t == NULL) {
        t = json_is_string(item) ? json_string_value(item) : prompt;
    }

    title = llm_title(t ? t : "");

    usage = json_object_get(response, "usage");
    usage = json_is_object(usage) ? json_deep_copy(usage) : json_object();

    output = json_pack("{s:o, s:s, s:s, s:s, s:o}",
                       "step", step,
                       "title", title ? title : "",
                       "content", content,
                       "model", model ? model : "",
                       "usage", usage);
    free(title);

    return output;
}


/* white space collapsed, at most LLM_TITLE_MAX bytes on a word boundary */

static char *
llm_title(const char *text)
{
    int      space;
    char    *t;
    size_t   n, cut;

    t = malloc(strlen(text) + 1);
    if (t == NULL) {
        return NULL;
    }

    n = 0;
    space = 0;

    for ( /* void */ ; *text != '\0'; text++) {
        if (isspace((unsigned char) *text)) {
            space = (n > 0);
            continue;
        }

        if (space) {
            t[n++] = ' ';
            space = 0;
        }

        t[n++] = *text;
    }

    t[n] = '\0';

    if (n > LLM_TITLE_MAX) {
        cut = LLM_TITLE_MAX;
        while (cut > 0 && t[cut] != ' ') {
            cut--;
        }

        if (cut == 0) {
            cut = llm_utf8_cut(t, n, LLM_TITLE_MAX);
        }

        t[cut] = '\0';
    }

    return t;
}


/* the longest prefix of s[0..len) of at most max bytes ending on a UTF-8
   character boundary */

static size_t
llm_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }

    while (max > 0 && ((unsigned char) s[max] & 0xc0) == 0x80) {
        max--;
    }

    return max;
}


static void
llm_buf_add(llm_buf_t *b, const char *s, size_t len)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + len + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}


static void
llm_buf_str(llm_buf_t *b, const char *s)
{
    llm_buf_add(b, s, strlen(s));
}
