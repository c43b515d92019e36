/*
 * Copyright (C) Maestro authors
 */

/*
 * The LLM client against tests/fixtures/fake-openai.mjs (run from the repo
 * root): answers, streaming, usage, auth, retries, Retry-After, faults,
 * deadline, cancellation, offline mode.
 */

#include "mst_test.h"

#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <curl/curl.h>

#include "mst_llm.h"
#include "mst_offline.h"


#define FAKE_SCRIPT  "tests/fixtures/fake-openai.mjs"
#define SECRET       "sk-test-SECRET-4242"


static pid_t  fake_pid = -1;
static int    fake_in = -1;          /* the server exits when it closes */
static int    fake_out = -1;
static char   fake_url[64];          /* http://127.0.0.1:PORT */
static char   fake_base[80];         /* .../v1 */


typedef struct {
    char    text[8192];
    size_t  len;
    int     n;
    int     stop_after;              /* return 1 at this chunk, 0: never */
} chunks_t;


typedef struct {
    int64_t  at;                     /* cancelled from this mono time */
    int      calls;
} cancel_t;


/* --- the fake server ------------------------------------------------------ */

static int
fake_start(void **state)
{
    int            in[2], out[2], port;
    char           line[128];
    size_t         n;
    ssize_t        r;
    struct pollfd  pfd;
    int64_t        until;

    if (pipe(in) != 0 || pipe(out) != 0) {
        return -1;
    }

    fake_pid = fork();
    if (fake_pid < 0) {
        return -1;
    }

    if (fake_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp("node", "node", FAKE_SCRIPT, "--port", "0", (char *) NULL);
        _exit(127);
    }

    close(in[0]);
    close(out[1]);
    fake_in = in[1];
    fake_out = out[0];
    fcntl(fake_in, F_SETFD, FD_CLOEXEC);
    fcntl(fake_out, F_SETFD, FD_CLOEXEC);

    /* "LISTENING <port>\n" within 10 s */
    n = 0;
    until = mst_mono_ms() + 10000;

    while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
        pfd.fd = fake_out;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, (int) (until - mst_mono_ms())) <= 0) {
            fprintf(stderr, "fake server: no LISTENING line\n");
            return -1;
        }

        r = read(fake_out, line + n, sizeof(line) - 1 - n);
        if (r <= 0) {
            fprintf(stderr, "fake server: exited (is node installed?)\n");
            return -1;
        }
        n += r;
    }

    line[n] = '\0';

    if (sscanf(line, "LISTENING %d", &port) != 1) {
        fprintf(stderr, "fake server: unexpected \"%s\"\n", line);
        return -1;
    }

    snprintf(fake_url, sizeof(fake_url), "http://127.0.0.1:%d", port);
    snprintf(fake_base, sizeof(fake_base), "%s/v1", fake_url);

    return mst_llm_global_init() == MST_OK ? 0 : -1;
}


static int
fake_stop(void **state)
{
    if (fake_in >= 0) {
        close(fake_in);
    }

    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }

    if (fake_out >= 0) {
        close(fake_out);
    }

    curl_global_cleanup();
    return 0;
}


static size_t
fake_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    chunks_t  *c;
    size_t     n;

    c = arg;
    n = size * nmemb;
    if (c->len + n >= sizeof(c->text)) {
        return 0;
    }

    memcpy(c->text + c->len, ptr, n);
    c->len += n;
    c->text[c->len] = '\0';
    return n;
}


/* a control request to the fake; returns its JSON answer */
static json_t *
fake_http(const char *path, const char *body)
{
    char      url[256];
    CURL     *curl;
    CURLcode  cc;
    chunks_t  c;
    json_t   *j;

    memset(&c, 0, sizeof(c));
    snprintf(url, sizeof(url), "%s%s", fake_url, path);

    curl = curl_easy_init();
    assert_non_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fake_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }

    cc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    assert_int_equal(cc, CURLE_OK);

    j = json_loads(c.text, 0, NULL);
    assert_non_null(j);
    return j;
}


static void
fake_faults(const char *faults)
{
    char     body[512];

    snprintf(body, sizeof(body), "{\"faults\": %s}", faults);
    json_decref(fake_http("/__control", body));
}


