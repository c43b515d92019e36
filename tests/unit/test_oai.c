/*
 * Copyright (C) Maestro authors
 */

/*
 * core/llm/mst_oai.c, the OpenAI wire: request rewriting, the response
 * head, the event-stream framer (every stream fed whole, in two pieces
 * cut at every byte, and byte by byte must give the same events), usage,
 * the assembled answer, the outcome of an attempt, backoff and excerpts.
 */

#include "mst_test.h"

#include "mst_oai.h"


typedef struct {
    char        out[8192];      /* the events, each followed by "|" */
    size_t      len;
    int         n;
    int         errors;         /* "event: error" events */
    int         stop_at;        /* return 1 at this event (0: never) */
    mst_oai_sse_t  *sse;
} to_events_t;


static int
to_event(void *arg, const char *p, size_t n)
{
    to_events_t  *e = arg;

    assert_true(e->len + n + 1 < sizeof(e->out));
    memcpy(e->out + e->len, p, n);
    e->len += n;
    e->out[e->len++] = '|';
    e->out[e->len] = '\0';
    e->n++;
    e->errors += e->sse->error;

    return (e->stop_at && e->n == e->stop_at) ? 1 : 0;
}


/* feed s in pieces at the cuts (sorted offsets, ncuts of them) */
static int
to_feed(const char *s, size_t len, const size_t *cuts, size_t ncuts,
    size_t max, int end, to_events_t *e)
{
    int            rc;
    size_t         i, from, to;
    mst_oai_sse_t  sse;

    memset(e, 0, sizeof(to_events_t));
    mst_oai_sse_init(&sse, max);
    e->sse = &sse;
    from = 0;
    rc = MST_OK;

    for (i = 0; i <= ncuts && rc == MST_OK; i++) {
        to = i < ncuts ? cuts[i] : len;
        rc = mst_oai_sse_feed(&sse, s + from, to - from, to_event, e);
        from = to;
    }

    if (rc == MST_OK && end) {
        rc = mst_oai_sse_end(&sse, to_event, e);
    }

    mst_oai_sse_free(&sse);

    return rc;
}


/* whole, at every cut in two, byte by byte: the same events and rc */
static void
to_every_cut(const char *s, size_t max, int end, int want_rc,
    const char *want)
{
    int           rc;
    size_t        len, i, cut, *cuts;
    to_events_t   e;

    len = strlen(s);

    rc = to_feed(s, len, NULL, 0, max, end, &e);
    assert_int_equal(rc, want_rc);
    assert_string_equal(e.out, want);

    for (cut = 0; cut <= len; cut++) {
        rc = to_feed(s, len, &cut, 1, max, end, &e);
        assert_int_equal(rc, want_rc);
        assert_string_equal(e.out, want);
    }

    cuts = malloc((len + 1) * sizeof(size_t));
    assert_non_null(cuts);

    for (i = 0; i < len; i++) {
        cuts[i] = i + 1;
    }

    rc = to_feed(s, len, cuts, len ? len - 1 : 0, max, end, &e);
    assert_int_equal(rc, want_rc);
    assert_string_equal(e.out, want);

    free(cuts);
}


static void
test_sse_framing(void **state)
{
    /* LF and CRLF, comments, event:/id:/retry:, data: with and without
       the space, an event of two data lines, blank lines between */
    to_every_cut(": keep-alive\n"
                 "data: {\"a\":1}\n\n"
                 "id: 7\r\n"
                 "event: message\r\n"
                 "data:{\"b\":2}\r\n"
                 "\r\n"
                 "\n\n"
                 "retry: 100\n"
                 "data: line one\n"
                 "data: line two\n"
                 "\n"
                 "data\n\n"
                 "data: [DONE]\n\n",
                 0, 0, MST_OK,
                 "{\"a\":1}|{\"b\":2}|line one\nline two||[DONE]|");

    /* an event the stream did not close: only at the end */
    to_every_cut("data: x\n\ndata: last", 0, 0, MST_OK, "x|");
    to_every_cut("data: x\n\ndata: last", 0, 1, MST_OK, "x|last|");
    to_every_cut("data: x\n\ndata: last\r", 0, 1, MST_OK, "x|last|");
    to_every_cut("data: x\n\ndata: last\n", 0, 1, MST_OK, "x|last|");
    to_every_cut("", 0, 1, MST_OK, "");
}


