/*
 * Copyright (C) Maestro authors
 */

/*
 * Request bodies: parse, then the shape of a submission and of a chat
 * completion for a workflow (see mst_request.h).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mst_request.h"


static int mst_request_too_deep(const char *p, size_t n, size_t max);
static int mst_request_blank(const char *s);
static json_t *mst_request_context(json_t *v, const char **why);


int
mst_request_refuse(mst_request_error_t *e, const char *code,
    const char *field, const char *fmt, ...)
{
    va_list  args;

    e->status = 400;
    e->code = code;
    e->field = field;

    va_start(args, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, args);
    va_end(args);

    /* a cut may split a character: the message goes into JSON */
    if (!mst_utf8_valid(e->message, strlen(e->message))) {
        snprintf(e->message, sizeof(e->message), "%s", code);
    }

    return MST_EINVAL;
}


/*
 * Whether the text nests arrays and objects deeper than max: brackets
 * outside strings counted, before jansson builds anything.
 */
static int
mst_request_too_deep(const char *p, size_t n, size_t max)
{
    size_t  i, depth;
    int     in_str, esc;

    depth = 0;
    in_str = 0;
    esc = 0;

    for (i = 0; i < n; i++) {
        if (in_str) {
            if (esc) {
                esc = 0;

            } else if (p[i] == '\\') {
                esc = 1;

            } else if (p[i] == '"') {
                in_str = 0;
            }

            continue;
        }

        switch (p[i]) {

        case '"':
            in_str = 1;
            break;

        case '[':
        case '{':
            if (++depth > max) {
                return 1;
            }
            break;

        case ']':
        case '}':
            if (depth > 0) {
                depth--;
            }
            break;
        }
    }

    return 0;
}


json_t *
mst_request_parse(const char *p, size_t n, mst_request_error_t *e)
{
    json_t        *j;
    json_error_t   jerr;

    if (n == 0) {
        (void) mst_request_refuse(e, "invalid_json", NULL, "empty body");
        return NULL;
    }

    if (!mst_utf8_valid(p, n)) {
        (void) mst_request_refuse(e, "invalid_utf8", NULL,
                                "body is not valid UTF-8");
        return NULL;
    }

    if (mst_request_too_deep(p, n, MST_REQUEST_MAX_DEPTH)) {
        (void) mst_request_refuse(e, "invalid_json", NULL,
                                "JSON nested deeper than %d levels",
                                MST_REQUEST_MAX_DEPTH);
        return NULL;
    }

    j = json_loadb(p, n, 0, &jerr);

    if (j == NULL) {
        (void) mst_request_refuse(e, "invalid_json", NULL,
                                "line %d column %d: %s", jerr.line,
                                jerr.column, jerr.text);
        return NULL;
    }

    if (!json_is_object(j)) {
        json_decref(j);
        (void) mst_request_refuse(e, "invalid_json", NULL,
                                "body must be a JSON object");
        return NULL;
    }

    return j;
}


static int
mst_request_blank(const char *s)
{
    for ( /* void */ ; *s; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
            return 0;
        }
    }

    return 1;
}


/* context: a string, or [{name, content}] / [string] */
static json_t *
mst_request_context(json_t *v, const char **why)
{
    char     name[32];
    size_t   i;
    json_t  *out, *item, *n, *c;

    out = json_array();
    if (out == NULL) {
        *why = "out of memory";
        return NULL;
    }

    if (v == NULL || json_is_null(v)) {
        return out;
    }

    if (json_is_string(v)) {
        json_array_append_new(out, json_pack("{s:s, s:O}", "name", "context",
                                             "content", v));
        return out;
    }

    if (!json_is_array(v) || json_array_size(v) > MST_REQUEST_MAX_CONTEXT) {
        *why = "context must be a string or an array of at most 64 "
               "{name, content} objects";
        json_decref(out);
        return NULL;
    }

    json_array_foreach(v, i, item) {
        if (json_is_string(item)) {
            snprintf(name, sizeof(name), "context-%zu", i + 1);
            json_array_append_new(out, json_pack("{s:s, s:O}", "name", name,
                                                 "content", item));
            continue;
        }

        n = json_object_get(item, "name");
        c = json_object_get(item, "content");

        if (!json_is_string(n) || !json_is_string(c)
            || json_string_length(n) == 0 || json_string_length(n) > 255)
        {
            *why = "each context item needs a name (1..255 characters) and "
                   "a content string";
            json_decref(out);
            return NULL;
        }

        json_array_append_new(out, json_pack("{s:O, s:O}", "name", n,
                                             "content", c));
    }

    return out;
}


