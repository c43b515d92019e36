/*
 * Copyright (C) Maestro authors
 */

/*
 * The shipped agent plugins (planner, llm, reviewer), built by
 * `make plugins` into $MST_BUILD/plugins/ and loaded with mst_agent_load(),
 * run through a recording host whose LLM is scripted here.
 */

#include "mst_test.h"
#include "mst_test_host.h"

#include <dlfcn.h>

#include "mst_plugin.h"


typedef struct {
    const char  *model;
    const char  *content;
    int          rc;
} script_t;


static int
script_llm(json_t *request, void *arg, const char **model,
    const char **content)
{
    script_t  *s;

    s = arg;
    *model = s->model;
    *content = s->content;

    return s->rc;
}


static const script_t  offline = {
    "maestro-offline",
    "[maestro-offline] No LLM provider is configured; this answer is "
    "extracted from the request.",
    MAESTRO_OK
};


static void
load_plugin(mst_agent_t *agent, const char *name)
{
    char            err[MST_ERRLEN], path[512];
    maestro_host_t  host;

    host = mst_test_host();
    snprintf(path, sizeof(path), "%s/plugins/%s.so", mst_test_build_dir(),
             name);

    if (access(path, R_OK) != 0) {
        fail_msg("%s is missing: run `make plugins` first", path);
    }

    if (mst_agent_load(agent, name, path, NULL, &host, err, sizeof(err))
        != MST_OK)
    {
        fail_msg("load %s: %s", name, err);
    }
}


/*
 * Runs a plugin with input {"node", "agent", "config", "state", "item"?,
 * "attempt", "workflow_id"}; state and item are JSON texts, config too.
 */
static int
run_plugin(const char *name, maestro_ctx_t *ctx, const script_t *script,
    const char *config, const char *state, const char *item)
{
    int             rc;
    char           *input;
    json_t         *in;
    mst_agent_t     agent;
    maestro_host_t  host;

    load_plugin(&agent, name);

    host = mst_test_host();
    ctx->llm = script_llm;
    ctx->llm_arg = (void *) script;

    in = json_pack("{s:s, s:s, s:o, s:o, s:i, s:s}",
                   "node", name,
                   "agent", name,
                   "config", json_loads(config ? config : "{}", 0, NULL),
                   "state", json_loads(state, 0, NULL),
                   "attempt", 1,
                   "workflow_id", "wf_000000000000deadbeef");
    assert_non_null(in);

    if (item != NULL) {
        json_object_set_new(in, "item", json_loads(item, JSON_DECODE_ANY,
                                                   NULL));
        json_object_set_new(in, "index", json_integer(0));
    }

    input = json_dumps(in, JSON_COMPACT);
    json_decref(in);

    rc = agent.plugin->run(ctx, &host, agent.data, input);

    free(input);
    mst_agent_unload(&agent);

    return rc;
}


/* the plan's steps after a planner run, checking its invariants */
static json_t *
plan_steps(maestro_ctx_t *ctx, const char *source)
{
    size_t       i, len;
    json_t      *plan, *steps, *step;
    const char  *title, *instruction;

    plan = json_object_get(ctx->state, "plan");
    assert_non_null(plan);
    assert_true(json_equal(plan, ctx->output));
    assert_string_equal(json_string_value(json_object_get(plan, "source")),
                        source);

    steps = json_object_get(plan, "steps");
    assert_true(json_is_array(steps));

    json_array_foreach(steps, i, step) {
        assert_int_equal(json_integer_value(json_object_get(step, "id")),
                         i + 1);
        title = json_string_value(json_object_get(step, "title"));
        instruction = json_string_value(json_object_get(step,
                                                        "instruction"));
        assert_non_null(title);
        assert_non_null(instruction);
        assert_true(strlen(title) > 0);
        assert_true(strlen(title) <= 60);
        assert_true(mst_utf8_valid(title, strlen(title)));
    }

    /* done: progress reached 1.0 and the count was logged */
    len = json_array_size(ctx->progress);
    assert_true(len > 0);
    assert_true(json_real_value(json_array_get(ctx->progress, len - 1))
                == 1.0);

    return steps;
}


static const char *
step_field(json_t *steps, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(steps, i), key));
}


/* planner ---------------------------------------------------------------- */


