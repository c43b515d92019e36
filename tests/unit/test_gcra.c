/*
 * Copyright (C) Maestro authors
 */

/* GCRA: exact counts per window, burst, retry, cost, clock, overflow */

#include "mst_test.h"
#include "mst_gcra.h"


/* cells admitted in a tight loop at now_ms */
static uint64_t
test_gcra_drain(const mst_gcra_rule_t *r, mst_gcra_state_t *st,
    uint64_t now_ms)
{
    uint64_t            n;
    mst_gcra_verdict_t  v;

    for (n = 0; n < 10000000; n++) {
        mst_gcra_take(r, st, 1, now_ms, &v);
        if (!v.admitted) {
            break;
        }
    }

    return n;
}


static void
test_gcra_burst(void **state)
{
    mst_gcra_rule_t     r = { 10, MST_GCRA_SECOND, 5 };
    mst_gcra_state_t    st = { 0 };
    mst_gcra_verdict_t  v;

    /* burst=5: exactly 6 at once */
    mst_gcra_take(&r, &st, 1, 1000, &v);
    assert_true(v.admitted);
    assert_int_equal(v.limit, 6);
    assert_int_equal(v.remaining, 5);
    assert_int_equal(v.reset_ms, 100);
    assert_int_equal(v.retry_after_ms, 0);

    assert_int_equal(test_gcra_drain(&r, &st, 1000), 5);

    /* refused: the state is unchanged, retry in exactly one cell */
    mst_gcra_take(&r, &st, 1, 1000, &v);
    assert_false(v.admitted);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.retry_after_ms, 100);
    assert_int_equal(v.reset_ms, 600);

    /* 1 ms early: still refused, retry 1 ms */
    mst_gcra_take(&r, &st, 1, 1099, &v);
    assert_false(v.admitted);
    assert_int_equal(v.retry_after_ms, 1);

    mst_gcra_take(&r, &st, 1, 1100, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 0);
}


static void
test_gcra_steady(void **state)
{
    uint64_t            t, n;
    mst_gcra_rule_t     r = { 7, MST_GCRA_SECOND, 0 };
    mst_gcra_rule_t     m = { 100, MST_GCRA_MINUTE, 0 };
    mst_gcra_state_t    st = { 0 };
    mst_gcra_verdict_t  v;

    /* 7 r/s, asked every ms for 10 s: exactly 70 (7 per second) */
    n = 0;
    for (t = 0; t < 10000; t++) {
        mst_gcra_take(&r, &st, 1, 5000 + t, &v);
        n += v.admitted;
    }
    assert_int_equal(n, 70);

    /* 100 r/m, one try every 10 ms for an hour: exactly 6000 */
    memset(&st, 0, sizeof(st));
    n = 0;
    for (t = 0; t < MST_GCRA_HOUR; t += 10) {
        mst_gcra_take(&m, &st, 1, t + 1, &v);
        n += v.admitted;
    }
    assert_int_equal(n, 6000);

    /* 1/3 s interval, not an integer number of ms: retry rounded up */
    r.rate = 3;
    memset(&st, 0, sizeof(st));
    mst_gcra_take(&r, &st, 1, 0, &v);
    assert_true(v.admitted);
    mst_gcra_take(&r, &st, 1, 0, &v);
    assert_false(v.admitted);
    assert_int_equal(v.retry_after_ms, 334);
    mst_gcra_take(&r, &st, 1, 333, &v);
    assert_false(v.admitted);
    mst_gcra_take(&r, &st, 1, 334, &v);
    assert_true(v.admitted);
}


static void
test_gcra_cost(void **state)
{
    mst_gcra_rule_t     r = { 100, MST_GCRA_MINUTE, 99 };
    mst_gcra_state_t    st = { 0 };
    mst_gcra_verdict_t  v;

    mst_gcra_take(&r, &st, 60, 1, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 40);
    assert_int_equal(v.reset_ms, 36000);

    /* 41 do not fit, 40 do; a refusal charges nothing */
    mst_gcra_take(&r, &st, 41, 1, &v);
    assert_false(v.admitted);
    assert_int_equal(v.remaining, 40);
    assert_int_equal(v.retry_after_ms, 600);

    /* cost 0 counts as 1 */
    mst_gcra_take(&r, &st, 0, 1, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 39);

    /* refund: cells back, never below empty */
    mst_gcra_refund(&r, &st, 30);
    mst_gcra_take(&r, &st, 69, 1, &v);
    assert_true(v.admitted);
    assert_int_equal(v.remaining, 0);

    mst_gcra_refund(&r, &st, 1000000);
    assert_int_equal(st.tat[0], 0);
    assert_int_equal(st.tat[1], 0);
    assert_true(mst_gcra_idle(&r, &st, 0));

    /* more than the burst: never admitted */
    mst_gcra_take(&r, &st, 101, 1, &v);
    assert_false(v.admitted);
}