int
mst_request_submission(json_t *body, mst_caller_t *who, json_t **context,
    mst_request_error_t *e)
{
    char         err[MST_ERRLEN];
    json_t      *prompt, *user, *wf, *ctx;
    const char  *why;

    *context = NULL;

    prompt = json_object_get(body, "prompt");

    if (prompt == NULL) {
        return mst_request_refuse(e, "missing_field", "prompt",
                                "\"prompt\" is required");
    }

    if (!json_is_string(prompt)
        || mst_request_blank(json_string_value(prompt)))
    {
        return mst_request_refuse(e, "invalid_field", "prompt",
                                "\"prompt\" must be a non-empty string");
    }

    /* the user it is for: a session's, else the one the body names */

    user = json_object_get(body, "user_id");

    if (!who->fixed && user != NULL && !json_is_null(user)
        && (!json_is_string(user)
            || mst_caller_claim(who, json_string_value(user),
                                json_string_length(user), err, sizeof(err))
               != MST_OK))
    {
        return mst_request_refuse(e, "invalid_field", "user_id",
                                "\"user_id\" must be a string of 1..128 "
                                "characters");
    }

    why = NULL;
    ctx = mst_request_context(json_object_get(body, "context"), &why);

    if (ctx == NULL) {
        return mst_request_refuse(e, "invalid_field", "context", "%s",
                                why ? why : "bad context");
    }

    wf = json_object_get(body, "workflow");

    if (wf != NULL && !json_is_null(wf) && !json_is_string(wf)
        && !json_is_object(wf))
    {
        json_decref(ctx);
        return mst_request_refuse(e, "invalid_field", "workflow",
                                "\"workflow\" must be a name or a graph "
                                "object");
    }

    *context = ctx;

    return MST_OK;
}


/*
 * The typed fields of OpenAI's chat completions and embeddings, checked
 * as OpenAI checks them ("stream": "yes" is a 400 there, not a stream).
 * null means "not given" for every optional field.
 */

typedef enum {
    MST_OAI_BOOL,
    MST_OAI_NUMBER,
    MST_OAI_INTEGER,
    MST_OAI_STRING,
    MST_OAI_OBJECT,
    MST_OAI_ARRAY,
    MST_OAI_STOP,               /* a string or up to 4 strings */
    MST_OAI_CHOICE,             /* a string or an object */
    MST_OAI_INPUT               /* a string or an array */
} mst_request_oai_kind_e;


typedef struct {
    const char              *name;
    mst_request_oai_kind_e   kind;
    double                   min;
    double                   max;
} mst_request_oai_field_t;