static void
test_planner_numbered_list(void **state)
{
    char           log[64];
    json_t        *steps;
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"Please help me with this:\\n"
        "1. Research the history of the Roman Empire\\n"
        "2) Summarize the key emperors and\\n"
        "   their main reforms\\n"
        "3. Write a short conclusion\\n\", \"context\": [], "
        "\"outputs\": {}}", NULL), MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 3);
    assert_string_equal(step_field(steps, 0, "instruction"),
                        "Research the history of the Roman Empire");
    /* a continuation line joins its item */
    assert_string_equal(step_field(steps, 1, "instruction"),
                        "Summarize the key emperors and their main reforms");
    assert_string_equal(step_field(steps, 2, "title"),
                        "Write a short conclusion");

    /* the LLM was asked first (offline: rules decided) */
    assert_int_equal(json_array_size(ctx.requests), 1);

    snprintf(log, sizeof(log), "planner: %d steps", 3);
    assert_true(mst_test_ctx_logged(&ctx, log));

    mst_test_ctx_free(&ctx);
}


static void
test_planner_bullets(void **state)
{
    json_t        *steps;
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"- compare nginx and envoy\\n* list their licences"
        "\\n\\u2022 recommend one for a small team\"}", NULL), MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 3);
    assert_string_equal(step_field(steps, 0, "instruction"),
                        "Compare nginx and envoy");
    assert_string_equal(step_field(steps, 2, "instruction"),
                        "Recommend one for a small team");

    mst_test_ctx_free(&ctx);
}


static void
test_planner_sequencing(void **state)
{
    json_t        *steps;
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"First research the market for electric bikes in "
        "Europe, then write a business plan, and finally draft an email "
        "to investors.\"}", NULL), MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 3);
    assert_string_equal(step_field(steps, 0, "instruction"),
                        "Research the market for electric bikes in Europe");
    assert_string_equal(step_field(steps, 1, "instruction"),
                        "Write a business plan");
    assert_string_equal(step_field(steps, 2, "instruction"),
                        "Draft an email to investors.");

    mst_test_ctx_free(&ctx);

    /* ";", "after that", "next" and sentences */
    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"Collect the sales figures for 2023; after that "
        "chart them by region. Next, explain the outliers\"}", NULL),
        MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 3);
    assert_string_equal(step_field(steps, 0, "instruction"),
                        "Collect the sales figures for 2023");
    assert_string_equal(step_field(steps, 1, "instruction"),
                        "Chart them by region.");
    assert_string_equal(step_field(steps, 2, "instruction"),
                        "Explain the outliers");

    mst_test_ctx_free(&ctx);
}


static void
test_planner_short_prompt(void **state)
{
    json_t        *steps;
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    /* a word like "first" inside a clause is not a marker */
    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"Who was the first emperor of Rome?\"}", NULL),
        MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 1);
    assert_string_equal(step_field(steps, 0, "instruction"),
                        "Who was the first emperor of Rome?");
    assert_string_equal(step_field(steps, 0, "title"),
                        "Who was the first emperor of Rome");

    mst_test_ctx_free(&ctx);
}


static void
test_planner_long_prompt(void **state)
{
    size_t         i, n;
    json_t        *steps;
    const char    *title, *instruction;
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline,
        "{\"max_steps\": 3}",
        "{\"prompt\": \"Our company operates a fleet of delivery vans in "
        "three cities and we are considering a move to electric vehicles "
        "over the next five years. Analyse the total cost of ownership of "
        "diesel and electric vans, including purchase price, maintenance, "
        "energy and residual value. Estimate the charging infrastructure "
        "we would need at each depot, taking into account shift patterns "
        "and grid capacity. Review the available government incentives "
        "and how long they are expected to last. Assess the operational "
        "risks, such as range limits in winter and longer turnaround "
        "times. Compare two or three realistic rollout schedules. "
        "Recommend one of them with a short justification that a board "
        "of directors could read in five minutes.\"}", NULL), MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    n = json_array_size(steps);
    assert_true(n >= 2);
    assert_true(n <= 3);

    for (i = 0; i < n; i++) {
        title = step_field(steps, i, "title");
        instruction = step_field(steps, i, "instruction");

        /* a title cut on a word boundary */
        assert_int_equal(strncmp(title, instruction, strlen(title)), 0);
        assert_true(instruction[strlen(title)] == '\0'
                    || instruction[strlen(title)] == ' '
                    || instruction[strlen(title)] == '.'
                    || instruction[strlen(title)] == ',');
    }

    /* nothing lost: the last sentence is in the last step */
    assert_non_null(strstr(step_field(steps, n - 1, "instruction"),
                           "board of directors"));
    assert_non_null(strstr(step_field(steps, 0, "instruction"),
                           "delivery vans"));

    mst_test_ctx_free(&ctx);
}


