/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_gateway: priority and weight, fallback to the next provider, the
 * circuit breaker (closed -> open -> half-open probe -> closed), no
 * fallback once a stream has delivered text, lowest-latency selection,
 * active health checks, offline with no provider.
 * Two fake OpenAI servers (tests/fixtures/fake-openai.mjs) over real
 * sockets.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <curl/curl.h>

#include "mst_test.h"
#include "mst_gateway.h"


#define TG_SCRIPT  "tests/fixtures/fake-openai.mjs"


typedef struct {
    pid_t   pid;
    int     in;
    int     out;
    char    url[64];        /* http://127.0.0.1:PORT */
    char    base[80];       /* .../v1 */
} tg_fake_t;


static tg_fake_t  tg_a, tg_b;


static int
tg_fake_start(tg_fake_t *f)
{
    int            in[2], out[2], port;
    char           line[128];
    size_t         n;
    ssize_t        r;
    struct pollfd  pfd;

    if (pipe(in) != 0 || pipe(out) != 0) {
        return -1;
    }

    f->pid = fork();
    if (f->pid < 0) {
        return -1;
    }

    if (f->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp("node", "node", TG_SCRIPT, "--port", "0", (char *) NULL);
        _exit(127);
    }

    close(in[0]);
    close(out[1]);
    f->in = in[1];
    f->out = out[0];
    fcntl(f->in, F_SETFD, FD_CLOEXEC);
    fcntl(f->out, F_SETFD, FD_CLOEXEC);

    n = 0;
    while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
        pfd.fd = f->out;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 10000) <= 0) {
            return -1;
        }
        r = read(f->out, line + n, sizeof(line) - 1 - n);
        if (r <= 0) {
            return -1;
        }
        n += r;
    }

    line[n] = '\0';
    if (sscanf(line, "LISTENING %d", &port) != 1) {
        return -1;
    }

    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", port);
    snprintf(f->base, sizeof(f->base), "%s/v1", f->url);

    return 0;
}


static void
tg_fake_stop(tg_fake_t *f)
{
    close(f->in);
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    close(f->out);
}


static size_t
tg_sink(char *p, size_t size, size_t n, void *arg)
{
    size_t  *len = arg;

    *len += size * n;
    return size * n;
}


static long
tg_fake_post(tg_fake_t *f, const char *path, const char *body)
{
    char      url[200];
    long      code;
    size_t    len;
    CURL     *curl;

    snprintf(url, sizeof(url), "%s%s", f->url, path);

    len = 0;
    curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, tg_sink);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &len);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    assert_int_equal(curl_easy_perform(curl), CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(curl);

    return code;
}


static void
tg_faults(tg_fake_t *f, const char *faults)
{
    char  body[256];

    snprintf(body, sizeof(body), "{\"faults\": %s}", faults);
    assert_int_equal(tg_fake_post(f, "/__control", body), 200);
}


static int
tg_setup(void **state)
{
    if (mst_llm_global_init() != MST_OK
        || tg_fake_start(&tg_a) != 0 || tg_fake_start(&tg_b) != 0)
    {
        return -1;
    }

    return 0;
}


static int
tg_teardown(void **state)
{
    tg_fake_stop(&tg_a);
    tg_fake_stop(&tg_b);
    curl_global_cleanup();
    return 0;
}


static int
tg_reset(void **state)
{
    tg_fake_post(&tg_a, "/__reset", "{}");
    tg_fake_post(&tg_b, "/__reset", "{}");
    return 0;
}


/* a (priority 0) and b (priority b_priority) */
static mst_gateway_t *
tg_gateway_level(mst_breaker_t *breakers, uint64_t failures,
    int64_t recovery, int b_priority)
{
    char                     err[MST_ERRLEN];
    mst_gateway_t           *gw;
    mst_breaker_conf_t       bc;
    mst_gateway_provider_t   p[2];

    memset(p, 0, sizeof(p));

    p[0].provider.name = "a";
    p[0].provider.base_url = tg_a.base;
    p[0].provider.model = "fake-a";
    p[0].provider.timeout_ms = 3000;
    p[0].provider.max_retries = 0;
    p[0].priority = 0;
    p[0].weight = 1;

    p[1] = p[0];
    p[1].provider.name = "b";
    p[1].provider.base_url = tg_b.base;
    p[1].provider.model = "fake-b";
    p[1].priority = b_priority;

    bc.failures = failures;
    bc.recovery_ms = recovery;

    gw = mst_gateway_create(p, 2, &bc, breakers, err, sizeof(err));
    assert_non_null(gw);

    return gw;
}


