/*
 * Copyright (C) Maestro authors
 */

/*
 * Configuration errors fail `nginx -t` with an [emerg] message that names
 * the file and the reason; the good configuration passes.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
    nginxT, buildConf, FIXTURES, BUILD, chain, ngxQuote,
} from './lib/harness.mjs';


function assertFails(r, ...patterns) {
    assert.notEqual(r.code, 0, `nginx -t passed:\n${r.output}`);
    const emerg = r.output.split('\n').filter((l) => /\[emerg\]/.test(l));
    assert.ok(emerg.length >= 1, `an [emerg] line:\n${r.output}`);
    const text = emerg.join('\n');
    for (const p of patterns) {
        if (p instanceof RegExp) {
            assert.match(text, p, `[emerg] matches ${p}:\n${r.output}`);
        } else {
            assert.ok(text.includes(p), `[emerg] names "${p}":\n${r.output}`);
        }
    }
    assert.doesNotMatch(r.output, /test is successful/);
    return text;
}

/* a config file written by the caller into its own prefix */
function confWithFile(name, content, build) {
    return (ctx) => {
        const file = path.join(ctx.prefix, name);
        fs.writeFileSync(file, content);
        return build(file, ctx);
    };
}


describe('nginx -t', () => {
    test('the good configuration passes', async () => {
        const r = await nginxT({});
        assert.equal(r.code, 0, r.output);
        assert.match(r.output, /test is successful/);
        assert.doesNotMatch(r.output, /\[(emerg|alert|crit)\]/);
    });

    test('a plugin file that does not exist', async () => {
        const r = await nginxT({ agents: {
            ghost: 'plugin=/nonexistent/dir/ghost.so',
        } });
        assertFails(r, '/nonexistent/dir/ghost.so',
                    /no such file|not found|cannot open|dlopen/i);
    });

    test('a relative plugin file missing from maestro_plugins_dir',
         async () => {
        const r = await nginxT({ agents: { ghost: 'plugin=ghost2.so' } });
        assertFails(r, path.join(BUILD, 'plugins', 'ghost2.so'));
    });

    test('a plugin with the wrong ABI version', async () => {
        const r = await nginxT({ agents: {
            wrong: `plugin=${FIXTURES}/wrong_abi.so`,
        } });
        assertFails(r, 'wrong_abi.so', 'ABI version 999');
    });

    test('a plugin without the entry symbol', async () => {
        const r = await nginxT({ agents: {
            noentry: `plugin=${FIXTURES}/no_entry.so`,
        } });
        assertFails(r, 'no_entry.so', /maestro_plugin_entry|entry/);
    });

    test('a plugin whose init() fails', async () => {
        const r = await nginxT({ agents: {
            badinit: `plugin=${FIXTURES}/bad_init.so`,
        } });
        assertFails(r, 'bad_init.so', 'refusing configuration');
    });

    test('bad JSON in a workflow file: file and line', async () => {
        const r = await nginxT(confWithFile('broken.json',
            '{\n  "name": "broken",\n  "entry": "a",\n  "nodes": {\n'
            + '    "a": { "agent": "echo", }\n  }\n}\n',
            (file, ctx) => nginxConfText(ctx, { workflowFiles: {
                broken: file } })));
        assertFails(r, 'broken.json', /line\s*\d+|:\d+/);
    });

    test('a workflow file that does not exist', async () => {
        const r = await nginxT({ workflowFiles: {
            absent: '/nonexistent/absent.json' } });
        assertFails(r, '/nonexistent/absent.json');
    });

    test('an unknown agent in a workflow graph', async () => {
        const r = await nginxT({ workflows: {
            unknown: chain(['a', 'echo'], ['b', 'no_such_agent']),
        } });
        assertFails(r, 'unknown.json', 'no_such_agent');
    });

    test('a cycle with no exit', async () => {
        const r = await nginxT({ workflows: {
            loop: {
                name: 'loop', entry: 'a',
                nodes: { a: { agent: 'echo' }, b: { agent: 'echo' },
                         c: { agent: 'echo' } },
                edges: [{ from: 'a', to: 'b' }, { from: 'b', to: 'c' },
                        { from: 'c', to: 'b' }],
            },
        } });
        assertFails(r, 'loop.json', 'cycle with no exit');
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

    test('bad JSON in config_json=', async () => {
        const r = await nginxT({ agents: {
            echo_bad: `plugin=${FIXTURES}/echo.so `
                + ngxQuote('config_json={"a": 1,,}'),
        } });
        assertFails(r, /config_json|echo_bad/, /JSON|json/);
    });

    test('bad JSON in an agent config= file: file and line', async () => {
        const r = await nginxT(confWithFile('agent.json',
            '{\n  "model": "x",\n  oops\n}\n',
            (file, ctx) => nginxConfText(ctx, { agents: {
                echo_cfg: `plugin=${FIXTURES}/echo.so config=${file}` } })));
        assertFails(r, 'agent.json', /line\s*\d+|:\d+/);
    });

    test('maestro_agent without plugin=', async () => {
        const r = await nginxT({ agents: {
            nothing: ngxQuote('config_json={}'),
        } });
        assertFails(r, /plugin/);
    });

    test('maestro_default_workflow naming an unknown workflow', async () => {
        const r = await nginxT({ http: 'maestro_default_workflow nope;' });
        assertFails(r, 'nope');
    });
});


/* buildConf() with extra options, for the function form of nginxT() */
function nginxConfText(ctx, opts) {
    return buildConf(opts, ctx.prefix, ctx.port);
}
