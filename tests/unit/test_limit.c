/*
 * Copyright (C) Maestro authors
 */

/*
 * The limits stage's decisions: a key's own rules, token cells and
 * reservations, the tightest verdict, budget periods and budgets, and
 * GCRA's forced charge (tokens used past a reservation).
 */

#include "mst_test.h"
#include "mst_limit.h"


static void
test_limit_key_rules(void **state)
{
    size_t            n;
    json_t           *key;
    mst_limit_rule_t  r[MST_LIMIT_KEY_RULES];

    key = json_pack("{s:{s:i, s:i, s:I, s:i}}", "limits", "rpm", 60,
                    "tpm", 100, "tpd", (json_int_t) 5000000000LL,
                    "max_parallel", 2);

    n = mst_limit_key_rules(key, r);
    assert_int_equal(n, 4);

    assert_int_equal(r[0].kind, MST_LIMIT_REQUESTS);
    assert_string_equal(r[0].name, "rpm");
    assert_int_equal(r[0].gcra.rate, 60);
    assert_int_equal(r[0].gcra.window_ms, MST_GCRA_MINUTE);
    assert_int_equal(r[0].gcra.burst, 59);      /* a minute at once */

    assert_int_equal(r[1].kind, MST_LIMIT_TOKENS);
    assert_int_equal(r[1].gcra.rate, 100);
    assert_int_equal(r[1].gcra.burst, 99);

    /* a cell a token, however many */
    assert_int_equal(r[2].kind, MST_LIMIT_TOKENS);
    assert_string_equal(r[2].name, "tpd");
    assert_int_equal(r[2].gcra.rate, 5000000000LL);
    assert_int_equal(r[2].gcra.burst, 5000000000LL - 1);
    assert_int_equal(r[2].gcra.window_ms, MST_GCRA_DAY);

    assert_int_equal(r[3].kind, MST_LIMIT_PARALLEL);
    assert_int_equal(r[3].max, 2);
    json_decref(key);

    /* 0 and null are no limit; no "limits" at all: no rules */
    key = json_pack("{s:{s:i, s:n}}", "limits", "rpm", 0, "tpm");
    assert_int_equal(mst_limit_key_rules(key, r), 0);
    json_decref(key);

    key = json_pack("{s:n}", "limits");
    assert_int_equal(mst_limit_key_rules(key, r), 0);
    json_decref(key);
}


static void
test_limit_cells(void **state)
{
    mst_limit_rule_t  r;

    memset(&r, 0, sizeof(r));
    assert_int_equal(mst_limit_tokens_rule(&r, 100, MST_GCRA_MINUTE, 0),
                     MST_OK);

    assert_int_equal(mst_limit_cells(&r, 30), 30);
    assert_int_equal(mst_limit_cells(&r, 0), 1);

    /* a reservation larger than the rule admits at once is cut to it:
       a 100-TPM key's first request with max_tokens 4096 gets in */
    assert_int_equal(mst_limit_cells(&r, 4096), 100);

    /* the biggest limit still counts single tokens */
    assert_int_equal(mst_limit_tokens_rule(&r, MST_LIMIT_TOKENS_MAX,
                                           MST_GCRA_MINUTE, 0), MST_OK);
    assert_int_equal(mst_limit_cells(&r, 7), 7);

    /* burst: tokens over the window's */
    assert_int_equal(mst_limit_tokens_rule(&r, 100, MST_GCRA_MINUTE, 50),
                     MST_OK);
    assert_int_equal(r.gcra.burst, 149);

    assert_int_equal(mst_limit_tokens_rule(&r, 0, MST_GCRA_MINUTE, 0),
                     MST_EINVAL);
    assert_int_equal(mst_limit_tokens_rule(&r, MST_LIMIT_TOKENS_MAX + 1,
                                           MST_GCRA_MINUTE, 0), MST_EINVAL);
}


