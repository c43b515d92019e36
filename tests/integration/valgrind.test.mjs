/*
 * Copyright (C) Maestro authors
 */

/*
 * Under valgrind: SSE streams and WebSockets that clients drop mid-stream
 * (and ones that end normally), and the LLM engine's calls (/v1 ones
 * finished, retried and dropped; plugins' finished and cancelled) leave
 * no invalid access and no leak in Maestro's code. nginx runs as one process (master_process off) so that
 * valgrind sees everything; the report is read after a graceful stop.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import {
    BUILD, FIXTURES, NGINX, freePort, mkPrefix, waitFor, sleep, chain,
    startFakeOpenAI,
} from './lib/harness.mjs';


function haveValgrind() {
    try {
        execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
        return true;
    } catch {
        return false;
    }
}


/* nginx (one process) under valgrind with http {} lines; the report */
async function underValgrind(httpLines, body) {
    const prefix = mkPrefix('maestro-vg');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const report = path.join(prefix, 'valgrind.log');

    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'nginx.conf'), `
load_module ${path.join(BUILD, 'ngx_http_maestro_module.so')};
master_process off; daemon off; pid logs/nginx.pid;
error_log logs/error.log info;
${process.getuid && process.getuid() === 0 ? 'user root root;' : ''}
thread_pool maestro threads=2; thread_pool maestro_io threads=1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${prefix}/body;
    maestro_store_path ${prefix}/store; maestro_store_size 64m;
    maestro_store_sync off;
    ${httpLines.join('\n    ')}
    server {
        listen 127.0.0.1:${port};
        location /api/ { maestro_api; client_max_body_size 0; }
        location /v1/ { maestro_api; }
        location = /healthz { maestro_api; }
    }
}
`);

    const vg = spawn('valgrind', [
        '--leak-check=full', '--show-leak-kinds=definite,indirect',
        '--errors-for-leak-kinds=definite,indirect',
        `--log-file=${report}`,
        NGINX, '-p', prefix, '-c', path.join(prefix, 'nginx.conf'),
    ], { stdio: 'ignore' });

    try {
        await waitFor(async () => {
            try {
                return (await fetch(`${base}/healthz`)).ok;
            } catch {
                return false;
            }
        }, 60000, 250, 'nginx under valgrind to answer');

        await body(base, port);

    } finally {
        const pid = Number(fs.readFileSync(
            path.join(prefix, 'logs/nginx.pid'), 'utf8'));
        process.kill(pid, 'SIGQUIT');
        await new Promise((resolve) => vg.on('exit', resolve));
    }

    const text = fs.readFileSync(report, 'utf8');

    /* errors in, or leaks from, Maestro's frames */
    const blocks = text.split(/\n==\d+== \n/);
    const ours = blocks.filter((b) =>
        /(Invalid (read|write|free)|uninitialised|definitely lost|indirectly lost)/.test(b)
        && /(ngx_http_maestro|mst_|maestro_plugin)/.test(b));

    assert.deepEqual(ours, [], 'valgrind found problems in Maestro');

    fs.rmSync(prefix, { recursive: true, force: true });
}


