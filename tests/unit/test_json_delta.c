/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_json_delta: applying the delta of a to b onto a copy of a gives b,
 * for objects (keys added, changed, removed), arrays (grown, shrunk,
 * changed in place), nested values, type changes and equal values (no
 * delta); shared leaves are found equal by pointer; a malformed delta is
 * refused.
 */

#include "mst_test.h"

#include "mst_json_delta.h"


static void
tst_roundtrip(const char *atext, const char *btext, int same)
{
    int      rc;
    json_t  *a, *b, *d, *v, *dd;
    char    *text;

    a = json_loads(atext, JSON_DECODE_ANY, NULL);
    b = json_loads(btext, JSON_DECODE_ANY, NULL);
    assert_non_null(a);
    assert_non_null(b);

    d = mst_json_delta(a, b, &rc);
    assert_int_equal(rc, MST_OK);

    if (same) {
        assert_null(d);
    } else {
        assert_non_null(d);
    }

    /* a delta survives its text, as the store keeps it */
    text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    dd = text ? json_loads(text, 0, NULL) : NULL;
    free(text);

    v = mst_json_tree_copy(a);
    assert_int_equal(mst_json_delta_apply(&v, dd), MST_OK);
    assert_true(json_equal(v, b));

    json_decref(v);
    json_decref(dd);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}


static void
test_delta_cases(void **state)
{
    tst_roundtrip("{\"a\":1}", "{\"a\":1}", 1);
    tst_roundtrip("{\"a\":1}", "{\"a\":2}", 0);
    tst_roundtrip("{\"a\":1}", "{\"a\":1,\"b\":[1,2]}", 0);
    tst_roundtrip("{\"a\":1,\"b\":2}", "{\"b\":2}", 0);
    tst_roundtrip("{\"a\":{\"x\":[1,{\"y\":null}]}}",
                  "{\"a\":{\"x\":[1,{\"y\":true}]}}", 0);
    tst_roundtrip("[1,2,3]", "[1,2]", 0);
    tst_roundtrip("[1,2]", "[1,2,3,{\"k\":\"v\"}]", 0);
    tst_roundtrip("[1,2,3]", "[]", 0);
    tst_roundtrip("[]", "[[]]", 0);
    tst_roundtrip("{\"a\":[1]}", "{\"a\":{\"0\":1}}", 0);
    tst_roundtrip("{\"a\":1}", "[1]", 0);
    tst_roundtrip("\"s\"", "\"s\"", 1);
    tst_roundtrip("1", "1.0", 0);
    tst_roundtrip("null", "{\"=\":1}", 0);
    tst_roundtrip("{\"=\":1}", "{\"=\":2,\"o\":3}", 0);
    tst_roundtrip("{\"f\":[{\"n\":\"a\",\"s\":\"pending\"},"
                  "{\"n\":\"b\",\"s\":\"pending\"}]}",
                  "{\"f\":[{\"n\":\"a\",\"s\":\"done\"},"
                  "{\"n\":\"b\",\"s\":\"pending\"}]}", 0);
}


static void
test_delta_deep(void **state)
{
    int      i, rc;
    json_t  *a, *b, *inner, *d, *v;

    /* deeper than the delta descends: replaced whole, still right */
    a = json_integer(1);
    for (i = 0; i < 200; i++) {
        inner = json_array();
        json_array_append_new(inner, a);
        a = inner;
    }

    b = json_deep_copy(a);
    inner = b;
    for (i = 0; i < 199; i++) {
        inner = json_array_get(inner, 0);
    }
    json_array_set_new(inner, 0, json_integer(2));

    d = mst_json_delta(a, b, &rc);
    assert_int_equal(rc, MST_OK);
    assert_non_null(d);

    v = mst_json_tree_copy(a);
    assert_int_equal(mst_json_delta_apply(&v, d), MST_OK);
    assert_true(json_equal(v, b));

    json_decref(v);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}


static void
test_delta_shared(void **state)
{
    int      rc;
    json_t  *a, *copy, *d, *big;

    /* a step's state: a large prompt, a frontier; one entry changes */
    big = json_string("a prompt that is large in real life");
    a = json_pack("{s:{s:O}, s:[{s:s}, {s:s}]}", "state", "prompt", big,
                  "frontier", "status", "pending", "status", "pending");
    copy = mst_json_tree_copy(a);

    /* the leaf is shared, the containers are not */
    assert_ptr_equal(json_object_get(json_object_get(copy, "state"),
                                     "prompt"), big);
    assert_ptr_not_equal(json_object_get(copy, "frontier"),
                         json_object_get(a, "frontier"));

    json_object_set_new(json_array_get(json_object_get(a, "frontier"), 1),
                        "status", json_string("done"));

    d = mst_json_delta(copy, a, &rc);
    assert_int_equal(rc, MST_OK);
    assert_non_null(d);

    /* only the change: no "state" in it */
    assert_null(json_object_get(json_object_get(d, "o"), "state"));
    assert_non_null(json_object_get(json_object_get(d, "o"), "frontier"));

    /* the copy still is the old value */
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(json_object_get(copy, "frontier"), 1), "status")),
        "pending");

    json_decref(d);
    json_decref(copy);
    json_decref(a);
    json_decref(big);
}


static void
test_delta_bad(void **state)
{
    json_t  *v, *d;

    v = json_pack("{s:i}", "a", 1);

    d = json_loads("{\"a\":[[0,{\"=\":1}]]}", 0, NULL);
    assert_int_equal(mst_json_delta_apply(&v, d), MST_EINVAL);
    json_decref(d);

    d = json_loads("{\"o\":{\"a\":{\"o\":{\"b\":{\"=\":1}}}}}", 0, NULL);
    assert_int_equal(mst_json_delta_apply(&v, d), MST_EINVAL);
    json_decref(d);

    d = json_loads("[1]", 0, NULL);
    assert_int_equal(mst_json_delta_apply(&v, d), MST_EINVAL);
    json_decref(d);

    json_decref(v);

    v = json_array();
    d = json_loads("{\"a\":[[5,{\"=\":1}]]}", 0, NULL);
    assert_int_equal(mst_json_delta_apply(&v, d), MST_EINVAL);
    json_decref(d);
    json_decref(v);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_delta_cases),
        cmocka_unit_test(test_delta_deep),
        cmocka_unit_test(test_delta_shared),
        cmocka_unit_test(test_delta_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