static void
test_limit_estimate(void **state)
{
    /* about 4 bytes a token, rounded up, plus the completion */
    assert_int_equal(mst_limit_estimate(0, 10, 1024), 10);
    assert_int_equal(mst_limit_estimate(1, 10, 1024), 11);
    assert_int_equal(mst_limit_estimate(8, 10, 1024), 12);
    assert_int_equal(mst_limit_estimate(9, 0, 1024), 3);

    /* no max_tokens: the configured cap */
    assert_int_equal(mst_limit_estimate(400, -1, 1024), 1124);
}


/* tokens used past a reservation are charged whatever the bucket holds */
static void
test_limit_reconcile(void **state)
{
    mst_gcra_state_t    st = { 0 };
    mst_gcra_verdict_t  v;
    mst_limit_rule_t    r;
    uint64_t            cells;

    memset(&r, 0, sizeof(r));
    assert_int_equal(mst_limit_tokens_rule(&r, 100, MST_GCRA_MINUTE, 0),
                     MST_OK);

    /* reserve 40, use 10: 30 come back, 90 left */
    cells = mst_limit_cells(&r, 40);
    mst_gcra_take(&r.gcra, &st, cells, 1000, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 60);
    mst_gcra_refund(&r.gcra, &st, 30);

    mst_gcra_take(&r.gcra, &st, 90, 1000, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 0);

    mst_gcra_take(&r.gcra, &st, 1, 1000, &v);
    assert_false(v.admitted);
    assert_int_equal(v.retry_after_ms, 600);    /* 1 token: 0.6 s */

    /* used 300 past it: a debt of 3 minutes before one token again */
    mst_gcra_charge(&r.gcra, &st, 300, 1000);
    mst_gcra_take(&r.gcra, &st, 1, 1000, &v);
    assert_false(v.admitted);
    assert_int_equal(v.retry_after_ms, 180000 + 600);

    mst_gcra_take(&r.gcra, &st, 1, 1000 + 180000 + 600, &v);
    assert_true(v.admitted);

    /* a charge on an idle state starts from now */
    memset(&st, 0, sizeof(st));
    mst_gcra_charge(&r.gcra, &st, 50, 5000);
    mst_gcra_take(&r.gcra, &st, 50, 5000, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 0);
}


static void
test_limit_verdicts(void **state)
{
    mst_limit_rule_t     par;
    mst_limit_verdict_t  v;
    mst_gcra_verdict_t   a = { 1, 10, 7, 300, 0 };
    mst_gcra_verdict_t   b = { 1, 100, 3, 900, 0 };
    mst_gcra_verdict_t   no1 = { 0, 10, 0, 500, 500 };
    mst_gcra_verdict_t   no2 = { 0, 10, 0, 2000, 2000 };

    mst_limit_verdict_init(&v);
    assert_true(v.admitted);
    assert_int_equal(v.limit, 0);

    /* admitted: the rule with the fewest left speaks */
    mst_limit_verdict_add(&v, &a, 1000, "requests");
    mst_limit_verdict_add(&v, &b, 60000, "requests");
    assert_true(v.admitted);
    assert_int_equal(v.limit, 100);
    assert_int_equal(v.remaining, 3);
    assert_int_equal(v.window_ms, 60000);

    /* a refusal wins, then the one that waits longest */
    mst_limit_verdict_add(&v, &no1, 1000, "requests");
    mst_limit_verdict_add(&v, &a, 1000, "requests");
    assert_false(v.admitted);
    assert_int_equal(v.retry_after_ms, 500);
    mst_limit_verdict_add(&v, &no2, 60000, "tokens");
    assert_int_equal(v.retry_after_ms, 2000);
    assert_non_null(strstr(v.why, "tokens"));

    /* slots: refused when as many are in flight as allowed */
    memset(&par, 0, sizeof(par));
    par.kind = MST_LIMIT_PARALLEL;
    par.max = 2;
    par.name = "max_parallel";

    mst_limit_verdict_init(&v);
    mst_limit_verdict_count(&v, &par, 1);
    assert_true(v.admitted);
    mst_limit_verdict_count(&v, &par, 2);
    assert_false(v.admitted);
    assert_true(v.retry_after_ms > 0);
    assert_non_null(strstr(v.why, "max_parallel: 2"));
}


