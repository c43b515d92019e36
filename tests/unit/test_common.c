/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_common: workflow ids (uniqueness, validity, time order), UTF-8
 * validation, dotted JSON paths, error strings.
 */

#include "mst_test.h"

#include <time.h>

#include "mst_common.h"


#define TST_IDS  1000


/* undefined behaviour fails the test, not just a line on stderr */
const char *
__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}


static int
tst_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}


static void
tst_sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}


static void
test_id_unique_valid(void **state)
{
    char     (*ids)[MST_ID_LEN + 1];
    char      prefix[13];
    size_t    i;
    int64_t   before, after, ms;

    ids = calloc(TST_IDS, sizeof(*ids));
    assert_non_null(ids);

    before = mst_now_ms();

    for (i = 0; i < TST_IDS; i++) {
        memset(ids[i], 'x', sizeof(ids[i]));
        mst_id_new(ids[i]);

        assert_int_equal(strlen(ids[i]), MST_ID_LEN);
        assert_true(mst_id_valid(ids[i], strlen(ids[i])));
        assert_memory_equal(ids[i], "wf_", 3);
    }

    after = mst_now_ms();

    /* the 12 hex digits after "wf_" are the creation time in ms */

    for (i = 0; i < TST_IDS; i++) {
        memcpy(prefix, ids[i] + 3, 12);
        prefix[12] = '\0';
        ms = (int64_t) strtoll(prefix, NULL, 16);
        assert_true(ms >= (before & 0xffffffffffffLL));
        assert_true(ms <= (after & 0xffffffffffffLL));
    }

    qsort(ids, TST_IDS, sizeof(*ids), tst_cmp);

    for (i = 1; i < TST_IDS; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            fail_msg("duplicate id %s", ids[i]);
        }
    }

    free(ids);
}


static void
test_id_time_order(void **state)
{
    int   i;
    char  ids[8][MST_ID_LEN + 1];

    for (i = 0; i < 8; i++) {
        mst_id_new(ids[i]);
        tst_sleep_ms(2);
    }

    /* generated milliseconds apart: lexical order is creation order */

    for (i = 1; i < 8; i++) {
        if (strcmp(ids[i - 1], ids[i]) >= 0) {
            fail_msg("%s generated before %s sorts after it", ids[i - 1],
                     ids[i]);
        }
    }
}


static void
test_id_invalid(void **state)
{
    size_t       i;
    const char  *bad[] = {
        "",
        "wf_",
        "wf_0123456789ab0123456",          /* one short */
        "wf_0123456789ab012345678",        /* one long */
        "wx_0123456789ab01234567",
        "WF_0123456789ab01234567",
        "wf-0123456789ab01234567",
        "wf_0123456789AB01234567",         /* upper case hex */
        "wf_0123456789ab0123456g",
        "wf_0123456789ab0123456 ",
        "../../../../../etc/passwd",
    };

    assert_true(mst_id_valid("wf_0123456789ab01234567", MST_ID_LEN));

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mst_id_valid(bad[i], strlen(bad[i]))) {
            fail_msg("\"%s\" accepted as an id", bad[i]);
        }
    }

    /* the length given is what counts, not the NUL */
    assert_false(mst_id_valid("wf_0123456789ab01234567", MST_ID_LEN - 1));
    assert_false(mst_id_valid("wf_0123456789ab01234567\0",
                              MST_ID_LEN + 1));
    assert_false(mst_id_valid("wf_0123456789ab0123456\0" "7", MST_ID_LEN));
}


typedef struct {
    const char  *s;
    size_t       len;
    int          valid;
    const char  *what;
} tst_utf8_t;

#define TST_U8(s, v, what)  { s, sizeof(s) - 1, v, what }