static void
test_planner_online(void **state)
{
    json_t         *steps, *req;
    maestro_ctx_t   ctx;
    script_t        online = {
        "gpt-test",
        "Here is the plan:\n```json\n{\"steps\": ["
        "{\"title\": \"Gather sources\", \"instruction\": \"Find three "
        "reliable sources on Rome\"},"
        "{\"title\": \"Outline\", \"instruction\": \"Outline the essay\"},"
        "{\"title\": \"Draft\"},"
        "{\"title\": \"Edit\", \"instruction\": \"Edit for clarity\"}"
        "]}\n```\nGood luck!",
        MAESTRO_OK
    };

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &online,
        "{\"max_steps\": 3, \"model\": \"planner-model\"}",
        "{\"prompt\": \"Write an essay about Rome\"}", NULL), MAESTRO_OK);

    steps = plan_steps(&ctx, "llm");
    assert_int_equal(json_array_size(steps), 3);
    assert_string_equal(step_field(steps, 0, "title"), "Gather sources");
    assert_string_equal(step_field(steps, 0, "instruction"),
                        "Find three reliable sources on Rome");
    /* no instruction: the title stands in */
    assert_string_equal(step_field(steps, 2, "instruction"), "Draft");

    /* the request: system prompt asking for JSON, the prompt, the model */
    req = json_array_get(ctx.requests, 0);
    assert_string_equal(json_string_value(json_object_get(req, "model")),
                        "planner-model");
    assert_non_null(strstr(json_string_value(mst_json_path(req,
                               "messages.0.content")), "at most 3"));
    assert_string_equal(json_string_value(mst_json_path(req,
                            "messages.1.content")),
                        "Write an essay about Rome");

    /* usage accounted */
    assert_int_equal(ctx.prompt_tokens, 11);
    assert_int_equal(ctx.completion_tokens, 22);

    mst_test_ctx_free(&ctx);
}


static void
test_planner_online_fallbacks(void **state)
{
    json_t         *steps;
    maestro_ctx_t   ctx;
    script_t        garbage = { "gpt-test", "Sorry, I cannot plan that.",
                                MAESTRO_OK };
    script_t        no_steps = { "gpt-test", "{\"steps\": []}",
                                 MAESTRO_OK };
    script_t        failing = { "gpt-test", "", MAESTRO_ELLM };
    script_t        cancel = { "gpt-test", "", MAESTRO_ECANCELLED };

    /* unparsable answer: rules */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("planner", &ctx, &garbage, NULL,
        "{\"prompt\": \"Translate this, then summarize it\"}", NULL),
        MAESTRO_OK);
    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 2);
    mst_test_ctx_free(&ctx);

    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("planner", &ctx, &no_steps, NULL,
        "{\"prompt\": \"Translate this\"}", NULL), MAESTRO_OK);
    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 1);
    mst_test_ctx_free(&ctx);

    /* the LLM fails: rules, with a warning */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("planner", &ctx, &failing, NULL,
        "{\"prompt\": \"Translate this\"}", NULL), MAESTRO_OK);
    plan_steps(&ctx, "rules");
    assert_true(mst_test_ctx_logged(&ctx, "LLM provider failed"));
    mst_test_ctx_free(&ctx);

    /* cancelled during the call: no plan */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("planner", &ctx, &cancel, NULL,
        "{\"prompt\": \"Translate this\"}", NULL), MAESTRO_ECANCELLED);
    assert_null(ctx.output);
    assert_null(json_object_get(ctx.state, "plan"));
    mst_test_ctx_free(&ctx);

    /* use_llm false: no call at all */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("planner", &ctx, &garbage,
        "{\"use_llm\": false}", "{\"prompt\": \"Translate this\"}", NULL),
        MAESTRO_OK);
    assert_int_equal(json_array_size(ctx.requests), 0);
    plan_steps(&ctx, "rules");
    mst_test_ctx_free(&ctx);
}


static void
test_planner_bad_input(void **state)
{
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"   \"}", NULL), MAESTRO_EPERMANENT);
    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{}", NULL), MAESTRO_EPERMANENT);
    assert_true(mst_test_ctx_logged(&ctx, "empty"));
    assert_null(ctx.output);

    mst_test_ctx_free(&ctx);
}


/* a long title is cut on a word boundary */
static void
test_planner_long_title(void **state)
{
    json_t        *steps;
    const char    *title;
    maestro_ctx_t  ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("planner", &ctx, &offline, NULL,
        "{\"prompt\": \"1. Investigate the performance characteristics of "
        "the storage engine under heavy concurrent write load\\n"
        "2. Report\"}", NULL), MAESTRO_OK);

    steps = plan_steps(&ctx, "rules");
    assert_int_equal(json_array_size(steps), 2);
    title = step_field(steps, 0, "title");
    assert_string_equal(title, "Investigate the performance characteristics "
                        "of the storage");
    assert_string_equal(step_field(steps, 1, "instruction"), "Report");

    mst_test_ctx_free(&ctx);
}