static const mst_request_oai_field_t  mst_request_oai_fields[] = {
    { "messages",              MST_OAI_ARRAY,   0, 0 },
    { "stream",                MST_OAI_BOOL,    0, 0 },
    { "stream_options",        MST_OAI_OBJECT,  0, 0 },
    { "temperature",           MST_OAI_NUMBER,  0, 2 },
    { "top_p",                 MST_OAI_NUMBER,  0, 1 },
    { "n",                     MST_OAI_INTEGER, 1, 128 },
    { "max_tokens",            MST_OAI_INTEGER, 1, 1e12 },
    { "max_completion_tokens", MST_OAI_INTEGER, 1, 1e12 },
    { "stop",                  MST_OAI_STOP,    0, 0 },
    { "presence_penalty",      MST_OAI_NUMBER,  -2, 2 },
    { "frequency_penalty",     MST_OAI_NUMBER,  -2, 2 },
    { "logit_bias",            MST_OAI_OBJECT,  0, 0 },
    { "logprobs",              MST_OAI_BOOL,    0, 0 },
    { "top_logprobs",          MST_OAI_INTEGER, 0, 20 },
    { "seed",                  MST_OAI_INTEGER, -9.2e18, 9.2e18 },
    { "user",                  MST_OAI_STRING,  0, 0 },
    { "tools",                 MST_OAI_ARRAY,   0, 0 },
    { "tool_choice",           MST_OAI_CHOICE,  0, 0 },
    { "parallel_tool_calls",   MST_OAI_BOOL,    0, 0 },
    { "response_format",       MST_OAI_OBJECT,  0, 0 },
    { "metadata",              MST_OAI_OBJECT,  0, 0 },
    { "store",                 MST_OAI_BOOL,    0, 0 },
    { "input",                 MST_OAI_INPUT,   0, 0 },
    { "encoding_format",       MST_OAI_STRING,  0, 0 },
    { "dimensions",            MST_OAI_INTEGER, 1, 1e6 },
    { NULL,                    0,               0, 0 }
};


static const char *mst_request_oai_expect[] = {
    "a boolean", "a number", "an integer", "a string", "an object",
    "an array", "a string or an array of strings", "a string or an object",
    "a string or an array"
};


static const char *
mst_request_json_kind(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}


static int
mst_request_oai_field(const mst_request_oai_field_t *f, json_t *v,
    mst_request_error_t *e)
{
    int      ok;
    size_t   i;
    double   d;
    json_t  *s;

    switch (f->kind) {
    case MST_OAI_BOOL:
        ok = json_is_boolean(v);
        break;
    case MST_OAI_NUMBER:
        ok = json_is_number(v);
        break;
    case MST_OAI_INTEGER:
        ok = json_is_integer(v);
        break;
    case MST_OAI_STRING:
        ok = json_is_string(v);
        break;
    case MST_OAI_OBJECT:
        ok = json_is_object(v);
        break;
    case MST_OAI_ARRAY:
        ok = json_is_array(v);
        break;
    case MST_OAI_CHOICE:
        ok = json_is_string(v) || json_is_object(v);
        break;
    case MST_OAI_INPUT:
        ok = json_is_string(v) || json_is_array(v);
        break;
    default: /* MST_OAI_STOP */
        ok = json_is_string(v)
             || (json_is_array(v) && json_array_size(v) <= 4);

        json_array_foreach(json_is_array(v) ? v : NULL, i, s) {
            ok = ok && json_is_string(s);
        }
    }

    if (!ok) {
        return mst_request_refuse(e, "invalid_type", f->name,
                                  "Invalid type for '%s': expected %s, but "
                                  "got %s instead.", f->name,
                                  mst_request_oai_expect[f->kind],
                                  json_is_array(v)
                                  && f->kind == MST_OAI_STOP
                                  ? "an array of other values or more than "
                                    "4 items"
                                  : mst_request_json_kind(v));
    }

    if (f->kind != MST_OAI_NUMBER && f->kind != MST_OAI_INTEGER) {
        return MST_OK;
    }

    d = json_number_value(v);

    if (d < f->min || d > f->max) {
        return mst_request_refuse(e, "invalid_value", f->name,
                                  "Invalid '%s': %g is out of range: "
                                  "expected a value from %g to %g.",
                                  f->name, d, f->min, f->max);
    }

    return MST_OK;
}


