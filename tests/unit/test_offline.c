/*
 * Copyright (C) Maestro authors
 */

/* the offline provider: extractive, deterministic answers */

#include "mst_test.h"

#include "mst_offline.h"


#define HEADER                                                                \
    "[maestro-offline] No LLM provider is configured; this answer is "       \
    "extracted from the request."


/* {"messages": [{system}, {user}]}, either may be NULL */
static json_t *
req2(const char *system, const char *user)
{
    json_t  *req, *msgs;

    req = json_object();
    msgs = json_array();
    json_object_set_new(req, "model", json_string("any"));
    json_object_set_new(req, "messages", msgs);

    if (system != NULL) {
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system",
                                              "content", system));
    }

    if (user != NULL) {
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user",
                                              "content", user));
    }

    return req;
}


static char *
answer(json_t *req)
{
    char  *a;

    a = mst_offline_answer(req);
    assert_non_null(a);
    assert_true(mst_utf8_valid(a, strlen(a)));
    assert_int_equal(strncmp(a, HEADER, strlen(HEADER)), 0);

    return a;
}


static int
count(const char *hay, const char *needle)
{
    int          n;
    const char  *p;

    n = 0;
    for (p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }

    return n;
}


static void
test_deterministic(void **state)
{
    json_t  *req;
    char    *a, *b;

    req = req2("The release train leaves every second Tuesday at noon. "
               "Hotfixes can ship any day after a review by two people. "
               "The staging cluster is rebuilt every night.",
               "When does the release train leave?");

    a = answer(req);
    b = answer(req);

    assert_string_equal(a, b);
    assert_non_null(strstr(a, "\n- The release train leaves every second "
                              "Tuesday at noon. (source: system)"));

    free(a);
    free(b);
    json_decref(req);
}


static void
test_sources_attributed(void **state)
{
    json_t  *req;
    char    *a;

    req = req2("You answer questions about company policy.\n"
               "### Source: handbook.md\n"
               "Employees may work remotely three days per week.\n"
               "### Source: security.md\n"
               "Audit logs are retained for 400 days in cold storage.\n"
               "Laptops must use full disk encryption at all times.\n",
               "How long are audit logs retained?\n"
               "Answer from the documents below.\n"
               "### Source: notes.txt\n"
               "Retention of audit logs was extended from 90 days in 2023.");

    a = answer(req);

    assert_non_null(strstr(a, "\n- Audit logs are retained for 400 days in "
                              "cold storage. (source: security.md)"));
    assert_non_null(strstr(a, "\n- Retention of audit logs was extended "
                              "from 90 days in 2023. (source: notes.txt)"));
    assert_null(strstr(a, "remotely"));
    assert_null(strstr(a, "encryption"));

    /* source order: security.md (system message) before notes.txt */
    assert_true(strstr(a, "security.md") < strstr(a, "notes.txt"));

    /* the question line itself is not a source */
    assert_null(strstr(a, "How long"));

    free(a);
    json_decref(req);
}


static void
test_relevant_over_irrelevant(void **state)
{
    json_t  *req;
    char    *a;

    req = req2("The kitchen is cleaned every Friday afternoon by the staff.\n"
               "Our office plants are watered on Mondays by volunteers.\n"
               "- The database backup runs nightly at 02:00 UTC to S3\n"
               "- Parking permits are renewed each January at reception\n"
               "A database is a collection of organised data records.\n",
               "What time does the database backup run?");

    a = answer(req);

    /* bullet line as a sentence, the best match */
    assert_non_null(strstr(a, "\n- The database backup runs nightly at "
                              "02:00 UTC to S3 (source: system)"));
    assert_null(strstr(a, "kitchen"));
    assert_null(strstr(a, "plants"));
    assert_null(strstr(a, "Parking"));

    free(a);
    json_decref(req);
}


static void
test_top_six_ties_earlier_first(void **state)
{
    char     text[4096], *a;
    size_t   n;
    int      i;
    json_t  *req;

    n = 0;
    for (i = 1; i <= 10; i++) {
        n += snprintf(text + n, sizeof(text) - n,
                      "Record number %02d talks about zebra crossings.\n", i);
    }

    /* a duplicate of the first one, in another source */
    n += snprintf(text + n, sizeof(text) - n, "### Source: copy.md\n"
                  "Record number 01 talks about zebra crossings.\n");

    req = req2(text, "Where are the zebra crossings?");
    a = answer(req);

    assert_int_equal(count(a, "\n- "), 6);
    assert_int_equal(count(a, "Record number 01"), 1);
    assert_non_null(strstr(a, "Record number 06"));
    assert_null(strstr(a, "Record number 07"));
    assert_null(strstr(a, "copy.md"));
    assert_true(strstr(a, "number 02") < strstr(a, "number 05"));

    free(a);
    json_decref(req);
}