describe('valgrind', { skip: !haveValgrind() && 'valgrind is missing' },
         () => {
    test('the LLM engine: /v1 calls finished and dropped, plugin calls '
         + 'finished and cancelled, free everything', { timeout: 180000 },
         async () => {
        const fake = await startFakeOpenAI();
        const tls = await startFakeOpenAI([], { tls: true });
        const slow = 'fake-model@fault=slow_stream:150';
        try {
            await underValgrind([
                `maestro_llm_provider ${fake.url} name=fake model=fake-model `
                    + 'retries=1 timeout=20s;',
                `maestro_llm_provider ${tls.url} name=tls model=fake-tls `
                    + `client=nginx ca=${tls.ca} priority=2 retries=0 `
                    + 'timeout=20s;',
                `maestro_llm_provider ${fake.url} name=slow model=${slow} `
                    + 'priority=1 retries=0 timeout=20s;',
                'maestro_llm_health_check off;',
                `maestro_plugins_dir ${path.resolve(FIXTURES, '../plugins')};`,
                'maestro_agent llm plugin=llm.so;',
            ], async (base) => {
                const post = (p, b, signal) => fetch(`${base}${p}`, {
                    method: 'POST', signal,
                    headers: { 'content-type': 'application/json' },
                    body: JSON.stringify(b) });
                const ask = (model, extra = {}) => ({
                    model, messages: [{ role: 'user',
                                        content: 'one two three four five' }],
                    ...extra });

                /* /v1: whole, streamed, retried, dropped mid-stream */
                let r = await post('/v1/chat/completions', ask('fake-model'));
                assert.equal(r.status, 200);
                await r.json();
                r = await post('/v1/chat/completions',
                               ask('fake-model', { stream: true }));
                assert.match(await r.text(), /\[DONE\]/);
                await fake.control(['500']);
                r = await post('/v1/chat/completions', ask('fake-model'));
                assert.equal(r.status, 200);
                await r.json();
                for (let i = 0; i < 3; i++) {
                    const c = new AbortController();
                    r = await post('/v1/chat/completions',
                                   ask(slow, { stream: true }), c.signal);
                    await r.body.getReader().read();
                    c.abort();
                }

                /* over TLS: whole and streamed (a kept connection, a
                   resumed session), and one dropped mid-stream */
                for (let i = 0; i < 2; i++) {
                    r = await post('/v1/chat/completions', ask('fake-tls'));
                    assert.equal(r.status, 200);
                    await r.json();
                    r = await post('/v1/chat/completions',
                                   ask('fake-tls', { stream: true }));
                    assert.match(await r.text(), /\[DONE\]/);
                }
                await tls.control(['slow_stream:150']);
                {
                    const c = new AbortController();
                    r = await post('/v1/chat/completions',
                                   ask('fake-tls', { stream: true }), c.signal);
                    await r.body.getReader().read();
                    c.abort();
                }

                /* a plugin's call that finishes, one cancelled in flight */
                const run = async () => {
                    const w = await post('/api/v1/workflows', {
                        prompt: 'under valgrind',
                        workflow: chain(['l', 'llm']) });
                    return (await w.json()).id;
                };
                const done = await run();
                await waitFor(async () => {
                    const s = await fetch(`${base}/api/v1/workflows/${done}`);
                    return (await s.json()).status === 'complete';
                }, 60000, 250, 'the llm workflow to complete');

                await fake.control(['hang']);
                const hung = await run();
                await sleep(1500);
                await post(`/api/v1/workflows/${hung}/cancel`, {});
                await waitFor(async () => {
                    const s = await fetch(`${base}/api/v1/workflows/${hung}`);
                    return (await s.json()).status === 'cancelled';
                }, 60000, 250, 'the hung call to be cancelled');
                await sleep(500);
            });
        } finally {
            await fake.stop();
            await tls.stop();
        }
    });

    test('dropped and finished streams free everything', { timeout: 120000 },
         async () => {
        await underValgrind([
            `maestro_agent echo plugin=${path.join(FIXTURES, 'echo.so')};`,
            `maestro_agent sleep plugin=${path.join(FIXTURES, 'sleep.so')};`,
        ], async (base, port) => {
            const r = await fetch(`${base}/api/v1/workflows`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({
                    prompt: 'under valgrind', user_id: 'vg',
                    workflow: chain(['a', 'echo'],
                                    ['s', 'sleep', { ms: 3000 }]),
                }),
            });
            assert.equal(r.status, 202);
            const { id } = await r.json();

            /* dropped by their clients mid-stream */
            const aborts = [];
            for (let i = 0; i < 10; i++) {
                const c = new AbortController();
                aborts.push(c);
                fetch(`${base}/api/v1/workflows/${id}/events`,
                      { signal: c.signal })
                    .then((res) => res.body.getReader().read())
                    .catch(() => {});
            }
            const sockets = [];
            for (let i = 0; i < 10; i++) {
                sockets.push(new WebSocket(i % 2
                    ? `ws://127.0.0.1:${port}/api/v1/ws/vg`
                    : `ws://127.0.0.1:${port}/api/v1/workflows/${id}/ws`));
            }
            await sleep(2000);
            aborts.forEach((c) => c.abort());
            sockets.forEach((s) => s.terminate());

            /* and ones that see the end */
            const done = await fetch(`${base}/api/v1/workflows/${id}/events`)
                .then((res) => res.text());
            assert.match(done, /event: done/);

            const ws = new WebSocket(
                `ws://127.0.0.1:${port}/api/v1/workflows/${id}/ws`);
            await new Promise((resolve) => ws.on('message', (m) => {
                if (JSON.parse(m).type === 'done') resolve();
            }));
            ws.close(1000);
            await sleep(500);
        });
    });
});
