/*
 * Copyright (C) Maestro authors
 */

/* mst_graph: parsing, validation, mst_graph_next() conditions */

#include "mst_test.h"

#include "mst_graph.h"


static const char *tst_agents[] = {
    "planner", "llm", "reviewer", "echo", NULL
};

static int tst_exists_calls;


static int
tst_exists(const char *agent, void *arg)
{
    size_t  i;

    tst_exists_calls++;

    assert_ptr_equal(arg, tst_agents);

    for (i = 0; tst_agents[i] != NULL; i++) {
        if (strcmp(tst_agents[i], agent) == 0) {
            return 1;
        }
    }

    return 0;
}


static mst_graph_t *
tst_parse(const char *text, char *err)
{
    json_t        *def;
    mst_graph_t   *g;
    json_error_t   jerr;

    def = json_loads(text, 0, &jerr);
    if (def == NULL) {
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    }

    err[0] = '\0';
    g = mst_graph_parse(def, tst_exists, tst_agents, err, MST_ERRLEN);
    json_decref(def);

    return g;
}


static const char *tst_example =
    "{ \"name\": \"default\", \"entry\": \"planner\", \"max_steps\": 50,"
    "  \"nodes\": {"
    "    \"planner\": { \"agent\": \"planner\", \"config\": {\"k\": 1},"
    "                 \"timeout_ms\": 30000,"
    "                 \"retry\": { \"max\": 2, \"backoff_ms\": 200 } },"
    "    \"llm\": { \"agent\": \"llm\", \"foreach\": \"plan.steps\","
    "               \"future_key\": true },"
    "    \"reviewer\": { \"agent\": \"reviewer\" }"
    "  },"
    "  \"edges\": ["
    "    { \"from\": \"planner\", \"to\": \"llm\" },"
    "    { \"from\": \"llm\", \"to\": \"reviewer\" },"
    "    { \"from\": \"reviewer\", \"to\": \"llm\","
    "      \"when\": { \"path\": \"review.verdict\","
    "                \"equals\": \"revise\" } },"
    "    { \"from\": \"reviewer\", \"to\": \"$end\", \"else\": true }"
    "  ] }";