/* llm -------------------------------------------------------------------- */


static const char  answer[] =
    "Rome was founded in 753 BC according to legend. It grew from a "
    "small town into an empire that spanned the Mediterranean. "
    "\xc3\xa9t\xc3\xa9 is a UTF-8 word.";


static void
test_llm_streams(void **state)
{
    char           *streamed;
    json_t         *out;
    maestro_ctx_t   ctx;
    script_t        online = { "gpt-test", answer, MAESTRO_OK };

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("llm", &ctx, &online, NULL,
        "{\"prompt\": \"Tell me about Rome\", \"context\": [], "
        "\"outputs\": {}}",
        "{\"id\": 2, \"title\": \"History\", \"instruction\": \"Explain "
        "how Rome was founded\"}"), MAESTRO_OK);

    /* tokens in order, as the chunks arrived */
    assert_true(json_array_size(ctx.tokens) > 10);
    assert_int_equal(json_array_size(ctx.tokens), ctx.chunks_sent);
    streamed = mst_test_ctx_tokens(&ctx);
    assert_string_equal(streamed, answer);
    free(streamed);

    out = ctx.output;
    assert_non_null(out);
    assert_int_equal(json_integer_value(json_object_get(out, "step")), 2);
    assert_string_equal(json_string_value(json_object_get(out, "title")),
                        "History");
    assert_string_equal(json_string_value(json_object_get(out, "content")),
                        answer);
    assert_string_equal(json_string_value(json_object_get(out, "model")),
                        "gpt-test");
    assert_int_equal(json_integer_value(mst_json_path(out,
                         "usage.completion_tokens")), 22);
    assert_int_equal(ctx.prompt_tokens, 11);
    assert_int_equal(ctx.completion_tokens, 22);

    mst_test_ctx_free(&ctx);
}


static void
test_llm_request_sources(void **state)
{
    json_t         *req;
    const char     *user, *p;
    maestro_ctx_t   ctx;
    script_t        online = { "gpt-test", "ok", MAESTRO_OK };

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("llm", &ctx, &online,
        "{\"system_prompt\": \"Be terse.\", \"model\": \"m1\", "
        "\"temperature\": 0.5}",
        "{\"prompt\": \"Plan a trip to Rome\", "
        "\"context\": [{\"name\": \"notes.txt\", \"content\": \"The "
        "Colosseum opens at 9.\"}, {\"name\": \"empty.txt\", "
        "\"content\": \"\"}], "
        "\"plan\": {\"steps\": [{\"id\": 1, \"title\": \"Pick dates\"}, "
        "{\"id\": 2, \"title\": \"Book sights\"}]}, "
        "\"review\": {\"verdict\": \"revise\", \"feedback\": \"Mention "
        "the Vatican.\"}, \"outputs\": {}}",
        "{\"id\": 2, \"title\": \"Book sights\", \"instruction\": \"Book "
        "the main sights\"}"), MAESTRO_OK);

    assert_int_equal(json_array_size(ctx.requests), 1);
    req = json_array_get(ctx.requests, 0);

    assert_string_equal(json_string_value(json_object_get(req, "model")),
                        "m1");
    assert_true(json_real_value(json_object_get(req, "temperature")) == 0.5);
    assert_string_equal(json_string_value(mst_json_path(req,
                            "messages.0.role")), "system");
    assert_string_equal(json_string_value(mst_json_path(req,
                            "messages.0.content")), "Be terse.");
    assert_string_equal(json_string_value(mst_json_path(req,
                            "messages.1.role")), "user");

    user = json_string_value(mst_json_path(req, "messages.1.content"));
    assert_non_null(user);

    /* the instruction first, then the sections in order */
    assert_int_equal(strncmp(user, "Book the main sights\n\n", 22), 0);

    p = strstr(user, "### Source: prompt\nPlan a trip to Rome");
    assert_non_null(p);
    p = strstr(p, "### Source: notes.txt\nThe Colosseum opens at 9.");
    assert_non_null(p);
    p = strstr(p, "### Source: plan\nPick dates\nBook sights");
    assert_non_null(p);
    p = strstr(p, "### Source: review\nMention the Vatican.");
    assert_non_null(p);

    /* an empty file is no source */
    assert_null(strstr(user, "empty.txt"));

    mst_test_ctx_free(&ctx);
}


