/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_request: a request body's bytes to a JSON object (empty, UTF-8,
 * syntax, depth, an object), a submission's fields, a chat completion
 * made a submission; and mst_ws_msg, a WebSocket client's message.
 */

#include "mst_test.h"
#include "mst_request.h"
#include "mst_ws_msg.h"


#define TRQ_ID  "wf_0123456789ab01234567"


static json_t *
trq_parse(const char *text, mst_request_error_t *e)
{
    return mst_request_parse(text, strlen(text), e);
}


/* {"a": [[...]]}: depth levels in all */
static const char *
trq_nest(char *buf, size_t depth)
{
    char    *p;
    size_t   i;

    p = buf;
    p += sprintf(p, "{\"a\": ");

    for (i = 1; i < depth; i++) {
        *p++ = '[';
    }

    for (i = 1; i < depth; i++) {
        *p++ = ']';
    }

    strcpy(p, "}");

    return buf;
}


static void
test_parse(void **state)
{
    char                 deep[2 * MST_REQUEST_MAX_DEPTH + 16];
    json_t              *j;
    mst_request_error_t  e;

    j = trq_parse("{\"prompt\": \"hi\"}", &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "prompt")),
                        "hi");
    json_decref(j);

    assert_null(mst_request_parse("", 0, &e));
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "invalid_json");
    assert_string_equal(e.message, "empty body");

    assert_null(mst_request_parse("{\"a\": \"\xc3\"}", 9, &e));
    assert_string_equal(e.code, "invalid_utf8");

    assert_null(trq_parse("{\"a\": ", &e));
    assert_string_equal(e.code, "invalid_json");
    assert_non_null(strstr(e.message, "line 1"));

    assert_null(trq_parse("[1, 2]", &e));
    assert_string_equal(e.message, "body must be a JSON object");

    /* a NUL in the body is not JSON */
    assert_null(mst_request_parse("{}\0", 3, &e));
    assert_string_equal(e.code, "invalid_json");

    /* the depth limit exactly: brackets in strings do not count */
    j = trq_parse(trq_nest(deep, MST_REQUEST_MAX_DEPTH), &e);
    assert_non_null(j);
    json_decref(j);

    j = trq_parse("{\"a\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[\"}", &e);
    assert_non_null(j);
    json_decref(j);

    assert_null(trq_parse(trq_nest(deep, MST_REQUEST_MAX_DEPTH + 1), &e));
    assert_string_equal(e.code, "invalid_json");
    assert_non_null(strstr(e.message, "deeper than 64"));
}


static void
test_submission(void **state)
{
    json_t               *b, *ctx;
    mst_caller_t          who;
    mst_request_error_t   e;

    mst_caller_local(&who);

    b = json_pack("{s:s, s:s, s:[s, {s:s, s:s}]}", "prompt", "hello",
                  "user_id", "alice", "context", "first", "name", "n.txt",
                  "content", "second");
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_OK);
    assert_string_equal(mst_caller_user(&who), "alice");
    assert_int_equal(json_array_size(ctx), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(ctx, 0), "name")), "context-1");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(ctx, 1), "name")), "n.txt");
    json_decref(ctx);
    json_decref(b);

    b = json_pack("{s:s}", "workflow", "x");
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    assert_string_equal(e.code, "missing_field");
    assert_string_equal(e.field, "prompt");
    assert_null(ctx);
    json_decref(b);

    b = json_pack("{s:s}", "prompt", " \t\r\n");
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    assert_string_equal(e.code, "invalid_field");
    json_decref(b);

    b = json_pack("{s:i}", "prompt", 3);
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    assert_string_equal(e.code, "invalid_field");
    json_decref(b);

    b = json_pack("{s:s, s:i}", "prompt", "p", "user_id", 7);
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    assert_string_equal(e.field, "user_id");
    json_decref(b);

    b = json_pack("{s:s, s:[{s:s}]}", "prompt", "p", "context", "name",
                  "only a name");
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    assert_string_equal(e.field, "context");
    json_decref(b);

    b = json_pack("{s:s, s:i}", "prompt", "p", "context", 1);
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    json_decref(b);

    b = json_pack("{s:s, s:[i]}", "prompt", "p", "workflow", 1);
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_EINVAL);
    assert_string_equal(e.field, "workflow");
    json_decref(b);

    /* a connection's fixed user is not claimed away */
    assert_int_equal(mst_caller_session(&who, "bob", 3, e.message,
                                        sizeof(e.message)), MST_OK);
    b = json_pack("{s:s, s:s, s:{}}", "prompt", "p", "user_id", "mallory",
                  "workflow");
    assert_int_equal(mst_request_submission(b, &who, &ctx, &e), MST_OK);
    assert_string_equal(mst_caller_user(&who), "bob");
    assert_int_equal(json_array_size(ctx), 0);
    json_decref(ctx);
    json_decref(b);
}