static void
test_no_context(void **state)
{
    json_t  *req;
    char    *a;

    req = req2(NULL, "Draft a migration plan for the billing database; "
                     "keep downtime under five minutes. Who signs off?");
    a = answer(req);

    assert_non_null(strstr(a, "No context was provided"));
    assert_non_null(strstr(a, "\nRestating the request:\n"
                              "- Draft a migration plan for the billing "
                              "database\n"
                              "- keep downtime under five minutes.\n"
                              "- Who signs off?\n"));
    assert_non_null(strstr(a, "Key terms: draft, migration, plan, billing, "
                              "database, keep, downtime, under, five, "
                              "minute, sign, off."));
    assert_null(strstr(a, "(source:"));

    free(a);
    json_decref(req);

    /* only stop words */
    req = req2(NULL, "What is it?");
    a = answer(req);
    assert_non_null(strstr(a, "- What is it?"));
    assert_non_null(strstr(a, "Key terms: none."));
    free(a);
    json_decref(req);
}


static void
test_no_match(void **state)
{
    json_t  *req;
    char    *a;

    req = req2("Quarterly revenue grew by twelve percent in Europe.\n"
               "### Source: hr.md\n"
               "New hires receive their laptops on the first day.\n",
               "How do penguins survive antarctic winters?");
    a = answer(req);

    assert_non_null(strstr(a, "None of the terms looked for (penguin, "
                              "survive, antarctic, winter) appear in the "
                              "sources examined: system, hr.md."));
    assert_null(strstr(a, "(source:"));

    free(a);
    json_decref(req);
}


static void
test_no_question(void **state)
{
    json_t  *req;
    char    *a;

    req = req2("Some context that nobody asked about at all.", NULL);
    a = answer(req);
    assert_non_null(strstr(a, "No question was found"));
    assert_non_null(strstr(a, "Sources examined: system."));
    free(a);
    json_decref(req);

    /* not even messages */
    req = json_object();
    a = answer(req);
    assert_non_null(strstr(a, "No question was found"));
    free(a);
    json_decref(req);

    a = mst_offline_answer(NULL);
    assert_non_null(a);
    free(a);
}


static void
test_utf8(void **state)
{
    char     long_ko[4096], *a;
    size_t   n;
    int      i;
    json_t  *req;

    req = req2("서울의 인구는 약 천만 명이며 한국에서 가장 큰 도시입니다. "
               "부산은 한국의 두 번째로 큰 항구 도시로 알려져 있습니다. "
               "제주도는 화산섬이며 관광지로 유명합니다.",
               "서울의 인구는 얼마입니까?");
    a = answer(req);
    assert_non_null(strstr(a, "\n- 서울의 인구는 약 천만 명이며 한국에서 "
                              "가장 큰 도시입니다. (source: system)"));
    assert_null(strstr(a, "제주도"));
    free(a);
    json_decref(req);

    /* a 500-character sentence is cut, on a character boundary */
    n = 0;
    n += snprintf(long_ko + n, sizeof(long_ko) - n,
                  "### Source: long.md\n서울은");
    for (i = 0; i < 166; i++) {
        n += snprintf(long_ko + n, sizeof(long_ko) - n, " 가나");
    }
    n += snprintf(long_ko + n, sizeof(long_ko) - n, "\n### Source: 문서.md\n"
                  "서울 지하철은 매일 오전 다섯 시 삼십 분에 운행을 "
                  "시작합니다.");

    req = req2(long_ko, "서울 지하철은 언제 시작합니까?");
    a = answer(req);
    assert_non_null(strstr(a, "\n- 서울은 가나 가나"));
    assert_non_null(strstr(a, " 가나... (source: long.md)"));
    assert_non_null(strstr(a, "(source: 문서.md)"));
    free(a);
    json_decref(req);

    /* alone: clauses and terms of a Korean question */
    req = req2(NULL, "배포 계획을 작성해 주세요; 중단 시간은 오 분 이내로.");
    a = answer(req);
    assert_non_null(strstr(a, "- 배포 계획을 작성해 주세요\n"));
    assert_non_null(strstr(a, "Key terms: 배포, 계획을, 작성해, "
                              "주세요, 중단,"));
    free(a);
    json_decref(req);
}