/* a and b: a first (priority 0), b second */
static mst_gateway_t *
tg_gateway(mst_breaker_t *breakers, uint64_t failures, int64_t recovery)
{
    return tg_gateway_level(breakers, failures, recovery, 1);
}


static int
tg_chat(mst_gateway_t *gw, const char **used, mst_llm_chunk_pt cb,
    void *arg)
{
    int              rc;
    char             err[MST_ERRLEN];
    json_t          *req, *resp;
    mst_llm_call_t   call;

    memset(&call, 0, sizeof(call));
    call.on_chunk = cb;
    call.chunk_arg = arg;
    call.deadline = mst_mono_ms() + 10000;

    req = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user",
                    "content", "hello gateway, a longer question");

    resp = NULL;
    rc = mst_gateway_chat(gw, req, &call, &resp, used, err, sizeof(err));

    json_decref(req);
    json_decref(resp);

    return rc;
}


static void
test_priority_and_fallback(void **state)
{
    const char     *used;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 5, 60000);

    assert_true(mst_gateway_online(gw));

    /* a answers first */
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "a");

    /* a fails: b answers, transparently */
    tg_faults(&tg_a, "[\"500\"]");
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "b");
    assert_int_equal(br[0].failures, 1);
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);

    /* a success resets the count */
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "a");
    assert_int_equal(br[0].failures, 0);

    /* both fail: an error naming the last */
    tg_faults(&tg_a, "[\"503\"]");
    tg_faults(&tg_b, "[\"500\"]");
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_EUPSTREAM);
    assert_null(used);

    mst_gateway_free(gw);
}


/* balance latency: the lowest EWMA first, measured from real calls */
static void
test_lowest_latency(void **state)
{
    int             i, to_a, to_b;
    const char     *used;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));

    /* same priority: the choice is the balancer's */
    gw = tg_gateway_level(br, 5, 60000, 0);
    mst_gateway_set_balance(gw, MST_GATEWAY_LATENCY);

    /* a unmeasured, b measured at 50 ms: a goes first to be measured */
    br[1].ewma_ms = 50;
    tg_faults(&tg_a, "[\"latency:150\"]");

    for (i = 0; i < 8; i++) {
        assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
        if (strcmp(used, "a") == 0) {
            break;
        }
    }

    assert_true(i < 8);
    assert_true(br[0].ewma_ms >= 140);

    /* now b is the faster one: it takes nearly all calls; one in
       MST_GATEWAY_EXPLORE still measures a again */
    to_a = 0;
    to_b = 0;

    for (i = 0; i < 64; i++) {
        assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
        if (strcmp(used, "a") == 0) {
            to_a++;

        } else {
            to_b++;
        }
    }

    /* a's fast answers lower its EWMA; b stays ahead until then */
    assert_true(to_b >= 52);
    assert_int_equal(to_a + to_b, 64);

    /* weighted: both get a share */
    mst_gateway_set_balance(gw, MST_GATEWAY_WEIGHTED);
    br[0].ewma_ms = 500;
    to_a = 0;

    for (i = 0; i < 64; i++) {
        assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
        to_a += strcmp(used, "a") == 0;
    }

    assert_true(to_a >= 10 && to_a <= 54);

    mst_gateway_free(gw);
}