static void
test_parse_example(void **ctx)
{
    char               err[MST_ERRLEN];
    json_t            *def;
    mst_graph_t       *g;
    json_error_t       jerr;
    const mst_node_t  *n;

    tst_exists_calls = 0;

    def = json_loads(tst_example, 0, &jerr);
    assert_non_null(def);

    g = mst_graph_parse(def, tst_exists, tst_agents, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(tst_exists_calls, 3);

    /* the graph keeps its own copy */
    assert_ptr_not_equal(mst_graph_json(g), def);
    assert_true(json_equal(mst_graph_json(g), def));
    json_decref(def);

    assert_string_equal(mst_graph_name(g), "default");
    assert_string_equal(mst_graph_entry(g), "planner");
    assert_int_equal(mst_graph_max_steps(g), 50);
    assert_int_equal(mst_graph_node_count(g), 3);

    n = mst_graph_node(g, "planner");
    assert_non_null(n);
    assert_string_equal(n->name, "planner");
    assert_string_equal(n->agent, "planner");
    assert_int_equal(n->timeout_ms, 30000);
    assert_int_equal(n->retry_max, 2);
    assert_int_equal(n->retry_backoff_ms, 200);
    assert_null(n->foreach);
    assert_non_null(n->config);
    assert_int_equal(json_integer_value(json_object_get(n->config, "k")), 1);

    n = mst_graph_node(g, "llm");
    assert_non_null(n);
    assert_string_equal(n->foreach, "plan.steps");
    assert_int_equal(n->timeout_ms, 60000);
    assert_int_equal(n->retry_max, 0);
    assert_int_equal(n->retry_backoff_ms, 500);
    assert_null(n->config);

    assert_null(mst_graph_node(g, "nope"));
    assert_null(mst_graph_node(g, "$end"));

    assert_non_null(mst_graph_node_at(g, 2));
    assert_null(mst_graph_node_at(g, 3));

    mst_graph_free(g);
}


static void
test_parse_defaults(void **ctx)
{
    char          err[MST_ERRLEN];
    mst_graph_t  *g;

    /* no name, no entry (one root), no max_steps, empty edges */

    g = tst_parse("{\"nodes\": {\"only\": {\"agent\": \"echo\"}},"
                  " \"edges\": []}", err);
    assert_non_null(g);
    assert_string_equal(mst_graph_name(g), "inline");
    assert_string_equal(mst_graph_entry(g), "only");
    assert_int_equal(mst_graph_max_steps(g), 100);
    mst_graph_free(g);

    /* entry inferred: b has the only incoming-free position */

    g = tst_parse("{\"nodes\": {\"a\": {\"agent\": \"echo\"},"
                  " \"b\": {\"agent\": \"echo\"}},"
                  " \"edges\": [{\"from\": \"b\", \"to\": \"a\"}]}", err);
    assert_non_null(g);
    assert_string_equal(mst_graph_entry(g), "b");
    mst_graph_free(g);

    /* a name of 64 characters is the longest allowed */

    g = tst_parse("{\"nodes\": {\"a123456789b123456789c123456789d123456789"
                  "e123456789f1234567890-_X\": {\"agent\": \"echo\"}},"
                  " \"edges\": []}", err);
    assert_non_null(g);
    assert_int_equal(strlen(mst_graph_entry(g)), 64);
    mst_graph_free(g);

    mst_graph_free(NULL);
}


/* a configured graph takes the directive's name, in its definition too */

static void
test_rename(void **ctx)
{
    char          err[MST_ERRLEN];
    mst_graph_t  *g;

    g = tst_parse("{\"name\": \"in_the_file\","
                  " \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
                  " \"edges\": []}", err);
    assert_non_null(g);
    assert_string_equal(mst_graph_name(g), "in_the_file");

    assert_int_equal(mst_graph_rename(g, "renamed"), MST_OK);
    assert_string_equal(mst_graph_name(g), "renamed");
    assert_string_equal(json_string_value(json_object_get(mst_graph_json(g),
                                                          "name")),
                        "renamed");
    mst_graph_free(g);
}


/* no agent check without a callback */

static void
test_parse_no_callback(void **ctx)
{
    char          err[MST_ERRLEN];
    json_t       *def;
    mst_graph_t  *g;

    def = json_loads("{\"nodes\": {\"a\": {\"agent\": \"anything\"}},"
                     " \"edges\": []}", 0, NULL);
    assert_non_null(def);

    g = mst_graph_parse(def, NULL, NULL, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(mst_graph_node(g, "a")->agent, "anything");

    mst_graph_free(g);
    json_decref(def);
}


typedef struct {
    const char  *json;
    const char  *error;         /* expected substring */
} tst_bad_t;

#define TST_N1(extra)                                                        \
    "{\"nodes\": {\"a\": {\"agent\": \"echo\"" extra "}}, \"edges\": []}"

#define TST_E(edges)                                                         \
    "{\"entry\": \"a\", \"nodes\": {\"a\": {\"agent\": \"echo\"},"           \
    " \"b\": {\"agent\": \"echo\"}}, \"edges\": [" edges "]}"

#define TST_WHEN(when)                                                       \
    TST_E("{\"from\": \"a\", \"to\": \"b\", \"when\": " when "}")

static const tst_bad_t  tst_bad[] = {
    { "[]", "graph definition must be a JSON object" },
    { "{\"edges\": []}", "\"nodes\" must be a non-empty object" },
    { "{\"nodes\": {}, \"edges\": []}",
      "\"nodes\" must be a non-empty object" },
    { "{\"nodes\": [], \"edges\": []}",
      "\"nodes\" must be a non-empty object" },
    { "{\"nodes\": {\"a\": {\"agent\": \"echo\"}}}",
      "\"edges\" must be an array" },
    { "{\"nodes\": {\"a\": {\"agent\": \"echo\"}}, \"edges\": {}}",
      "\"edges\" must be an array" },
    { "{\"name\": 5, \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "\"name\" must be a non-empty string" },
    { "{\"max_steps\": 0, \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "\"max_steps\" must be an integer in 1..100000" },
    { "{\"max_steps\": 100001, \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "\"max_steps\" must be an integer" },
    { "{\"max_steps\": \"5\", \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "\"max_steps\" must be an integer" },

    /* nodes */
    { "{\"nodes\": {\"a\": 1}, \"edges\": []}",
      "node \"a\": must be an object" },
    { "{\"nodes\": {\"a b\": {\"agent\": \"echo\"}}, \"edges\": []}",
      "node \"a b\": invalid name" },
    { "{\"nodes\": {\"$x\": {\"agent\": \"echo\"}}, \"edges\": []}",
      "node \"$x\": invalid name" },
    { "{\"nodes\": {\"\": {\"agent\": \"echo\"}}, \"edges\": []}",
      "node \"\": invalid name" },
    { "{\"nodes\": {\"a123456789b123456789c123456789d123456789"
      "e123456789f123456789g12345\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "invalid name" },
    { "{\"nodes\": {\"a\": {}}, \"edges\": []}",
      "node \"a\": \"agent\" must be a non-empty string" },
    { "{\"nodes\": {\"a\": {\"agent\": 3}}, \"edges\": []}",
      "node \"a\": \"agent\" must be a non-empty string" },
    { "{\"nodes\": {\"llm\": {\"agent\": \"foo\"}}, \"edges\": []}",
      "node \"llm\": unknown agent \"foo\"" },
    { TST_N1(", \"config\": []"), "node \"a\": \"config\" must be an object" },
    { TST_N1(", \"foreach\": 1"),
      "node \"a\": \"foreach\" must be a string path" },
    { TST_N1(", \"foreach\": \"\""),
      "node \"a\": \"foreach\" must be a string path" },
    { TST_N1(", \"timeout_ms\": 0"),
      "node \"a\": \"timeout_ms\" must be an integer in 1..3600000" },
    { TST_N1(", \"timeout_ms\": 3600001"), "\"timeout_ms\" must be" },
    { TST_N1(", \"timeout_ms\": 1.5"), "\"timeout_ms\" must be" },
    { TST_N1(", \"timeout_ms\": \"10\""), "\"timeout_ms\" must be" },
    { TST_N1(", \"retry\": 2"), "node \"a\": \"retry\" must be an object" },
    { TST_N1(", \"retry\": {\"max\": 11}"),
      "node \"a\": \"retry.max\" must be an integer in 0..10" },
    { TST_N1(", \"retry\": {\"max\": -1}"), "\"retry.max\" must be" },
    { TST_N1(", \"retry\": {\"backoff_ms\": 600001}"),
      "node \"a\": \"retry.backoff_ms\" must be an integer in 0..600000" },
    { TST_N1(", \"retry\": {\"backoff_ms\": -1}"),
      "\"retry.backoff_ms\" must be" },

    /* edges */
    { TST_E("3"), "edge #0: must be an object" },
    { TST_E("{\"to\": \"a\"}"), "edge #0 (? -> a): \"from\" must be a string" },
    { TST_E("{\"from\": \"a\", \"to\": 1}"),
      "edge #0 (a -> ?): \"to\" must be a string" },
    { TST_E("{\"from\": \"x\", \"to\": \"a\"}"),
      "edge #0 (x -> a): unknown node \"x\"" },
    { TST_E("{\"from\": \"$end\", \"to\": \"a\"}"),
      "edge #0 ($end -> a): unknown node \"$end\"" },
    { TST_E("{\"from\": \"a\", \"to\": \"b\"}, {\"from\": \"b\", \"to\": \"a\","
            " \"else\": true}, {\"from\": \"b\", \"to\": \"nowhere\"}"),
      "edge #2 (b -> nowhere): unknown node \"nowhere\"" },
    { TST_E("{\"from\": \"a\", \"to\": \"b\", \"else\": true,"
            " \"when\": {\"path\": \"x\", \"exists\": true}}"),
      "edge #0 (a -> b): \"when\" and \"else\" cannot be used together" },
    { TST_E("{\"from\": \"a\", \"to\": \"b\", \"else\": false}"),
      "edge #0 (a -> b): \"else\" must be true" },
    { TST_WHEN("\"x\""), "edge #0 (a -> b): \"when\" must be an object" },
    { TST_WHEN("{\"equals\": 1}"), "\"when\" needs \"path\"" },
    { TST_WHEN("{\"path\": 1, \"equals\": 1}"), "\"when\" needs \"path\"" },
    { TST_WHEN("{\"path\": \"x\"}"), "\"when\" needs exactly one of" },
    { TST_WHEN("{\"path\": \"x\", \"equals\": 1, \"gt\": 2}"),
      "\"when\" needs exactly one of" },
    { TST_WHEN("{\"path\": \"x\", \"equal\": 1}"),
      "edge #0 (a -> b): \"when\": unknown key \"equal\"" },
    { TST_WHEN("{\"path\": \"x\", \"gt\": \"3\"}"), "\"gt\" must be a number" },
    { TST_WHEN("{\"path\": \"x\", \"lt\": null}"), "\"lt\" must be a number" },
    { TST_WHEN("{\"path\": \"x\", \"exists\": 1}"),
      "\"exists\" must be true or false" },
    { TST_WHEN("{\"path\": \"x\", \"matches\": 1}"),
      "\"matches\" must be a string" },
    { TST_WHEN("{\"path\": \"x\", \"matches\": \"ab(c\"}"),
      "edge #0 (a -> b): bad regex \"ab(c\": " },
    { TST_WHEN("{\"path\": \"x\", \"matches\": \"ab(c\"}"), "at offset 4" },

    /* entry */
    { "{\"entry\": \"zz\", \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "entry \"zz\": unknown node" },
    { "{\"entry\": 1, \"nodes\": {\"a\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "\"entry\" must be a string" },
    { "{\"nodes\": {\"a\": {\"agent\": \"echo\"},"
      " \"b\": {\"agent\": \"echo\"}},"
      " \"edges\": []}", "\"entry\" is required: 2 nodes have no incoming" },
    { "{\"nodes\": {\"a\": {\"agent\": \"echo\"},"
      " \"b\": {\"agent\": \"echo\"}},"
      " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
      " {\"from\": \"b\", \"to\": \"a\"},"
      " {\"from\": \"b\", \"to\": \"$end\"}]}",
      "\"entry\" is required: 0 nodes" },

    /* cycles */
    { TST_E("{\"from\": \"a\", \"to\": \"b\"},"
            " {\"from\": \"b\", \"to\": \"a\"}"),
      "cycle with no exit: a -> b -> a" },
    { TST_E("{\"from\": \"a\", \"to\": \"a\"}"), "cycle with no exit: a -> a" },
    { TST_E("{\"from\": \"a\", \"to\": \"b\"},"
            " {\"from\": \"b\", \"to\": \"b\","
            "  \"when\": {\"path\": \"x\", \"exists\": true}}"),
      "cycle with no exit: b -> b" },
    { "{\"entry\": \"a\", \"nodes\": {\"a\": {\"agent\": \"echo\"},"
      " \"b\": {\"agent\": \"echo\"}, \"c\": {\"agent\": \"echo\"},"
      " \"d\": {\"agent\": \"echo\"}}, \"edges\": ["
      " {\"from\": \"d\", \"to\": \"$end\"},"
      " {\"from\": \"a\", \"to\": \"d\"}, {\"from\": \"a\", \"to\": \"b\"},"
      " {\"from\": \"b\", \"to\": \"c\"}, {\"from\": \"c\", \"to\": \"b\"}]}",
      "cycle with no exit: b -> c -> b" },
    /* a real path in the message: a -> c -> b, not definition order */
    { "{\"entry\": \"s\", \"nodes\": {\"s\": {\"agent\": \"echo\"},"
      " \"a\": {\"agent\": \"echo\"}, \"b\": {\"agent\": \"echo\"},"
      " \"c\": {\"agent\": \"echo\"}}, \"edges\": ["
      " {\"from\": \"s\", \"to\": \"a\"}, {\"from\": \"a\", \"to\": \"c\"},"
      " {\"from\": \"c\", \"to\": \"b\"}, {\"from\": \"b\", \"to\": \"a\"}]}",
      "cycle with no exit: a -> c -> b -> a" },
};


static void
test_parse_errors(void **ctx)
{
    char          err[MST_ERRLEN];
    size_t        i;
    mst_graph_t  *g;

    for (i = 0; i < sizeof(tst_bad) / sizeof(tst_bad[0]); i++) {
        g = tst_parse(tst_bad[i].json, err);

        if (g != NULL) {
            mst_graph_free(g);
            fail_msg("case %zu parsed: %s", i, tst_bad[i].json);
        }

        if (strstr(err, tst_bad[i].error) == NULL) {
            fail_msg("case %zu: error \"%s\", expected \"%s\"",
                     i, err, tst_bad[i].error);
        }
    }
}


static void
test_parse_cycles_ok(void **ctx)
{
    char          err[MST_ERRLEN];
    mst_graph_t  *g;

    /* loop with a conditional exit to $end */
    g = tst_parse(tst_example, err);
    assert_non_null(g);
    mst_graph_free(g);

    /* self-loop with an exit through a conditional edge */
    g = tst_parse(TST_E("{\"from\": \"a\", \"to\": \"a\","
                        " \"when\": {\"path\": \"again\", \"equals\": true}},"
                        " {\"from\": \"a\", \"to\": \"b\","
                        " \"when\": {\"path\": \"again\","
                        " \"not_equals\": true}}"), err);
    assert_non_null(g);
    mst_graph_free(g);

    /* two-node loop whose exit is an edge to another node */
    g = tst_parse("{\"entry\": \"a\", \"nodes\": {\"a\": {\"agent\": \"echo\"},"
                  " \"b\": {\"agent\": \"echo\"},"
                  " \"c\": {\"agent\": \"echo\"}},"
                  " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
                  " {\"from\": \"b\", \"to\": \"a\", \"when\":"
                  " {\"path\": \"n\", \"lt\": 3}},"
                  " {\"from\": \"b\", \"to\": \"c\", \"else\": true}]}", err);
    assert_non_null(g);
    assert_string_equal(err, "");
    mst_graph_free(g);

    /* a diamond is not a cycle */
    g = tst_parse("{\"nodes\": {\"a\": {\"agent\": \"echo\"},"
                  " \"b\": {\"agent\": \"echo\"}, \"c\": {\"agent\": \"echo\"},"
                  " \"d\": {\"agent\": \"echo\"}},"
                  " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
                  " {\"from\": \"a\", \"to\": \"c\"},"
                  " {\"from\": \"b\", \"to\": \"d\"},"
                  " {\"from\": \"c\", \"to\": \"d\"}]}", err);
    assert_non_null(g);
    assert_string_equal(mst_graph_entry(g), "a");
    mst_graph_free(g);
}


/* a long chain: the iterative SCC search has no recursion depth issue */

static void
test_parse_long_chain(void **ctx)
{
    char          err[MST_ERRLEN], from[32], to[32];
    size_t        i, n;
    json_t       *def, *nodes, *edges;
    mst_graph_t  *g;

    n = 3000;
    nodes = json_object();
    edges = json_array();

    /* n0 -> n1 -> ... -> n(n-1) -> n0: one big loop */

    for (i = 0; i < n; i++) {
        snprintf(from, sizeof(from), "n%zu", i);
        snprintf(to, sizeof(to), "n%zu", (i + 1) % n);

        json_object_set_new(nodes, from, json_pack("{s:s}", "agent", "echo"));
        json_array_append_new(edges,
                              json_pack("{s:s, s:s}", "from", from, "to", to));
    }

    def = json_pack("{s:s, s:o, s:o}", "entry", "n0", "nodes", nodes,
                    "edges", edges);
    assert_non_null(def);

    g = mst_graph_parse(def, NULL, NULL, err, sizeof(err));
    assert_null(g);
    assert_non_null(strstr(err, "cycle with no exit: n0 -> n1 -> n2 -> "));

    /* give the loop an exit: it parses */

    json_array_append_new(json_object_get(def, "edges"),
                          json_pack("{s:s, s:s, s:b}", "from", "n1500",
                                    "to", "$end", "else", 1));

    g = mst_graph_parse(def, NULL, NULL, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(mst_graph_node_count(g), n);
    mst_graph_free(g);

    json_decref(def);
}


static void
test_load(void **ctx)
{
    char          err[MST_ERRLEN], path[512];
    char         *dir;
    FILE         *f;
    mst_graph_t  *g;

    dir = mst_test_tmpdir();

    snprintf(path, sizeof(path), "%s/good.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(tst_example, f);
    fclose(f);

    g = mst_graph_load(path, tst_exists, tst_agents, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(mst_graph_name(g), "default");
    mst_graph_free(g);

    /* syntax error: file name and line */

    snprintf(path, sizeof(path), "%s/syntax.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\n  \"nodes\": {\n  ,\n}\n", f);
    fclose(f);

    g = mst_graph_load(path, tst_exists, tst_agents, err, sizeof(err));
    assert_null(g);
    assert_string_equal(err, "line 3 column 3: string or '}' expected near "
                        "','");

    /* valid JSON, invalid graph: the reason (the caller names the file) */

    snprintf(path, sizeof(path), "%s/bad.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"nodes\": {\"a\": {\"agent\": \"nope\"}}, \"edges\": []}", f);
    fclose(f);

    g = mst_graph_load(path, tst_exists, tst_agents, err, sizeof(err));
    assert_null(g);
    assert_string_equal(err, "node \"a\": unknown agent \"nope\"");

    /* a missing file, a directory: the system's reason, no position */

    snprintf(path, sizeof(path), "%s/missing.json", dir);
    g = mst_graph_load(path, tst_exists, tst_agents, err, sizeof(err));
    assert_null(g);
    assert_string_equal(err, "cannot open: No such file or directory");

    g = mst_graph_load(dir, tst_exists, tst_agents, err, sizeof(err));
    assert_null(g);
    assert_string_equal(err, "cannot read: Is a directory");

    mst_test_rmdir(dir);
}


/*
 * Graph r -> a when COND, r -> b else: which of a, b fires for a state.
 */

static const char *
tst_branch(const char *cond, const char *state_text)
{
    char          err[MST_ERRLEN], text[1024];
    json_t       *state, *to;
    const char   *r;
    mst_graph_t  *g;

    snprintf(text, sizeof(text),
             "{\"entry\": \"r\", \"nodes\": {\"r\": {\"agent\": \"echo\"},"
             " \"a\": {\"agent\": \"echo\"}, \"b\": {\"agent\": \"echo\"}},"
             " \"edges\": [{\"from\": \"r\", \"to\": \"a\", \"when\": %s},"
             " {\"from\": \"r\", \"to\": \"b\", \"else\": true}]}", cond);

    g = tst_parse(text, err);
    if (g == NULL) {
        fail_msg("parse: %s", err);
    }

    state = json_loads(state_text, 0, NULL);
    assert_non_null(state);

    assert_int_equal(mst_graph_next(g, "r", state, &to), MST_OK);
    assert_int_equal(json_array_size(to), 1);

    r = strcmp(json_string_value(json_array_get(to, 0)), "a") == 0 ? "a"
                                                                      : "b";

    json_decref(to);
    json_decref(state);
    mst_graph_free(g);

    return r;
}


static void
test_next_conditions(void **ctx)
{
    const char  *eq = "{\"path\": \"review.verdict\", \"equals\": \"revise\"}";
    const char  *ne = "{\"path\": \"v\", \"not_equals\": \"x\"}";
    const char  *gt = "{\"path\": \"n\", \"gt\": 3}";
    const char  *lt = "{\"path\": \"n\", \"lt\": 3}";
    const char  *re = "{\"path\": \"s\", \"matches\": \"^LGTM\\\\b\"}";
    const char  *ex = "{\"path\": \"v\", \"exists\": true}";
    const char  *nx = "{\"path\": \"v\", \"exists\": false}";

    assert_string_equal(tst_branch(eq,
        "{\"review\": {\"verdict\": \"revise\"}}"), "a");
    assert_string_equal(tst_branch(eq,
        "{\"review\": {\"verdict\": \"ok\"}}"), "b");
    assert_string_equal(tst_branch(eq, "{}"), "b");
    assert_string_equal(tst_branch(eq,
        "{\"review\": {\"verdict\": [\"revise\"]}}"), "b");

    /* equals compares any JSON value */
    assert_string_equal(tst_branch(
                        "{\"path\": \"o\", \"equals\": {\"k\": [1]}}",
                        "{\"o\": {\"k\": [1]}}"), "a");
    assert_string_equal(tst_branch(
                        "{\"path\": \"o\", \"equals\": {\"k\": [1]}}",
                        "{\"o\": {\"k\": [2]}}"), "b");
    assert_string_equal(tst_branch("{\"path\": \"o\", \"equals\": null}",
                                   "{\"o\": null}"), "a");

    assert_string_equal(tst_branch(ne, "{\"v\": \"y\"}"), "a");
    assert_string_equal(tst_branch(ne, "{\"v\": \"x\"}"), "b");
    assert_string_equal(tst_branch(ne, "{}"), "a");

    assert_string_equal(tst_branch(gt, "{\"n\": 4}"), "a");
    assert_string_equal(tst_branch(gt, "{\"n\": 3}"), "b");
    assert_string_equal(tst_branch(gt, "{\"n\": 3.5}"), "a");
    assert_string_equal(tst_branch(gt, "{\"n\": \"9\"}"), "b");
    assert_string_equal(tst_branch(gt, "{}"), "b");
    assert_string_equal(tst_branch("{\"path\": \"n\", \"gt\": 0.5}",
                                   "{\"n\": 1}"), "a");

    assert_string_equal(tst_branch(lt, "{\"n\": 2}"), "a");
    assert_string_equal(tst_branch(lt, "{\"n\": 3}"), "b");
    assert_string_equal(tst_branch(lt, "{\"n\": -1.5}"), "a");
    assert_string_equal(tst_branch(lt, "{\"n\": true}"), "b");

    assert_string_equal(tst_branch(re, "{\"s\": \"LGTM, ship it\"}"), "a");
    assert_string_equal(tst_branch(re, "{\"s\": \"LGTMX\"}"), "b");
    assert_string_equal(tst_branch(re, "{\"s\": \"not LGTM\"}"), "b");
    assert_string_equal(tst_branch(re, "{\"s\": 5}"), "b");
    assert_string_equal(tst_branch(re, "{}"), "b");
    /* UTF-8 subject and pattern */
    assert_string_equal(tst_branch("{\"path\": \"s\", \"matches\": \"caf.$\"}",
                                   "{\"s\": \"caf\\u00e9\"}"), "a");

    assert_string_equal(tst_branch(ex, "{\"v\": 0}"), "a");
    assert_string_equal(tst_branch(ex, "{\"v\": null}"), "b");
    assert_string_equal(tst_branch(ex, "{}"), "b");
    assert_string_equal(tst_branch(nx, "{}"), "a");
    assert_string_equal(tst_branch(nx, "{\"v\": \"\"}"), "b");

    /* paths through arrays */
    assert_string_equal(tst_branch("{\"path\": \"l.1.x\", \"equals\": 2}",
                                   "{\"l\": [{\"x\": 1}, {\"x\": 2}]}"), "a");
}


static void
test_next_fanout(void **ctx)
{
    char          err[MST_ERRLEN];
    json_t       *state, *to, *expect;
    mst_graph_t  *g;

    /*
     * r: always -> a, when(n > 1) -> b, else -> c (listed before the
     * when it depends on), when(n > 0) -> a (duplicate), always -> $end,
     * when(n > 2) -> d
     */

    g = tst_parse("{\"entry\": \"r\", \"nodes\": {\"r\": {\"agent\": \"echo\"},"
                  " \"a\": {\"agent\": \"echo\"}, \"b\": {\"agent\": \"echo\"},"
                  " \"c\": {\"agent\": \"echo\"},"
                  " \"d\": {\"agent\": \"echo\"}},"
                  " \"edges\": ["
                  " {\"from\": \"r\", \"to\": \"a\"},"
                  " {\"from\": \"r\", \"to\": \"c\", \"else\": true},"
                  " {\"from\": \"r\", \"to\": \"b\","
                  "  \"when\": {\"path\": \"n\", \"gt\": 1}},"
                  " {\"from\": \"r\", \"to\": \"a\","
                  "  \"when\": {\"path\": \"n\", \"gt\": 0}},"
                  " {\"from\": \"r\", \"to\": \"$end\"},"
                  " {\"from\": \"r\", \"to\": \"d\","
                  "  \"when\": {\"path\": \"n\", \"gt\": 2}}"
                  " ]}", err);
    assert_non_null(g);

    state = json_pack("{s:i}", "n", 5);
    assert_int_equal(mst_graph_next(g, "r", state, &to), MST_OK);
    expect = json_pack("[s, s, s]", "a", "b", "d");
    assert_true(json_equal(to, expect));
    json_decref(expect);
    json_decref(to);
    json_decref(state);

    /* n = 1: only the duplicate "a" when-edge fires: no else */
    state = json_pack("{s:i}", "n", 1);
    assert_int_equal(mst_graph_next(g, "r", state, &to), MST_OK);
    expect = json_pack("[s]", "a");
    assert_true(json_equal(to, expect));
    json_decref(expect);
    json_decref(to);
    json_decref(state);

    /* nothing holds: the always edge and the else edge */
    state = json_object();
    assert_int_equal(mst_graph_next(g, "r", state, &to), MST_OK);
    expect = json_pack("[s, s]", "a", "c");
    assert_true(json_equal(to, expect));
    json_decref(expect);
    json_decref(to);

    /* a terminal node fires nothing */
    assert_int_equal(mst_graph_next(g, "d", state, &to), MST_OK);
    assert_true(json_is_array(to));
    assert_int_equal(json_array_size(to), 0);
    json_decref(to);

    /* unknown node */
    to = (json_t *) 1;
    assert_int_equal(mst_graph_next(g, "zz", state, &to), MST_NOTFOUND);
    assert_null(to);

    json_decref(state);
    mst_graph_free(g);
}


static void
test_next_end_only(void **ctx)
{
    json_t       *to;
    char          err[MST_ERRLEN];
    mst_graph_t  *g;

    g = tst_parse(tst_example, err);
    assert_non_null(g);

    /* reviewer with verdict "ok": the else edge goes to $end: nothing */
    assert_int_equal(mst_graph_next(g, "reviewer", NULL, &to), MST_OK);
    assert_int_equal(json_array_size(to), 0);
    json_decref(to);

    mst_graph_free(g);
}


/* mst_graph_cache: kept by id, shared while in use, never replaced then */
static void
test_cache(void **state)
{
    char          err[MST_ERRLEN];
    const char   *a = "wf_0000000000aa00000001";
    mst_graph_t  *g1, *g2, *got;
    const char   *def = "{\"nodes\": {\"only\": {\"agent\": \"echo\"}},"
                        " \"entry\": \"only\", \"edges\": []}";

    assert_null(mst_graph_cache_get(a));

    g1 = tst_parse(def, err);
    assert_non_null(g1);
    assert_int_equal(mst_graph_cache_keep(a, g1), 1);     /* in use */

    got = mst_graph_cache_get(a);
    assert_ptr_equal(got, g1);

    /* in use twice: a new graph for the same slot is not kept */
    g2 = tst_parse(def, err);
    assert_int_equal(mst_graph_cache_keep(a, g2), 0);
    mst_graph_free(g2);

    mst_graph_cache_release(got);
    mst_graph_cache_release(g1);

    /* nobody uses it: a newcomer takes the slot, the old one is freed */
    g2 = tst_parse(def, err);
    assert_int_equal(mst_graph_cache_keep(a, g2), 1);
    assert_ptr_equal(mst_graph_cache_get(a), g2);
    mst_graph_cache_release(g2);
    mst_graph_cache_release(g2);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_example),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_no_callback),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_cycles_ok),
        cmocka_unit_test(test_parse_long_chain),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_next_conditions),
        cmocka_unit_test(test_next_fanout),
        cmocka_unit_test(test_next_end_only),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_rename),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
