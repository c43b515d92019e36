/*
 * Copyright (C) Maestro authors
 */

/*
 * Configuration errors fail `nginx -t` with one [emerg] line: the exact
 * message, then "in FILE:LINE" of the directive at fault (or of the "}"
 * that closes the http block, for what is checked once the block is read:
 * plugins, workflow graphs, names that refer to each other). One table
 * row per error the module can report at configuration time; the good
 * configurations pass.
 */

import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
    nginxT, buildConf, mkPrefix, FIXTURES, BUILD, REPO, NGINX, chain, ngxQuote,
    startMaestro, submit, waitStatus, api,
} from './lib/harness.mjs';


/* the line of the "}" that closes the http block (init_main_conf) */
const HTTP_END = Symbol('http }');

/* MST_ERRLEN (core/mst_common.h): core messages are cut to 255 bytes */
const core = (s) => Buffer.from(s).subarray(0, 255).toString();

const ABI = 1;          /* MAESTRO_PLUGIN_ABI_VERSION */
const NOFILE = 'No such file or directory';
const ECHO = `${FIXTURES}/echo.so`;

/* the message of a maestro_agent whose plugin does not load */
const agentErr = (name, file, text) =>
    `maestro_agent "${name}": ${core(`plugin "${file}": ${text}`)}`;

/* the message of a maestro_workflow whose graph file does not load */
const workflowErr = (c, name, text) =>
    `maestro_workflow "${name}" in "${c.workflow(name)}": ${core(text)}`;

/* a graph of the echo agent with the given parts replaced */
const graph = (parts) => ({ name: 'g', nodes: { a: { agent: 'echo' } },
                            edges: [], ...parts });
const edge = (e) => graph({ edges: [{ from: 'a', to: '$end', ...e }] });
const when = (w) => edge({ when: w });

const repeat = (n, f) => Array.from({ length: n }, (_, i) => f(i));


/*
 * Plugins that no fixture is: compiled once from one source, a -D per
 * variant. Their directory is known after the before() hook.
 */
const DYN = {
    noname: ['-DT_NAME=""'],
    caps_object: ['-DT_CAPS="{}"'],
    caps_item: ['-DT_CAPS="[1]"'],
    init_quiet: ['-DT_INIT=1'],
};
let dynDir;

const DYN_SRC = `
#include <maestro_plugin.h>
#ifndef T_NAME
#define T_NAME "dyn"
#endif
#ifndef T_CAPS
#define T_CAPS "[]"
#endif
static int t_run(maestro_ctx_t *c, const maestro_host_t *h, void *a,
    const char *i) { return MAESTRO_ERROR; }
#ifdef T_INIT
static int t_init(const maestro_host_t *h, const char *c, void **a,
    char *e, size_t l) { return MAESTRO_EINVAL; }
#else
#define t_init NULL
#endif
static const maestro_plugin_t t = { MAESTRO_PLUGIN_ABI_VERSION, T_NAME,
    "1.0.0", "config.test.mjs", T_CAPS, t_init, t_run, NULL };
MAESTRO_EXPORT const maestro_plugin_t *
maestro_plugin_entry(uint32_t v) { return &t; }
`;

function buildDynPlugins() {
    const dir = mkPrefix('maestro-dyn');
    const src = path.join(dir, 'dyn.c');
    fs.writeFileSync(src, DYN_SRC);
    for (const [name, defs] of Object.entries(DYN)) {
        const r = spawnSync(process.env.CC || 'cc',
            ['-shared', '-fPIC', '-fvisibility=hidden',
             '-I', path.join(REPO, 'plugins/include'), ...defs,
             '-o', path.join(dir, `${name}.so`), src],
            { encoding: 'utf8' });
        assert.equal(r.status, 0, `cc ${name}.so: ${r.stderr || r.error}`);
    }
    return dir;
}


/* a file the row writes into its prefix before nginx -t runs */
function withFile(name, content, opts) {
    return (ctx) => {
        const file = path.join(ctx.prefix, name);
        if (typeof content === 'function') {
            content(file);
        } else {
            fs.writeFileSync(file, content);
        }
        return buildConf(typeof opts === 'function' ? opts(file) : opts,
                         ctx.prefix, ctx.port);
    };
}


/*
 * name: what is wrong; conf: buildConf() options (or a function of
 * ctx, as nginxT() takes); at: a piece of the line at fault (its last
 * occurrence), HTTP_END, or null for a message without "in FILE:LINE";
 * emerg: the message, a string or a function of {prefix, workflow(name)}.
 */