/* GET /models: a failure opens the breaker, a success lets a call probe */
static void
test_health_check(void **state)
{
    json_t         *changes, *st;
    const char     *used;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 5, 60000);
    changes = json_array();

    /* both up: two changes from unknown */
    assert_int_equal(mst_gateway_check(gw, 2000, changes), 2);
    assert_int_equal(br[0].health, MST_HEALTH_UP);
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);
    assert_int_equal(mst_gateway_check(gw, 2000, NULL), 0);

    /* a's check fails: open at once, calls go to b, no chat sent to a */
    tg_faults(&tg_a, "[\"503\"]");
    json_array_clear(changes);
    assert_int_equal(mst_gateway_check(gw, 2000, changes), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(changes, 0), "provider")), "a");
    assert_true(json_is_false(json_object_get(json_array_get(changes, 0),
                                              "healthy")));
    assert_non_null(strstr(json_string_value(json_object_get(
        json_array_get(changes, 0), "error")), "HTTP 503"));
    assert_int_equal(br[0].state, MST_BREAKER_OPEN);
    assert_int_equal(br[0].health, MST_HEALTH_DOWN);

    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "b");

    st = mst_gateway_status(gw);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(st, 0), "health")), "down");
    json_decref(st);

    /* a is back: the next call probes it and closes the breaker, long
       before the 60 s recovery */
    json_array_clear(changes);
    assert_int_equal(mst_gateway_check(gw, 2000, changes), 1);
    assert_true(json_is_true(json_object_get(json_array_get(changes, 0),
                                             "healthy")));
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "a");
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);

    json_decref(changes);
    mst_gateway_free(gw);
}


/* a provider nobody listens for is down, with the reason */
static void
test_health_check_refused(void **state)
{
    char                     err[MST_ERRLEN];
    json_t                  *changes;
    mst_gateway_t           *gw;
    mst_gateway_provider_t   p;

    memset(&p, 0, sizeof(p));
    p.provider.name = "nobody";
    p.provider.base_url = "http://127.0.0.1:1/v1";
    p.weight = 1;

    gw = mst_gateway_create(&p, 1, NULL, NULL, err, sizeof(err));
    assert_non_null(gw);

    changes = json_array();
    assert_int_equal(mst_gateway_check(gw, 2000, changes), 1);
    assert_non_null(strstr(json_string_value(json_object_get(
        json_array_get(changes, 0), "error")), "127.0.0.1:1/v1/models"));

    json_decref(changes);
    mst_gateway_free(gw);
}


static void
test_breaker(void **state)
{
    json_t         *st;
    const char     *used;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 2, 300);

    /* two failures open a's breaker */
    tg_faults(&tg_a, "[\"500\", \"500\"]");
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "b");
    assert_int_equal(br[0].state, MST_BREAKER_OPEN);

    /* open: a is not asked at all (its queue is empty: it would answer) */
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "b");

    st = mst_gateway_status(gw);
    assert_string_equal(json_string_value(mst_json_path(st,
                        "0.breaker.state")), "open");
    assert_int_equal(json_integer_value(mst_json_path(st, "0.errors")), 2);
    json_decref(st);

    /* after the recovery time one probe goes; a failing probe reopens */
    usleep(350 * 1000);
    tg_faults(&tg_a, "[\"500\"]");
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "b");
    assert_int_equal(br[0].state, MST_BREAKER_OPEN);

    /* a good probe closes it */
    usleep(350 * 1000);
    assert_int_equal(tg_chat(gw, &used, NULL, NULL), MST_OK);
    assert_string_equal(used, "a");
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);
    assert_int_equal(br[0].probing, 0);

    mst_gateway_free(gw);
}


static int
tg_count(const char *text, size_t len, void *arg)
{
    size_t  *n = arg;

    *n += len;
    return 0;
}


static void
test_no_fallback_mid_stream(void **state)
{
    size_t          got;
    const char     *used;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 5, 60000);

    /* broken before the first byte: b takes over, streaming */
    got = 0;
    tg_faults(&tg_a, "[\"reset\"]");
    assert_int_equal(tg_chat(gw, &used, tg_count, &got), MST_OK);
    assert_string_equal(used, "b");
    assert_true(got > 0);

    /* broken after text went out: an error, not a switch to b */
    got = 0;
    tg_faults(&tg_a, "[\"reset_mid_stream\"]");
    assert_int_equal(tg_chat(gw, &used, tg_count, &got), MST_EUPSTREAM);
    assert_null(used);
    assert_true(got > 0);

    mst_gateway_free(gw);
}