static void
test_utf8(void **state)
{
    size_t             i;
    static tst_utf8_t  cases[] = {
        TST_U8("", 1, "empty"),
        TST_U8("plain ascii \t\r\n~", 1, "ascii"),
        TST_U8("a\0b", 1, "NUL inside, counted by len"),
        TST_U8("\x7f", 1, "U+007F"),
        TST_U8("\xc2\x80", 1, "U+0080, smallest 2-byte"),
        TST_U8("\xc3\xa9t\xc3\xa9", 1, "2-byte"),
        TST_U8("\xdf\xbf", 1, "U+07FF"),
        TST_U8("\xe0\xa0\x80", 1, "U+0800, smallest 3-byte"),
        TST_U8("\xe2\x82\xac", 1, "euro sign"),
        TST_U8("\xed\x9f\xbf", 1, "U+D7FF, before the surrogates"),
        TST_U8("\xee\x80\x80", 1, "U+E000, after the surrogates"),
        TST_U8("\xef\xbf\xbd", 1, "U+FFFD"),
        TST_U8("\xef\xbf\xbf", 1, "U+FFFF"),
        TST_U8("\xf0\x90\x80\x80", 1, "U+10000, smallest 4-byte"),
        TST_U8("\xf0\x9f\x98\x80", 1, "emoji"),
        TST_U8("\xf4\x8f\xbf\xbf", 1, "U+10FFFF"),

        TST_U8("\x80", 0, "lone continuation byte"),
        TST_U8("a\xbfz", 0, "continuation byte in ascii"),
        TST_U8("\xc3\x28", 0, "bad continuation"),
        TST_U8("\xe2\x28\xa1", 0, "bad second byte of 3"),
        TST_U8("\xe2\x82\x28", 0, "bad third byte of 3"),
        TST_U8("\xf0\x9f\x98\x28", 0, "bad fourth byte of 4"),
        TST_U8("\xc0\x80", 0, "overlong NUL"),
        TST_U8("\xc1\xbf", 0, "overlong U+007F"),
        TST_U8("\xe0\x80\x80", 0, "overlong 3-byte NUL"),
        TST_U8("\xe0\x9f\xbf", 0, "overlong U+07FF"),
        TST_U8("\xf0\x80\x80\x80", 0, "overlong 4-byte NUL"),
        TST_U8("\xf0\x8f\xbf\xbf", 0, "overlong U+FFFF"),
        TST_U8("\xed\xa0\x80", 0, "high surrogate U+D800"),
        TST_U8("\xed\xbf\xbf", 0, "low surrogate U+DFFF"),
        TST_U8("\xed\xa0\xbd\xed\xb8\x80", 0, "CESU-8 surrogate pair"),
        TST_U8("\xf4\x90\x80\x80", 0, "U+110000"),
        TST_U8("\xf5\x80\x80\x80", 0, "lead byte F5"),
        TST_U8("\xf7\xbf\xbf\xbf", 0, "lead byte F7"),
        TST_U8("\xf8\x88\x80\x80\x80", 0, "5-byte form"),
        TST_U8("\xfc\x84\x80\x80\x80\x80", 0, "6-byte form"),
        TST_U8("\xfe", 0, "byte FE"),
        TST_U8("\xff", 0, "byte FF"),
        TST_U8("\xc3", 0, "truncated 2-byte"),
        TST_U8("\xe2\x82", 0, "truncated 3-byte"),
        TST_U8("\xe2", 0, "truncated 3-byte, lead only"),
        TST_U8("\xf0\x9f\x98", 0, "truncated 4-byte"),
        TST_U8("ok \xf0\x9f", 0, "truncated at the end"),
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mst_utf8_valid(cases[i].s, cases[i].len) != cases[i].valid) {
            fail_msg("%s: expected %s", cases[i].what,
                     cases[i].valid ? "valid" : "invalid");
        }
    }

    /* len cuts a valid string inside a character */
    assert_false(mst_utf8_valid("\xc3\xa9", 1));
    assert_false(mst_utf8_valid("\xe2\x82\xac", 2));
    assert_false(mst_utf8_valid("\xf0\x9f\x98\x80", 3));
    assert_true(mst_utf8_valid("\xf0\x9f\x98\x80" "a", 4));

    /* found by fuzz_ws: wslay hands an empty message over as NULL, 0
       (UBSan: "applying zero offset to null pointer", fatal here) */
    assert_true(mst_utf8_valid(NULL, 0));
}