/* typed fields as OpenAI types them: type, then range */
static void
test_openai_types(void **state)
{
    size_t                i;
    json_t               *b;
    mst_request_error_t   e;

    static const struct {
        const char  *body;
        const char  *code;
        const char  *field;
    } rows[] = {
        { "\"stream\": \"yes\"", "invalid_type", "stream" },
        { "\"stream\": 1", "invalid_type", "stream" },
        { "\"stream_options\": {\"include_usage\": \"y\"}", "invalid_type",
          "stream_options.include_usage" },
        { "\"temperature\": \"hot\"", "invalid_type", "temperature" },
        { "\"temperature\": 2.5", "invalid_value", "temperature" },
        { "\"top_p\": -0.1", "invalid_value", "top_p" },
        { "\"n\": 1.5", "invalid_type", "n" },
        { "\"n\": 0", "invalid_value", "n" },
        { "\"max_tokens\": \"10\"", "invalid_type", "max_tokens" },
        { "\"max_tokens\": 0", "invalid_value", "max_tokens" },
        { "\"max_completion_tokens\": true", "invalid_type",
          "max_completion_tokens" },
        { "\"stop\": 3", "invalid_type", "stop" },
        { "\"stop\": [\"a\", 1]", "invalid_type", "stop" },
        { "\"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]", "invalid_type",
          "stop" },
        { "\"presence_penalty\": 3", "invalid_value", "presence_penalty" },
        { "\"user\": 42", "invalid_type", "user" },
        { "\"tools\": {}", "invalid_type", "tools" },
        { "\"input\": 7", "invalid_type", "input" },
    };

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char  text[256];

        snprintf(text, sizeof(text), "{\"model\": \"m\", %s}", rows[i].body);
        b = trq_parse(text, &e);
        assert_non_null(b);
        assert_null(mst_request_openai(b, &e));
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, rows[i].code);
        assert_string_equal(e.field, rows[i].field);
        json_decref(b);
    }

    b = trq_parse("{\"model\": \"m\", \"stream\": \"yes\"}", &e);
    (void) mst_request_openai(b, &e);
    assert_string_equal(e.message, "Invalid type for 'stream': expected a "
                        "boolean, but got a string instead.");
    json_decref(b);

    /* the right types, and null for "not given", pass */
    b = trq_parse("{\"model\": \"m\", \"stream\": true, \"temperature\": 0,"
                  " \"top_p\": 1, \"n\": 1, \"max_tokens\": 5,"
                  " \"stop\": [\"x\", \"y\"], \"user\": null,"
                  " \"stream_options\": {\"include_usage\": true},"
                  " \"seed\": -3, \"tool_choice\": \"auto\","
                  " \"max_completion_tokens\": null, \"logprobs\": false}",
                  &e);
    assert_non_null(b);
    assert_string_equal(mst_request_openai(b, &e), "m");
    json_decref(b);

    b = trq_parse("{\"model\": \"m\", \"stop\": \"\\n\", \"input\": [\"a\"]}",
                  &e);
    assert_string_equal(mst_request_openai(b, &e), "m");
    json_decref(b);
}


static void
test_chat(void **state)
{
    json_t               *b, *req, *ctx;
    const char           *m;
    mst_request_error_t   e;

    b = json_pack("{s:i}", "model", 1);
    assert_null(mst_request_openai(b, &e));
    assert_string_equal(e.code, "missing_required_parameter");
    assert_string_equal(e.field, "model");
    json_decref(b);

    b = trq_parse("{\"model\": \"maestro/w\", \"messages\": ["
                  "{\"role\": \"system\", \"content\": \"be brief\"},"
                  "{\"role\": \"user\", \"content\": [{\"type\": \"text\","
                  " \"text\": \"ab\"}, {\"type\": \"image_url\"},"
                  " {\"text\": \"c\"}]},"
                  "{\"role\": \"assistant\", \"content\": null}]}", &e);
    assert_non_null(b);
    m = mst_request_openai(b, &e);
    assert_string_equal(m, "maestro/w");

    assert_int_equal(mst_request_chat(b, "w", &req, &e), MST_OK);
    /* the text parts joined by a newline */
    assert_string_equal(json_string_value(json_object_get(req, "prompt")),
                        "ab\nc");
    assert_string_equal(json_string_value(json_object_get(req, "workflow")),
                        "w");
    ctx = json_object_get(req, "context");
    assert_int_equal(json_array_size(ctx), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(ctx, 0), "name")), "system-1");
    json_decref(req);
    json_decref(b);

    b = json_pack("{s:s, s:[]}", "model", "maestro/w", "messages");
    assert_int_equal(mst_request_chat(b, "w", &req, &e), MST_EINVAL);
    assert_string_equal(e.code, "missing_required_parameter");
    assert_null(req);
    json_decref(b);

    b = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "assistant",
                  "content", "no user");
    assert_int_equal(mst_request_chat(b, "w", &req, &e), MST_EINVAL);
    assert_string_equal(e.code, "invalid_value");
    json_decref(b);

    /* a long multi-byte role is cut to a valid name */
    b = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "messages",
                  "role", "a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                  "content", "earlier", "role", "user", "content", "now");
    assert_int_equal(mst_request_chat(b, "w", &req, &e), MST_OK);
    ctx = json_object_get(req, "context");
    assert_int_equal(json_array_size(ctx), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(ctx, 0), "name")), "message-1");
    json_decref(req);
    json_decref(b);
}