static void
test_gcra_clock_back(void **state)
{
    mst_gcra_rule_t     r = { 10, MST_GCRA_SECOND, 4 };
    mst_gcra_state_t    st = { 0 };
    mst_gcra_verdict_t  v;

    assert_int_equal(test_gcra_drain(&r, &st, MST_GCRA_HOUR), 5);

    /* the clock jumps back: nothing more is admitted */
    assert_int_equal(test_gcra_drain(&r, &st, MST_GCRA_HOUR / 2), 0);
    assert_int_equal(test_gcra_drain(&r, &st, 0), 0);

    mst_gcra_take(&r, &st, 1, 0, &v);
    assert_false(v.admitted);
    assert_int_equal(v.retry_after_ms, 100);
    assert_int_equal(v.reset_ms, 500);

    /* the clock comes back: the rate resumes */
    assert_int_equal(test_gcra_drain(&r, &st, MST_GCRA_HOUR + 100), 1);
    assert_false(mst_gcra_idle(&r, &st, MST_GCRA_HOUR + 100));
    assert_true(mst_gcra_idle(&r, &st, MST_GCRA_HOUR + 600));
}


static void
test_gcra_huge(void **state)
{
    mst_gcra_rule_t     r = { MST_GCRA_RATE_MAX, MST_GCRA_DAY, UINT64_MAX };
    mst_gcra_state_t    st = { { 0, 0 }, 0 };
    mst_gcra_verdict_t  v;
    uint64_t            hi;

    /* the biggest rule, cost and clock: 128 bits hold them, no wrap */
    mst_gcra_take(&r, &st, UINT64_MAX, UINT64_MAX, &v);
    assert_true(v.admitted);
    assert_int_equal(v.limit, UINT64_MAX);
    assert_true(st.tat[1] > 0);
    hi = st.tat[1];

    /* the bucket is full: the state stays as it was */
    mst_gcra_take(&r, &st, UINT64_MAX, UINT64_MAX, &v);
    assert_false(v.admitted);
    assert_int_equal(st.tat[1], hi);

    /* a charge that would pass 2^128 stops there */
    st.tat[0] = UINT64_MAX - 5;
    st.tat[1] = UINT64_MAX;
    mst_gcra_charge(&r, &st, UINT64_MAX, UINT64_MAX);
    assert_int_equal(st.tat[0], UINT64_MAX);
    assert_int_equal(st.tat[1], UINT64_MAX);
    mst_gcra_refund(&r, &st, 1);
    assert_true(st.tat[0] < UINT64_MAX);

    r.burst = 0;
    r.rate = 1;
    memset(&st, 0, sizeof(st));
    mst_gcra_take(&r, &st, 1, UINT64_MAX - 1, &v);
    assert_true(v.admitted);
    mst_gcra_take(&r, &st, 1, UINT64_MAX - 1, &v);
    assert_false(v.admitted);
    assert_true(v.retry_after_ms >= 1 && v.retry_after_ms <= MST_GCRA_DAY);

    /* exact at the biggest rate for 500 years of a monotonic clock */
    r.rate = MST_GCRA_RATE_MAX;
    r.window_ms = MST_GCRA_SECOND;
    memset(&st, 0, sizeof(st));
    assert_int_equal(test_gcra_drain(&r, &st, 500 * 365 * MST_GCRA_DAY),
                     1);
    mst_gcra_take(&r, &st, 1, 500 * 365 * MST_GCRA_DAY, &v);
    assert_int_equal(v.retry_after_ms, 1);

    /* 10^12 a minute, a burst of a ms' cells: exact to the cell */
    r.rate = MST_GCRA_RATE_MAX;
    r.window_ms = MST_GCRA_MINUTE;
    r.burst = 16666666 - 1;
    memset(&st, 0, sizeof(st));
    mst_gcra_take(&r, &st, 16666666, 1000, &v);
    assert_true(v.admitted);
    mst_gcra_take(&r, &st, 1, 1000, &v);
    assert_false(v.admitted);
    mst_gcra_take(&r, &st, 16666666, 1001, &v);
    assert_true(v.admitted);
    mst_gcra_take(&r, &st, 1, 1001, &v);
    assert_false(v.admitted);

    /* rate 0 is taken as 1 */
    r.rate = 0;
    r.burst = 0;
    memset(&st, 0, sizeof(st));
    assert_int_equal(test_gcra_drain(&r, &st, 7), 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_gcra_burst),
        cmocka_unit_test(test_gcra_steady),
        cmocka_unit_test(test_gcra_cost),
        cmocka_unit_test(test_gcra_clock_back),
        cmocka_unit_test(test_gcra_huge),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