static void
test_content_parts(void **state)
{
    json_t  *req;
    char    *a;

    req = json_pack("{s:[{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]},"
                    "   {s:s, s:s},"
                    "   {s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}",
                    "messages",
                    "role", "system", "content",
                    "type", "text", "text",
                    "### Source: runbook.md\nRestart the ingest worker "
                    "with systemctl restart ingest.\nThe ingest worker "
                    "logs to /var/log/ingest.log by default.",
                    "type", "image_url", "image_url", "url", "http://x/y",
                    "role", "assistant", "content",
                    "Earlier I said the ingest worker is stateless.",
                    "role", "user", "content",
                    "type", "text", "text", "How do I restart the ingest",
                    "type", "text", "text", "worker?");
    assert_non_null(req);

    a = answer(req);
    assert_non_null(strstr(a, "\n- Restart the ingest worker with "
                              "systemctl restart ingest. "
                              "(source: runbook.md)"));
    assert_non_null(strstr(a, "(source: assistant)"));
    assert_null(strstr(a, "http://x/y"));
    free(a);
    json_decref(req);
}


static void
test_wrapped_and_sections_only(void **state)
{
    json_t  *req;
    char    *a;

    /* hard-wrapped prose is joined before it is cut into sentences */
    req = req2("### Source: design.txt\n"
               "The scheduler keeps three priority queues and always serves "
               "the\n"
               "high queue first, which starves batch jobs under heavy "
               "load.\n",
               "Why do batch jobs starve?");
    a = answer(req);
    assert_non_null(strstr(a, "\n- The scheduler keeps three priority "
                              "queues and always serves the high queue "
                              "first, which starves batch jobs under heavy "
                              "load. (source: design.txt)"));
    free(a);
    json_decref(req);

    /* a user message that starts with a section has no question line */
    req = req2(NULL, "### Source: a.md\nThe answer is forty two, always.");
    a = answer(req);
    assert_non_null(strstr(a, "No question was found"));
    assert_non_null(strstr(a, "a.md"));
    free(a);
    json_decref(req);
}


static void
test_system_prompt_is_not_context(void **state)
{
    json_t  *req;
    char    *a;

    /* the llm plugin's kind of system prompt: instructions only */
    req = req2("You are a precise assistant. Sections that start with "
               "\"### Source:\" are material to work from: the original "
               "request, uploaded files, the plan, and a reviewer's "
               "feedback.",
               "Write a rollout plan for the new payment service.");
    a = answer(req);
    assert_non_null(strstr(a, "No context was provided"));
    assert_non_null(strstr(a, "- Write a rollout plan for the new payment "
                              "service."));
    assert_null(strstr(a, "material"));
    free(a);
    json_decref(req);

    /* the same with a real source: the source answers, not the prompt */
    req = req2("You are a precise assistant. Sections that start with "
               "\"### Source:\" are material to work from: the original "
               "request, uploaded files, the plan, and a reviewer's "
               "feedback.",
               "Write a rollout plan for the new payment service.\n"
               "### Source: svc.md\n"
               "The payment service rollout starts with a canary in one "
               "region.");
    a = answer(req);
    assert_non_null(strstr(a, "\n- The payment service rollout starts "
                              "with a canary in one region. "
                              "(source: svc.md)"));
    assert_null(strstr(a, "material"));
    assert_null(strstr(a, "No context"));
    free(a);
    json_decref(req);
}


typedef struct {
    char    text[4096];
    size_t  len;
    int     n;
    int     stop_at;        /* the callback says stop at this chunk */
} to_chunks_t;


static int
to_on_chunk(const char *text, size_t len, void *arg)
{
    to_chunks_t  *c = arg;

    assert_true(len > 0);
    assert_true(c->len + len < sizeof(c->text));
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    c->n++;

    return c->stop_at && c->n == c->stop_at;
}


static int
to_cancelled(void *arg)
{
    return 1;
}