static void
test_llm_no_item(void **state)
{
    json_t         *req, *out;
    const char     *user;
    maestro_ctx_t   ctx;
    script_t        online = { "gpt-test", "four", MAESTRO_OK };

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("llm", &ctx, &online, NULL,
        "{\"prompt\": \"What is two plus two?\", \"context\": []}", NULL),
        MAESTRO_OK);

    req = json_array_get(ctx.requests, 0);
    user = json_string_value(mst_json_path(req, "messages.1.content"));
    assert_string_equal(user, "What is two plus two?");

    /* the default system prompt, no model or temperature of our own */
    assert_true(strlen(json_string_value(mst_json_path(req,
                    "messages.0.content"))) > 20);
    assert_null(json_object_get(req, "model"));
    assert_null(json_object_get(req, "temperature"));

    out = ctx.output;
    assert_true(json_is_null(json_object_get(out, "step")));
    assert_string_equal(json_string_value(json_object_get(out, "content")),
                        "four");
    assert_string_equal(json_string_value(json_object_get(out, "title")),
                        "What is two plus two?");

    mst_test_ctx_free(&ctx);
}


static void
test_llm_context_truncated(void **state)
{
    char           *content, *text;
    size_t          i;
    json_t         *st;
    const char     *user, *p, *end;
    maestro_ctx_t   ctx;
    script_t        online = { "gpt-test", "ok", MAESTRO_OK };

    /* 100 x "é" (2 bytes each), limit 9: 8 bytes on a boundary */
    content = malloc(201);
    for (i = 0; i < 100; i++) {
        content[2 * i] = (char) 0xc3;
        content[2 * i + 1] = (char) 0xa9;
    }
    content[200] = '\0';

    st = json_pack("{s:s, s:[{s:s, s:s}]}", "prompt", "Summarize",
                   "context", "name", "big.txt", "content", content);
    text = json_dumps(st, 0);
    json_decref(st);

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("llm", &ctx, &online,
        "{\"max_context_bytes\": 9}", text, "{\"id\": 1, \"title\": "
        "\"S\", \"instruction\": \"Summarize the file\"}"), MAESTRO_OK);

    user = json_string_value(mst_json_path(json_array_get(ctx.requests, 0),
                                           "messages.1.content"));
    p = strstr(user, "### Source: big.txt\n");
    assert_non_null(p);
    p += strlen("### Source: big.txt\n");
    end = strstr(p, "\n\n");
    if (end == NULL) {
        end = p + strlen(p);
    }

    assert_int_equal(end - p, 8);
    assert_true(mst_utf8_valid(p, (size_t) (end - p)));
    assert_true(mst_utf8_valid(user, strlen(user)));

    mst_test_ctx_free(&ctx);
    free(text);
    free(content);
}


static void
test_llm_cancel_and_failure(void **state)
{
    maestro_ctx_t   ctx;
    script_t        online = { "gpt-test", answer, MAESTRO_OK };
    script_t        failing = { "gpt-test", "", MAESTRO_ELLM };
    script_t        timeout = { "gpt-test", "", MAESTRO_ETIMEDOUT };

    /* cancelled after two chunks: the stream stops, no output */
    mst_test_ctx_init(&ctx);
    ctx.cancel_after = 2;

    assert_int_equal(run_plugin("llm", &ctx, &online, NULL,
        "{\"prompt\": \"Tell me about Rome\"}", NULL), MAESTRO_ECANCELLED);
    assert_int_equal(json_array_size(ctx.tokens), 2);
    assert_int_equal(ctx.chunks_sent, 3);
    assert_null(ctx.output);
    mst_test_ctx_free(&ctx);

    /* the host's code is propagated */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("llm", &ctx, &failing, NULL,
        "{\"prompt\": \"Tell me about Rome\"}", NULL), MAESTRO_ELLM);
    assert_null(ctx.output);
    assert_true(mst_test_ctx_logged(&ctx, "LLM provider failed"));
    mst_test_ctx_free(&ctx);

    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("llm", &ctx, &timeout, NULL,
        "{\"prompt\": \"Tell me about Rome\"}", NULL), MAESTRO_ETIMEDOUT);
    mst_test_ctx_free(&ctx);

    /* nothing to do */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("llm", &ctx, &online, NULL, "{}", NULL),
                     MAESTRO_EPERMANENT);
    assert_int_equal(json_array_size(ctx.requests), 0);
    mst_test_ctx_free(&ctx);
}


/* reviewer --------------------------------------------------------------- */


static const char  photo_prompt[] =
    "Explain photosynthesis in plants and the role of chlorophyll";

static const char  photo_good[] =
    "Photosynthesis is how plants turn light into sugar. Chlorophyll "
    "absorbs the light; its role is central.";


static json_t *
review_of(maestro_ctx_t *ctx)
{
    json_t  *review;

    review = json_object_get(ctx->state, "review");
    assert_non_null(review);
    assert_true(json_equal(review, ctx->output));
    assert_true(json_is_number(json_object_get(review, "score")));
    assert_true(json_is_string(json_object_get(review, "feedback")));
    assert_true(json_is_array(json_object_get(review, "covered")));
    assert_true(json_is_array(json_object_get(review, "missing")));

    return review;
}


