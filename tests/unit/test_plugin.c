/*
 * Copyright (C) Maestro authors
 */

/*
 * The plugin loader (mst_plugin.c) against the fixture plugins built by
 * `make fixtures` into $MST_BUILD/fixtures/, and the fixtures themselves
 * run through a recording host.
 */

#include "mst_test.h"
#include "mst_test_host.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>

#include "mst_plugin.h"


static char  mst_test_path[512];


static const char *
fixture(const char *name)
{
    snprintf(mst_test_path, sizeof(mst_test_path), "%s/fixtures/%s.so",
             mst_test_build_dir(), name);

    if (access(mst_test_path, R_OK) != 0) {
        fail_msg("%s is missing: run `make fixtures` first", mst_test_path);
    }

    return mst_test_path;
}


static void
assert_zeroed(const mst_agent_t *agent)
{
    mst_agent_t  zero;

    memset(&zero, 0, sizeof(mst_agent_t));
    assert_memory_equal(agent, &zero, sizeof(mst_agent_t));
}


/* loads a fixture that must be refused; err must name it and the reason */
static void
assert_refused(const char *name, const char *config, int expect_rc,
    const char *reason)
{
    int              rc;
    char             err[MST_ERRLEN];
    const char      *path;
    mst_agent_t      agent;
    maestro_host_t   host;

    host = mst_test_host();
    path = fixture(name);
    err[0] = '\0';

    rc = mst_agent_load(&agent, name, path, config, &host, err, sizeof(err));

    if (rc != expect_rc || strstr(err, path) == NULL
        || strstr(err, reason) == NULL)
    {
        fail_msg("%s: rc %d (expected %d), err \"%s\" (expected the path "
                 "and \"%s\")", name, rc, expect_rc, err, reason);
    }

    assert_zeroed(&agent);

    /* safe on what a refusal left */
    mst_agent_unload(&agent);
    assert_null(mst_agent_describe(&agent));
}


/* runs an agent once with the given input; returns run()'s code */
static int
run_agent(mst_agent_t *agent, maestro_ctx_t *ctx, const char *input)
{
    maestro_host_t  host;

    host = mst_test_host();

    return agent->plugin->run(ctx, &host, agent->data, input);
}


static void
load_ok(mst_agent_t *agent, const char *name, const char *config)
{
    char            err[MST_ERRLEN];
    maestro_host_t  host;

    host = mst_test_host();
    err[0] = '\0';

    if (mst_agent_load(agent, name, fixture(name), config, &host, err,
                       sizeof(err))
        != MST_OK)
    {
        fail_msg("load %s: %s", name, err);
    }
}


static void
test_echo_loads_and_describes(void **state)
{
    int              rc;
    char             err[MST_ERRLEN];
    json_t          *d, *caps;
    const char      *path;
    mst_agent_t      agent;
    maestro_host_t   host;

    host = mst_test_host();
    path = fixture("echo");

    rc = mst_agent_load(&agent, "echo1", path,
                        "{\"greeting\": \"hi\", \"n\": 3}", &host, err,
                        sizeof(err));
    assert_int_equal(rc, MST_OK);

    assert_string_equal(agent.name, "echo1");
    assert_non_null(strstr(agent.path, "echo.so"));
    assert_non_null(agent.handle);
    assert_non_null(agent.plugin);
    assert_string_equal(agent.plugin->name, "echo");
    assert_true(json_is_object(agent.config));
    assert_string_equal(json_string_value(json_object_get(agent.config,
                                                          "greeting")),
                        "hi");

    /* echo's init() keeps the config text it was given */
    assert_non_null(agent.data);
    assert_non_null(strstr(agent.data, "\"greeting\""));

    d = mst_agent_describe(&agent);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "name")),
                        "echo1");
    assert_string_equal(json_string_value(json_object_get(d, "plugin")),
                        "echo.so");
    assert_string_equal(json_string_value(json_object_get(d, "version")),
                        "1.0.0");
    assert_non_null(strstr(json_string_value(json_object_get(d,
                                                     "description")),
                           "echo"));
    caps = json_object_get(d, "capabilities");
    assert_true(json_is_array(caps));
    assert_int_equal(json_array_size(caps), 2);
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "test");
    assert_string_equal(json_string_value(json_array_get(caps, 1)), "echo");
    assert_int_equal(json_object_size(d), 5);
    json_decref(d);

    /* fini() frees init()'s copy: LeakSanitizer checks it was called */
    mst_agent_unload(&agent);
    assert_zeroed(&agent);
}