static void
test_sse_error_event_and_stop(void **state)
{
    int            rc;
    to_events_t    e;
    mst_oai_sse_t  sse;
    const char    *s;

    s = "event: error\ndata: {\"error\":\"x\"}\n\ndata: ok\n\n";

    memset(&e, 0, sizeof(e));
    mst_oai_sse_init(&sse, 0);
    e.sse = &sse;

    rc = mst_oai_sse_feed(&sse, s, strlen(s), to_event, &e);
    assert_int_equal(rc, MST_OK);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.errors, 1);          /* only the first */

    /* the callback's non-zero stops the feed and is returned */
    mst_oai_sse_reset(&sse);
    memset(&e, 0, sizeof(e));
    e.sse = &sse;
    e.stop_at = 1;

    rc = mst_oai_sse_feed(&sse, s, strlen(s), to_event, &e);
    assert_int_equal(rc, 1);
    assert_int_equal(e.n, 1);

    mst_oai_sse_free(&sse);
}


static void
test_sse_max_line(void **state)
{
    /* a line of 10 bytes passes a limit of 10, 11 fail at every cut */
    to_every_cut("data: 1234\n\n", 10, 0, MST_OK, "1234|");
    to_every_cut("data: 12345\n\n", 10, 0, MST_EINVAL, "");
    to_every_cut("data: 1234\r\n\r\n", 10, 0, MST_EINVAL, "");

    /* and an event of lines each within it, but together over it */
    to_every_cut("data:12345\ndata:12345\n\n", 10, 0, MST_EINVAL, "");
    to_every_cut("data:12345\ndata:1234\n\n", 10, 0, MST_OK,
                 "12345\n1234|");
}


static void
test_rewrite(void **state)
{
    json_t  *b;

    b = json_pack("{s:s, s:b, s:{s:b, s:i}, s:i}", "model", "client",
                  "stream", 1, "stream_options", "include_usage", 0,
                  "other", 3, "temperature", 1);

    assert_int_equal(mst_oai_rewrite(b, "provider-model", 1), MST_OK);
    assert_string_equal(json_string_value(json_object_get(b, "model")),
                        "provider-model");
    assert_true(json_is_true(json_object_get(json_object_get(b,
                "stream_options"), "include_usage")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(b,
                     "stream_options"), "other")), 3);
    json_decref(b);

    /* no stream_options yet; stream forced; model kept with NULL */
    b = json_pack("{s:s}", "model", "m");
    assert_int_equal(mst_oai_rewrite(b, NULL, 1), MST_OK);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "m");
    assert_true(json_is_true(json_object_get(b, "stream")));
    assert_true(json_is_true(json_object_get(json_object_get(b,
                "stream_options"), "include_usage")));
    json_decref(b);

    /* not streaming: a "stream" that said so becomes false; none stays */
    b = json_pack("{s:s, s:b}", "model", "m", "stream", 1);
    assert_int_equal(mst_oai_rewrite(b, NULL, 0), MST_OK);
    assert_true(json_is_false(json_object_get(b, "stream")));
    json_decref(b);

    b = json_pack("{s:s}", "model", "m");
    assert_int_equal(mst_oai_rewrite(b, "x", 0), MST_OK);
    assert_null(json_object_get(b, "stream"));
    assert_null(json_object_get(b, "stream_options"));
    json_decref(b);
}