static char *
review_state(const char *outputs, const char *review)
{
    char  *text;

    if (asprintf(&text, "{\"prompt\": \"%s\", \"context\": [], "
                 "\"outputs\": {\"llm\": %s}%s%s}", photo_prompt, outputs,
                 review ? ", \"review\": " : "", review ? review : "") < 0)
    {
        fail_msg("asprintf");
    }

    return text;
}


static void
test_reviewer_accept(void **state)
{
    char           *st, *outputs;
    json_t         *review;
    maestro_ctx_t   ctx;

    if (asprintf(&outputs, "[{\"step\": 1, \"title\": \"Photosynthesis\", "
                 "\"content\": \"%s\"}]", photo_good) < 0)
    {
        fail_msg("asprintf");
    }

    st = review_state(outputs, NULL);
    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);

    review = review_of(&ctx);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "accept");
    assert_true(json_number_value(json_object_get(review, "score")) >= 0.9);
    assert_int_equal(json_integer_value(json_object_get(review, "passes")),
                     1);
    assert_int_equal(json_array_size(json_object_get(review, "missing")), 0);
    /* photosynthesis, plants (stemmed), role, chlorophyll */
    assert_int_equal(json_array_size(json_object_get(review, "covered")), 4);

    /* one output: the result is its content, no heading */
    assert_string_equal(json_string_value(json_object_get(ctx.state,
                                                          "result")),
                        photo_good);

    mst_test_ctx_free(&ctx);
    free(st);
    free(outputs);
}


static void
test_reviewer_revise(void **state)
{
    char           *st;
    json_t         *review, *missing;
    const char     *feedback;
    maestro_ctx_t   ctx;

    st = review_state("[{\"step\": 1, \"title\": \"Fruit\", \"content\": "
                      "\"Bananas are yellow and rich in potassium.\"}]",
                      NULL);
    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);

    review = review_of(&ctx);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "revise");
    assert_true(json_number_value(json_object_get(review, "score")) < 0.6);
    assert_int_equal(json_integer_value(json_object_get(review, "passes")),
                     1);

    missing = json_object_get(review, "missing");
    assert_int_equal(json_array_size(missing), 4);
    assert_string_equal(json_string_value(json_array_get(missing, 0)),
                        "photosynthesis");

    /* the feedback names what is missing; stop words are no terms */
    feedback = json_string_value(json_object_get(review, "feedback"));
    assert_non_null(strstr(feedback, "photosynthesis"));
    assert_non_null(strstr(feedback, "chlorophyll"));
    assert_null(strstr(feedback, "explain"));

    mst_test_ctx_free(&ctx);
    free(st);
}


static void
test_reviewer_passes(void **state)
{
    char           *st;
    json_t         *review;
    const char     *bad;
    maestro_ctx_t   ctx;

    bad = "{\"step\": 1, \"title\": \"Fruit\", \"content\": \"Bananas.\"}";

    /* second pass of two: accepted although the score is low */
    st = review_state(bad, "{\"passes\": 1, \"verdict\": \"revise\", "
                      "\"feedback\": \"x\"}");
    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);
    review = review_of(&ctx);
    assert_int_equal(json_integer_value(json_object_get(review, "passes")),
                     2);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "accept");
    assert_true(json_number_value(json_object_get(review, "score")) < 0.6);
    assert_non_null(strstr(json_string_value(json_object_get(review,
                                                             "feedback")),
                           "still missing"));
    mst_test_ctx_free(&ctx);

    /* max_passes 3: still revise on the second pass */
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("reviewer", &ctx, &offline,
                                "{\"max_passes\": 3}", st, NULL),
                     MAESTRO_OK);
    review = review_of(&ctx);
    assert_int_equal(json_integer_value(json_object_get(review, "passes")),
                     2);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "revise");
    mst_test_ctx_free(&ctx);
    free(st);

    /* a low threshold accepts on the first pass */
    st = review_state(bad, NULL);
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("reviewer", &ctx, &offline,
                                "{\"threshold\": 0.0}", st, NULL),
                     MAESTRO_OK);
    review = review_of(&ctx);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "accept");
    mst_test_ctx_free(&ctx);
    free(st);
}