static void
test_echo_runs(void **state)
{
    int             rc;
    json_t         *out;
    mst_agent_t     agent;
    maestro_ctx_t   ctx;

    load_ok(&agent, "echo", NULL);

    /* no config: "{}" */
    assert_true(json_is_object(agent.config));
    assert_int_equal(json_object_size(agent.config), 0);
    assert_string_equal(agent.data, "{}");

    mst_test_ctx_init(&ctx);

    rc = run_agent(&agent, &ctx,
                   "{\"node\": \"n1\", \"agent\": \"echo\", "
                   "\"config\": {\"k\": 1}, \"state\": {\"prompt\": "
                   "\"hello\", \"context\": [], \"outputs\": {}}, "
                   "\"item\": {\"id\": 2}, \"index\": 1, \"attempt\": 1, "
                   "\"workflow_id\": \"wf_x\"}");
    assert_int_equal(rc, MAESTRO_OK);

    out = ctx.output;
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "echo")),
                        "hello");
    assert_string_equal(json_string_value(json_object_get(out, "node")),
                        "n1");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(out, "config"),
                                         "k")), 1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(out, "item"),
                                         "id")), 2);
    assert_true(mst_test_ctx_logged(&ctx, "echo:"));
    assert_int_equal(json_array_size(ctx.progress), 1);
    assert_true(json_real_value(json_array_get(ctx.progress, 0)) == 1.0);

    /* without item: no "item" key; bad input: EINVAL */
    rc = run_agent(&agent, &ctx, "{\"node\": \"n1\", \"state\": "
                   "{\"prompt\": \"x\"}}");
    assert_int_equal(rc, MAESTRO_OK);
    assert_null(json_object_get(ctx.output, "item"));

    assert_int_equal(run_agent(&agent, &ctx, "{nope"), MAESTRO_EINVAL);

    mst_test_ctx_free(&ctx);
    mst_agent_unload(&agent);
}


static void
test_refuse_missing_file(void **state)
{
    int              rc;
    char             err[MST_ERRLEN], path[600];
    mst_agent_t      agent;
    maestro_host_t   host;

    host = mst_test_host();
    snprintf(path, sizeof(path), "%s/fixtures/does_not_exist.so",
             mst_test_build_dir());

    rc = mst_agent_load(&agent, "x", path, NULL, &host, err, sizeof(err));
    assert_int_equal(rc, MST_ERROR);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot open"));
    /* dlerror()'s text */
    assert_non_null(strstr(err, "No such file"));
    assert_zeroed(&agent);
}


static void
test_refuse_not_elf(void **state)
{
    int              rc;
    char             err[MST_ERRLEN], path[600], *dir;
    FILE            *f;
    mst_agent_t      agent;
    maestro_host_t   host;

    host = mst_test_host();
    dir = mst_test_tmpdir();
    snprintf(path, sizeof(path), "%s/fake.so", dir);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not a shared object, just text pretending to be one\n",
          f);
    fclose(f);

    rc = mst_agent_load(&agent, "x", path, NULL, &host, err, sizeof(err));
    assert_int_equal(rc, MST_ERROR);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot open"));
    assert_zeroed(&agent);

    mst_test_rmdir(dir);
}


static void
test_refuse_no_entry(void **state)
{
    assert_refused("no_entry", NULL, MST_ERROR,
                   "no maestro_plugin_entry symbol");
}


static void
test_refuse_null_entry(void **state)
{
    assert_refused("null_entry", NULL, MST_ERROR,
                   "maestro_plugin_entry() returned NULL");
}


