/*
 * Copyright (C) Maestro authors
 */

/*
 * libFuzzer target for what a client's request body becomes: the bytes
 * of POST /api/v1/workflows (and the stream endpoint) or of
 * /v1/chat/completions, through the functions the module calls on them,
 * in the module's order (core/text/mst_request.c, then the guard over
 * every text, core/text/mst_guard_request.c):
 *
 *   submission   mst_request_parse -> mst_request_submission
 *                -> mst_guard_submission
 *   /v1          mst_request_parse -> mst_request_openai
 *                -> mst_guard_openai -> mst_request_chat
 *                -> mst_request_submission (as maestro/<workflow> does)
 *
 * The first byte picks the way and whether the caller's user is fixed
 * (a WebSocket session) or claimed by the body. Beyond ASan, UBSan and
 * LSan: a refusal has a code, a 400 and a message that is valid UTF-8
 * (it goes into a JSON answer); an accepted submission has a non-blank
 * string prompt and [{name, content}] context; whatever the guard did,
 * the body still dumps to JSON text (the store writes it).
 *
 *   make fuzz                       (60 s each; FUZZ_SECONDS=N for longer)
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mst_request.h"
#include "mst_guard_request.h"
#include "mst_json.h"


static mst_guard_t  *fuzz_guard;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  err[MST_ERRLEN];

    fuzz_guard = mst_guard_new();

    if (fuzz_guard == NULL
        || mst_guard_deny(fuzz_guard, "ignore (all )?previous instructions",
                          err, sizeof(err)) != MST_OK
        || mst_guard_allow(fuzz_guard, "^(?!.*secret)", err, sizeof(err))
           != MST_OK)
    {
        abort();
    }

    mst_guard_redact(fuzz_guard, 1);

    return 0;
}


static void
fuzz_refused(const mst_request_error_t *e)
{
    if (e->status != 400 || e->code == NULL || e->code[0] == '\0'
        || !mst_utf8_valid(e->message, strlen(e->message)))
    {
        abort();
    }
}


static void
fuzz_dumps(const json_t *j)
{
    char    *text;
    size_t   len;

    text = mst_json_dump(j, &len);
    if (text == NULL || len == 0) {
        abort();
    }

    free(text);
}


/* mst_request_submission() and the guard on an accepted one */
static void
fuzz_submission(json_t *body, mst_caller_t *who, int guard)
{
    int                  changed;
    char                 why[MST_ERRLEN];
    size_t               i;
    json_t              *ctx, *item, *prompt;
    mst_request_error_t  e;

    if (mst_request_submission(body, who, &ctx, &e) != MST_OK) {
        fuzz_refused(&e);

        if (ctx != NULL) {
            abort();
        }

        return;
    }

    prompt = json_object_get(body, "prompt");

    if (!json_is_string(prompt) || json_string_length(prompt) == 0
        || !json_is_array(ctx)
        || json_array_size(ctx) > MST_REQUEST_MAX_CONTEXT)
    {
        abort();
    }

    json_array_foreach(ctx, i, item) {
        if (!json_is_string(json_object_get(item, "name"))
            || !json_is_string(json_object_get(item, "content")))
        {
            abort();
        }
    }

    if (guard) {
        changed = 0;

        if (mst_guard_submission(fuzz_guard, body, ctx, &changed, why,
                                 sizeof(why))
            != MST_OK
            && !mst_utf8_valid(why, strlen(why)))
        {
            abort();
        }

        if (!json_is_string(json_object_get(body, "prompt"))) {
            abort();
        }
    }

    fuzz_dumps(body);
    fuzz_dumps(ctx);
    json_decref(ctx);
}


static void
fuzz_openai(json_t *body, mst_caller_t *who)
{
    int                  changed;
    char                 why[MST_ERRLEN];
    json_t              *req;
    const char          *m;
    mst_request_error_t  e;

    m = mst_request_openai(body, &e);

    if (m == NULL) {
        fuzz_refused(&e);
        return;
    }

    changed = 0;

    if (mst_guard_openai(fuzz_guard, body, &changed, why, sizeof(why))
        != MST_OK)
    {
        if (!mst_utf8_valid(why, strlen(why))) {
            abort();
        }

        return;
    }

    fuzz_dumps(body);

    if (mst_request_chat(body, "fuzz", &req, &e) != MST_OK) {
        fuzz_refused(&e);

        if (req != NULL) {
            abort();
        }

        return;
    }

    /* the texts were guarded as an OpenAI body */
    fuzz_submission(req, who, 0);
    json_decref(req);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 err[MST_ERRLEN];
    json_t              *body;
    uint8_t              mode;
    mst_caller_t         who;
    mst_request_error_t  e;

    if (size < 1) {
        return 0;
    }

    mode = data[0];
    data++;
    size--;

    mst_caller_local(&who);

    if ((mode & 2)
        && mst_caller_session(&who, "fuzz-user", 9, err, sizeof(err))
           != MST_OK)
    {
        abort();
    }

    body = mst_request_parse((const char *) data, size, &e);

    if (body == NULL) {
        fuzz_refused(&e);
        return 0;
    }

    if (mode & 1) {
        fuzz_openai(body, &who);

    } else {
        fuzz_submission(body, &who, 1);
    }

    json_decref(body);

    return 0;
}