static void
test_retry_after(void **state)
{
    time_t          now;
    mst_oai_head_t  h;

    /* Sun, 06 Nov 1994 08:49:37 GMT */
    now = 784111777;

    assert_int_equal(mst_oai_retry_after("1", 1, now), 1000);
    assert_int_equal(mst_oai_retry_after(" 120 \r\n", 7, now), 120000);
    assert_int_equal(mst_oai_retry_after("0", 1, now), 0);
    assert_int_equal(mst_oai_retry_after("1.5", 3, now), -1);
    assert_int_equal(mst_oai_retry_after("-1", 2, now), -1);
    assert_int_equal(mst_oai_retry_after("", 0, now), -1);
    assert_int_equal(mst_oai_retry_after("soon", 4, now), -1);
    assert_int_equal(mst_oai_retry_after("99999999999999999999", 20, now),
                     86400L * 365 * 1000);

    /* the three HTTP-date forms, 10 s after now */
    assert_int_equal(mst_oai_retry_after("Sun, 06 Nov 1994 08:49:47 GMT",
                                         29, now), 10000);
    assert_int_equal(mst_oai_retry_after("Sunday, 06-Nov-94 08:49:47 GMT",
                                         30, now), 10000);
    assert_int_equal(mst_oai_retry_after("Sun Nov  6 08:49:47 1994", 24,
                                         now), 10000);
    /* a date past: at once */
    assert_int_equal(mst_oai_retry_after("Sun, 06 Nov 1994 08:49:00 GMT",
                                         29, now), 0);
    /* not dates */
    assert_int_equal(mst_oai_retry_after("Sun, 06 Foo 1994 08:49:47 GMT",
                                         29, now), -1);
    assert_int_equal(mst_oai_retry_after("Sun, 32 Nov 1994 08:49:47 GMT",
                                         29, now), -1);
    assert_int_equal(mst_oai_retry_after("Sun, 06 Nov 1994 08:49:47 UTC",
                                         29, now), -1);
    assert_int_equal(mst_oai_retry_after("Sun, 06 Nov 1994 08:49:47 GMTx",
                                         30, now), -1);

    mst_oai_head_init(&h);
    assert_int_equal(h.retry_after_ms, -1);

    mst_oai_header(&h, "Retry-After: 2\r\n", 16, now);
    assert_int_equal(h.retry_after_ms, 2000);
    mst_oai_header(&h, "content-type: text/event-stream; charset=utf-8\r\n",
                   48, now);
    assert_true(h.sse);
    mst_oai_header(&h, "X-Retry-After: 9\r\n", 18, now);
    assert_int_equal(h.retry_after_ms, 2000);

    /* a new head after a 1xx forgets the last one */
    mst_oai_header(&h, "HTTP/1.1 200 OK\r\n", 17, now);
    assert_int_equal(h.retry_after_ms, -1);
    assert_false(h.sse);

    mst_oai_header(&h, "Content-Type: application/json\r\n", 32, now);
    assert_false(h.sse);
    mst_oai_header(&h, "retry-after:Sun, 06 Nov 1994 08:49:38 GMT\r\n",
                   43, now);
    assert_int_equal(h.retry_after_ms, 1000);
}


static void
test_event_usage(void **state)
{
    const char       *s;
    mst_oai_usage_t   u;

    memset(&u, 0, sizeof(u));

    assert_int_equal(mst_oai_event("[DONE]", 6, &u), MST_OAI_DONE);
    assert_int_equal(mst_oai_event("{\"a\":", 5, &u), MST_OAI_BAD);
    assert_int_equal(mst_oai_event("[1]", 3, &u), MST_OAI_BAD);

    /* "usage": null in every chunk (OpenAI does that): not parsed */
    s = "{\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}";
    assert_int_equal(mst_oai_event(s, strlen(s), &u), MST_OAI_CHUNK);
    assert_false(u.known);

    /* the word in the text is not the key */
    s = "{\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\": {\"}}]}";
    assert_int_equal(mst_oai_event(s, strlen(s), &u), MST_OAI_CHUNK);
    assert_false(u.known);

    /* the usage-only chunk */
    s = "{\"id\":\"c\",\"choices\": [ ],\"usage\" : {\"prompt_tokens\":7,"
        "\"completion_tokens\":3,\"total_tokens\":10}}";
    assert_int_equal(mst_oai_event(s, strlen(s), &u), MST_OAI_USAGE_ONLY);
    assert_true(u.known);
    assert_int_equal(u.prompt_tokens, 7);
    assert_int_equal(u.completion_tokens, 3);

    /* usage on a chunk that also has content */
    memset(&u, 0, sizeof(u));
    s = "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{"
        "\"prompt_tokens\":1,\"completion_tokens\":2}}";
    assert_int_equal(mst_oai_event(s, strlen(s), &u), MST_OAI_CHUNK);
    assert_int_equal(u.prompt_tokens, 1);
    assert_int_equal(u.completion_tokens, 2);

    /* a malformed chunk that would carry usage */
    s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":1";
    assert_int_equal(mst_oai_event(s, strlen(s), &u), MST_OAI_BAD);
}