static void
test_offline(void **state)
{
    char            err[MST_ERRLEN];
    json_t         *req, *resp;
    const char     *used;
    mst_gateway_t  *gw;
    mst_llm_call_t  call;

    gw = mst_gateway_create(NULL, 0, NULL, NULL, err, sizeof(err));
    assert_non_null(gw);
    assert_false(mst_gateway_online(gw));

    memset(&call, 0, sizeof(call));
    req = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user",
                    "content", "What is the offline provider?");

    assert_int_equal(mst_gateway_chat(gw, req, &call, &resp, &used, err,
                                      sizeof(err)), MST_OK);
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        "maestro-offline");

    json_decref(req);
    json_decref(resp);

    resp = mst_gateway_status(gw);
    assert_int_equal(json_array_size(resp), 0);
    json_decref(resp);

    mst_gateway_free(gw);
}


/*
 * The pass-through's plan: the providers of the model first, then those
 * of its fallback chain; nothing for a model no provider serves; take()
 * and done() drive the same breakers as the blocking calls.
 */
static void
test_plan(void **state)
{
    char                     err[MST_ERRLEN];
    size_t                   n, order[MST_GATEWAY_MAX];
    json_t                  *models;
    mst_gateway_t           *gw;
    mst_breaker_conf_t       bc;
    mst_gateway_provider_t   p[4];
    const char              *next[] = { "large", "small" };

    memset(p, 0, sizeof(p));
    p[0].provider.name = "a";
    p[0].provider.base_url = "http://127.0.0.1:9/v1";
    p[0].provider.model = "small";
    p[0].priority = 1;
    p[1] = p[0];
    p[1].provider.name = "b";
    p[1].provider.model = "large";
    p[1].priority = 0;
    p[2] = p[0];
    p[2].provider.name = "c";
    p[2].provider.model = "main";
    p[2].priority = 2;
    p[3] = p[0];
    p[3].provider.name = "d";
    p[3].provider.model = "main";
    p[3].priority = 0;

    bc.failures = 1;
    bc.recovery_ms = 60000;

    gw = mst_gateway_create(p, 4, &bc, NULL, err, sizeof(err));
    assert_non_null(gw);

    assert_int_equal(mst_gateway_plan(gw, "nobody", order), 0);

    /* no chain: only the model's own providers, by priority */
    n = mst_gateway_plan(gw, "main", order);
    assert_int_equal(n, 2);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);

    assert_int_equal(mst_gateway_fallback_on(gw, "main"), MST_FAIL_ALL);
    assert_int_equal(mst_gateway_fallback(gw, "main", next, 2,
                                          MST_FAIL_5XX | MST_FAIL_429),
                     MST_OK);
    assert_int_equal(mst_gateway_fallback_on(gw, "main"),
                     MST_FAIL_5XX | MST_FAIL_429);
    n = mst_gateway_plan(gw, "main", order);
    assert_int_equal(n, 4);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);      /* "large" before "small" */
    assert_int_equal(order[3], 0);

    assert_string_equal(mst_gateway_provider(gw, 1)->name, "b");

    /* one failure opens d's breaker (failures=1): take() refuses it */
    assert_true(mst_gateway_take(gw, 3));
    mst_gateway_done(gw, 3, 0, 0);
    assert_false(mst_gateway_take(gw, 3));
    assert_true(mst_gateway_take(gw, 2));
    mst_gateway_done(gw, 2, -1, 0);     /* the client's: nothing counted */
    assert_true(mst_gateway_take(gw, 2));

    models = mst_gateway_models(gw);
    assert_int_equal(json_array_size(models), 3);   /* small, large, main */
    json_decref(models);

    mst_gateway_free(gw);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(test_priority_and_fallback, tg_reset),
        cmocka_unit_test_setup(test_breaker, tg_reset),
        cmocka_unit_test_setup(test_lowest_latency, tg_reset),
        cmocka_unit_test_setup(test_health_check, tg_reset),
        cmocka_unit_test(test_health_check_refused),
        cmocka_unit_test_setup(test_no_fallback_mid_stream, tg_reset),
        cmocka_unit_test(test_offline),
        cmocka_unit_test(test_plan),
    };

    return cmocka_run_group_tests(tests, tg_setup, tg_teardown);
}