static void
test_refuse_wrong_abi(void **state)
{
    assert_refused("wrong_abi", NULL, MST_ERROR,
                   "plugin ABI version 999, host speaks 1");
}


static void
test_refuse_no_run(void **state)
{
    assert_refused("no_run", NULL, MST_ERROR, "has no run()");
}


static void
test_refuse_bad_capabilities(void **state)
{
    assert_refused("bad_caps", NULL, MST_ERROR, "bad capabilities JSON");
}


static void
test_refuse_bad_config(void **state)
{
    /* jansson's position of the error */
    assert_refused("echo", "{\"a\": 1,\n \"b\": }", MST_EINVAL,
                   "config is not valid JSON");
    assert_refused("echo", "{\"a\": 1,\n \"b\": }", MST_EINVAL,
                   "(line 2, column");
    assert_refused("echo", "", MST_EINVAL, "config is not valid JSON");
    assert_refused("echo", "{\"a\": 1, \"a\": 2}", MST_EINVAL,
                   "duplicate");

    assert_refused("echo", "[1, 2]", MST_EINVAL,
                   "config is not a JSON object");
    assert_refused("echo", "\"text\"", MST_EINVAL,
                   "config is not valid JSON");
}


static void
test_refuse_init_failure(void **state)
{
    assert_refused("bad_init", "{}", MST_ERROR,
                   "init failed: bad_init: refusing configuration");
    assert_refused("bad_init", "{}", MST_ERROR, "agent \"bad_init\"");
}


static void
test_bad_arguments(void **state)
{
    char             err[MST_ERRLEN];
    mst_agent_t      agent;
    maestro_host_t   host;

    host = mst_test_host();

    assert_int_equal(mst_agent_load(&agent, "x", NULL, NULL, &host, err,
                                    sizeof(err)), MST_EINVAL);
    assert_zeroed(&agent);
    assert_int_equal(mst_agent_load(&agent, NULL, fixture("echo"), NULL,
                                    &host, err, sizeof(err)), MST_EINVAL);
    assert_zeroed(&agent);

    mst_agent_unload(NULL);
    assert_null(mst_agent_describe(NULL));
}


/* an error buffer too small is truncated, not overflowed */
static void
test_small_err_buffer(void **state)
{
    char             err[8];
    mst_agent_t      agent;
    maestro_host_t   host;

    host = mst_test_host();
    memset(err, 'x', sizeof(err));

    assert_int_equal(mst_agent_load(&agent, "w", fixture("wrong_abi"), NULL,
                                    &host, err, sizeof(err)), MST_ERROR);
    assert_int_equal(strlen(err), sizeof(err) - 1);
}


/* two agents of one plugin: independent configs and data */
static void
test_two_agents_one_plugin(void **state)
{
    mst_agent_t  a, b;

    load_ok(&a, "echo", "{\"v\": \"a\"}");
    load_ok(&b, "echo", "{\"v\": \"b\"}");

    assert_ptr_equal(a.plugin, b.plugin);
    assert_ptr_not_equal(a.data, b.data);
    assert_non_null(strstr(a.data, "\"a\""));
    assert_non_null(strstr(b.data, "\"b\""));

    mst_agent_unload(&a);

    /* b still works after a's dlclose() (reference counted) */
    assert_string_equal(b.plugin->name, "echo");

    mst_agent_unload(&b);
}