static long
fake_requests(void)
{
    json_t  *s;
    long     n;

    s = fake_http("/__stats", NULL);
    n = (long) json_integer_value(json_object_get(s, "requests"));
    json_decref(s);
    return n;
}


static int
fake_reset(void **state)
{
    json_decref(fake_http("/__reset", "{}"));
    return 0;
}


/* --- helpers -------------------------------------------------------------- */

static mst_llm_t *
llm_new(const char *key, int retries, long timeout_ms)
{
    char                 err[MST_ERRLEN];
    mst_llm_t           *llm;
    mst_llm_provider_t   p;

    memset(&p, 0, sizeof(p));
    p.name = "fake";
    p.base_url = fake_base;
    p.api_key = key;
    p.model = "fake-model";
    p.connect_timeout_ms = 2000;
    p.timeout_ms = timeout_ms;
    p.max_retries = retries;
    p.backoff_ms = 10;

    llm = mst_llm_create(&p, err, sizeof(err));
    assert_non_null(llm);
    assert_true(mst_llm_online(llm));
    return llm;
}


static json_t *
req_new(const char *model, const char *question)
{
    json_t  *req;

    req = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "messages",
                    "role", "system", "content", "Be brief.",
                    "role", "user", "content", question);
    assert_non_null(req);

    if (model != NULL) {
        json_object_set_new(req, "model", json_string(model));
    }

    return req;
}


static int
on_chunk(const char *text, size_t len, void *arg)
{
    chunks_t  *c;

    c = arg;
    assert_true(c->len + len < sizeof(c->text));
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    c->n++;

    return c->stop_after != 0 && c->n >= c->stop_after;
}


static int
on_cancel(void *arg)
{
    cancel_t  *c;

    c = arg;
    c->calls++;
    return mst_mono_ms() >= c->at;
}


static const char *
content_of(json_t *resp)
{
    json_t  *c;

    c = mst_json_path(resp, "choices.0.message.content");
    assert_true(json_is_string(c));
    return json_string_value(c);
}


static json_int_t
usage_of(json_t *resp, const char *field)
{
    json_t  *u;

    u = json_object_get(json_object_get(resp, "usage"), field);
    assert_true(json_is_integer(u));
    return json_integer_value(u);
}


static void
assert_shape(json_t *resp)
{
    assert_true(json_is_string(json_object_get(resp, "id")));
    assert_string_equal(json_string_value(json_object_get(resp, "object")),
                        "chat.completion");
    assert_true(json_is_integer(json_object_get(resp, "created")));
    assert_true(json_is_string(json_object_get(resp, "model")));
    assert_true(json_is_array(json_object_get(resp, "choices")));
    assert_true(json_is_object(json_object_get(resp, "usage")));
    assert_true(usage_of(resp, "total_tokens")
                == usage_of(resp, "prompt_tokens")
                   + usage_of(resp, "completion_tokens"));
}


/* --- tests ---------------------------------------------------------------- */

static void
test_chat(void **state)
{
    char        err[MST_ERRLEN];
    int         rc;
    json_t     *req, *resp, *stats;
    mst_llm_t  *llm;

    llm = llm_new(NULL, 0, 5000);
    req = req_new(NULL, "hello there world");
    resp = NULL;

    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_shape(resp);
    assert_string_equal(content_of(resp), "Echo: hello there world");
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        "fake-model");
    assert_int_equal(strncmp(json_string_value(json_object_get(resp, "id")),
                             "chatcmpl-fake-", 14), 0);

    /* usage as the provider counted it (words), not our estimate */
    assert_int_equal(usage_of(resp, "prompt_tokens"), 5);
    assert_int_equal(usage_of(resp, "completion_tokens"), 4);

    /* what went on the wire: the default model, stream false */
    stats = fake_http("/__stats", NULL);
    assert_string_equal(json_string_value(mst_json_path(stats,
                        "last_request.body.model")), "fake-model");
    assert_true(json_is_false(mst_json_path(stats,
                                            "last_request.body.stream")));
    assert_null(mst_json_path(stats, "last_request.body.stream_options"));
    assert_string_equal(json_string_value(mst_json_path(stats,
                        "last_request.path")), "/v1/chat/completions");
    assert_null(mst_json_path(stats, "last_request.headers.authorization"));
    assert_string_equal(json_string_value(mst_json_path(stats,
                        "last_request.headers.content-type")),
                        "application/json");
    json_decref(stats);

    /* the caller's request is left alone */
    assert_null(json_object_get(req, "model"));
    assert_null(json_object_get(req, "stream"));

    json_decref(resp);
    json_decref(req);
    mst_llm_free(llm);
}