static void
test_body(void **state)
{
    json_t           *root;
    const char       *s;
    mst_oai_usage_t   u;

    memset(&u, 0, sizeof(u));

    s = "{\"choices\":[{\"message\":{\"content\":\"x\"}}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}";
    assert_int_equal(mst_oai_body(s, strlen(s), &u, NULL), MST_OK);
    assert_true(u.known);
    assert_int_equal(u.prompt_tokens, 5);
    assert_int_equal(u.completion_tokens, 6);

    /* the top-level usage, after a nested one, with keys after it */
    memset(&u, 0, sizeof(u));
    s = "{\"choices\":[{\"message\":{\"content\":\"x\",\"meta\":{"
        "\"usage\":{\"prompt_tokens\":1}}}}],\"usage\" :\n{\"prompt_tokens\""
        ":8,\"completion_tokens\":9},\"x\":1}";
    assert_int_equal(mst_oai_body(s, strlen(s), &u, NULL), MST_OK);
    assert_int_equal(u.prompt_tokens, 8);
    assert_int_equal(u.completion_tokens, 9);

    /* a body whose syntax is wrong is not an answer, usage or not */
    memset(&u, 0, sizeof(u));
    s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":1}";
    assert_int_equal(mst_oai_body(s, strlen(s), &u, NULL), MST_EINVAL);

    /* embeddings: data, no completion tokens */
    memset(&u, 0, sizeof(u));
    s = "{\"object\":\"list\",\"data\":[],\"usage\":{\"prompt_tokens\":4,"
        "\"total_tokens\":4}}";
    root = NULL;
    assert_int_equal(mst_oai_body(s, strlen(s), &u, &root), MST_OK);
    assert_non_null(root);
    assert_int_equal(u.prompt_tokens, 4);
    assert_int_equal(u.completion_tokens, 0);
    json_decref(root);

    /* no usage: syntax only, unless parsed for the caller */
    memset(&u, 0, sizeof(u));
    s = "{\"choices\":[]}";
    assert_int_equal(mst_oai_body(s, strlen(s), &u, NULL), MST_OK);
    assert_false(u.known);

    s = "{\"choices\":[";
    assert_int_equal(mst_oai_body(s, strlen(s), &u, NULL), MST_EINVAL);
    root = NULL;
    assert_int_equal(mst_oai_body(s, strlen(s), &u, &root), MST_EINVAL);
    assert_null(root);

    s = "{\"object\":\"error\"}";
    assert_int_equal(mst_oai_body(s, strlen(s), &u, NULL), MST_EINVAL);
    assert_int_equal(mst_oai_body("<html>", 6, &u, NULL), MST_EINVAL);

    assert_int_equal(mst_oai_estimate_tokens(0), 0);
    assert_int_equal(mst_oai_estimate_tokens(4), 1);
    assert_int_equal(mst_oai_estimate_tokens(5), 2);
}


typedef struct {
    mst_oai_answer_t  a;
    int               rc;
    int               error_event;
    mst_oai_sse_t    *sse;
    char              streamed[512];
    size_t            nstreamed;
} to_answer_t;


static int
to_answer_event(void *arg, const char *p, size_t n)
{
    size_t        added;
    to_answer_t  *t = arg;

    t->rc = mst_oai_answer_event(&t->a, p, n, t->sse->error, &added);
    if (t->rc != MST_OK) {
        return t->rc;
    }

    assert_true(t->nstreamed + added < sizeof(t->streamed));
    if (added == 0) {
        return MST_OK;
    }
    memcpy(t->streamed + t->nstreamed,
           t->a.content.data + t->a.content.len - added, added);
    t->nstreamed += added;

    return MST_OK;
}