const ROWS = [

    /* maestro_agent: the directive */

    { name: 'maestro_agent: an invalid name',
      conf: { http: `maestro_agent 'bad name' plugin=${ECHO};` },
      at: "maestro_agent 'bad name'",
      emerg: 'invalid agent name "bad name"' },

    { name: 'maestro_agent: an unknown parameter',
      conf: { agents: { odd: `plugin=${ECHO} colour=blue` } },
      at: 'maestro_agent odd ',
      emerg: 'invalid parameter "colour=blue"' },

    { name: 'maestro_agent without plugin=',
      conf: { agents: { nothing: ngxQuote('config_json={}') } },
      at: 'maestro_agent nothing ',
      emerg: 'maestro_agent "nothing" needs plugin=FILE.so' },

    { name: 'maestro_agent: a config= file that does not exist',
      conf: { agents: { cfg: `plugin=${ECHO} config=/nonexistent/a.json` } },
      at: 'maestro_agent cfg ',
      emerg: `open() "/nonexistent/a.json" failed (2: ${NOFILE})` },

    { name: 'maestro_agent: a config= that is a directory',
      conf: { agents: { cfg: `plugin=${ECHO} config=/tmp` } },
      at: 'maestro_agent cfg ',
      emerg: 'read() "/tmp" failed (21: Is a directory)' },

    { name: 'maestro_agent: a config= file over 16M',
      conf: withFile('big.json', (f) => {
          fs.writeFileSync(f, '');
          fs.truncateSync(f, 16 * 1024 * 1024 + 1);  /* sparse */
      }, (f) => ({ agents: { cfg: `plugin=${ECHO} config=${f}` } })),
      at: 'maestro_agent cfg ',
      emerg: (c) => `"${c.prefix}/big.json" cannot be read or is larger `
          + 'than 16M' },

    { name: 'maestro_agent: bad JSON in a config= file: file and line',
      conf: withFile('agent.json', '{\n  "model": "x",\n  oops\n}\n',
          (f) => ({ agents: { echo_cfg: `plugin=${ECHO} config=${f}` } })),
      at: 'maestro_agent echo_cfg ',
      emerg: (c) => `maestro_agent "echo_cfg": bad JSON in `
          + `"${c.prefix}/agent.json" line 3 column 6: string or '}' `
          + "expected near 'oops'" },

    { name: 'maestro_agent: a config= file that is not an object',
      conf: withFile('list.json', '[1, 2]\n',
          (f) => ({ agents: { echo_cfg: `plugin=${ECHO} config=${f}` } })),
      at: 'maestro_agent echo_cfg ',
      emerg: (c) => `maestro_agent "echo_cfg": "${c.prefix}/list.json" `
          + 'is not a JSON object' },

    { name: 'maestro_agent: the same name twice',
      conf: { http: `maestro_agent echo plugin=${ECHO};` },
      at: HTTP_END,
      emerg: 'duplicate maestro_agent "echo"' },

    /* maestro_agent: the plugin, loaded when the http block is read */

    { name: 'a plugin file that does not exist',
      conf: { agents: { ghost: 'plugin=/nonexistent/dir/ghost.so' } },
      at: HTTP_END,
      emerg: agentErr('ghost', '/nonexistent/dir/ghost.so', 'cannot open: '
          + '/nonexistent/dir/ghost.so: cannot open shared object file: '
          + NOFILE) },

    { name: 'a relative plugin file missing from maestro_plugins_dir',
      conf: { agents: { ghost: 'plugin=ghost2.so' } },
      at: HTTP_END,
      emerg: agentErr('ghost', `${BUILD}/plugins/ghost2.so`, 'cannot open: '
          + `${BUILD}/plugins/ghost2.so: cannot open shared object file: `
          + NOFILE) },

    { name: 'a plugin without the entry symbol',
      conf: { agents: { noentry: `plugin=${FIXTURES}/no_entry.so` } },
      at: HTTP_END,
      emerg: agentErr('noentry', `${FIXTURES}/no_entry.so`,
          'no maestro_plugin_entry symbol (not a Maestro plugin, or not '
          + 'exported with MAESTRO_EXPORT)') },

    { name: 'a plugin whose entry returns NULL',
      conf: { agents: { nullentry: `plugin=${FIXTURES}/null_entry.so` } },
      at: HTTP_END,
      emerg: agentErr('nullentry', `${FIXTURES}/null_entry.so`,
          'maestro_plugin_entry() returned NULL: the plugin cannot work '
          + `with host ABI version ${ABI}`) },

    { name: 'a plugin with the wrong ABI version',
      conf: { agents: { wrong: `plugin=${FIXTURES}/wrong_abi.so` } },
      at: HTTP_END,
      emerg: agentErr('wrong', `${FIXTURES}/wrong_abi.so`,
          `plugin ABI version 999, host speaks ${ABI}`) },

    { name: 'a plugin whose descriptor has no name',
      conf: () => ({ agents: { anon: `plugin=${dynDir}/noname.so` } }),
      at: HTTP_END,
      emerg: () => agentErr('anon', `${dynDir}/noname.so`,
          'the descriptor has no name') },

    { name: 'a plugin without run()',
      conf: { agents: { norun: `plugin=${FIXTURES}/no_run.so` } },
      at: HTTP_END,
      emerg: agentErr('norun', `${FIXTURES}/no_run.so`,
          'plugin "no_run" has no run()') },

    { name: 'a plugin whose capabilities are not JSON',
      conf: { agents: { caps: `plugin=${FIXTURES}/bad_caps.so` } },
      at: HTTP_END,
      emerg: agentErr('caps', `${FIXTURES}/bad_caps.so`,
          "bad capabilities JSON: ']' expected near end of file (line 1, "
          + 'column 9)') },

    { name: 'a plugin whose capabilities are not an array',
      conf: () => ({ agents: { caps: `plugin=${dynDir}/caps_object.so` } }),
      at: HTTP_END,
      emerg: () => agentErr('caps', `${dynDir}/caps_object.so`,
          'bad capabilities JSON: expected an array of strings') },

    { name: 'a plugin whose capabilities hold a number',
      conf: () => ({ agents: { caps: `plugin=${dynDir}/caps_item.so` } }),
      at: HTTP_END,
      emerg: () => agentErr('caps', `${dynDir}/caps_item.so`,
          'bad capabilities JSON: item 0 is not a string') },

    { name: 'bad JSON in config_json=',
      conf: { agents: { echo_bad: `plugin=${ECHO} `
                                  + ngxQuote('config_json={"a": 1,,}') } },
      at: HTTP_END,
      emerg: agentErr('echo_bad', ECHO, 'agent "echo_bad": config is not '
          + "valid JSON: string or '}' expected near ',' (line 1, "
          + 'column 9)') },

    { name: 'config_json= that is not an object',
      conf: { agents: { echo_list: `plugin=${ECHO} config_json=[1]` } },
      at: HTTP_END,
      emerg: agentErr('echo_list', ECHO, 'agent "echo_list": config is not '
          + 'a JSON object') },

    { name: 'a plugin whose init() fails with a message',
      conf: { agents: { badinit: `plugin=${FIXTURES}/bad_init.so` } },
      at: HTTP_END,
      emerg: agentErr('badinit', `${FIXTURES}/bad_init.so`,
          'agent "badinit": init failed: bad_init: refusing '
          + 'configuration') },

    { name: 'a plugin whose init() fails without one',
      conf: () => ({ agents: { quiet: `plugin=${dynDir}/init_quiet.so` } }),
      at: HTTP_END,
      emerg: () => agentErr('quiet', `${dynDir}/init_quiet.so`,
          'agent "quiet": init failed: invalid argument') },

    /* maestro_workflow and maestro_default_workflow */

    { name: 'maestro_workflow: the same name twice',
      conf: { http: 'maestro_workflow default '
                    + `${REPO}/conf/workflows/default.json;` },
      at: 'maestro_workflow default ',
      emerg: '"maestro_workflow" directive is duplicate' },

    { name: 'a workflow file that does not exist',
      conf: { workflowFiles: { absent: '/nonexistent/absent.json' } },
      at: HTTP_END,
      emerg: 'maestro_workflow "absent" in "/nonexistent/absent.json": '
          + `cannot open: ${NOFILE}` },

    { name: 'a workflow file that is a directory',
      conf: { workflowFiles: { dir: '/tmp' } },
      at: HTTP_END,
      emerg: 'maestro_workflow "dir" in "/tmp": cannot read: Is a directory' },

    { name: 'bad JSON in a workflow file: file and line',
      conf: { workflows: { broken: '{\n  "name": "broken",\n  "entry": "a",'
          + '\n  "nodes": {\n    "a": { "agent": "echo", }\n  }\n}\n' } },
      at: HTTP_END,
      emerg: (c) => workflowErr(c, 'broken', "line 5 column 29: string or "
          + "'}' expected near '}'") },

    { name: 'maestro_default_workflow naming an unknown workflow',
      conf: { http: 'maestro_default_workflow nope;' },
      at: HTTP_END,
      emerg: 'maestro_default_workflow "nope" is not defined by '
          + 'maestro_workflow' },

    /* workflow graphs (mst_graph.c), checked when the http block is read */

    ...[
        ['a graph that is not an object', '[1]',
         'graph definition must be a JSON object'],
        ['an empty name', graph({ name: '' }),
         '"name" must be a non-empty string'],
        ['max_steps 0', graph({ max_steps: 0 }),
         '"max_steps" must be an integer in 1..100000'],
        ['no nodes', graph({ nodes: {} }),
         '"nodes" must be a non-empty object'],
        ['a node name with a space', graph({ nodes: { 'a b': {
            agent: 'echo' } } }),
         'node "a b": invalid name (1 to 64 characters of A-Z a-z 0-9 _ -)'],
        ['a node that is not an object', graph({ nodes: { a: 5 } }),
         'node "a": must be an object'],
        ['a node without an agent', graph({ nodes: { a: {} } }),
         'node "a": "agent" must be a non-empty string'],
        ['an unknown agent', chain(['a', 'echo'], ['b', 'no_such_agent']),
         'node "b": unknown agent "no_such_agent"'],
        ['a config that is not an object', graph({ nodes: { a: {
            agent: 'echo', config: 5 } } }),
         'node "a": "config" must be an object'],
        ['a foreach that is not a string', graph({ nodes: { a: {
            agent: 'echo', foreach: 5 } } }),
         'node "a": "foreach" must be a string path'],
        ['timeout_ms 0', graph({ nodes: { a: { agent: 'echo',
                                              timeout_ms: 0 } } }),
         'node "a": "timeout_ms" must be an integer in 1..3600000'],
        ['a retry that is not an object', graph({ nodes: { a: {
            agent: 'echo', retry: 5 } } }),
         'node "a": "retry" must be an object'],
        ['retry.max 11', graph({ nodes: { a: { agent: 'echo',
                                              retry: { max: 11 } } } }),
         'node "a": "retry.max" must be an integer in 0..10'],
        ['retry.backoff_ms -1', graph({ nodes: { a: { agent: 'echo',
            retry: { backoff_ms: -1 } } } }),
         'node "a": "retry.backoff_ms" must be an integer in 0..600000'],
        ['edges that are not an array', graph({ edges: {} }),
         '"edges" must be an array'],
        ['an edge that is not an object', graph({ edges: [5] }),
         'edge #0: must be an object'],
        ['an edge without from', graph({ edges: [{ to: '$end' }] }),
         'edge #0 (? -> $end): "from" must be a string'],
        ['an edge without to', graph({ edges: [{ from: 'a' }] }),
         'edge #0 (a -> ?): "to" must be a string'],
        ['an edge from an unknown node', graph({ edges: [{ from: 'x',
                                                          to: '$end' }] }),
         'edge #0 (x -> $end): unknown node "x"'],
        ['an edge to an unknown node', graph({ edges: [{ from: 'a',
                                                        to: 'y' }] }),
         'edge #0 (a -> y): unknown node "y"'],
        ['when and else together', edge({ when: { path: 'x', exists: true },
                                          else: true }),
         'edge #0 (a -> $end): "when" and "else" cannot be used together'],
        ['else false', edge({ else: false }),
         'edge #0 (a -> $end): "else" must be true'],
        ['a when that is not an object', when(5),
         'edge #0 (a -> $end): "when" must be an object'],
        ['a when with an unknown key', when({ path: 'x', like: 'y' }),
         'edge #0 (a -> $end): "when": unknown key "like"'],
        ['a when without a path', when({ equals: 1 }),
         'edge #0 (a -> $end): "when" needs "path" (a non-empty string)'],
        ['a when with two tests', when({ path: 'x', equals: 1, gt: 2 }),
         'edge #0 (a -> $end): "when" needs exactly one of equals, '
         + 'not_equals, gt, lt, matches, exists'],
        ['gt with a string', when({ path: 'x', gt: 'a' }),
         'edge #0 (a -> $end): "gt" must be a number'],
        ['exists with a number', when({ path: 'x', exists: 1 }),
         'edge #0 (a -> $end): "exists" must be true or false'],
        ['matches with a number', when({ path: 'x', matches: 1 }),
         'edge #0 (a -> $end): "matches" must be a string'],
        ['matches with a bad regex', when({ path: 'x', matches: '([' }),
         'edge #0 (a -> $end): bad regex "([": missing terminating ] for '
         + 'character class at offset 2'],
        ['an entry that is not a string', graph({ entry: 5 }),
         '"entry" must be a string'],
        ['an entry that names no node', graph({ entry: 'zz' }),
         'entry "zz": unknown node'],
        ['two nodes without an entry', graph({ nodes: {
            a: { agent: 'echo' }, b: { agent: 'echo' } } }),
         '"entry" is required: 2 nodes have no incoming edge'],
        ['a cycle with no exit', graph({
            entry: 'a',
            nodes: { a: { agent: 'echo' }, b: { agent: 'echo' },
                     c: { agent: 'echo' } },
            edges: [{ from: 'a', to: 'b' }, { from: 'b', to: 'c' },
                    { from: 'c', to: 'b' }] }),
         'cycle with no exit: b -> c -> b'],
    ].map(([what, g, text]) => ({
        name: `a workflow graph: ${what}`,
        conf: { workflows: { g } },
        at: HTTP_END,
        emerg: (c) => workflowErr(c, 'g', text),
    })),

    /* a configured graph over the bounds (mst_limits.c); the default
       workflow the harness adds has 3 nodes, 4 edges, 2 out-edges at most */

    ...[
        ['maestro_graph_max_nodes 3', chain(['a', 'echo'], ['b', 'echo'],
                                            ['c', 'echo'], ['d', 'echo']),
         'the graph has 4 nodes, more than 3 (maestro_graph_max_nodes)'],
        ['maestro_graph_max_edges 4', chain(['a', 'echo'], ['b', 'echo'],
                                            ['c', 'echo'], ['d', 'echo'],
                                            ['e', 'echo']),
         'the graph has 5 edges, more than 4 (maestro_graph_max_edges)'],
        ['maestro_graph_max_fanout 2', graph({
            nodes: { a: { agent: 'echo' }, b: { agent: 'echo' },
                     c: { agent: 'echo' }, d: { agent: 'echo' } },
            entry: 'a',
            edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'c' },
                    { from: 'a', to: 'd' }] }),
         'node "a" has 3 out-edges, more than 2 '
         + '(maestro_graph_max_fanout)'],
        ['maestro_graph_max_steps 60', graph({ max_steps: 61 }),
         '"max_steps" is 61, more than 60 (maestro_graph_max_steps)'],
    ].map(([directive, g, text]) => ({
        name: `a workflow graph over ${directive}`,
        conf: { http: `${directive};`, workflows: { g } },
        at: HTTP_END,
        emerg: (c) => workflowErr(c, 'g', text),
    })),

    /* maestro_api */

    { name: 'maestro_api twice in a location',
      conf: { locations: ['        location /api/ {',
                          '            maestro_api;',
                          '            maestro_api;',
                          '        }'] },
      at: 'maestro_api;',
      emerg: '"maestro_api" directive is duplicate' },

    /* the guard */

    { name: 'maestro_guard_deny: a bad pattern',
      conf: { http: 'maestro_guard_deny "(broken";' },
      at: 'maestro_guard_deny',
      emerg: 'maestro_guard_deny: pattern "(broken": missing closing '
          + 'parenthesis at offset 7' },

    { name: 'maestro_guard_allow: a bad pattern',
      conf: { http: 'maestro_guard_allow "a{2,1}";' },
      at: 'maestro_guard_allow',
      emerg: 'maestro_guard_allow: pattern "a{2,1}": numbers out of order '
          + 'in {} quantifier at offset 5' },

    { name: 'maestro_guard_deny: more than 64 patterns',
      conf: { http: `maestro_guard_deny ${repeat(65, (i) => `p${i}`)
          .join(' ')};` },
      at: 'maestro_guard_deny',
      emerg: 'maestro_guard_deny: more than 64 rules' },

    /* CORS */

    { name: 'maestro_cors_origin: no scheme',
      conf: { http: 'maestro_cors_origin app.example;' },
      at: 'maestro_cors_origin',
      emerg: 'maestro_cors_origin: invalid origin "app.example": an origin '
          + 'is scheme://host[:port]' },

    { name: 'maestro_cors_origin: a path',
      conf: { http: 'maestro_cors_origin https://app.example/;' },
      at: 'maestro_cors_origin',
      emerg: 'maestro_cors_origin: invalid origin "https://app.example/": '
          + 'an origin has no path, not even "/"' },

    { name: 'maestro_cors_origin: a bad port',
      conf: { server: 'maestro_cors_origin https://a.example:70000;' },
      at: 'maestro_cors_origin',
      emerg: 'maestro_cors_origin: invalid origin "https://a.example:70000": '
          + 'a port is 1..65535' },

    { name: 'maestro_cors_origin: no host',
      conf: { http: 'maestro_cors_origin https://;' },
      at: 'maestro_cors_origin',
      emerg: 'maestro_cors_origin: invalid origin "https://": no host name' },

    { name: 'maestro_cors_origin: null',
      conf: { http: 'maestro_cors_origin null;' },
      at: 'maestro_cors_origin',
      emerg: 'maestro_cors_origin: invalid origin "null": "null" is the '
          + 'origin of any sandboxed page and cannot be allowed' },

    { name: 'maestro_cors_origin: * with others',
      conf: { http: ['maestro_cors_origin https://a.example;',
                     'maestro_cors_origin *;'] },
      at: 'maestro_cors_origin *',
      emerg: 'maestro_cors_origin: "*" allows every origin and cannot be '
          + 'listed with others' },

    { name: 'maestro_cors_origin: no value',
      conf: { http: 'maestro_cors_origin;' },
      at: 'maestro_cors_origin',
      emerg: 'invalid number of arguments in "maestro_cors_origin" '
          + 'directive' },

    { name: 'maestro_guard_redact: neither on nor off',
      conf: { http: 'maestro_guard_redact maybe;' },
      at: 'maestro_guard_redact',
      emerg: '"maestro_guard_redact" directive must be "on" or "off"' },

    /* intents and routes */

    { name: 'maestro_intent: a bad pattern',
      conf: { http: 'maestro_intent broken "(oops";' },
      at: 'maestro_intent broken',
      emerg: 'intent "broken": pattern "(oops": missing closing '
          + 'parenthesis at offset 5' },

    { name: 'maestro_intent: more than 64 patterns',
      conf: { http: `maestro_intent many ${repeat(65, (i) => `p${i}`)
          .join(' ')};` },
      at: 'maestro_intent many',
      emerg: 'intent "many": more than 64 patterns' },

    { name: 'maestro_intent_route to an unknown workflow',
      conf: { http: ['maestro_intent x "y";',
                     'maestro_intent_route x nowhere;'] },
      at: HTTP_END,
      emerg: 'maestro_intent_route: no workflow named "nowhere" '
          + '(maestro_workflow)' },

    /* maestro_llm_provider */

    { name: 'maestro_llm_provider: not an http(s) URL',
      conf: { http: 'maestro_llm_provider ftp://127.0.0.1/v1;' },
      at: 'maestro_llm_provider',
      emerg: 'invalid provider URL "ftp://127.0.0.1/v1"' },

    { name: 'maestro_llm_provider: more than 16',
      conf: { http: repeat(17, (i) => 'maestro_llm_provider '
                                      + `http://127.0.0.1:${i + 1}/v1;`) },
      at: 'maestro_llm_provider http://127.0.0.1:17/v1',
      emerg: 'more than 16 maestro_llm_provider' },

    ...['priority=high', 'weight=0', 'weight=1001', 'timeout=soon',
        'retries=11', 'retries=-1', 'client=openssl', 'ca=', 'colour=blue',
    ].map((p) => ({
        name: `maestro_llm_provider: ${p}`,
        conf: { http: `maestro_llm_provider http://127.0.0.1:1/v1 ${p};` },
        at: 'maestro_llm_provider',
        emerg: `invalid parameter "${p}"`,
    })),

    { name: 'maestro_llm_provider: api_key_env= of an unset variable',
      conf: { http: 'maestro_llm_provider http://127.0.0.1:1/v1 '
                    + 'api_key_env=MST_TEST_UNSET_VARIABLE;' },
      at: 'maestro_llm_provider',
      emerg: 'environment variable "MST_TEST_UNSET_VARIABLE" is not set' },

    { name: 'maestro_llm_provider: api_key_file= that does not exist',
      conf: { http: 'maestro_llm_provider http://127.0.0.1:1/v1 '
                    + 'api_key_file=/nonexistent/key;' },
      at: 'maestro_llm_provider',
      emerg: `open() "/nonexistent/key" failed (2: ${NOFILE})` },

    { name: 'maestro_llm_provider: a ca= file that cannot be read',
      conf: { http: 'maestro_llm_provider https://127.0.0.1:1/v1 '
                    + 'ca=/nonexistent.pem;' },
      at: 'maestro_llm_provider',
      emerg: `cannot read ca file "/nonexistent.pem" (2: ${NOFILE})` },

    /* nginx's own OpenSSL message, logged without a file and line */
    { name: 'maestro_llm_provider: a ca= file with no certificate in it',
      conf: withFile('bad.pem', 'not a certificate\n', (f) => ({
          http: 'maestro_llm_provider https://127.0.0.1:1/v1 client=nginx '
                + `ca=${f};` })),
      at: null,
      emerg: (c) => `SSL_CTX_load_verify_locations("${c.prefix}/bad.pem") `
          + 'failed (SSL: error:05800088:x509 certificate routines::no '
          + 'certificate or crl found)' },

    /* maestro_llm_fallback and maestro_model_tier */

    { name: 'maestro_llm_fallback: the same model twice',
      conf: { http: ['maestro_llm_fallback a b;', 'maestro_llm_fallback a c;'] },
      at: 'maestro_llm_fallback a c',
      emerg: '"maestro_llm_fallback" directive is duplicate' },

    { name: 'maestro_llm_fallback: more than 16',
      conf: { http: repeat(17, (i) => `maestro_llm_fallback m${i} x;`) },
      at: 'maestro_llm_fallback m16 ',
      emerg: '"maestro_llm_fallback" directive is declared too often (at '
          + 'most 16 models)' },

    { name: 'maestro_llm_fallback: an unknown failure class',
      conf: { http: 'maestro_llm_fallback a b on=429,4xx;' },
      at: 'maestro_llm_fallback',
      emerg: 'unknown failure "4xx" in "on=429,4xx": use connect, timeout, '
          + '429, 5xx, malformed or all' },

    { name: 'maestro_llm_fallback: an empty on=',
      conf: { http: 'maestro_llm_fallback a b on=;' },
      at: 'maestro_llm_fallback',
      emerg: '"maestro_llm_fallback" directive has an empty on=' },

    { name: 'maestro_llm_fallback: no fallback',
      conf: { http: 'maestro_llm_fallback a on=5xx;' },
      at: 'maestro_llm_fallback',
      emerg: '"maestro_llm_fallback" directive needs a model and at least '
          + 'one fallback' },

    { name: 'maestro_llm_fallback: more than 8 fallbacks',
      conf: { http: `maestro_llm_fallback a ${repeat(9, (i) => `b${i}`)
          .join(' ')};` },
      at: 'maestro_llm_fallback',
      emerg: '"maestro_llm_fallback" directive has too many models (at '
          + 'most 8 after the first)' },

    { name: 'maestro_llm_fallback: an empty model name',
      conf: { http: 'maestro_llm_fallback a "";' },
      at: 'maestro_llm_fallback',
      emerg: '"maestro_llm_fallback" directive needs model names' },

    { name: 'maestro_model_tier: an unknown tier',
      conf: { http: 'maestro_model_tier hard m;' },
      at: 'maestro_model_tier',
      emerg: 'invalid tier "hard": use simple, moderate or complex' },

    { name: 'maestro_model_tier: a tier twice',
      conf: { http: ['maestro_model_tier simple a;',
                     'maestro_model_tier simple b;'] },
      at: 'maestro_model_tier simple b',
      emerg: '"maestro_model_tier" directive is duplicate' },

    { name: 'maestro_model_tier: an empty model name',
      conf: { http: 'maestro_model_tier simple "";' },
      at: 'maestro_model_tier',
      emerg: '"maestro_model_tier" directive needs a model name' },

    /* maestro_llm_price */

    ...['input=cheap', 'output=-1', 'cost=1'].map((p) => ({
        name: `maestro_llm_price: ${p}`,
        conf: { http: `maestro_llm_price m ${p} output=1;` },
        at: 'maestro_llm_price',
        emerg: `invalid parameter "${p}"`,
    })),

    { name: 'maestro_llm_price: no output=',
      conf: { http: 'maestro_llm_price m input=1 input=2;' },
      at: 'maestro_llm_price',
      emerg: '"maestro_llm_price" directive needs input= and output= (USD '
          + 'per million tokens)' },

    /* maestro_llm_health_check and maestro_llm_breaker */

    { name: 'maestro_llm_health_check twice',
      conf: { http: 'maestro_llm_health_check interval=1s;' },
      at: 'maestro_llm_health_check interval=1s',
      emerg: '"maestro_llm_health_check" directive is duplicate' },

    ...['interval=10ms', 'timeout=0', 'every=1s'].map((p) => ({
        name: `maestro_llm_health_check ${p}`,
        conf: { healthCheck: p },
        at: 'maestro_llm_health_check',
        emerg: `invalid parameter "${p}"`,
    })),

    ...['failures=0', 'failures=many', 'recovery=later', 'after=1s'].map(
        (p) => ({
            name: `maestro_llm_breaker ${p}`,
            conf: { http: `maestro_llm_breaker ${p} recovery=1s;` },
            at: 'maestro_llm_breaker',
            emerg: `invalid parameter "${p}"`,
        })),

    /* checked when the http block is read */

    { name: 'maestro_lease_timeout under 1s',
      conf: { leaseTimeout: '500ms' },
      at: HTTP_END,
      emerg: '"maestro_lease_timeout" must be at least 1s' },

    { name: 'maestro_store_headroom not under maestro_store_size',
      conf: { storeSize: '8m', http: 'maestro_store_headroom 8m;' },
      at: HTTP_END,
      emerg: '"maestro_store_headroom" 8388608 must be less than '
             + '"maestro_store_size" 8388608' },

    /* directives parsed by nginx's own setters */

    /* (the harness writes maestro_store_size, _sync, _lease_timeout) */
    ...[
        ['maestro_max_body', 'lots', 'value'],
        ['maestro_store_size', 'lots', 'value', { storeSize: 'lots' }],
        ['maestro_store_headroom', 'lots', 'value'],
        ['maestro_queue_size', 'lots', 'number'],
        ['maestro_lease_timeout', 'soon', 'value', { leaseTimeout: 'soon' }],
        ['maestro_poll_interval', 'often', 'value'],
        ['maestro_flush_interval', 'often', 'value'],
        ['maestro_sse_heartbeat', 'often', 'value'],
        ['maestro_agent_log_size', 'lots', 'number'],
        ['maestro_ws_max_message', 'lots', 'value'],
        ['maestro_ws_ping', 'often', 'value'],
        ['maestro_event_retention', 'forever', 'value'],
        ['maestro_workflow_retention', 'forever', 'value'],
        ['maestro_workflow_retention_count', 'lots', 'number'],
        ['maestro_workflow_retention_user_count', '-1', 'number'],
        ['maestro_store_pressure_mark', 'high', 'number'],
        ['maestro_store_pressure_min_age', 'old', 'value'],
        ['maestro_graph_max_nodes', 'lots', 'value'],
        ['maestro_graph_max_edges', 'lots', 'value'],
        ['maestro_graph_max_fanout', 'lots', 'value'],
        ['maestro_graph_max_steps', 'lots', 'value'],
        ['maestro_state_max_size', 'lots', 'value'],
        ['maestro_prompt_max_size', 'lots', 'value'],
        ['maestro_context_max_size', 'lots', 'value'],
    ].map(([d, v, what, conf]) => ({
        name: `${d} ${v}`,
        conf: conf ?? { http: `${d} ${v};` },
        at: `${d} ${v}`,
        emerg: `"${d}" directive invalid ${what}`,
    })),

    { name: 'maestro_queue_size 0 (its bounds post)',
      conf: { http: 'maestro_queue_size 0;' },
      at: 'maestro_queue_size 0',
      emerg: 'value must be equal to or greater than 1' },

    ...['0', '100'].map((v) => ({
        name: `maestro_store_pressure_mark ${v} (its bounds post)`,
        conf: { http: `maestro_store_pressure_mark ${v};` },
        at: `maestro_store_pressure_mark ${v}`,
        emerg: 'value must be between 1 and 99',
    })),

    ...[
        ['maestro_store_sync', { storeSync: 'maybe' }],
        ['maestro_store_writemap', { http: 'maestro_store_writemap maybe;' }],
        ['maestro_store_pressure',
         { http: 'maestro_store_pressure maybe;' }],
    ].map(([d, conf]) => ({
        name: `${d} maybe`,
        conf,
        at: `${d} maybe`,
        emerg: `invalid value "maybe" in "${d}" directive, it must be "on" `
            + 'or "off"',
    })),

    { name: 'maestro_limit_zone size=1k (under 32k)',
      conf: { http: 'maestro_limit_zone name=z size=1k;' },
      at: 'maestro_limit_zone name=z size=1k',
      emerg: 'maestro_limit_zone "size=1k" is not a size of at least 32k' },

    { name: 'maestro_limit_zone size=lots',
      conf: { http: 'maestro_limit_zone name=z size=lots;' },
      at: 'maestro_limit_zone name=z size=lots',
      emerg: 'maestro_limit_zone "size=lots" is not a size of at least 32k' },

    { name: 'maestro_limit_zone with an unknown parameter',
      conf: { http: 'maestro_limit_zone name=z rate=1r/s;' },
      at: 'maestro_limit_zone name=z rate=1r/s',
      emerg: 'maestro_limit_zone: unknown parameter "rate=1r/s"' },

    { name: 'maestro_limit_zone without a name',
      conf: { http: 'maestro_limit_zone name= size=1m;' },
      at: 'maestro_limit_zone name= size=1m',
      emerg: 'maestro_limit_zone needs name= and size=' },

    { name: 'maestro_limit_zone twice with one name',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n'
                    + '    maestro_limit_zone name=z size=1m;' },
      at: 'maestro_limit_zone name=z size=1m',
      emerg: 'maestro_limit_zone "z" is duplicate' },

    { name: 'maestro_limit_zone with one argument',
      conf: { http: 'maestro_limit_zone name=z;' },
      at: 'maestro_limit_zone name=z',
      emerg: 'invalid number of arguments in "maestro_limit_zone" '
          + 'directive' },

    { name: 'maestro_limit_zone in a server block',
      conf: { server: '        maestro_limit_zone name=z size=1m;' },
      at: 'maestro_limit_zone name=z size=1m',
      emerg: '"maestro_limit_zone" directive is not allowed here' },

    { name: 'maestro_limit: an unknown key',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=region rate=1r/s;' },
      at: 'maestro_limit zone=z key=region rate=1r/s',
      emerg: "maestro_limit: \"key=region\" is not key, user, team, ip, endpoint, model or a '+' of them" },

    { name: 'maestro_limit: rate=10',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip rate=10;' },
      at: 'maestro_limit zone=z key=ip rate=10',
      emerg: "maestro_limit: \"rate=10\" is not a rate (rate=<n>r/s|m|h|d, n 1..1000000; tokens=<n>/s|m|h|d, n 1..1000000000000)" },

    { name: 'maestro_limit: rate=0r/s',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip rate=0r/s;' },
      at: 'maestro_limit zone=z key=ip rate=0r/s',
      emerg: "maestro_limit: \"rate=0r/s\" is not a rate (rate=<n>r/s|m|h|d, n 1..1000000; tokens=<n>/s|m|h|d, n 1..1000000000000)" },

    { name: 'maestro_limit: rate=5r/w',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip rate=5r/w;' },
      at: 'maestro_limit zone=z key=ip rate=5r/w',
      emerg: "maestro_limit: \"rate=5r/w\" is not a rate (rate=<n>r/s|m|h|d, n 1..1000000; tokens=<n>/s|m|h|d, n 1..1000000000000)" },

    { name: 'maestro_limit: burst=-1',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip rate=1r/s burst=-1;' },
      at: 'maestro_limit zone=z key=ip rate=1r/s burst=-1',
      emerg: "maestro_limit: \"burst=-1\" is not a number of requests or tokens" },

    { name: 'maestro_limit: an unknown parameter',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip rate=1r/s nodelay;' },
      at: 'maestro_limit zone=z key=ip rate=1r/s nodelay',
      emerg: "maestro_limit: unknown parameter \"nodelay\"" },

    { name: 'maestro_limit: without rate=',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip;' },
      at: 'maestro_limit zone=z key=ip',
      emerg: "maestro_limit needs zone=, key= and one of rate=, tokens=, concurrent=, streams=" },

    { name: 'maestro_limit: rate= and tokens= at once',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip rate=1r/s tokens=10/m;' },
      at: 'maestro_limit zone=z key=ip rate=1r/s tokens=10/m',
      emerg: "maestro_limit needs zone=, key= and one of rate=, tokens=, concurrent=, streams=" },

    { name: 'maestro_limit: tokens=0/m',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip tokens=0/m;' },
      at: 'maestro_limit zone=z key=ip tokens=0/m',
      emerg: "maestro_limit: \"tokens=0/m\" is not a rate (rate=<n>r/s|m|h|d, n 1..1000000; tokens=<n>/s|m|h|d, n 1..1000000000000)" },

    { name: 'maestro_limit: concurrent=0',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=ip concurrent=0;' },
      at: 'maestro_limit zone=z key=ip concurrent=0',
      emerg: "maestro_limit: \"concurrent=0\" is not 1..1000000" },

    { name: 'maestro_limit: concurrent= by model',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=model concurrent=5;' },
      at: 'maestro_limit zone=z key=model concurrent=5',
      emerg: "maestro_limit: key=model is for rate= and tokens=" },

    { name: 'maestro_limit: streams= with burst=',
      conf: { http: 'maestro_limit_zone name=z size=1m;\n    maestro_limit zone=z key=user streams=5 burst=2;' },
      at: 'maestro_limit zone=z key=user streams=5 burst=2',
      emerg: "maestro_limit: burst= is for rate= and tokens=" },

    { name: 'maestro_team_budget without usd=',
      conf: { http: 'maestro_team_budget team=red period=day;' },
      at: 'maestro_team_budget team=red period=day',
      emerg: '"maestro_team_budget" directive needs team= and usd=' },

    { name: 'maestro_team_budget period=week',
      conf: { http: 'maestro_team_budget team=red usd=5 period=week;' },
      at: 'maestro_team_budget team=red usd=5 period=week',
      emerg: 'invalid parameter "period=week"' },

    { name: 'maestro_team_budget usd=-1',
      conf: { http: 'maestro_team_budget team=red usd=-1;' },
      at: 'maestro_team_budget team=red usd=-1',
      emerg: 'invalid parameter "usd=-1"' },

    { name: 'maestro_team_budget: a team twice',
      conf: { http: 'maestro_team_budget team=red usd=5;\n'
                    + '    maestro_team_budget team=red usd=6;' },
      at: 'maestro_team_budget team=red usd=6',
      emerg: 'maestro_team_budget: team "red" twice' },

    { name: 'maestro_key_limits_size: too small',
      conf: { http: 'maestro_key_limits_size 4k;' },
      at: HTTP_END,
      emerg: "\"maestro_key_limits_size\" must be at least 32k" },

    { name: 'maestro_limit_max_tokens: not a number',
      conf: { http: 'maestro_limit_max_tokens many;' },
      at: 'maestro_limit_max_tokens many',
      emerg: "\"maestro_limit_max_tokens\" directive invalid number" },

    { name: 'maestro_limit_dry_run maybe',
      conf: { http: 'maestro_limit_dry_run maybe;' },
      at: 'maestro_limit_dry_run maybe',
      emerg: 'invalid value "maybe" in "maestro_limit_dry_run" directive, '
          + 'it must be "on" or "off"' },

    { name: 'maestro_limit_log_level debug',
      conf: { http: 'maestro_limit_log_level debug;' },
      at: 'maestro_limit_log_level debug',
      emerg: 'invalid value "debug"' },

    { name: 'maestro_llm_balance fastest',
      conf: { http: 'maestro_llm_balance fastest;' },
      at: 'maestro_llm_balance',
      emerg: 'invalid value "fastest"' },

    ...['maestro_store_path', 'maestro_plugins_dir'].map((d) => ({
        name: `${d} twice`,
        conf: { http: `${d} /elsewhere;` },
        at: `${d} /elsewhere`,
        emerg: `"${d}" directive is duplicate`,
    })),

    { name: 'maestro_workflow with one argument',
      conf: { http: 'maestro_workflow lonely;' },
      at: 'maestro_workflow lonely',
      emerg: 'invalid number of arguments in "maestro_workflow" directive' },

    { name: 'maestro_store_path in a server block',
      conf: { server: '        maestro_store_path /elsewhere;' },
      at: 'maestro_store_path /elsewhere',
      emerg: '"maestro_store_path" directive is not allowed here' },

    /* maestro_store_encryption_key (nginx -t reads the keys) */

    { name: 'maestro_store_encryption_key of a missing file',
      conf: { http: 'maestro_store_encryption_key id=1 '
                    + 'file=/nonexistent/store.key active;' },
      at: 'maestro_store_encryption_key',
      emerg: 'maestro_store_encryption_key: cannot open key file '
          + `"/nonexistent/store.key": ${NOFILE}` },

    { name: 'maestro_store_encryption_key of a file of the wrong length',
      conf: withFile('short.key', 'abcd\n', (f) => ({
          http: `maestro_store_encryption_key id=1 file=${f} active;` })),
      at: 'maestro_store_encryption_key',
      emerg: (c) => 'maestro_store_encryption_key: key file '
          + `"${path.join(c.prefix, 'short.key')}": the key must be 32 `
          + 'bytes, or 64 hex digits, not 5 bytes' },

    { name: 'maestro_store_encryption_key of 64 characters not hex',
      conf: withFile('nothex.key', 'z'.repeat(64), (f) => ({
          http: `maestro_store_encryption_key id=1 file=${f} active;` })),
      at: 'maestro_store_encryption_key',
      emerg: (c) => 'maestro_store_encryption_key: key file '
          + `"${path.join(c.prefix, 'nothex.key')}": the key is not 64 hex `
          + 'digits (a character at offset 0 or 1 is not a hex digit)' },

    { name: 'maestro_store_encryption_key env= of an unset variable',
      conf: { http: 'maestro_store_encryption_key id=1 '
                    + 'env=MST_TEST_UNSET_VARIABLE active;' },
      at: 'maestro_store_encryption_key',
      emerg: 'maestro_store_encryption_key: environment variable '
          + '"MST_TEST_UNSET_VARIABLE" is not set' },

    { name: 'maestro_store_encryption_key env= of a short key',
      conf: { http: 'maestro_store_encryption_key id=1 env=MST_TEST_SHORT '
                    + 'active;' },
      at: 'maestro_store_encryption_key',
      emerg: 'maestro_store_encryption_key: environment variable '
          + '"MST_TEST_SHORT": the key must be 64 hex digits, not 5 '
          + 'characters' },

    { name: 'maestro_store_encryption_key: a duplicate id',
      conf: { http: ['maestro_store_encryption_key id=1 '
                     + 'env=MST_TEST_STORE_KEY active;',
                     'maestro_store_encryption_key id=1 '
                     + 'env=MST_TEST_STORE_KEY2;'] },
      at: 'env=MST_TEST_STORE_KEY2',
      emerg: 'maestro_store_encryption_key: duplicate key id 1' },

    { name: 'maestro_store_encryption_key: two active keys',
      conf: { http: ['maestro_store_encryption_key id=1 '
                     + 'env=MST_TEST_STORE_KEY active;',
                     'maestro_store_encryption_key id=2 '
                     + 'env=MST_TEST_STORE_KEY2 active;'] },
      at: 'env=MST_TEST_STORE_KEY2',
      emerg: 'maestro_store_encryption_key: key id 2 is active and so is '
          + 'key id 1: only one key can be active' },

    { name: 'maestro_store_encryption_key: no active key',
      conf: { http: ['maestro_store_encryption_key id=1 '
                     + 'env=MST_TEST_STORE_KEY;',
                     'maestro_store_encryption_key id=2 '
                     + 'env=MST_TEST_STORE_KEY2;'] },
      at: HTTP_END,
      emerg: 'no "maestro_store_encryption_key" is "active" (one must be, '
          + 'to seal new records)' },

    ...['id=0', 'id=256', 'id=one'].map((p) => ({
        name: `maestro_store_encryption_key ${p}`,
        conf: { http: `maestro_store_encryption_key ${p} `
                      + 'env=MST_TEST_STORE_KEY active;' },
        at: 'maestro_store_encryption_key',
        emerg: `invalid key id "${p}" (1..255)`,
    })),

    /* a key pasted in clear is refused and not echoed into the log */
    { name: 'maestro_store_encryption_key with a key in clear',
      conf: { http: `maestro_store_encryption_key id=1 ${'ab'.repeat(32)} `
                    + 'active;' },
      at: 'maestro_store_encryption_key',
      emerg: 'invalid parameter 2 of "maestro_store_encryption_key" (id=N, '
          + 'file=PATH or env=NAME, active)' },

    { name: 'maestro_store_encryption_key without id=',
      conf: { http: 'maestro_store_encryption_key env=MST_TEST_STORE_KEY '
                    + 'active;' },
      at: 'maestro_store_encryption_key',
      emerg: '"maestro_store_encryption_key" needs id=N' },

    { name: 'maestro_store_encryption_key with both file= and env=',
      conf: { http: 'maestro_store_encryption_key id=1 file=/etc/hostname '
                    + 'env=MST_TEST_STORE_KEY active;' },
      at: 'maestro_store_encryption_key',
      emerg: '"maestro_store_encryption_key" needs one of file=PATH or '
          + 'env=NAME' },

    { name: 'maestro_store_encryption_key in a server block',
      conf: { server: '        maestro_store_encryption_key id=1 '
                      + 'env=MST_TEST_STORE_KEY active;' },
      at: 'maestro_store_encryption_key',
      emerg: '"maestro_store_encryption_key" directive is not allowed here' },

    /* who gets in (nginx -t inherits this process's environment) */

    { name: 'maestro_auth maybe',
      conf: { http: 'maestro_auth maybe;' },
      at: 'maestro_auth maybe',
      emerg: 'invalid value "maybe" in "maestro_auth" directive, it must be '
          + '"on" or "off"' },

    { name: 'maestro_admin_key with a value in clear',
      conf: { http: 'maestro_admin_key hunter2hunter2hunter2;' },
      at: 'maestro_admin_key',
      emerg: 'invalid parameter "hunter2hunter2hunter2": use env=VAR or '
          + 'file=PATH' },

    { name: 'maestro_admin_key env= of an unset variable',
      conf: { http: 'maestro_admin_key env=MST_TEST_UNSET_VARIABLE;' },
      at: 'maestro_admin_key',
      emerg: 'environment variable "MST_TEST_UNSET_VARIABLE" is not set' },

    { name: 'maestro_admin_key shorter than 16 characters',
      conf: { http: 'maestro_admin_key env=MST_TEST_SHORT;' },
      at: 'maestro_admin_key',
      emerg: 'the admin credential must have at least 16 characters' },

    { name: 'maestro_admin_key shaped like an API key',
      conf: { http: 'maestro_admin_key env=MST_TEST_KEY_SHAPED;' },
      at: 'maestro_admin_key',
      emerg: 'the admin credential must not look like an API key (mk_...)' },

    { name: 'maestro_admin_key twice',
      conf: { http: 'maestro_admin_key file=/etc/os-release;\n'
                    + '    maestro_admin_key file=/etc/os-release;' },
      at: 'maestro_admin_key file=/etc/os-release',
      emerg: '"maestro_admin_key" directive is duplicate' },

    { name: 'maestro_jwt_key without file=',
      conf: { http: 'maestro_jwt_key /etc/key.pem;' },
      at: 'maestro_jwt_key',
      emerg: 'invalid parameter "/etc/key.pem": use file=PATH' },

    { name: 'maestro_jwt_key of a file that is no key',
      conf: { http: 'maestro_jwt_key file=/etc/os-release;' },
      at: 'maestro_jwt_key',
      emerg: '"/etc/os-release": neither a PEM public key, a PEM certificate '
          + 'nor a JWKS' },

    { name: 'maestro_jwt_key with a bad kid',
      conf: { http: 'maestro_jwt_key file=/etc/os-release id=1;' },
      at: 'maestro_jwt_key',
      emerg: 'invalid parameter "id=1": use kid=ID (1..64 characters)' },

    { name: 'maestro_jwt_secret in clear',
      conf: { http: 'maestro_jwt_secret s3cr3t;' },
      at: 'maestro_jwt_secret',
      emerg: 'invalid parameter "s3cr3t": use env=VAR or file=PATH' },

    { name: 'maestro_jwt_secret shorter than 32 bytes',
      conf: { http: 'maestro_jwt_secret env=MST_TEST_SHORT;' },
      at: 'maestro_jwt_secret',
      emerg: 'maestro_jwt_secret: an HS256 secret needs at least 32 bytes' },

    { name: 'maestro_jwt_leeway soon',
      conf: { http: 'maestro_jwt_leeway soon;' },
      at: 'maestro_jwt_leeway soon',
      emerg: '"maestro_jwt_leeway" directive invalid value' },
];