static void
test_stream(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    json_t          *req, *resp, *plain, *stats;
    chunks_t         c;
    mst_llm_t       *llm;
    mst_llm_call_t   call;
    const char      *q;

    q = "streaming answers arrive word by word and in order, "
        "ünïcödé and 한국어 included";

    llm = llm_new(NULL, 0, 5000);
    req = req_new("fake-model-large", q);

    memset(&c, 0, sizeof(c));
    memset(&call, 0, sizeof(call));
    call.on_chunk = on_chunk;
    call.chunk_arg = &c;

    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_shape(resp);

    /* many chunks, in order, assembling to the answer */
    assert_true(c.n >= 10);
    assert_string_equal(c.text, content_of(resp));
    assert_int_equal(strncmp(c.text, "Echo: streaming answers", 23), 0);
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        "fake-model-large");

    /* usage from the final chunk: completion = number of chunks */
    assert_int_equal(usage_of(resp, "completion_tokens"), c.n);

    stats = fake_http("/__stats", NULL);
    assert_true(json_is_true(mst_json_path(stats,
                                           "last_request.body.stream")));
    assert_true(json_is_true(mst_json_path(stats,
                "last_request.body.stream_options.include_usage")));
    json_decref(stats);

    /* the same text as without streaming */
    rc = mst_llm_chat(llm, req, NULL, &plain, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_string_equal(content_of(plain), content_of(resp));

    assert_null(json_object_get(req, "stream"));
    assert_null(json_object_get(req, "stream_options"));

    json_decref(plain);
    json_decref(resp);
    json_decref(req);
    mst_llm_free(llm);
}