/* the chat.completion assembled from stream s fed with one cut */
static char *
to_assemble(const char *s, size_t cut, int *rc, char *err)
{
    char           *text;
    json_t         *req, *resp;
    size_t          len;
    to_answer_t     t;
    mst_oai_sse_t   sse;

    memset(&t, 0, sizeof(t));
    mst_oai_sse_init(&sse, 0);
    t.sse = &sse;
    len = strlen(s);

    *rc = mst_oai_sse_feed(&sse, s, cut, to_answer_event, &t);
    if (*rc == MST_OK) {
        *rc = mst_oai_sse_feed(&sse, s + cut, len - cut, to_answer_event,
                               &t);
    }
    if (*rc == MST_OK) {
        *rc = mst_oai_sse_end(&sse, to_answer_event, &t);
    }

    mst_oai_sse_free(&sse);
    text = NULL;

    if (*rc == MST_OK && mst_oai_answer_complete(&t.a)) {
        assert_int_equal(t.nstreamed, t.a.content.len);
        assert_memory_equal(t.streamed, t.a.content.data, t.nstreamed);

        req = json_pack("{s:s, s:[{s:s, s:s}]}", "model", "asked",
                        "messages", "role", "user", "content",
                        "twelve bytes");
        resp = mst_oai_answer_json(&t.a, req, NULL);
        assert_non_null(resp);
        text = json_dumps(resp, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(resp);
        json_decref(req);
    }

    snprintf(err, MST_ERRLEN, "%s", t.a.error);
    mst_oai_answer_free(&t.a);

    return text;
}


static void
test_answer_assembled(void **state)
{
    int          rc;
    char        *whole, *cut_text, err[MST_ERRLEN];
    size_t       cut, len;
    const char  *s;

    s = "data: {\"id\":\"chatcmpl-1\",\"created\":42,\"model\":\"m-1\","
        "\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n"
        ": ping\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],"
        "\"usage\":null}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo \\u00e9\"},"
        "\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
        "\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
        "data: [DONE]\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"after\"}}]}\n\n";

    whole = to_assemble(s, 0, &rc, err);
    assert_int_equal(rc, MST_OK);
    assert_non_null(whole);
    assert_string_equal(whole,
        "{\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,"
        "\"message\":{\"content\":\"Hello \xc3\xa9\",\"role\":"
        "\"assistant\"}}],\"created\":42,\"id\":\"chatcmpl-1\","
        "\"model\":\"m-1\",\"object\":\"chat.completion\","
        "\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":9,"
        "\"total_tokens\":11}}");

    len = strlen(s);

    for (cut = 0; cut <= len; cut++) {
        cut_text = to_assemble(s, cut, &rc, err);
        assert_int_equal(rc, MST_OK);
        assert_non_null(cut_text);
        assert_string_equal(cut_text, whole);
        free(cut_text);
    }

    free(whole);

    /* no usage from the provider: estimated; no id/model: made */
    s = "data: {\"choices\":[{\"delta\":{\"content\":\"abcdefgh\"}}]}\n\n"
        "data: [DONE]\n\n";
    whole = to_assemble(s, 3, &rc, err);
    assert_non_null(whole);
    assert_non_null(strstr(whole, "\"usage\":{\"completion_tokens\":2,"
                                  "\"prompt_tokens\":3,"
                                  "\"total_tokens\":5}"));
    assert_non_null(strstr(whole, "\"model\":\"asked\""));
    assert_non_null(strstr(whole, "\"id\":\"chatcmpl-"));
    free(whole);
}


static void
test_answer_failures(void **state)
{
    int          rc;
    char        *text, err[MST_ERRLEN];

    /* an error event */
    text = to_assemble("data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}"
                       "\n\nevent: error\ndata: {\"error\":{\"message\":"
                       "\"overloaded\"}}\n\n", 10, &rc, err);
    assert_null(text);
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_string_equal(err, "error event after 2 bytes: overloaded");

    /* an error chunk */
    text = to_assemble("data: {\"error\":{\"message\":\"bad key\"}}\n\n", 5,
                       &rc, err);
    assert_null(text);
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_string_equal(err, "error in the stream after 0 bytes: bad key");

    /* a malformed chunk */
    text = to_assemble("data: {\"choices\":\n\n", 5, &rc, err);
    assert_null(text);
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_string_equal(err, "malformed response: bad stream chunk after 0 "
                        "bytes");

    /* cut short: neither [DONE] nor a finish_reason */
    text = to_assemble("data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}"
                       "\n\n", 5, &rc, err);
    assert_int_equal(rc, MST_OK);
    assert_null(text);
}


static void
test_complete(void **state)
{
    json_t  *resp, *req;

    req = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}]}]}", "model", "asked",
                    "messages", "role", "user", "content", "type", "text",
                    "text", "12345678");

    resp = json_pack("{s:[{s:{s:s}}]}", "choices", "message", "content",
                     "1234");
    mst_oai_complete(resp, req, "configured");

    assert_string_equal(json_string_value(json_object_get(resp, "object")),
                        "chat.completion");
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        "configured");
    assert_true(json_integer_value(json_object_get(resp, "created")) > 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp,
                     "usage"), "prompt_tokens")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp,
                     "usage"), "completion_tokens")), 1);
    json_decref(resp);

    /* what the provider said stays */
    resp = json_pack("{s:s, s:s, s:i, s:[], s:{s:i}}", "id", "x", "model",
                     "theirs", "created", 5, "choices", "usage",
                     "prompt_tokens", 99);
    mst_oai_complete(resp, req, NULL);
    assert_string_equal(json_string_value(json_object_get(resp, "id")), "x");
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        "theirs");
    assert_int_equal(json_integer_value(json_object_get(resp, "created")), 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp,
                     "usage"), "prompt_tokens")), 99);
    json_decref(resp);

    /* no model anywhere but the request's */
    resp = json_object();
    mst_oai_complete(resp, req, NULL);
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        "asked");
    assert_true(json_is_array(json_object_get(resp, "choices")));
    json_decref(resp);

    json_decref(req);
}


