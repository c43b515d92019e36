/*
 * Copyright (C) Maestro authors
 */

/* mst_route: intent route, then tier model, then the default workflow */

#include "mst_test.h"
#include "mst_route.h"


#define TR_LONG  "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "one two three four five six seven eight nine ten " \
                 "and one more"


typedef struct {
    mst_intents_t  *in;
    mst_router_t    rt;
} tr_state_t;


static int
tr_setup(void **state)
{
    char         err[MST_ERRLEN];
    tr_state_t  *s;

    s = calloc(1, sizeof(tr_state_t));
    assert_non_null(s);

    s->in = mst_intents_new();
    assert_non_null(s->in);
    assert_int_equal(mst_intents_add(s->in, "code", "\\bbug\\b", err,
                                     sizeof(err)), MST_OK);
    assert_int_equal(mst_intents_add(s->in, "chat", "\\bhello\\b", err,
                                     sizeof(err)), MST_OK);
    assert_int_equal(mst_intents_route(s->in, "code", "coder", err,
                                       sizeof(err)), MST_OK);

    s->rt.intents = s->in;
    s->rt.tier_model[0] = "small-model";
    s->rt.tier_model[2] = "large-model";
    s->rt.default_workflow = "default";

    *state = s;

    return 0;
}


static int
tr_teardown(void **state)
{
    tr_state_t  *s = *state;

    mst_intents_free(s->in);
    free(s);

    return 0;
}


static int
tr_route(tr_state_t *s, const char *text, int flags, mst_route_t *out)
{
    char  err[MST_ERRLEN];

    return mst_route(&s->rt, text, strlen(text), flags, out, err,
                     sizeof(err));
}


static void
test_tier(void **state)
{
    assert_int_equal(mst_route_tier("simple"), 0);
    assert_int_equal(mst_route_tier("moderate"), 1);
    assert_int_equal(mst_route_tier("complex"), 2);
    assert_int_equal(mst_route_tier("hard"), -1);
    assert_int_equal(mst_route_tier("Simple"), -1);
    assert_int_equal(mst_route_tier(""), -1);
    assert_int_equal(mst_route_tier(NULL), -1);
}


/* the intent's route wins over a tier model and the default */
static void
test_intent_route_wins(void **state)
{
    tr_state_t   *s = *state;
    mst_route_t   r;

    assert_int_equal(tr_route(s, "there is a bug", 0, &r), MST_OK);
    assert_int_equal(r.kind, MST_ROUTE_TO_WORKFLOW);
    assert_string_equal(r.target, "coder");
    assert_string_equal(r.intent, "code");
    assert_string_equal(r.complexity, "simple");

    /* the same for a submission */
    assert_int_equal(tr_route(s, "there is a bug", MST_ROUTE_WORKFLOW, &r),
                     MST_OK);
    assert_string_equal(r.target, "coder");
}


/* no intent route: the tier's model, when the caller takes a model */
static void
test_tier_model(void **state)
{
    tr_state_t   *s = *state;
    mst_route_t   r;

    assert_int_equal(tr_route(s, "hello there", 0, &r), MST_OK);
    assert_int_equal(r.kind, MST_ROUTE_TO_MODEL);
    assert_string_equal(r.target, "small-model");
    assert_string_equal(r.intent, "chat");     /* an intent without route */
    assert_string_equal(r.complexity, "simple");

    assert_int_equal(tr_route(s, TR_LONG, 0, &r), MST_OK);
    assert_int_equal(r.kind, MST_ROUTE_TO_MODEL);
    assert_string_equal(r.target, "large-model");
    assert_string_equal(r.complexity, "complex");
    assert_int_equal(r.analysis.words, 103);
}


/* the default workflow: no tier model, or the caller needs a workflow */
static void
test_default_workflow(void **state)
{
    tr_state_t   *s = *state;
    mst_route_t   r;
    char          moderate[400];
    size_t        i;

    moderate[0] = '\0';
    for (i = 0; i < 60; i++) {
        strcat(moderate, "word ");
    }

    /* moderate has no model */
    assert_int_equal(tr_route(s, moderate, 0, &r), MST_OK);
    assert_string_equal(r.complexity, "moderate");
    assert_int_equal(r.kind, MST_ROUTE_TO_WORKFLOW);
    assert_string_equal(r.target, "default");
    assert_string_equal(r.intent, MST_INTENT_DEFAULT);

    /* simple has one, but a submission runs a workflow */
    assert_int_equal(tr_route(s, "hello there", MST_ROUTE_WORKFLOW, &r),
                     MST_OK);
    assert_int_equal(r.kind, MST_ROUTE_TO_WORKFLOW);
    assert_string_equal(r.target, "default");
}


/* nothing configured: a clear error naming the directives */
static void
test_no_route(void **state)
{
    char          err[MST_ERRLEN];
    mst_route_t   r;
    mst_router_t  none;

    memset(&none, 0, sizeof(none));

    assert_int_equal(mst_route(&none, "hi", 2, 0, &r, err, sizeof(err)),
                     MST_NOTFOUND);
    assert_int_equal(r.kind, MST_ROUTE_NONE);
    assert_null(r.target);
    assert_string_equal(r.complexity, "simple");
    assert_string_equal(err, "found no route: configure "
                        "maestro_intent_route, maestro_model_tier or a "
                        "default workflow");

    /* a tier model does not help a submission */
    none.tier_model[0] = "small-model";
    assert_int_equal(mst_route(&none, "hi", 2, MST_ROUTE_WORKFLOW, &r, err,
                               sizeof(err)), MST_NOTFOUND);
    assert_string_equal(err, "found no route: configure "
                        "maestro_intent_route or a default workflow");
}


static void
test_json(void **state)
{
    tr_state_t   *s = *state;
    json_t       *j;
    mst_route_t   r;

    (void) tr_route(s, "hello", 0, &r);
    j = mst_route_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "model")),
                        "small-model");
    json_decref(j);

    (void) tr_route(s, "a bug", 0, &r);
    j = mst_route_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "workflow")),
                        "coder");
    json_decref(j);

    memset(&r, 0, sizeof(r));
    j = mst_route_json(&r);
    assert_true(json_is_null(j));
    json_decref(j);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_tier),
        cmocka_unit_test_setup_teardown(test_intent_route_wins, tr_setup,
                                        tr_teardown),
        cmocka_unit_test_setup_teardown(test_tier_model, tr_setup,
                                        tr_teardown),
        cmocka_unit_test_setup_teardown(test_default_workflow, tr_setup,
                                        tr_teardown),
        cmocka_unit_test(test_no_route),
        cmocka_unit_test_setup_teardown(test_json, tr_setup, tr_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
