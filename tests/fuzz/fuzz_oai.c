/*
 * Copyright (C) Maestro authors
 */

/*
 * libFuzzer target for core/llm/mst_oai.c, the OpenAI wire: what a
 * provider sends back is untrusted bytes. Beyond "no crash, no overflow,
 * no leak" (ASan, UBSan, LSan), a differential check: the event stream
 * fed whole and fed in pieces of the size the first input byte picks must
 * give the same events, the same outcome and the same assembled answer,
 * the way the event loop sees a stream arrive in arbitrary reads. The
 * same bytes also go through the head, body, usage and excerpt parsers.
 *
 *   make fuzz                       (60 s each; FUZZ_SECONDS=N for longer)
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mst_oai.h"


#define FUZZ_MAX_LINE  1024     /* small: reach the limit too */


typedef struct {
    mst_oai_sse_t      sse;
    mst_oai_answer_t   answer;
    mst_oai_buf_t      events;  /* each event, then a NUL */
    int                rc;      /* the answer's */
    int                kinds;   /* a sum of mst_oai_event() results */
} fuzz_run_t;


static int
fuzz_event(void *arg, const char *p, size_t n)
{
    size_t            added;
    fuzz_run_t       *r = arg;
    mst_oai_usage_t   u;

    memset(&u, 0, sizeof(u));
    r->kinds += mst_oai_event(p, n, &u) + 2;

    if (u.known && (u.prompt_tokens < 0 || u.completion_tokens < 0)) {
        abort();
    }

    if (mst_oai_buf_add(&r->events, p, n, 1 << 20) != MST_OK
        || mst_oai_buf_add(&r->events, "", 1, 1 << 20) != MST_OK)
    {
        abort();
    }

    if (r->rc == MST_OK) {
        r->rc = mst_oai_answer_event(&r->answer, p, n, r->sse.error,
                                     &added);
        if (r->rc == MST_OK && added > r->answer.content.len) {
            abort();
        }
    }

    return 0;
}


static int
fuzz_stream(const uint8_t *data, size_t size, size_t step, fuzz_run_t *r,
    char **answer)
{
    int      rc;
    size_t   off, n;
    json_t  *req, *resp;

    memset(r, 0, sizeof(fuzz_run_t));
    mst_oai_sse_init(&r->sse, FUZZ_MAX_LINE);
    rc = MST_OK;

    for (off = 0; off < size && rc == MST_OK; off += n) {
        n = size - off < step ? size - off : step;
        rc = mst_oai_sse_feed(&r->sse, (const char *) data + off, n,
                              fuzz_event, r);
    }

    if (rc == MST_OK) {
        rc = mst_oai_sse_end(&r->sse, fuzz_event, r);
    }

    *answer = NULL;

    if (rc == MST_OK && r->rc == MST_OK
        && mst_oai_answer_complete(&r->answer))
    {
        req = json_pack("{s:s, s:[]}", "model", "m", "messages");
        resp = mst_oai_answer_json(&r->answer, req, NULL);
        if (resp != NULL) {
            /* the id and created are made up when absent: not compared */
            json_object_del(resp, "id");
            json_object_del(resp, "created");
            *answer = json_dumps(resp, JSON_COMPACT | JSON_SORT_KEYS);
        }
        json_decref(resp);
        json_decref(req);
    }

    mst_oai_sse_free(&r->sse);
    mst_oai_answer_free(&r->answer);

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               rc1, rc2;
    char             *a1, *a2, out[MST_OAI_EXCERPT + 8];
    json_t           *root;
    size_t            step;
    long              ra;
    fuzz_run_t        r1, r2;
    mst_oai_head_t    h;
    mst_oai_usage_t   u;

    if (size == 0) {
        return 0;
    }

    step = (size_t) data[0] % 64 + 1;

    rc1 = fuzz_stream(data, size, size, &r1, &a1);
    rc2 = fuzz_stream(data, size, step, &r2, &a2);

    if (rc1 != rc2 || r1.rc != r2.rc || r1.kinds != r2.kinds
        || r1.events.len != r2.events.len
        || (r1.events.len > 0
            && memcmp(r1.events.data, r2.events.data, r1.events.len) != 0)
        || (a1 == NULL) != (a2 == NULL)
        || (a1 != NULL && strcmp(a1, a2) != 0))
    {
        abort();
    }

    free(a1);
    free(a2);
    mst_oai_buf_free(&r1.events);
    mst_oai_buf_free(&r2.events);

    /* the same bytes as a head, a whole body and an error body */

    mst_oai_head_init(&h);
    mst_oai_header(&h, (const char *) data, size, 1700000000);
    ra = mst_oai_retry_after((const char *) data, size, 1700000000);
    if (ra < -1 || h.retry_after_ms < -1) {
        abort();
    }

    memset(&u, 0, sizeof(u));
    root = NULL;
    rc1 = mst_oai_body((const char *) data, size, &u, &root);
    if ((rc1 == MST_OK) != (root != NULL)) {
        abort();
    }
    json_decref(root);

    memset(&u, 0, sizeof(u));
    (void) mst_oai_body((const char *) data, size, &u, NULL);

    mst_oai_excerpt((const char *) data, size, "sk-key", out, sizeof(out));
    if (strlen(out) > MST_OAI_EXCERPT + 3 || strstr(out, "sk-key") != NULL)
    {
        abort();
    }

    return 0;
}