static void
test_reviewer_result_assembly(void **state)
{
    char           *st;
    json_t         *review;
    maestro_ctx_t   ctx;

    st = review_state("[{\"step\": 1, \"title\": \"Light\", \"content\": "
                      "\"Plants capture light for photosynthesis.\"}, "
                      "{\"step\": 2, \"title\": \"Pigment\", \"content\": "
                      "\"The role of chlorophyll is absorption.\"}]", NULL);
    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);

    assert_string_equal(json_string_value(json_object_get(ctx.state,
                                                          "result")),
                        "## Light\n\nPlants capture light for "
                        "photosynthesis.\n\n## Pigment\n\nThe role of "
                        "chlorophyll is absorption.");

    review = review_of(&ctx);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "accept");

    mst_test_ctx_free(&ctx);
    free(st);
}


static void
test_reviewer_empty_and_errors(void **state)
{
    char           *st;
    double          good, degraded;
    json_t         *review;
    const char     *feedback;
    maestro_ctx_t   ctx;

    /* baseline: two good steps */
    st = review_state("[{\"title\": \"A\", \"content\": \"Photosynthesis "
                      "in plants.\"}, {\"title\": \"B\", \"content\": "
                      "\"The role of chlorophyll.\"}]", NULL);
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);
    good = json_number_value(json_object_get(review_of(&ctx), "score"));
    mst_test_ctx_free(&ctx);
    free(st);

    /* same coverage, plus an empty step and an error-looking one */
    st = review_state("[{\"title\": \"A\", \"content\": \"Photosynthesis "
                      "in plants, the role of chlorophyll.\"}, "
                      "{\"title\": \"B\", \"content\": \"  \"}, "
                      "{\"title\": \"C\", \"content\": \"Error: upstream "
                      "returned 500\"}]", NULL);
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);
    review = review_of(&ctx);
    degraded = json_number_value(json_object_get(review, "score"));
    assert_true(degraded < good);
    assert_true(degraded < 0.6);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "revise");
    feedback = json_string_value(json_object_get(review, "feedback"));
    assert_non_null(strstr(feedback, "\"B\" has no content"));
    assert_non_null(strstr(feedback, "\"C\" looks like an error"));
    mst_test_ctx_free(&ctx);
    free(st);

    /* no output at all */
    st = review_state("null", NULL);
    mst_test_ctx_init(&ctx);
    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL, st, NULL),
                     MAESTRO_OK);
    review = review_of(&ctx);
    assert_true(json_number_value(json_object_get(review, "score")) == 0);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "revise");
    assert_string_equal(json_string_value(json_object_get(ctx.state,
                                                          "result")), "");
    /* nothing to ask the LLM about */
    assert_int_equal(json_array_size(ctx.requests), 0);
    mst_test_ctx_free(&ctx);
    free(st);
}


static void
test_reviewer_target_single_output(void **state)
{
    json_t         *review;
    maestro_ctx_t   ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline,
        "{\"target\": \"writer\"}",
        "{\"prompt\": \"Describe the Eiffel Tower\", \"outputs\": "
        "{\"writer\": {\"content\": \"The Eiffel Tower is in Paris.\"}, "
        "\"llm\": [{\"content\": \"unrelated\"}]}}", NULL), MAESTRO_OK);

    review = review_of(&ctx);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "accept");
    assert_string_equal(json_string_value(json_object_get(ctx.state,
                                                          "result")),
                        "The Eiffel Tower is in Paris.");

    mst_test_ctx_free(&ctx);
}


/* lines quoting the request back (offline answers) cover nothing; prose
   about errors is no error */
static void
test_reviewer_echoes_and_error_prose(void **state)
{
    json_t         *review, *missing;
    maestro_ctx_t   ctx;

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL,
        "{\"prompt\": \"Describe volcanoes, glaciers and deserts\", "
        "\"outputs\": "
        "{\"llm\": {\"content\": \"[maestro-offline] header\\n"
        "- Describe volcanoes, glaciers and deserts (source: prompt)\\n"
        "- Volcanoes erupt molten rock. (source: notes.txt)\\n"
        "- Glaciers and volcanoes (source: plan)\"}}}", NULL), MAESTRO_OK);

    review = review_of(&ctx);
    missing = json_object_get(review, "missing");
    assert_int_equal(json_array_size(missing), 2);
    assert_string_equal(json_string_value(json_array_get(missing, 0)),
                        "glaciers");
    assert_string_equal(json_string_value(json_array_get(missing, 1)),
                        "deserts");
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "revise");
    mst_test_ctx_free(&ctx);

    mst_test_ctx_init(&ctx);

    assert_int_equal(run_plugin("reviewer", &ctx, &offline, NULL,
        "{\"prompt\": \"Explain error handling in Go\", \"outputs\": "
        "{\"llm\": [{\"content\": \"Error handling in Go uses explicit "
        "error values.\"}, {\"content\": \"Error: provider down\"}]}}",
        NULL), MAESTRO_OK);

    review = review_of(&ctx);
    /* half usable: coverage 1 x 0.5 + 0.1 - 0.05 */
    assert_true(json_number_value(json_object_get(review, "score")) > 0.54);
    assert_true(json_number_value(json_object_get(review, "score")) < 0.56);
    assert_non_null(strstr(json_string_value(json_object_get(review,
                                                             "feedback")),
                           "\"Step 2\" looks like an error"));
    assert_null(strstr(json_string_value(json_object_get(review,
                                                         "feedback")),
                       "\"Step 1\""));
    mst_test_ctx_free(&ctx);
}


