/*
 * Copyright (C) Maestro authors
 */

/*
 * core/llm/mst_gateway.c: the gateway's decisions. The order of the
 * providers (priority, weight, lowest latency), the plan of a model and
 * its fallback chain, the circuit breakers (take / done: closed, open,
 * half-open with one probe), and what a health check does to them. The
 * calls themselves are the engine's, on nginx's event loop: the
 * integration tests (gateway, passthru, llm) drive them against
 * tests/fixtures/fake-openai.mjs.
 */

#include "mst_test.h"

#include "mst_gateway.h"


/* a and b, a at priority 0, b at b_priority; failures to open */
static mst_gateway_t *
tg_gateway(mst_breaker_t *breakers, uint64_t failures, int64_t recovery,
    int b_priority)
{
    char                     err[MST_ERRLEN];
    mst_gateway_t           *gw;
    mst_breaker_conf_t       bc;
    mst_gateway_provider_t   p[2];

    memset(p, 0, sizeof(p));

    p[0].provider.name = "a";
    p[0].provider.base_url = "http://127.0.0.1:9/v1";
    p[0].provider.model = "fake";
    p[0].priority = 0;
    p[0].weight = 1;

    p[1] = p[0];
    p[1].provider.name = "b";
    p[1].provider.base_url = "https://127.0.0.1:10/v1";
    p[1].priority = b_priority;

    bc.failures = failures;
    bc.recovery_ms = recovery;

    gw = mst_gateway_create(p, 2, &bc, breakers, err, sizeof(err));
    assert_non_null(gw);

    return gw;
}


/* the first member a call would try */
static size_t
tg_first(mst_gateway_t *gw)
{
    size_t  order[MST_GATEWAY_MAX];

    assert_int_equal(mst_gateway_plan_all(gw, order), 2);
    return order[0];
}


static void
test_create(void **state)
{
    char                     err[MST_ERRLEN];
    json_t                  *st;
    mst_gateway_t           *gw;
    mst_gateway_provider_t   p[MST_GATEWAY_MAX + 1];

    /* offline: no provider */
    gw = mst_gateway_create(NULL, 0, NULL, NULL, err, sizeof(err));
    assert_non_null(gw);
    assert_false(mst_gateway_online(gw));
    assert_int_equal(mst_gateway_size(gw), 0);
    st = mst_gateway_status(gw);
    assert_int_equal(json_array_size(st), 0);
    json_decref(st);
    mst_gateway_free(gw);

    assert_false(mst_gateway_online(NULL));
    assert_int_equal(mst_gateway_size(NULL), 0);

    memset(p, 0, sizeof(p));
    p[0].provider.base_url = "ftp://x/v1";

    assert_null(mst_gateway_create(p, 1, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "provider \"default\": base_url must start "
                        "with http:// or https://");

    p[0].provider.base_url = "http://x/v1";
    assert_null(mst_gateway_create(p, MST_GATEWAY_MAX + 1, NULL, NULL, err,
                                   sizeof(err)));
    assert_string_equal(err, "at most 16 providers");

    /* the name is copied, with a default; weights of at least 1 */
    gw = mst_gateway_create(p, 1, NULL, NULL, err, sizeof(err));
    assert_non_null(gw);
    assert_true(mst_gateway_online(gw));
    assert_string_equal(mst_gateway_provider(gw, 0)->name, "default");
    st = mst_gateway_status(gw);
    assert_int_equal(json_integer_value(mst_json_path(st, "0.weight")), 1);
    assert_string_equal(json_string_value(mst_json_path(st, "0.health")),
                        "unknown");
    json_decref(st);
    mst_gateway_free(gw);
}


static void
test_priority_and_weight(void **state)
{
    int             i, to_a;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    /* priority: a (0) before b (1), always */
    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 5, 60000, 1);

    for (i = 0; i < 32; i++) {
        assert_int_equal(tg_first(gw), 0);
    }

    mst_gateway_free(gw);

    /* the same priority: a weighted draw spreads the load */
    gw = tg_gateway(br, 5, 60000, 0);
    to_a = 0;

    for (i = 0; i < 400; i++) {
        to_a += tg_first(gw) == 0;
    }

    assert_true(to_a > 120 && to_a < 280);

    mst_gateway_free(gw);
}