process.env.MST_TEST_SHORT = 'short';
process.env.MST_TEST_KEY_SHAPED = 'mk_0123456789abcdef_' + 'A'.repeat(43);
process.env.MST_TEST_STORE_KEY = '0f'.repeat(32);
process.env.MST_TEST_STORE_KEY2 = 'e1'.repeat(32);


/* the line number of the row's "at" in the configuration text */
function lineOf(text, at) {
    const lines = text.split('\n');
    let i;

    if (at === HTTP_END) {
        i = lines.lastIndexOf('}');
    } else {
        i = lines.findLastIndex((l) => l.includes(at));
    }
    assert.ok(i >= 0, `"${String(at)}" is in the configuration:\n${text}`);
    return i + 1;
}


describe('nginx -t', () => {
    before(() => {
        dynDir = buildDynPlugins();
    });

    test('the good configuration passes', async () => {
        const r = await nginxT({});
        assert.equal(r.code, 0, r.output);
        assert.match(r.output, /test is successful/);
        assert.doesNotMatch(r.output, /\[(emerg|alert|crit)\]/);
    });

    test('maestro_store_headroom passes', async () => {
        const r = await nginxT({ storeSize: '8m',
                                 http: 'maestro_store_headroom 2m;' });
        assert.equal(r.code, 0, r.output);
    });

    test('maestro_limit_zone passes', async () => {
        const r = await nginxT({ http: 'maestro_limit_zone name=z size=1m;' });
        assert.equal(r.code, 0, r.output);
    });

    test('maestro_store_encryption_key: two keys, one active, pass', () => {
        const prefix = mkPrefix();
        const key = path.join(prefix, 'old.key');

        /* 32 raw bytes, readable by the owner only: no warning */
        fs.writeFileSync(key, Buffer.alloc(32, 7), { mode: 0o600 });
        return nginxT({ http: [
            `maestro_store_encryption_key id=1 file=${key};`,
            'maestro_store_encryption_key id=2 env=MST_TEST_STORE_KEY '
            + 'active;',
        ] }).then((r) => {
            assert.equal(r.code, 0, r.output);
            assert.doesNotMatch(r.output, /\[(warn|emerg|alert|crit)\]/);
            /* no byte of either key in what nginx said */
            assert.doesNotMatch(r.output + r.log, /0f0f0f0f/);
        });
    });

    test('maestro_store_encryption_key: a key file others can read warns',
         async () => {
        const prefix = mkPrefix();
        const key = path.join(prefix, 'open.key');

        fs.writeFileSync(key, `${'5a'.repeat(32)}\n`, { mode: 0o644 });
        fs.chmodSync(key, 0o644);
        const r = await nginxT({ http:
            `maestro_store_encryption_key id=3 file=${key} active;` });
        assert.equal(r.code, 0, r.output);
        assert.match(r.output, new RegExp(`\\[warn\\] key file "${key}" `
                                          + 'can be read by group or others '
                                          + '\\(chmod 600 it\\)'));
        assert.doesNotMatch(r.output + r.log, /5a5a/);
    });

    test('maestro_cors_origin passes at every level', async () => {
        const r = await nginxT({
            http: 'maestro_cors_origin https://a.example HTTP://B.example:80;',
            server: ['maestro_cors_origin http://[::1]:3000;',
                     'maestro_cors_origin capacitor://localhost;'],
            locations: ['        location /api/ {',
                        '            maestro_api;',
                        '            maestro_cors_origin *;',
                        '        }'],
        });
        assert.equal(r.code, 0, r.output);
    });

    test('a cycle with an exit passes', async () => {
        const r = await nginxT({ workflows: {
            loop_ok: {
                name: 'loop_ok', entry: 'a', max_steps: 10,
                nodes: { a: { agent: 'echo' }, b: { agent: 'echo' } },
                edges: [
                    { from: 'a', to: 'b' },
                    { from: 'b', to: 'a',
                      when: { path: 'x', equals: 'again' } },
                    { from: 'b', to: '$end', else: true },
                ],
            },
        } });
        assert.equal(r.code, 0, r.output);
    });

    test('a maestro_workflow named unlike its graph: the directive\'s '
         + 'name is used', async () => {
        const opts = {
            workflows: { renamed: { ...chain(['a', 'echo']),
                                    name: 'in_the_file' } },
            server: ['location /v1/ { maestro_api; }'],
        };
        const r = await nginxT(opts);
        const file = path.join(r.prefix, 'workflows', 'renamed.json');

        assert.equal(r.code, 0, r.output);
        assert.match(r.output, new RegExp(
            `\\[warn\\] maestro_workflow "renamed": the graph in "${file}" `
            + 'is named "in_the_file"; "renamed" is used'));

        /* and it is: submissions, records and /v1/models say "renamed" */
        const m = await startMaestro(opts);
        try {
            const w = await submit(m.base, { prompt: 'hi',
                                             workflow: 'renamed' });
            const done = await waitStatus(m.base, w.id, 'complete', 10000);
            assert.equal(done.workflow, 'renamed');

            const old = await api(m.base, 'POST', '/api/v1/workflows',
                                  { prompt: 'hi', workflow: 'in_the_file' });
            assert.equal(old.status, 422, old.text);
            assert.equal(old.json.error.code, 'unknown_workflow');

            const models = await api(m.base, 'GET', '/v1/models');
            const ids = models.json.data.map((x) => x.id);
            assert.ok(ids.includes('maestro/renamed'), ids.join(' '));
            assert.ok(!ids.includes('maestro/in_the_file'), ids.join(' '));

            m.assertCleanLog();
        } finally {
            await m.stop();
        }
    });

    for (const row of ROWS) {
        test(row.name, async () => {
            const r = await nginxT(typeof row.conf === 'function'
                                   && row.conf.length === 0
                                   ? row.conf() : row.conf);
            const ctx = {
                prefix: r.prefix,
                workflow: (n) => path.join(r.prefix, 'workflows', `${n}.json`),
            };
            const text = typeof row.emerg === 'function' ? row.emerg(ctx)
                : row.emerg;
            const conf = fs.readFileSync(r.confPath, 'utf8');
            const where = row.at === null ? ''
                : ` in ${r.confPath}:${lineOf(conf, row.at)}`;

            assert.equal(r.code, 1, `nginx -t fails:\n${r.output}`);
            assert.deepEqual(r.stderr.split('\n').filter(Boolean), [
                `nginx: [emerg] ${text}${where}`,
                `nginx: configuration file ${r.confPath} test failed`,
            ]);
            const logged = r.log.split('\n')
                .filter((l) => /\[(emerg|alert|crit)\]/.test(l))
                .map((l) => l.replace(/^.*? \[emerg\] \d+#\d+: /, ''));
            assert.deepEqual(logged, [`${text}${where}`],
                             'error.log has the same one line');
        });
    }
});


/* what `make run` and `make run CONF=conf/secure.conf` start */
describe('the shipped configurations', () => {
    for (const name of ['maestro.conf', 'secure.conf']) {
        test(`conf/${name} passes nginx -t`, () => {
            const prefix = mkPrefix('shipped');
            fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
            fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
            const conf = fs.readFileSync(path.join(REPO, 'conf', name), 'utf8')
                .replaceAll('../build/', `${BUILD}/`)
                .replaceAll('../conf/', `${REPO}/conf/`)
                .replaceAll('../html/', `${REPO}/html/`);
            const file = path.join(prefix, name);
            fs.writeFileSync(file, conf);
            const r = spawnSync(NGINX, ['-p', `${prefix}/`, '-c', file, '-t'],
                                { encoding: 'utf8', env: { ...process.env,
                                  MAESTRO_ADMIN_KEY: 'a'.repeat(32) } });
            assert.equal(r.status, 0, r.stderr);
            assert.match(r.stderr, /test is successful/);
        });
    }
});