static void
test_fixture_fail(void **state)
{
    mst_agent_t    agent;
    maestro_ctx_t  ctx;

    load_ok(&agent, "fail", NULL);
    mst_test_ctx_init(&ctx);

    /* default: always */
    assert_int_equal(run_agent(&agent, &ctx, "{\"attempt\": 7, "
                               "\"config\": {}}"), MAESTRO_ERROR);
    assert_true(mst_test_ctx_logged(&ctx, "failing attempt 7"));

    /* fail_times 2: attempts 1 and 2 fail, 3 succeeds */
    assert_int_equal(run_agent(&agent, &ctx, "{\"attempt\": 1, "
                               "\"config\": {\"fail_times\": 2}}"),
                     MAESTRO_ERROR);
    assert_int_equal(run_agent(&agent, &ctx, "{\"attempt\": 2, "
                               "\"config\": {\"fail_times\": 2}}"),
                     MAESTRO_ERROR);
    assert_null(ctx.output);
    assert_int_equal(run_agent(&agent, &ctx, "{\"attempt\": 3, "
                               "\"config\": {\"fail_times\": 2}}"),
                     MAESTRO_OK);
    assert_int_equal(json_integer_value(json_object_get(ctx.output,
                                                        "attempt")), 3);

    assert_int_equal(run_agent(&agent, &ctx, "{\"attempt\": 1, "
                               "\"config\": {\"permanent\": true}}"),
                     MAESTRO_EPERMANENT);

    mst_test_ctx_free(&ctx);
    mst_agent_unload(&agent);
}


static void
test_fixture_sleep(void **state)
{
    int64_t        t0;
    mst_agent_t    agent;
    maestro_ctx_t  ctx;

    load_ok(&agent, "sleep", NULL);
    mst_test_ctx_init(&ctx);

    t0 = mst_mono_ms();
    assert_int_equal(run_agent(&agent, &ctx, "{\"config\": {\"ms\": 50}}"),
                     MAESTRO_OK);
    assert_true(mst_mono_ms() - t0 >= 45);
    assert_int_equal(json_integer_value(json_object_get(ctx.output,
                                                        "slept_ms")), 50);
    assert_true(json_array_size(ctx.progress) >= 5);

    /* cancelled after 3 polls */
    ctx.cancel_after = 3;
    ctx.cancel_calls = 0;
    assert_int_equal(run_agent(&agent, &ctx, "{\"config\": {\"ms\": 5000}}"),
                     MAESTRO_ECANCELLED);
    assert_int_equal(ctx.cancel_calls, 4);

    /* deadline */
    ctx.cancel_after = -1;
    ctx.remaining = 0;
    assert_int_equal(run_agent(&agent, &ctx, "{\"config\": {\"ms\": 5000}}"),
                     MAESTRO_ETIMEDOUT);

    mst_test_ctx_free(&ctx);
    mst_agent_unload(&agent);
}


static void
test_fixture_memory_and_noop(void **state)
{
    mst_agent_t    agent;
    maestro_ctx_t  ctx;

    load_ok(&agent, "memory", NULL);
    mst_test_ctx_init(&ctx);

    assert_int_equal(run_agent(&agent, &ctx, "{}"), MAESTRO_OK);
    assert_int_equal(json_integer_value(json_object_get(ctx.output,
                                                        "count")), 1);
    assert_int_equal(run_agent(&agent, &ctx, "{}"), MAESTRO_OK);
    assert_int_equal(run_agent(&agent, &ctx, "{}"), MAESTRO_OK);
    assert_int_equal(json_integer_value(json_object_get(ctx.output,
                                                        "count")), 3);
    assert_string_equal(json_string_value(json_object_get(ctx.memory,
                                                          "count")), "3");

    mst_agent_unload(&agent);

    load_ok(&agent, "noop", NULL);
    assert_int_equal(run_agent(&agent, &ctx, "{}"), MAESTRO_OK);
    assert_true(json_is_object(ctx.output));
    assert_int_equal(json_object_size(ctx.output), 0);

    mst_test_ctx_free(&ctx);
    mst_agent_unload(&agent);
}


/* the crash fixture really kills its process (in a child), and survives
   once crash_times is exhausted */