static void
test_json_path(void **state)
{
    char     path[300];
    json_t  *root, *v;

    root = json_loads("{\"a\": {\"b\": {\"c\": 7}},"
                      " \"plan\": {\"steps\": [\"one\", {\"t\": \"two\"},"
                      " [10, 11]]},"
                      " \"n\": null, \"s\": \"str\", \"x.y\": 1}", 0, NULL);
    assert_non_null(root);

    /* objects */
    v = mst_json_path(root, "a.b.c");
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 7);
    assert_ptr_equal(mst_json_path(root, "a.b"),
                     json_object_get(json_object_get(root, "a"), "b"));
    assert_ptr_equal(mst_json_path(root, "a"), json_object_get(root, "a"));

    /* a null value is present: not the same as missing */
    v = mst_json_path(root, "n");
    assert_non_null(v);
    assert_true(json_is_null(v));

    /* array indexes */
    v = mst_json_path(root, "plan.steps.0");
    assert_string_equal(json_string_value(v), "one");
    v = mst_json_path(root, "plan.steps.1.t");
    assert_string_equal(json_string_value(v), "two");
    v = mst_json_path(root, "plan.steps.2.1");
    assert_int_equal(json_integer_value(v), 11);
    assert_true(json_is_array(mst_json_path(root, "plan.steps")));

    /* missing */
    assert_null(mst_json_path(root, "missing"));
    assert_null(mst_json_path(root, "a.missing"));
    assert_null(mst_json_path(root, "a.b.c.d"));       /* through a number */
    assert_null(mst_json_path(root, "s.length"));      /* through a string */
    assert_null(mst_json_path(root, "n.x"));           /* through null */
    assert_null(mst_json_path(root, "plan.steps.3"));  /* out of range */
    assert_null(mst_json_path(root, "plan.steps.99999999999999999999"));
    assert_null(mst_json_path(root, "plan.steps.-1"));
    assert_null(mst_json_path(root, "plan.steps.first"));
    assert_null(mst_json_path(root, "a..b"));          /* empty key */
    assert_null(mst_json_path(root, ".a"));
    assert_null(mst_json_path(root, "x.y"));           /* dots split keys */

    /* a path on an array root */
    v = mst_json_path(json_object_get(json_object_get(root, "plan"),
                                      "steps"), "0");
    assert_string_equal(json_string_value(v), "one");

    /* keys up to 127 bytes are looked up, longer ones are refused */
    memset(path, 'k', 127);
    path[127] = '\0';
    json_object_set_new(root, path, json_integer(127));
    v = mst_json_path(root, path);
    assert_int_equal(json_integer_value(v), 127);

    memset(path, 'k', 128);
    path[128] = '\0';
    json_object_set_new(root, path, json_integer(128));
    assert_non_null(json_object_get(root, path));
    assert_null(mst_json_path(root, path));

    snprintf(path + 128, sizeof(path) - 128, ".x");
    assert_null(mst_json_path(root, path));

    /* NULL root */
    assert_null(mst_json_path(NULL, "a"));

    json_decref(root);
}


static void
test_strerror(void **state)
{
    size_t       i, j;
    const char  *s;
    struct {
        int          rc;
        const char  *text;
    } codes[] = {
        { MST_OK, "success" },
        { MST_ERROR, "failure" },
        { MST_NOTFOUND, "not found" },
        { MST_MAPFULL, "the store is full (maestro_store_size)" },
        { MST_EIO, "storage I/O error" },
        { MST_EINVAL, "invalid argument" },
        { MST_ENOMEM, "out of memory" },
        { MST_CONFLICT, "lease lost" },
        { MST_EXISTS, "already exists" },
        { MST_ETIMEDOUT, "timed out" },
        { MST_ECANCELLED, "cancelled" },
        { MST_EUPSTREAM, "upstream failed" },
        { MST_EDENIED, "denied" },
        { MST_ECRYPT, "sealed record cannot be opened" },
    };

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        s = mst_strerror(codes[i].rc);
        assert_non_null(s);
        assert_string_equal(s, codes[i].text);

        /* every code is told apart */
        for (j = 0; j < i; j++) {
            assert_string_not_equal(s, codes[j].text);
        }
    }

    assert_string_equal(mst_strerror(1), "unknown error");
    assert_string_equal(mst_strerror(-1), "unknown error");
    assert_string_equal(mst_strerror(MST_ECRYPT - 1), "unknown error");
    assert_string_equal(mst_strerror(MST_ERROR + 1), "unknown error");
}


static void
test_err(void **state)
{
    char  err[8];

    /* formats, truncates, returns the code */
    assert_int_equal(mst_err(err, sizeof(err), MST_EINVAL, "%s %d",
                             "abcdef", 42), MST_EINVAL);
    assert_string_equal(err, "abcdef ");

    /* no buffer is fine */
    assert_int_equal(mst_err(NULL, 0, MST_NOTFOUND, "x"), MST_NOTFOUND);
    assert_int_equal(mst_err(err, 0, MST_OK, "y"), MST_OK);
    assert_string_equal(err, "abcdef ");
}


static void
test_clocks(void **state)
{
    int64_t  w1, w2, m1, m2;

    w1 = mst_now_ms();
    m1 = mst_mono_ms();
    tst_sleep_ms(20);
    w2 = mst_now_ms();
    m2 = mst_mono_ms();

    /* wall clock after 2020, both advance by about the sleep */
    assert_true(w1 > 1577836800000LL);
    assert_true(m2 - m1 >= 19 && m2 - m1 < 2000);
    assert_true(w2 - w1 >= 10 && w2 - w1 < 2000);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_id_unique_valid),
        cmocka_unit_test(test_id_time_order),
        cmocka_unit_test(test_id_invalid),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_path),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_clocks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