const char *
mst_request_openai(json_t *body, mst_request_error_t *e)
{
    json_t                         *model, *v;
    const mst_request_oai_field_t  *f;

    model = json_object_get(body, "model");

    if (!json_is_string(model)) {
        (void) mst_request_refuse(e, "missing_required_parameter", "model",
                                "you must provide a model parameter");
        return NULL;
    }

    for (f = mst_request_oai_fields; f->name != NULL; f++) {
        v = json_object_get(body, f->name);

        if (v != NULL && !json_is_null(v)
            && mst_request_oai_field(f, v, e) != MST_OK)
        {
            return NULL;
        }
    }

    v = json_object_get(json_object_get(body, "stream_options"),
                        "include_usage");

    if (v != NULL && !json_is_null(v) && !json_is_boolean(v)) {
        (void) mst_request_refuse(e, "invalid_type",
                                  "stream_options.include_usage",
                                  "Invalid type for "
                                  "'stream_options.include_usage': expected "
                                  "a boolean, but got %s instead.",
                                  mst_request_json_kind(v));
        return NULL;
    }

    return json_string_value(model);
}


json_t *
mst_request_chat_text(json_t *content)
{
    char    *joined;
    size_t   i, len, n;
    json_t  *out, *part, *t;

    if (json_is_string(content)) {
        return json_incref(content);
    }

    if (!json_is_array(content)) {
        return NULL;
    }

    /*
     * The size first, then one copy: joining part by part copied the
     * text so far for each part, quadratic in a body of many small parts.
     */
    len = 0;

    json_array_foreach(content, i, part) {
        t = json_object_get(part, "text");

        if (json_is_string(t)) {
            len += json_string_length(t) + 1;
        }
    }

    if (len == 0) {
        return json_string("");
    }

    joined = malloc(len);
    if (joined == NULL) {
        return NULL;
    }

    n = 0;

    json_array_foreach(content, i, part) {
        t = json_object_get(part, "text");

        if (!json_is_string(t)) {
            continue;
        }

        if (n > 0) {
            joined[n++] = '\n';
        }

        memcpy(joined + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }

    out = json_stringn(joined, n);
    free(joined);

    return out;
}


json_t *
mst_request_chat_prompt(json_t *messages, size_t *at)
{
    size_t       i;
    json_t      *msg;
    const char  *role;

    for (i = json_array_size(messages); i > 0; i--) {
        msg = json_array_get(messages, i - 1);
        role = json_string_value(json_object_get(msg, "role"));

        if (role != NULL && strcmp(role, "user") == 0) {
            *at = i;
            return mst_request_chat_text(json_object_get(msg, "content"));
        }
    }

    *at = 0;

    return NULL;
}


int
mst_request_chat(json_t *body, const char *workflow, json_t **req,
    mst_request_error_t *e)
{
    char         name[48];
    size_t       i, n;
    json_t      *messages, *msg, *text, *context, *t;
    const char  *role;

    *req = NULL;

    messages = json_object_get(body, "messages");

    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        return mst_request_refuse(e, "missing_required_parameter", "messages",
                                "messages must be a non-empty array");
    }

    text = mst_request_chat_prompt(messages, &i);

    if (text == NULL || json_string_length(text) == 0) {
        json_decref(text);
        return mst_request_refuse(e, "invalid_value", "messages",
                                "messages need a user message with text "
                                "content");
    }

    context = json_array();

    json_array_foreach(messages, n, msg) {
        if (n == i - 1) {
            continue;
        }

        role = json_string_value(json_object_get(msg, "role"));
        snprintf(name, sizeof(name), "%.20s-%zu", role ? role : "message",
                 n + 1);

        /* the cut may end in half a character: a name is stored */
        if (!mst_utf8_valid(name, strlen(name))) {
            snprintf(name, sizeof(name), "message-%zu", n + 1);
        }

        t = mst_request_chat_text(json_object_get(msg, "content"));

        if (t != NULL && json_string_length(t) > 0) {
            json_array_append_new(context, json_pack("{s:s, s:o}",
                                                     "name", name,
                                                     "content", t));
        } else {
            json_decref(t);
        }
    }

    *req = json_pack("{s:o, s:s, s:o}", "prompt", text, "workflow",
                     workflow, "context", context);

    if (*req == NULL) {
        return mst_request_refuse(e, "invalid_value", "model",
                                "the workflow name is not valid UTF-8");
    }

    return MST_OK;
}