/* balance latency: the lowest EWMA first; the unmeasured first of all */
static void
test_lowest_latency(void **state)
{
    int             i, to_a;
    json_t         *st;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 5, 60000, 0);
    mst_gateway_set_balance(gw, MST_GATEWAY_LATENCY);

    /* a unmeasured, b measured at 50 ms: a goes first to be measured */
    br[1].ewma_ms = 50;
    to_a = 0;

    for (i = 0; i < 64; i++) {
        to_a += tg_first(gw) == 0;
    }

    assert_true(to_a >= 52);

    /* a measured slow by a call that worked: b takes nearly all, one in
       MST_GATEWAY_EXPLORE still measures a again */
    assert_true(mst_gateway_take(gw, 0));
    mst_gateway_done(gw, 0, 1, 150);
    assert_int_equal(br[0].ewma_ms, 150);

    to_a = 0;

    for (i = 0; i < 640; i++) {
        to_a += tg_first(gw) == 0;
    }

    assert_true(to_a >= 10 && to_a <= 100);

    /* the EWMA moves by an eighth of each new figure */
    mst_gateway_done(gw, 0, 1, 30);
    assert_int_equal(br[0].ewma_ms, (150 * 7 + 30) / 8);

    st = mst_gateway_status(gw);
    assert_int_equal(json_integer_value(mst_json_path(st, "0.latency_ms")),
                     (150 * 7 + 30) / 8);
    assert_int_equal(json_integer_value(mst_json_path(st, "0.requests")), 2);
    json_decref(st);

    /* weighted again: both get a share whatever their latency */
    mst_gateway_set_balance(gw, MST_GATEWAY_WEIGHTED);
    br[0].ewma_ms = 500;
    to_a = 0;

    for (i = 0; i < 64; i++) {
        to_a += tg_first(gw) == 0;
    }

    assert_true(to_a >= 10 && to_a <= 54);

    mst_gateway_free(gw);
}


/* closed -> open after `failures`; half-open: one probe; probe's outcome */
static void
test_breaker(void **state)
{
    json_t         *st;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 2, 300, 1);

    /* a success resets the count of consecutive failures */
    assert_true(mst_gateway_take(gw, 0));
    mst_gateway_done(gw, 0, 0, 0);
    assert_int_equal(br[0].failures, 1);
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);
    assert_true(mst_gateway_take(gw, 0));
    mst_gateway_done(gw, 0, 1, 10);
    assert_int_equal(br[0].failures, 0);

    /* two failures open it: no request goes to a */
    mst_gateway_done(gw, 0, 0, 0);
    mst_gateway_done(gw, 0, 0, 0);
    assert_int_equal(br[0].state, MST_BREAKER_OPEN);
    assert_false(mst_gateway_take(gw, 0));
    assert_true(mst_gateway_take(gw, 1));

    st = mst_gateway_status(gw);
    assert_string_equal(json_string_value(mst_json_path(st,
                        "0.breaker.state")), "open");
    assert_int_equal(json_integer_value(mst_json_path(st,
                     "0.breaker.failures")), 2);
    assert_int_equal(json_integer_value(mst_json_path(st, "0.errors")), 3);
    assert_int_equal(json_integer_value(mst_json_path(st, "0.requests")), 4);
    json_decref(st);

    /* after the recovery time one probe goes, and only one */
    usleep(350 * 1000);
    assert_true(mst_gateway_take(gw, 0));
    assert_int_equal(br[0].state, MST_BREAKER_HALF_OPEN);
    assert_false(mst_gateway_take(gw, 0));

    /* the client's failure gives the probe back, counts nothing */
    mst_gateway_done(gw, 0, -1, 0);
    assert_int_equal(br[0].probing, 0);
    assert_int_equal(br[0].state, MST_BREAKER_HALF_OPEN);

    /* a failing probe opens it again at once */
    assert_true(mst_gateway_take(gw, 0));
    mst_gateway_done(gw, 0, 0, 0);
    assert_int_equal(br[0].state, MST_BREAKER_OPEN);
    assert_false(mst_gateway_take(gw, 0));

    /* a good probe closes it */
    usleep(350 * 1000);
    assert_true(mst_gateway_take(gw, 0));
    mst_gateway_done(gw, 0, 1, 20);
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);
    assert_int_equal(br[0].probing, 0);
    assert_int_equal(br[0].failures, 0);
    assert_true(mst_gateway_take(gw, 0));
    assert_true(mst_gateway_take(gw, 0));   /* closed: no limit */

    mst_gateway_free(gw);
}