/*
 * Found by fuzz_request: the text of many parts. The join reused the
 * loop's index (parts skipped, or no end), and copied the text so far
 * for each part (quadratic: 200,000 parts took minutes).
 */
static void
test_chat_parts(void **state)
{
    size_t   i, n;
    json_t  *content, *t;

    content = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]",
                        "text", "a", "text", "bb", "type", "image_url",
                        "text", "", "text", "c");
    t = mst_request_chat_text(content);
    assert_string_equal(json_string_value(t), "a\nbb\n\nc");
    json_decref(t);
    json_decref(content);

    n = 200000;
    content = json_array();

    for (i = 0; i < n; i++) {
        json_array_append_new(content, json_pack("{s:s}", "text", "x"));
    }

    t = mst_request_chat_text(content);
    assert_int_equal(json_string_length(t), 2 * n - 1);
    assert_memory_equal(json_string_value(t) + 2 * n - 4, "x\nx", 3);
    json_decref(t);
    json_decref(content);

    content = json_pack("[{s:i}]", "text", 1);
    t = mst_request_chat_text(content);
    assert_string_equal(json_string_value(t), "");
    json_decref(t);
    json_decref(content);
}


static int
trq_ws(const char *text, mst_ws_msg_t *m, mst_request_error_t *e)
{
    return mst_ws_msg_parse(text, strlen(text), m, e);
}


static void
test_ws_msg(void **state)
{
    mst_ws_msg_t         m;
    mst_request_error_t  e;

    assert_int_equal(trq_ws("{\"type\": \"prompt_submission\", "
                            "\"prompt\": \"x\"}", &m, &e), MST_OK);
    assert_int_equal(m.type, MST_WS_MSG_PROMPT);
    assert_string_equal(json_string_value(json_object_get(m.json,
                                                          "prompt")), "x");
    mst_ws_msg_free(&m);

    assert_int_equal(trq_ws("{\"type\": \"subscribe\", \"workflow_id\": \""
                            TRQ_ID "\", \"last_event_id\": 12}", &m, &e),
                     MST_OK);
    assert_int_equal(m.type, MST_WS_MSG_SUBSCRIBE);
    assert_string_equal(m.workflow_id, TRQ_ID);
    assert_int_equal(m.last, 12);
    mst_ws_msg_free(&m);

    assert_int_equal(trq_ws("{\"type\": \"subscribe\", \"workflow_id\": \""
                            TRQ_ID "\", \"last_event_id\": -4}", &m, &e),
                     MST_OK);
    assert_int_equal(m.last, 0);
    mst_ws_msg_free(&m);

    assert_int_equal(trq_ws("{\"type\": \"subscribe\", \"workflow_id\": \""
                            TRQ_ID "\", \"last_event_id\": \"4\"}", &m, &e),
                     MST_EINVAL);
    assert_string_equal(e.code, "invalid_field");
    assert_null(m.json);

    assert_int_equal(trq_ws("{\"type\": \"agent_action\", \"workflow_id\": \""
                            TRQ_ID "\", \"action\": \"cancel\"}", &m, &e),
                     MST_OK);
    assert_int_equal(m.type, MST_WS_MSG_CANCEL);
    assert_string_equal(m.workflow_id, TRQ_ID);
    mst_ws_msg_free(&m);

    assert_int_equal(trq_ws("{\"type\": \"agent_action\", \"workflow_id\": \""
                            TRQ_ID "\", \"action\": \"resume\"}", &m, &e),
                     MST_EINVAL);
    assert_string_equal(e.code, "unsupported_action");

    assert_int_equal(trq_ws("{\"type\": \"agent_action\", \"workflow_id\": \""
                            TRQ_ID "\"}", &m, &e), MST_EINVAL);
    assert_string_equal(e.code, "missing_field");

    assert_int_equal(trq_ws("{\"type\": \"agent_action\", \"workflow_id\": "
                            "\"../x\", \"action\": \"cancel\"}", &m, &e),
                     MST_EINVAL);
    assert_string_equal(e.field, "workflow_id");

    assert_int_equal(trq_ws("{}", &m, &e), MST_EINVAL);
    assert_string_equal(e.code, "missing_field");
    assert_int_equal(trq_ws("[]", &m, &e), MST_EINVAL);
    assert_string_equal(e.code, "invalid_json");
    assert_int_equal(trq_ws("{\"type\": \"dance\"}", &m, &e), MST_EINVAL);
    assert_string_equal(e.code, "invalid_field");
    assert_string_equal(e.message, "unknown message type \"dance\"");

    /* a long type is cut in its message, never inside a character */
    assert_int_equal(trq_ws("{\"type\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"}", &m, &e),
                     MST_EINVAL);
    assert_true(mst_utf8_valid(e.message, strlen(e.message)));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_submission),
        cmocka_unit_test(test_openai_types),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_chat_parts),
        cmocka_unit_test(test_ws_msg),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
