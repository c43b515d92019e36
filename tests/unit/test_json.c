/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_json_dump: byte for byte the text of json_dumps(JSON_COMPACT |
 * JSON_ENCODE_ANY) for every kind of value, including escapes, UTF-8,
 * integer limits, reals and deep nesting; NULL for what jansson would not
 * write (invalid UTF-8), and a round trip through json_loads.
 */

#include "mst_test.h"

#include <stdint.h>

#include "mst_json.h"


static void
tst_same(json_t *v)
{
    char    *ours, *theirs;
    size_t   len;

    assert_non_null(v);

    theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    ours = mst_json_dump(v, &len);

    assert_non_null(theirs);
    assert_non_null(ours);
    assert_string_equal(ours, theirs);
    assert_int_equal(len, strlen(theirs));

    free(ours);
    free(theirs);
    json_decref(v);
}


static void
test_scalars(void **state)
{
    tst_same(json_null());
    tst_same(json_true());
    tst_same(json_false());
    tst_same(json_integer(0));
    tst_same(json_integer(-1));
    tst_same(json_integer(1234567890123LL));
    tst_same(json_integer(INT64_MAX));
    tst_same(json_integer(INT64_MIN));
    tst_same(json_real(0.0));
    tst_same(json_real(-0.5));
    tst_same(json_real(1.0));
    tst_same(json_real(3.0e20));
    tst_same(json_real(1e300));
    tst_same(json_real(0.1));
    tst_same(json_real(-123456.789e-12));
    tst_same(json_real(1e-5));
    tst_same(json_real(2e100));
    tst_same(json_real(-1.5e-300));
    tst_same(json_real(123456789012345678.0));
    tst_same(json_string(""));
}


static void
test_strings(void **state)
{
    char     all[32];
    int      i;

    tst_same(json_string("plain"));
    tst_same(json_string("quote \" backslash \\ slash / end"));
    tst_same(json_string("\b\f\n\r\t"));
    tst_same(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    tst_same(json_string("\x7f del"));

    for (i = 1; i < 32; i++) {
        all[i - 1] = (char) i;
    }
    all[31] = '\0';
    tst_same(json_string(all));

    /* a NUL inside a string */
    tst_same(json_stringn("a\0b", 3));
}


static void
test_containers(void **state)
{
    int      i;
    json_t  *deep, *o;

    tst_same(json_object());
    tst_same(json_array());
    tst_same(json_pack("{s:i, s:s, s:[i, n, b], s:{s:{}}, s:[]}",
                       "z", 1, "a\"k", "v", "list", 2, 1, "o", "x",
                       "e"));

    /* insertion order, as jansson */
    o = json_object();
    for (i = 0; i < 40; i++) {
        char  key[16];

        snprintf(key, sizeof(key), "k%d", (i * 7) % 40);
        json_object_set_new(o, key, json_integer(i));
    }
    json_object_del(o, "k7");
    json_object_set_new(o, "k7", json_string("again"));
    tst_same(o);

    deep = json_integer(1);
    for (i = 0; i < 500; i++) {
        deep = json_pack("[o]", deep);
    }
    tst_same(deep);

    tst_same(json_loads("{\"id\":\"wf_1\",\"agents\":{\"n1\":{\"metrics\":"
                        "{\"tokens\":0}}},\"result\":\"{}\\n\",\"x\":1.5}",
                        0, NULL));
}


static void
test_refused(void **state)
{
    int      i;
    char    *text;
    json_t  *v, *deep, *back;

    /* invalid UTF-8 (only a "nocheck" string can hold it) */
    v = json_stringn_nocheck("ab\xff", 3);
    assert_null(mst_json_dump(v, NULL));
    json_decref(v);

    v = json_pack("{s:o}", "k", json_stringn_nocheck("\xc3\x28", 2));
    assert_null(mst_json_dump(v, NULL));
    json_decref(v);

    assert_null(mst_json_dump(NULL, NULL));

    /* deeper than the limit */
    deep = json_array();
    for (i = 0; i < 2100; i++) {
        deep = json_pack("[o]", deep);
    }
    assert_null(mst_json_dump(deep, NULL));
    json_decref(deep);

    /* a round trip */
    v = json_pack("{s:s, s:f, s:I}", "s", "\xe2\x80\x8b\n", "r", 2.5,
                  "i", (json_int_t) -42);
    text = mst_json_dump(v, NULL);
    assert_non_null(text);
    back = json_loads(text, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    json_decref(back);
    free(text);
    json_decref(v);
}


/* mst_json_object_ok() agrees with jansson on objects and their damage */
static void
test_object_ok(void **state)
{
    size_t        i, k, n;
    json_t       *v;
    const char   *good[] = {
        "{}", " { } ", "{\"a\":1}", "{\"a\":[1,2.5,-3e-2,true,false,null]}",
        "{\"s\":\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9\"}",
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"content\":\"caf\xc3\xa9\"},\"finish_reason\":null}],"
        "\"usage\":{\"prompt_tokens\":9}}",
        "{\"a\":{\"b\":{\"c\":[[],{}]}}}", "{\"n\":0,\"m\":-0.0E+1}",
    };
    const char   *bad[] = {
        "", "[]", "1", "\"s\"", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
        "{,}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}",
        "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"tab\there\"}", "{\"a\":1} x", "{\"a\":[1,]}", "{a:1}",
        "{\"a\":1}{}", "{\"a\" 1}", "{\"a\":[1 2]}",
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        n = strlen(good[i]);
        assert_true(mst_json_object_ok(good[i], n));

        v = json_loadb(good[i], n, 0, NULL);
        assert_true(json_is_object(v));
        json_decref(v);

        /* every truncation is refused, as jansson refuses it */
        for (k = 0; k < n; k++) {
            if (mst_json_object_ok(good[i], k)) {
                v = json_loadb(good[i], k, 0, NULL);
                assert_true(json_is_object(v));    /* e.g. " { } " -> " { }" */
                json_decref(v);
            }
        }
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = strlen(bad[i]);
        assert_false(mst_json_object_ok(bad[i], n));

        v = json_loadb(bad[i], n, 0, NULL);
        assert_false(json_is_object(v));
        json_decref(v);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_object_ok),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