static void
test_classify(void **state)
{
    unsigned  fail;

    struct {
        int       xfer;
        long      status;
        int       malformed;
        int       want;
        unsigned  fail;
    } *t, tests[] = {
        { MST_OAI_XFER_OK, 200, 0, MST_OAI_ANSWER, 0 },
        { MST_OAI_XFER_OK, 204, 0, MST_OAI_ANSWER, 0 },
        { MST_OAI_XFER_OK, 200, 1, MST_OAI_RETRY, MST_FAIL_MALFORMED },
        { MST_OAI_XFER_CONNECT, 0, 0, MST_OAI_RETRY, MST_FAIL_CONNECT },
        { MST_OAI_XFER_CONNECT, 200, 0, MST_OAI_RETRY, MST_FAIL_CONNECT },
        { MST_OAI_XFER_TIMEOUT, 0, 0, MST_OAI_RETRY, MST_FAIL_TIMEOUT },
        { MST_OAI_XFER_OK, 429, 0, MST_OAI_RETRY, MST_FAIL_429 },
        { MST_OAI_XFER_OK, 500, 0, MST_OAI_RETRY, MST_FAIL_5XX },
        { MST_OAI_XFER_OK, 503, 1, MST_OAI_RETRY, MST_FAIL_5XX },
        { MST_OAI_XFER_OK, 400, 0, MST_OAI_CLIENT, 0 },
        { MST_OAI_XFER_OK, 413, 0, MST_OAI_CLIENT, 0 },
        { MST_OAI_XFER_OK, 422, 0, MST_OAI_CLIENT, 0 },
        { MST_OAI_XFER_OK, 401, 0, MST_OAI_NEXT, MST_FAIL_5XX },
        { MST_OAI_XFER_OK, 403, 0, MST_OAI_NEXT, MST_FAIL_5XX },
        { MST_OAI_XFER_OK, 404, 0, MST_OAI_NEXT, MST_FAIL_5XX },
        { MST_OAI_XFER_OK, 302, 0, MST_OAI_NEXT, MST_FAIL_5XX },
        { MST_OAI_XFER_OK, 0, 0, MST_OAI_NEXT, MST_FAIL_5XX },
    };

    for (t = tests; t < tests + sizeof(tests) / sizeof(tests[0]); t++) {
        assert_int_equal(mst_oai_classify(t->xfer, t->status, t->malformed,
                                          &fail), t->want);
        assert_int_equal(fail, t->fail);
    }
}