static const char *
to_content(json_t *resp)
{
    return json_string_value(mst_json_path(resp, "choices.0.message.content"));
}


/* the offline provider as a plugin's llm_chat sees it */
static void
test_chat(void **state)
{
    int              rc;
    char             err[MST_ERRLEN];
    json_t          *req, *resp, *streamed, *usage;
    to_chunks_t      c;
    mst_llm_call_t   call;

    req = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}",
                    "model", "gpt-whatever", "messages",
                    "role", "system", "content",
                    "The invoice service retries failed payments three "
                    "times over two days.",
                    "role", "user", "content",
                    "How often are failed payments retried?");

    rc = mst_offline_chat(req, NULL, &resp, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_string_equal(json_string_value(json_object_get(resp, "object")),
                        "chat.completion");
    assert_string_equal(json_string_value(json_object_get(resp, "model")),
                        MST_OFFLINE_MODEL);
    assert_int_equal(strncmp(json_string_value(json_object_get(resp, "id")),
                             "chatcmpl-offline-", 17), 0);
    assert_true(json_integer_value(json_object_get(resp, "created")) > 0);
    assert_string_equal(json_string_value(mst_json_path(resp,
                        "choices.0.message.role")), "assistant");
    assert_string_equal(json_string_value(mst_json_path(resp,
                        "choices.0.finish_reason")), "stop");
    assert_int_equal(strncmp(to_content(resp), "[maestro-offline]", 17), 0);
    assert_non_null(strstr(to_content(resp), "three times over two days"));

    /* usage: ~4 bytes a token of the messages and of the answer */
    usage = json_object_get(resp, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage,
                     "prompt_tokens")), (70 + 3) / 4 + (38 + 3) / 4);
    assert_int_equal(json_integer_value(json_object_get(usage,
                     "completion_tokens")),
                     (long) (strlen(to_content(resp)) + 3) / 4);
    assert_int_equal(json_integer_value(json_object_get(usage,
                     "total_tokens")),
                     json_integer_value(json_object_get(usage,
                                        "prompt_tokens"))
                     + json_integer_value(json_object_get(usage,
                                          "completion_tokens")));

    /* streamed in word-sized pieces: the same text */
    memset(&c, 0, sizeof(c));
    memset(&call, 0, sizeof(call));
    call.on_chunk = to_on_chunk;
    call.chunk_arg = &c;
    rc = mst_offline_chat(req, &call, &streamed, err, sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_true(c.n > 10);
    assert_string_equal(c.text, to_content(resp));
    assert_string_equal(to_content(streamed), to_content(resp));
    json_decref(streamed);

    /* the callback says stop */
    memset(&c, 0, sizeof(c));
    c.stop_at = 3;
    rc = mst_offline_chat(req, &call, &streamed, err, sizeof(err));
    assert_int_equal(rc, MST_ECANCELLED);
    assert_null(streamed);
    assert_int_equal(c.n, 3);

    /* cancelled: nothing goes out */
    memset(&c, 0, sizeof(c));
    call.cancelled = to_cancelled;
    rc = mst_offline_chat(req, &call, &streamed, err, sizeof(err));
    assert_int_equal(rc, MST_ECANCELLED);
    assert_null(streamed);
    assert_int_equal(c.n, 0);

    /* the deadline passed before the call */
    memset(&call, 0, sizeof(call));
    call.deadline = mst_mono_ms() - 1;
    rc = mst_offline_chat(req, &call, &streamed, err, sizeof(err));
    assert_int_equal(rc, MST_ETIMEDOUT);
    assert_null(streamed);

    json_decref(resp);
    json_decref(req);

    /* no messages */
    req = json_pack("{s:[]}", "messages");
    assert_int_equal(mst_offline_chat(req, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    assert_null(resp);
    json_decref(req);

    req = json_pack("{s:s}", "model", "m");
    assert_int_equal(mst_offline_chat(req, NULL, &resp, err, sizeof(err)),
                     MST_EINVAL);
    json_decref(req);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_sources_attributed),
        cmocka_unit_test(test_relevant_over_irrelevant),
        cmocka_unit_test(test_top_six_ties_earlier_first),
        cmocka_unit_test(test_no_context),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_no_question),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_content_parts),
        cmocka_unit_test(test_wrapped_and_sections_only),
        cmocka_unit_test(test_system_prompt_is_not_context),
        cmocka_unit_test(test_chat),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