static void
test_fixture_crash(void **state)
{
    int            status;
    pid_t          pid;
    mst_agent_t    agent;
    maestro_ctx_t  ctx;

    load_ok(&agent, "crash", NULL);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        /* no sanitizer report: die of the signal itself */
        signal(SIGSEGV, SIG_DFL);
        mst_test_ctx_init(&ctx);
        run_agent(&agent, &ctx, "{\"attempt\": 1, \"config\": "
                  "{\"crash_times\": 1}}");
        _exit(0);
    }

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);

    mst_test_ctx_init(&ctx);
    assert_int_equal(run_agent(&agent, &ctx, "{\"attempt\": 2, \"config\": "
                               "{\"crash_times\": 1}}"), MAESTRO_OK);
    assert_true(json_is_true(json_object_get(ctx.output, "survived")));
    mst_test_ctx_free(&ctx);

    mst_agent_unload(&agent);
}


/* ---- the example plugin of maestro_plugin.h ---------------------------- */


#define T_HEADER        "plugins/include/maestro_plugin.h"
#define T_EXAMPLE_BEGIN "#if 0   /* MAESTRO_PLUGIN_EXAMPLE_BEGIN */\n"
#define T_EXAMPLE_END   "#endif  /* MAESTRO_PLUGIN_EXAMPLE_END */"
#define T_BUILD_LINE    "cc -shared -fPIC"


/* the header's text (malloc()ed), read from the source tree */
static char *
t_header(void)
{
    long   n;
    char  *text;
    FILE  *f;

    f = fopen(T_HEADER, "r");
    if (f == NULL) {
        fail_msg("%s: cannot open (run the tests from the repository)",
                 T_HEADER);
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    text = calloc(1, (size_t) n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t) n, f), (size_t) n);
    fclose(f);

    return text;
}


/*
 * The header's build line ("cc -shared -fPIC ... -ljansson", continued
 * with a backslash), as one shell command: "<maestro>" becomes root.
 */
static void
t_build_line(const char *header, const char *root, char *cmd, size_t size)
{
    size_t       n;
    const char  *p, *end, *m;

    p = strstr(header, T_BUILD_LINE);
    assert_non_null(p);
    end = strstr(p, "-ljansson");
    assert_non_null(end);
    end += sizeof("-ljansson") - 1;

    for (n = 0; p < end && n + 1 < size; p++) {
        if (*p == '\\') {
            continue;
        }

        if (*p == '\n') {
            /* the comment's " * " on the next line */
            while (p[1] == ' ' || p[1] == '*') {
                p++;
            }
            cmd[n++] = ' ';
            continue;
        }

        m = "<maestro>";
        if (strncmp(p, m, strlen(m)) == 0) {
            n += snprintf(cmd + n, size - n, "%s", root);
            p += strlen(m) - 1;
            continue;
        }

        cmd[n++] = *p;
    }

    cmd[n] = '\0';
    assert_true(n + 1 < size);
}


static int
t_hello_llm(json_t *request, void *arg, const char **model,
    const char **content)
{
    *model = "test-model";
    *content = "Hello there, streamed in pieces.";

    return MAESTRO_OK;
}


/*
 * The example in the header builds with the header's own build line, is
 * accepted by the loader, and does what its comment says.
 */