static uint64_t
to_fixed(void *arg)
{
    return *(uint64_t *) arg;
}


static void
test_backoff(void **state)
{
    long      w, max;
    unsigned  attempt;
    uint64_t  r, i;

    /* full jitter: random(0, base * 2^attempt), capped at 30 s */
    for (attempt = 0; attempt < 70; attempt++) {
        max = 100L << (attempt < 20 ? attempt : 20);
        if (max > MST_OAI_BACKOFF_MAX_MS) {
            max = MST_OAI_BACKOFF_MAX_MS;
        }

        r = (uint64_t) max;            /* the top of the range */
        assert_int_equal(mst_oai_backoff(attempt, 100, -1, -1, to_fixed, &r),
                         max);
        r = (uint64_t) max + 1;         /* wraps to 0 */
        assert_int_equal(mst_oai_backoff(attempt, 100, -1, -1, to_fixed, &r),
                         0);
        r = UINT64_MAX;
        w = mst_oai_backoff(attempt, 100, -1, -1, to_fixed, &r);
        assert_true(w >= 0 && w <= max);
    }

    /* the real random source stays within the bounds, and varies */
    for (i = 0, w = 0; i < 200; i++) {
        long  v = mst_oai_backoff(2, 100, -1, -1, NULL, NULL);

        assert_true(v >= 0 && v <= 400);
        w |= (v != mst_oai_backoff(2, 100, -1, -1, NULL, NULL));
    }
    assert_true(w);

    /* base 0: the default 200 ms */
    r = 1000;
    assert_int_equal(mst_oai_backoff(0, 0, -1, -1, to_fixed, &r), 1000 % 201);

    /* Retry-After wins, exactly; too long or past the deadline: go on */
    assert_int_equal(mst_oai_backoff(0, 100, 1000, -1, to_fixed, &r), 1000);
    assert_int_equal(mst_oai_backoff(5, 100, 0, -1, to_fixed, &r), 0);
    assert_int_equal(mst_oai_backoff(0, 100, MST_OAI_BACKOFF_MAX_MS, -1,
                                     to_fixed, &r), MST_OAI_BACKOFF_MAX_MS);
    assert_int_equal(mst_oai_backoff(0, 100, MST_OAI_BACKOFF_MAX_MS + 1, -1,
                                     to_fixed, &r), -1);
    assert_int_equal(mst_oai_backoff(0, 100, 2000, 1999, to_fixed, &r), -1);
    assert_int_equal(mst_oai_backoff(0, 100, 2000, 2000, to_fixed, &r),
                     2000);

    /* the jitter is cut to the deadline; no time left: go on */
    r = 5000;
    assert_int_equal(mst_oai_backoff(10, 100, -1, 300, to_fixed, &r), 300);
    assert_int_equal(mst_oai_backoff(10, 100, -1, 0, to_fixed, &r), -1);
}


