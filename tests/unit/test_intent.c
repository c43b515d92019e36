/*
 * Copyright (C) Maestro authors
 */

/* mst_intent: intents (PCRE2 rule sets) and the complexity heuristic */

#include "mst_test.h"
#include "mst_intent.h"


/*
 * strdup() for this test binary (core objects are linked in, so theirs is
 * this one): while ti_strdup_fail is set, the next call fails as if out
 * of memory.
 */
static int  ti_strdup_fail;

char *
strdup(const char *s)
{
    char    *d;
    size_t   n;

    if (ti_strdup_fail) {
        ti_strdup_fail = 0;
        return NULL;
    }

    n = strlen(s) + 1;

    d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }

    return d;
}


static char *
ti_words(size_t n)
{
    char    *s;
    size_t   i;

    s = malloc(n * 5 + 1);
    assert_non_null(s);

    for (i = 0; i < n; i++) {
        memcpy(s + i * 5, "word ", 5);
    }
    s[n * 5] = '\0';

    return s;
}


static const char *
ti_complexity(const char *text)
{
    mst_analysis_t  a;

    mst_analyze(NULL, text, strlen(text), &a);
    return a.complexity;
}


static void
test_complexity_thresholds(void **state)
{
    char  *s;

    s = ti_words(50);
    assert_string_equal(ti_complexity(s), "simple");
    free(s);

    s = ti_words(51);
    assert_string_equal(ti_complexity(s), "moderate");
    free(s);

    s = ti_words(100);
    assert_string_equal(ti_complexity(s), "moderate");
    free(s);

    s = ti_words(101);
    assert_string_equal(ti_complexity(s), "complex");
    free(s);

    assert_string_equal(ti_complexity(""), "simple");
    assert_string_equal(ti_complexity("What is nginx?"), "simple");
}


static void
test_complexity_signals(void **state)
{
    mst_analysis_t  a;
    const char     *code = "Why does this fail?\n```c\nint x = 0;\n```\n";
    const char     *list = "Please:\n1. build it\n2. test it\n";
    const char     *bullets = "Do this:\n- one thing\n- another\n";
    const char     *seq = "First read the logs, then fix the bug.";
    const char     *one = "1. only one item";

    mst_analyze(NULL, code, strlen(code), &a);
    assert_int_equal(a.code_blocks, 1);
    assert_string_equal(a.complexity, "complex");

    mst_analyze(NULL, list, strlen(list), &a);
    assert_int_equal(a.steps, 2);
    assert_string_equal(a.complexity, "complex");

    mst_analyze(NULL, bullets, strlen(bullets), &a);
    assert_int_equal(a.steps, 2);

    mst_analyze(NULL, seq, strlen(seq), &a);
    assert_int_equal(a.steps, 2);
    assert_string_equal(a.complexity, "complex");

    /* one item or one sequencing word is not several steps */
    mst_analyze(NULL, one, strlen(one), &a);
    assert_int_equal(a.steps, 0);
    assert_string_equal(a.complexity, "simple");

    mst_analyze(NULL, "Then what?", 10, &a);
    assert_int_equal(a.steps, 0);

    /* lines in a code block are not steps */
    code = "```\n1. a\n2. b\n```";
    mst_analyze(NULL, code, strlen(code), &a);
    assert_int_equal(a.steps, 0);
    assert_int_equal(a.code_blocks, 1);
}


static void
test_intents(void **state)
{
    char             err[MST_ERRLEN];
    mst_analysis_t   a;
    mst_intents_t   *in;
    const char      *t;

    in = mst_intents_new();
    assert_non_null(in);

    assert_int_equal(mst_intents_add(in, "code", "\\b(bug|compile|stack "
                                     "trace)\\b", err, sizeof(err)), MST_OK);
    assert_int_equal(mst_intents_add(in, "code", "```", err, sizeof(err)),
                     MST_OK);
    assert_int_equal(mst_intents_add(in, "translate", "\\btranslate\\b|번역",
                                     err, sizeof(err)), MST_OK);
    assert_int_equal(mst_intents_route(in, "code", "coder", err,
                                       sizeof(err)), MST_OK);
    assert_int_equal(mst_intents_route(in, "general", "default", err,
                                       sizeof(err)), MST_OK);

    /* caseless, first declared intent wins */
    t = "Translate this BUG report";
    mst_analyze(in, t, strlen(t), &a);
    assert_string_equal(a.intent, "code");
    assert_string_equal(a.route, "coder");
    assert_non_null(a.matched);

    t = "이 문장을 번역해 주세요";
    mst_analyze(in, t, strlen(t), &a);
    assert_string_equal(a.intent, "translate");
    assert_null(a.route);

    /* no match: general, with its route */
    t = "Tell me about the weather";
    mst_analyze(in, t, strlen(t), &a);
    assert_string_equal(a.intent, "general");
    assert_string_equal(a.route, "default");
    assert_null(a.matched);

    /* a bad pattern says why and where */
    assert_int_equal(mst_intents_add(in, "bad", "(unclosed", err,
                                     sizeof(err)), MST_EINVAL);
    assert_non_null(strstr(err, "\"bad\""));
    assert_non_null(strstr(err, "offset"));

    mst_intents_free(in);
}


/* a route that cannot be stored says so: nginx -t reports err */
static void
test_route_out_of_memory(void **state)
{
    char            err[MST_ERRLEN];
    mst_analysis_t  a;
    mst_intents_t  *in;

    in = mst_intents_new();
    assert_non_null(in);
    assert_int_equal(mst_intents_add(in, "code", "bug", err, sizeof(err)),
                     MST_OK);

    /* the intent exists: the workflow name is the one copy made */
    strcpy(err, "unset");
    ti_strdup_fail = 1;
    assert_int_equal(mst_intents_route(in, "code", "coder", err,
                                       sizeof(err)), MST_ENOMEM);
    assert_int_equal(ti_strdup_fail, 0);
    assert_string_equal(err, "out of memory");

    /* a new intent: its name's copy fails first */
    strcpy(err, "unset");
    ti_strdup_fail = 1;
    assert_int_equal(mst_intents_route(in, "other", "w", err, sizeof(err)),
                     MST_ENOMEM);
    assert_string_equal(err, "out of memory");

    /* nothing half-made: no route, and routing works again */
    mst_analyze(in, "a bug", 5, &a);
    assert_string_equal(a.intent, "code");
    assert_null(a.route);
    assert_int_equal(mst_intents_route(in, "code", "coder", err,
                                       sizeof(err)), MST_OK);
    mst_analyze(in, "a bug", 5, &a);
    assert_string_equal(a.route, "coder");

    mst_intents_free(in);
}


static void
test_json(void **state)
{
    json_t          *j;
    mst_analysis_t   a;

    mst_analyze(NULL, "hello there", 11, &a);
    j = mst_analysis_json(&a);

    assert_string_equal(json_string_value(json_object_get(j, "intent")),
                        "general");
    assert_string_equal(json_string_value(json_object_get(j, "complexity")),
                        "simple");
    assert_true(json_is_null(json_object_get(j, "route")));
    assert_int_equal(json_integer_value(mst_json_path(j, "signals.words")),
                     2);
    json_decref(j);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_complexity_thresholds),
        cmocka_unit_test(test_complexity_signals),
        cmocka_unit_test(test_intents),
        cmocka_unit_test(test_route_out_of_memory),
        cmocka_unit_test(test_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