static void
test_reviewer_online(void **state)
{
    char           *st, *outputs;
    json_t         *review, *req;
    const char     *user;
    maestro_ctx_t   ctx;
    script_t        online = {
        "gpt-test",
        "```json\n{\"score\": 0.2, \"feedback\": \"Too shallow.\"}\n```",
        MAESTRO_OK
    };

    if (asprintf(&outputs, "[{\"step\": 1, \"title\": \"P\", "
                 "\"content\": \"%s\"}]", photo_good) < 0)
    {
        fail_msg("asprintf");
    }

    st = review_state(outputs, NULL);
    mst_test_ctx_init(&ctx);

    /* rules 1.0, LLM 0.2: 0.6 < 0.7 */
    assert_int_equal(run_plugin("reviewer", &ctx, &online,
                                "{\"threshold\": 0.7}", st, NULL),
                     MAESTRO_OK);

    review = review_of(&ctx);
    assert_true(json_number_value(json_object_get(review, "score")) > 0.59);
    assert_true(json_number_value(json_object_get(review, "score")) < 0.61);
    assert_string_equal(json_string_value(json_object_get(review,
                                                          "verdict")),
                        "revise");
    assert_non_null(strstr(json_string_value(json_object_get(review,
                                                             "feedback")),
                           "Too shallow."));

    /* the LLM saw the request and the answer */
    req = json_array_get(ctx.requests, 0);
    user = json_string_value(mst_json_path(req, "messages.1.content"));
    assert_non_null(strstr(user, photo_prompt));
    assert_non_null(strstr(user, photo_good));
    assert_int_equal(ctx.completion_tokens, 22);

    mst_test_ctx_free(&ctx);
    free(st);
    free(outputs);
}


/* each shipped plugin refuses a host of another ABI, as the header says */
static void
test_plugins_check_abi(void **state)
{
    char                      path[512];
    void                     *handle, *sym;
    size_t                    i;
    maestro_plugin_entry_pt   entry;
    static const char        *names[] = { "planner", "llm", "reviewer" };

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/plugins/%s.so",
                 mst_test_build_dir(), names[i]);

        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
            fail_msg("%s: %s (run `make plugins` first)", path, dlerror());
        }

        sym = dlsym(handle, MAESTRO_PLUGIN_ENTRY);
        assert_non_null(sym);
        memcpy(&entry, &sym, sizeof(entry));

        if (entry(MAESTRO_PLUGIN_ABI_VERSION + 1) != NULL
            || entry(MAESTRO_PLUGIN_ABI_VERSION - 1) != NULL)
        {
            fail_msg("%s accepts another host ABI", names[i]);
        }

        assert_non_null(entry(MAESTRO_PLUGIN_ABI_VERSION));

        dlclose(handle);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_planner_numbered_list),
        cmocka_unit_test(test_planner_bullets),
        cmocka_unit_test(test_planner_sequencing),
        cmocka_unit_test(test_planner_short_prompt),
        cmocka_unit_test(test_planner_long_prompt),
        cmocka_unit_test(test_planner_online),
        cmocka_unit_test(test_planner_online_fallbacks),
        cmocka_unit_test(test_planner_bad_input),
        cmocka_unit_test(test_planner_long_title),
        cmocka_unit_test(test_llm_streams),
        cmocka_unit_test(test_llm_request_sources),
        cmocka_unit_test(test_llm_no_item),
        cmocka_unit_test(test_llm_context_truncated),
        cmocka_unit_test(test_llm_cancel_and_failure),
        cmocka_unit_test(test_reviewer_accept),
        cmocka_unit_test(test_reviewer_revise),
        cmocka_unit_test(test_reviewer_passes),
        cmocka_unit_test(test_reviewer_result_assembly),
        cmocka_unit_test(test_reviewer_empty_and_errors),
        cmocka_unit_test(test_reviewer_target_single_output),
        cmocka_unit_test(test_reviewer_echoes_and_error_prose),
        cmocka_unit_test(test_reviewer_online),
        cmocka_unit_test(test_plugins_check_abi),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