static void
test_header_example(void **state)
{
    int                  rc;
    char                *header, *dir, *tokens, root[256], path[512];
    char                 cmd[1024], shell[1600], err[MST_ERRLEN];
    FILE                *f;
    void                *handle, *sym;
    json_t              *req, *msg;
    const char          *begin, *end;
    mst_agent_t          agent;
    maestro_ctx_t        ctx;
    maestro_host_t       host;
    maestro_plugin_entry_pt  entry;

    header = t_header();

    begin = strstr(header, T_EXAMPLE_BEGIN);
    end = strstr(header, T_EXAMPLE_END);
    assert_non_null(begin);
    assert_non_null(end);
    begin += sizeof(T_EXAMPLE_BEGIN) - 1;
    assert_true(end > begin);

    dir = mst_test_tmpdir();
    snprintf(path, sizeof(path), "%s/hello.c", dir);

    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(begin, 1, (size_t) (end - begin), f),
                     (size_t) (end - begin));
    fclose(f);

    assert_non_null(getcwd(root, sizeof(root)));
    t_build_line(header, root, cmd, sizeof(cmd));

    /* in the plugin's directory, as a plugin writer would; warnings are
       errors */
    snprintf(shell, sizeof(shell), "cd '%s' && %s -Wall -Werror", dir, cmd);
    if (system(shell) != 0) {
        fail_msg("the header's example does not build: %s", shell);
    }

    snprintf(path, sizeof(path), "%s/hello.so", dir);

    /* the entry point refuses another ABI, as the header tells */
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(handle);
    sym = dlsym(handle, MAESTRO_PLUGIN_ENTRY);
    assert_non_null(sym);
    memcpy(&entry, &sym, sizeof(entry));
    assert_null(entry(MAESTRO_PLUGIN_ABI_VERSION + 1));
    assert_non_null(entry(MAESTRO_PLUGIN_ABI_VERSION));
    dlclose(handle);

    /* its init() checks its configuration */
    host = mst_test_host();
    err[0] = '\0';
    rc = mst_agent_load(&agent, "hello", path, "{\"greeting\": 3}", &host,
                        err, sizeof(err));
    assert_int_equal(rc, MST_ERROR);
    assert_non_null(strstr(err, "\"greeting\" must be a string"));

    rc = mst_agent_load(&agent, "hello", path,
                        "{\"greeting\": \"Be brief.\"}", &host, err,
                        sizeof(err));
    if (rc != MST_OK) {
        fail_msg("load the header's example: %s", err);
    }
    assert_string_equal(agent.plugin->name, "hello");

    /* run(): the LLM asked with the greeting and the prompt, the answer
       streamed as tokens and set as the output */
    mst_test_ctx_init(&ctx);
    ctx.llm = t_hello_llm;

    rc = run_agent(&agent, &ctx, "{\"node\": \"h\", \"agent\": \"hello\", "
                   "\"config\": {}, \"state\": {\"prompt\": \"hi\"}, "
                   "\"attempt\": 1, \"workflow_id\": \"wf_x\"}");
    assert_int_equal(rc, MAESTRO_OK);

    assert_int_equal(json_array_size(ctx.requests), 1);
    req = json_array_get(ctx.requests, 0);
    msg = json_array_get(json_object_get(req, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "Be brief.");
    msg = json_array_get(json_object_get(req, "messages"), 1);
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "hi");

    tokens = mst_test_ctx_tokens(&ctx);
    assert_string_equal(tokens, "Hello there, streamed in pieces.");
    assert_true(json_array_size(ctx.tokens) > 1);
    free(tokens);

    assert_string_equal(json_string_value(json_object_get(ctx.output,
                                                          "content")),
                        "Hello there, streamed in pieces.");
    assert_int_equal(json_array_size(ctx.progress), 2);

    /* no prompt: a permanent failure, no LLM call */
    assert_int_equal(run_agent(&agent, &ctx, "{\"state\": {}}"),
                     MAESTRO_EPERMANENT);
    assert_int_equal(json_array_size(ctx.requests), 1);

    mst_test_ctx_free(&ctx);
    mst_agent_unload(&agent);
    mst_test_rmdir(dir);
    free(header);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_echo_loads_and_describes),
        cmocka_unit_test(test_echo_runs),
        cmocka_unit_test(test_refuse_missing_file),
        cmocka_unit_test(test_refuse_not_elf),
        cmocka_unit_test(test_refuse_no_entry),
        cmocka_unit_test(test_refuse_null_entry),
        cmocka_unit_test(test_refuse_wrong_abi),
        cmocka_unit_test(test_refuse_no_run),
        cmocka_unit_test(test_refuse_bad_capabilities),
        cmocka_unit_test(test_refuse_bad_config),
        cmocka_unit_test(test_refuse_init_failure),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_two_agents_one_plugin),
        cmocka_unit_test(test_fixture_fail),
        cmocka_unit_test(test_fixture_sleep),
        cmocka_unit_test(test_fixture_memory_and_noop),
        cmocka_unit_test(test_fixture_crash),
        cmocka_unit_test(test_header_example),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