static void
test_limit_period(void **state)
{
    char     b[32];
    int64_t  reset;

    /* 2026-12-07T14:00:00Z */
    assert_int_equal(mst_limit_period("day", 1796652000000LL, b, sizeof(b),
                                      &reset), MST_OK);
    assert_string_equal(b, "day:2026-12-07");
    assert_int_equal(reset, 10 * 3600 * 1000LL);

    assert_int_equal(mst_limit_period("month", 1796652000000LL, b,
                                      sizeof(b), &reset), MST_OK);
    assert_string_equal(b, "month:2026-12");
    /* to 2027-01-01T00:00:00Z: 24 days and 10 hours */
    assert_int_equal(reset, (24 * 24 + 10) * 3600 * 1000LL);

    assert_int_equal(mst_limit_period("total", 1796652000000LL, b,
                                      sizeof(b), &reset), MST_OK);
    assert_string_equal(b, "total");
    assert_int_equal(reset, 0);

    assert_int_equal(mst_limit_period("week", 0, b, sizeof(b), &reset),
                     MST_EINVAL);
}


static void
test_limit_budget(void **state)
{
    char     why[MST_ERRLEN];
    json_t  *key;

    key = json_pack("{s:f, s:s}", "budget_usd", 1.5, "budget_period", "day");

    assert_int_equal(mst_limit_budget(key, 0, why, sizeof(why)), MST_OK);
    assert_int_equal(mst_limit_budget(key, 1.49, why, sizeof(why)), MST_OK);
    assert_int_equal(mst_limit_budget(key, 1.5, why, sizeof(why)),
                     MST_EDENIED);
    assert_non_null(strstr(why, "this day"));
    json_decref(key);

    /* no budget: never refused */
    key = json_pack("{s:n}", "budget_usd");
    assert_int_equal(mst_limit_budget(key, 1e9, why, sizeof(why)), MST_OK);
    json_decref(key);
}


static void
test_limit_team(void **state)
{
    char                 why[MST_ERRLEN];
    const mst_budget_t  *b;
    const mst_budget_t   budgets[] = {
        { "*", 100, "month" }, { "red", 5, "day" }, { "blue", 0, "total" },
    };

    b = mst_limit_team_budget(budgets, 3, "red");
    assert_non_null(b);
    assert_string_equal(b->period, "day");

    /* a team without its own: every team's */
    b = mst_limit_team_budget(budgets, 3, "green");
    assert_non_null(b);
    assert_true(b->usd == 100);

    /* no team: no team budget */
    assert_null(mst_limit_team_budget(budgets, 3, ""));
    assert_null(mst_limit_team_budget(budgets, 3, NULL));
    assert_null(mst_limit_team_budget(budgets + 1, 2, "green"));

    assert_int_equal(mst_limit_spent(5, 4.99, "day", "the team's", why,
                                     sizeof(why)), MST_OK);
    assert_int_equal(mst_limit_spent(5, 5, "day", "the team's", why,
                                     sizeof(why)), MST_EDENIED);
    assert_string_equal(why, "the team's budget exhausted: 5.000000 of "
                        "5.000000 USD spent this day");

    /* a zero budget refuses everything */
    assert_int_equal(mst_limit_spent(0, 0, "total", "the team's", why,
                                     sizeof(why)), MST_EDENIED);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_limit_key_rules),
        cmocka_unit_test(test_limit_cells),
        cmocka_unit_test(test_limit_estimate),
        cmocka_unit_test(test_limit_reconcile),
        cmocka_unit_test(test_limit_verdicts),
        cmocka_unit_test(test_limit_period),
        cmocka_unit_test(test_limit_budget),
        cmocka_unit_test(test_limit_team),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