static void
test_excerpt(void **state)
{
    char         out[MST_OAI_EXCERPT + 8], big[600];
    size_t       i;
    const char  *key;

    mst_oai_excerpt("{\"error\":{\"message\":\"Rate limit\\nreached\","
                    "\"type\":\"x\"}}", 54, NULL, out, sizeof(out));
    assert_string_equal(out, "Rate limit reached");

    mst_oai_excerpt("{\"error\":\"flat\"}", 16, NULL, out, sizeof(out));
    assert_string_equal(out, "flat");

    mst_oai_excerpt("{\"message\":\"top\"}", 17, NULL, out, sizeof(out));
    assert_string_equal(out, "top");

    mst_oai_excerpt("<html>\r\n\t<b>Bad gateway</b>  \n", 30, NULL, out,
                    sizeof(out));
    assert_string_equal(out, "<html> <b>Bad gateway</b>");

    mst_oai_excerpt(NULL, 0, NULL, out, sizeof(out));
    assert_string_equal(out, "");

    /* cut at the limit, on a character, marked */
    for (i = 0; i + 2 <= 400; i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xa9';
    }
    mst_oai_excerpt(big, 400, NULL, out, sizeof(out));
    assert_int_equal(strlen(out), MST_OAI_EXCERPT + 3);
    assert_string_equal(out + MST_OAI_EXCERPT, "...");
    assert_true(mst_utf8_valid(out, strlen(out)));

    /* the key never shows, even where the cut would fall inside it */
    key = "sk-secret-0123456789";
    mst_oai_excerpt("{\"error\":{\"message\":\"Incorrect API key provided: "
                    "Bearer sk-secret-0123456789\"}}", 79, key, out,
                    sizeof(out));
    assert_string_equal(out, "Incorrect API key provided: Bearer "
                        "[redacted]");

    memset(big, 'a', sizeof(big));
    memcpy(big + MST_OAI_EXCERPT - 5, key, strlen(key));
    mst_oai_excerpt(big, 300, key, out, sizeof(out));
    assert_null(strstr(out, "sk-"));
    assert_null(strstr(out, "secret"));
    assert_string_equal(out + strlen(out) - 3, "...");

    /* mask */
    snprintf(big, sizeof(big), "a %s b %s", key, key);
    mst_oai_mask(big, sizeof(big), key);
    assert_string_equal(big, "a [redacted] b [redacted]");
    mst_oai_mask(big, sizeof(big), NULL);
    mst_oai_mask(big, sizeof(big), "");
    assert_string_equal(big, "a [redacted] b [redacted]");
}


static void
test_buf(void **state)
{
    mst_oai_buf_t  b;

    memset(&b, 0, sizeof(b));

    assert_int_equal(mst_oai_buf_add(&b, "abc", 3, 5), MST_OK);
    assert_int_equal(mst_oai_buf_add(&b, "de", 2, 5), MST_OK);
    assert_int_equal(mst_oai_buf_add(&b, "f", 1, 5), MST_EINVAL);
    assert_int_equal(mst_oai_buf_add(&b, "", 0, 5), MST_OK);
    assert_string_equal(b.data, "abcde");
    assert_int_equal(mst_oai_buf_add(&b, "x", (size_t) -1, 5), MST_EINVAL);

    mst_oai_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}


/* the text a request gives the model: what a token reservation counts */
static void
test_input_len(void **state)
{
    json_t  *r;

    r = json_pack("{s:[{s:s, s:s}, {s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}",
                  "messages", "role", "system", "content", "be brief",
                  "role", "user", "content", "type", "text", "text", "hello",
                  "type", "image_url", "image_url", "x");
    assert_int_equal(mst_oai_input_len(r), 8 + 5);
    json_decref(r);

    r = json_pack("{s:[s, s]}", "input", "one", "three");
    assert_int_equal(mst_oai_input_len(r), 8);
    json_decref(r);

    r = json_pack("{s:[[i, i, i], i]}", "input", 1, 2, 3, 4);
    assert_int_equal(mst_oai_input_len(r), 16);
    json_decref(r);

    r = json_pack("{s:s}", "input", "");
    assert_int_equal(mst_oai_input_len(r), 0);
    json_decref(r);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_framing),
        cmocka_unit_test(test_sse_error_event_and_stop),
        cmocka_unit_test(test_sse_max_line),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_input_len),
        cmocka_unit_test(test_event_usage),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_answer_assembled),
        cmocka_unit_test(test_answer_failures),
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_excerpt),
        cmocka_unit_test(test_buf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