/* GET /models: a failure opens the breaker, a success lets a call probe */
static void
test_health(void **state)
{
    json_t         *changes, *st, *c;
    mst_breaker_t   br[2];
    mst_gateway_t  *gw;

    memset(br, 0, sizeof(br));
    gw = tg_gateway(br, 5, 60000, 1);
    changes = json_array();

    /* both up: two changes from unknown, then none */
    assert_int_equal(mst_gateway_health(gw, 0, 1, NULL, changes), 1);
    assert_int_equal(mst_gateway_health(gw, 1, 1, NULL, changes), 1);
    assert_int_equal(json_array_size(changes), 2);
    assert_true(json_is_true(mst_json_path(changes, "0.healthy")));
    assert_string_equal(json_string_value(mst_json_path(changes,
                        "1.provider")), "b");
    assert_int_equal(mst_gateway_health(gw, 0, 1, NULL, NULL), 0);
    assert_int_equal(br[0].health, MST_HEALTH_UP);
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);

    /* a's check fails: open at once, whatever its failure count */
    json_array_clear(changes);
    assert_int_equal(mst_gateway_health(gw, 0, 0,
                     "GET http://127.0.0.1:9/v1/models: HTTP 503", changes),
                     1);
    c = json_array_get(changes, 0);
    assert_string_equal(json_string_value(json_object_get(c, "provider")),
                        "a");
    assert_true(json_is_false(json_object_get(c, "healthy")));
    assert_string_equal(json_string_value(json_object_get(c, "error")),
                        "GET http://127.0.0.1:9/v1/models: HTTP 503");
    assert_int_equal(br[0].state, MST_BREAKER_OPEN);
    assert_int_equal(br[0].health, MST_HEALTH_DOWN);
    assert_false(mst_gateway_take(gw, 0));

    /* failing again: no change to report, still open */
    assert_int_equal(mst_gateway_health(gw, 0, 0, "again", changes), 0);
    assert_int_equal(json_array_size(changes), 1);

    st = mst_gateway_status(gw);
    assert_string_equal(json_string_value(mst_json_path(st, "0.health")),
                        "down");
    assert_string_equal(json_string_value(mst_json_path(st, "1.health")),
                        "up");
    json_decref(st);

    /* a is back: the next call probes it, long before the 60 s recovery,
       and its success closes the breaker */
    json_array_clear(changes);
    assert_int_equal(mst_gateway_health(gw, 0, 1, NULL, changes), 1);
    assert_true(json_is_true(mst_json_path(changes, "0.healthy")));
    assert_string_equal(json_string_value(mst_json_path(changes, "0.error")),
                        "");
    assert_true(mst_gateway_take(gw, 0));
    assert_false(mst_gateway_take(gw, 0));  /* the one probe */
    mst_gateway_done(gw, 0, 1, 5);
    assert_int_equal(br[0].state, MST_BREAKER_CLOSED);

    json_decref(changes);
    mst_gateway_free(gw);
}


/*
 * The plan: the providers of the model first, then those of its
 * fallback chain; nothing for a model no provider serves; take() and
 * done() drive the breakers.
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

    /* every member, by priority, for a plugin's call */
    n = mst_gateway_plan_all(gw, order);
    assert_int_equal(n, 4);
    assert_true((order[0] == 1 && order[1] == 3)
                || (order[0] == 3 && order[1] == 1));   /* priority 0 */
    assert_int_equal(order[2], 0);
    assert_int_equal(order[3], 2);

    assert_string_equal(mst_gateway_provider(gw, 1)->name, "b");
    assert_int_equal(mst_gateway_size(gw), 4);

    /* one failure opens d's breaker (failures=1): take() refuses it */
    assert_true(mst_gateway_take(gw, 3));
    mst_gateway_done(gw, 3, 0, 0);
    assert_false(mst_gateway_take(gw, 3));
    assert_true(mst_gateway_take(gw, 2));
    mst_gateway_done(gw, 2, -1, 0);     /* the client's: nothing counted */
    assert_true(mst_gateway_take(gw, 2));

    models = mst_gateway_models(gw);
    assert_int_equal(json_array_size(models), 3);   /* small, large, main */
    assert_string_equal(json_string_value(mst_json_path(models, "2.model")),
                        "main");
    assert_string_equal(json_string_value(mst_json_path(models,
                        "2.provider")), "c");
    json_decref(models);

    /* chains: at most MST_GATEWAY_MAX_FALLBACK, and none empty */
    assert_int_equal(mst_gateway_fallback(gw, "x", next, 0, 0), MST_EINVAL);
    assert_int_equal(mst_gateway_fallback_on(gw, "x"), MST_FAIL_ALL);

    mst_gateway_free(gw);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_priority_and_weight),
        cmocka_unit_test(test_lowest_latency),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_plan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