static void
test_auth_and_key_never_in_err(void **state)
{
    char         err[MST_ERRLEN];
    int          rc;
    json_t      *req, *resp, *stats;
    mst_llm_t   *llm;

    llm = llm_new(SECRET, 3, 5000);
    req = req_new(NULL, "who am I");

    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    json_decref(resp);

    stats = fake_http("/__stats", NULL);
    assert_string_equal(json_string_value(mst_json_path(stats,
                        "last_request.headers.authorization")),
                        "Bearer " SECRET);
    json_decref(stats);

    /* 401 echoes the key: not retried, and masked in err */
    fake_reset(NULL);
    fake_faults("[\"401\"]");

    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_non_null(strstr(err, "HTTP 401"));
    assert_non_null(strstr(err, "Incorrect API key provided"));
    assert_non_null(strstr(err, "[redacted]"));
    assert_null(strstr(err, SECRET));
    assert_int_equal(fake_requests(), 1);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_retry_5xx(void **state)
{
    char         err[MST_ERRLEN];
    int          rc;
    json_t      *req, *resp;
    mst_llm_t   *llm;

    llm = llm_new(NULL, 3, 5000);
    req = req_new(NULL, "retry me");

    /* two 500s, then an answer */
    fake_faults("[\"500\", \"500\"]");
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_string_equal(content_of(resp), "Echo: retry me");
    assert_int_equal(fake_requests(), 3);
    json_decref(resp);
    mst_llm_free(llm);

    /* retries exhausted: the last status, the number of attempts */
    fake_reset(NULL);
    llm = llm_new(NULL, 2, 5000);
    fake_faults("[\"503\", \"503\", \"503\", \"ok\"]");
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_non_null(strstr(err, "HTTP 503"));
    assert_non_null(strstr(err, "fake fault 503"));
    assert_non_null(strstr(err, "3 attempts"));
    assert_non_null(strstr(err, "\"fake\""));
    assert_int_equal(fake_requests(), 3);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_retry_after(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    int64_t          start, elapsed;
    json_t          *req, *resp;
    mst_llm_t       *llm;
    mst_llm_call_t   call;

    llm = llm_new(NULL, 2, 5000);
    req = req_new(NULL, "slow down");

    /* 429 with Retry-After: 1, then OK: waited ~1 s, not backoff_ms */
    fake_faults("[\"429\"]");
    start = mst_mono_ms();
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    elapsed = mst_mono_ms() - start;
    assert_int_equal(rc, MST_OK);
    assert_true(elapsed >= 950);
    assert_true(elapsed < 3000);
    assert_int_equal(fake_requests(), 2);
    json_decref(resp);

    /* Retry-After past the deadline: fail now, and say why */
    fake_reset(NULL);
    fake_faults("[\"429\"]");
    memset(&call, 0, sizeof(call));
    call.deadline = mst_mono_ms() + 500;
    start = mst_mono_ms();
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    elapsed = mst_mono_ms() - start;
    assert_int_equal(rc, MST_ETIMEDOUT);
    assert_null(resp);
    assert_non_null(strstr(err, "Retry-After"));
    assert_non_null(strstr(err, "HTTP 429"));
    assert_true(elapsed < 450);
    assert_int_equal(fake_requests(), 1);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_4xx_not_retried(void **state)
{
    char         err[MST_ERRLEN];
    int          rc;
    json_t      *req, *resp;
    mst_llm_t   *llm;

    llm = llm_new(NULL, 3, 5000);
    req = req_new(NULL, "bad request");

    fake_faults("[\"400\"]");
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_non_null(strstr(err, "HTTP 400"));
    assert_non_null(strstr(err, "fake fault 400"));
    assert_int_equal(fake_requests(), 1);

    /* any other 4xx alike */
    fake_reset(NULL);
    fake_faults("[\"422\", \"ok\"]");
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_non_null(strstr(err, "HTTP 422"));
    assert_int_equal(fake_requests(), 1);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_reset(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    json_t          *req, *resp;
    chunks_t         c;
    mst_llm_t       *llm;
    mst_llm_call_t   call;

    llm = llm_new(NULL, 3, 5000);
    req = req_new(NULL, "one two three four five six");

    /* dropped before any answer: retried */
    fake_faults("[\"reset\"]");
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(fake_requests(), 2);
    json_decref(resp);

    /* dropped mid-stream after two chunks: never retried */
    fake_reset(NULL);
    fake_faults("[\"reset_mid_stream\"]");
    memset(&c, 0, sizeof(c));
    memset(&call, 0, sizeof(call));
    call.on_chunk = on_chunk;
    call.chunk_arg = &c;

    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text, "Echo: one ");
    assert_non_null(strstr(err, "stream broken after 10 bytes"));
    assert_int_equal(fake_requests(), 1);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_timeouts(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    int64_t          start, elapsed;
    json_t          *req, *resp;
    chunks_t         c;
    mst_llm_t       *llm;
    mst_llm_call_t   call;

    req = req_new(NULL, "are you there");

    /* hang: bounded by the deadline, not the 10 s provider timeout */
    llm = llm_new(NULL, 3, 10000);
    fake_faults("[\"hang\"]");
    memset(&call, 0, sizeof(call));
    call.deadline = mst_mono_ms() + 800;
    start = mst_mono_ms();
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    elapsed = mst_mono_ms() - start;
    assert_int_equal(rc, MST_ETIMEDOUT);
    assert_null(resp);
    assert_true(elapsed >= 700);
    assert_true(elapsed < 2500);
    assert_int_equal(fake_requests(), 1);
    mst_llm_free(llm);

    /* headers, then no body byte within the timeout: retried */
    fake_reset(NULL);
    llm = llm_new(NULL, 1, 300);
    fake_faults("[\"slow_first_byte:1500\"]");
    memset(&c, 0, sizeof(c));
    call.deadline = 0;
    call.on_chunk = on_chunk;
    call.chunk_arg = &c;
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_string_equal(c.text, "Echo: are you there");
    assert_int_equal(fake_requests(), 2);
    json_decref(resp);

    /* timed out on every attempt */
    fake_reset(NULL);
    fake_faults("[\"hang\", \"hang\"]");
    start = mst_mono_ms();
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    elapsed = mst_mono_ms() - start;
    assert_int_equal(rc, MST_ETIMEDOUT);
    assert_non_null(strstr(err, "timed out"));
    assert_non_null(strstr(err, "2 attempts"));
    assert_true(elapsed < 2000);
    assert_int_equal(fake_requests(), 2);
    mst_llm_free(llm);

    json_decref(req);
}


static void
test_cancel(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    int64_t          start, elapsed;
    json_t          *req, *resp;
    chunks_t         c;
    cancel_t         cancel;
    mst_llm_t       *llm;
    mst_llm_call_t   call;

    llm = llm_new(NULL, 3, 10000);
    req = req_new(NULL, "cancel me please now");

    /* a hung provider, cancelled after 300 ms */
    fake_faults("[\"hang\"]");
    memset(&call, 0, sizeof(call));
    memset(&cancel, 0, sizeof(cancel));
    cancel.at = mst_mono_ms() + 300;
    call.cancelled = on_cancel;
    call.cancel_arg = &cancel;

    start = mst_mono_ms();
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    elapsed = mst_mono_ms() - start;
    assert_int_equal(rc, MST_ECANCELLED);
    assert_null(resp);
    assert_true(elapsed >= 250);
    assert_true(elapsed < 2000);
    assert_true(cancel.calls > 0);
    assert_int_equal(fake_requests(), 1);

    /* already cancelled: no request at all */
    fake_reset(NULL);
    cancel.at = 0;
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_ECANCELLED);
    assert_int_equal(fake_requests(), 0);

    /* the chunk callback stops a slow stream */
    fake_reset(NULL);
    fake_faults("[\"slow_stream:200\"]");
    memset(&c, 0, sizeof(c));
    memset(&call, 0, sizeof(call));
    c.stop_after = 2;
    call.on_chunk = on_chunk;
    call.chunk_arg = &c;
    start = mst_mono_ms();
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    elapsed = mst_mono_ms() - start;
    assert_int_equal(rc, MST_ECANCELLED);
    assert_int_equal(c.n, 2);
    assert_true(elapsed < 1000);
    assert_int_equal(fake_requests(), 1);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_bad_bodies(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    json_t          *req, *resp;
    chunks_t         c;
    mst_llm_t       *llm;
    mst_llm_call_t   call;

    llm = llm_new(NULL, 3, 5000);
    req = req_new(NULL, "what is this");

    fake_faults("[\"malformed_json\", \"malformed_json\"]");
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_non_null(strstr(err, "malformed response"));

    memset(&c, 0, sizeof(c));
    memset(&call, 0, sizeof(call));
    call.on_chunk = on_chunk;
    call.chunk_arg = &c;
    rc = mst_llm_chat(llm, req, &call, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_non_null(strstr(err, "malformed response"));
    assert_int_equal(c.n, 0);
    assert_int_equal(fake_requests(), 2);

    /* 200 text/html, chosen by the model name suffix */
    fake_reset(NULL);
    json_object_set_new(req, "model",
                        json_string("fake-model@fault=wrong_content_type"));
    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_non_null(strstr(err, "content type \"text/html"));
    assert_int_equal(fake_requests(), 1);

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_connect_refused(void **state)
{
    char                 err[MST_ERRLEN], base[64];
    int                  fd, rc;
    socklen_t            len;
    json_t              *req, *resp;
    mst_llm_t           *llm;
    mst_llm_provider_t   p;
    struct sockaddr_in   sa;

    /* a port nobody listens on */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
    close(fd);

    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1/",
             ntohs(sa.sin_port));

    memset(&p, 0, sizeof(p));
    p.name = "nowhere";
    p.base_url = base;
    p.api_key = SECRET;
    p.model = "m";
    p.max_retries = 2;
    p.backoff_ms = 5;

    llm = mst_llm_create(&p, err, sizeof(err));
    assert_non_null(llm);
    req = req_new(NULL, "anyone?");

    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_EUPSTREAM);
    assert_null(resp);
    assert_non_null(strstr(err, "\"nowhere\""));
    assert_non_null(strstr(err, "3 attempts"));
    assert_null(strstr(err, SECRET));

    json_decref(req);
    mst_llm_free(llm);
}


static void
test_invalid(void **state)
{
    char                 err[MST_ERRLEN];
    json_t              *req, *resp;
    mst_llm_t           *llm;
    mst_llm_provider_t   p;
    mst_llm_call_t       call;

    memset(&p, 0, sizeof(p));
    p.name = "bad";
    p.base_url = "ftp://example.com";
    err[0] = '\0';
    assert_null(mst_llm_create(&p, err, sizeof(err)));
    assert_non_null(strstr(err, "base_url"));

    p.base_url = NULL;
    assert_null(mst_llm_create(&p, err, sizeof(err)));

    llm = llm_new(NULL, 0, 5000);
    resp = NULL;

    req = json_pack("{s:s}", "model", "x");
    assert_int_equal(mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "messages"));
    json_object_set_new(req, "messages", json_array());
    assert_int_equal(mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    assert_int_equal(mst_llm_chat(NULL, req, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    assert_int_equal(mst_llm_chat(llm, NULL, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    json_decref(req);

    /* a deadline already gone */
    req = req_new(NULL, "late");
    memset(&call, 0, sizeof(call));
    call.deadline = mst_mono_ms() - 1;
    assert_int_equal(mst_llm_chat(llm, req, &call, &resp, err, sizeof(err)),
                     MST_ETIMEDOUT);
    mst_llm_free(llm);

    /* no model anywhere */
    p.base_url = fake_base;
    llm = mst_llm_create(&p, err, sizeof(err));
    assert_non_null(llm);
    assert_int_equal(mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "model"));
    assert_int_equal(fake_requests(), 0);
    json_decref(req);
    mst_llm_free(llm);

    assert_int_equal(mst_llm_estimate_tokens("", 0), 0);
    assert_int_equal(mst_llm_estimate_tokens("abcd", 4), 1);
    assert_int_equal(mst_llm_estimate_tokens("abcde", 5), 2);
    assert_false(mst_llm_online(NULL));
    mst_llm_free(NULL);
}


static void
test_offline(void **state)
{
    char             err[MST_ERRLEN];
    int              rc;
    json_t          *req, *resp, *streamed;
    chunks_t         c;
    cancel_t         cancel;
    mst_llm_t       *llm;
    mst_llm_call_t   call;

    llm = mst_llm_create(NULL, err, sizeof(err));
    assert_non_null(llm);
    assert_false(mst_llm_online(llm));

    req = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}",
                    "model", "gpt-whatever", "messages",
                    "role", "system", "content",
                    "The invoice service retries failed payments three "
                    "times over two days.",
                    "role", "user", "content",
                    "How often are failed payments retried?");

    rc = mst_llm_chat(llm, req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_shape(resp);
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        MST_OFFLINE_MODEL);
    assert_int_equal(strncmp(content_of(resp), "[maestro-offline]", 17), 0);
    assert_non_null(strstr(content_of(resp), "three times over two days"));
    assert_true(usage_of(resp, "prompt_tokens") > 0);
    assert_true(usage_of(resp, "completion_tokens") > 0);

    /* streamed in word-sized pieces, same text */
    memset(&c, 0, sizeof(c));
    memset(&call, 0, sizeof(call));
    call.on_chunk = on_chunk;
    call.chunk_arg = &c;
    rc = mst_llm_chat(llm, req, &call, &streamed, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_true(c.n > 10);
    assert_string_equal(c.text, content_of(resp));
    assert_string_equal(content_of(streamed), content_of(resp));
    json_decref(streamed);

    /* cancelled mid-way */
    memset(&c, 0, sizeof(c));
    memset(&cancel, 0, sizeof(cancel));
    call.cancelled = on_cancel;
    call.cancel_arg = &cancel;
    rc = mst_llm_chat(llm, req, &call, &streamed, err, sizeof(err));
    assert_int_equal(rc, MST_ECANCELLED);
    assert_null(streamed);
    assert_int_equal(c.n, 0);

    json_decref(resp);
    json_decref(req);
    mst_llm_free(llm);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(test_chat, fake_reset),
        cmocka_unit_test_setup(test_stream, fake_reset),
        cmocka_unit_test_setup(test_auth_and_key_never_in_err, fake_reset),
        cmocka_unit_test_setup(test_retry_5xx, fake_reset),
        cmocka_unit_test_setup(test_retry_after, fake_reset),
        cmocka_unit_test_setup(test_4xx_not_retried, fake_reset),
        cmocka_unit_test_setup(test_reset, fake_reset),
        cmocka_unit_test_setup(test_timeouts, fake_reset),
        cmocka_unit_test_setup(test_cancel, fake_reset),
        cmocka_unit_test_setup(test_bad_bodies, fake_reset),
        cmocka_unit_test_setup(test_connect_refused, fake_reset),
        cmocka_unit_test_setup(test_invalid, fake_reset),
        cmocka_unit_test_setup(test_offline, fake_reset),
    };

    return cmocka_run_group_tests(tests, fake_start, fake_stop);
}
