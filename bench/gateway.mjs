// The LLM gateway benchmark: requests/s and added latency of a chat
// completion through (a) the upstream directly, (b) nginx proxy_pass,
// (c) Maestro's pass-through (its own HTTP/1.1 client, and libcurl, each a
// row), (d) the Portkey gateway, with the same fake
// upstream and the same load tool (wrk) in one run, streaming and not;
// then N concurrent long streams through Maestro (memory, threads).
// See bench/README.md, section 4.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import {
    note, sleep, freePort, startNginx, stopNginx, stopAll, mainConf, httpCommon,
} from './lib/nginx.mjs';
import { f, report } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const BUILD = path.resolve(process.env.BUILD || path.join(REPO, 'build'));
const PEERS = path.join(BUILD, 'peers');
const RESULTS = path.join(HERE, 'results');
const QUICK = !!process.env.BENCH_QUICK;
const DUR = process.env.BENCH_GW_DURATION || (QUICK ? '3s' : '10s');
const LAT_DUR = process.env.BENCH_GW_LAT_DURATION || (QUICK ? '2s' : '5s');
const STREAMS = +(process.env.BENCH_GW_STREAMS || (QUICK ? 100 : 1000));
const STREAM_SECS = +(process.env.BENCH_GW_STREAM_SECS || (QUICK ? 5 : 30));

const { lines: out, say, table } = report();

// ---- the fake upstream: nginx answering canned OpenAI responses ------------

const COMPLETION = JSON.stringify({
    id: 'chatcmpl-bench', object: 'chat.completion', created: 1,
    model: 'fake-model',
    choices: [{ index: 0, message: { role: 'assistant',
                                     content: 'Hello! How can I help you today?' },
                finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 },
});

function chunk(delta, finish = null, usage) {
    const c = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1,
                model: 'fake-model', choices: usage ? [] : [{ index: 0, delta,
                                                              finish_reason: finish }] };
    if (usage) c.usage = usage;
    return `data: ${JSON.stringify(c)}\\n\\n`;
}

const SSE = chunk({ role: 'assistant', content: '' })
    + ['Hello!', ' How can I', ' help you today?'].map((t) => chunk({ content: t })).join('')
    + chunk({}, 'stop')
    + chunk(null, null, { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 })
    + 'data: [DONE]\\n\\n';

// TLS to the provider: a certificate for "localhost" (openssl), and a
// second listener of the fake upstream that speaks TLS
const TLS = { port: 0, cert: '', key: '' };

function makeCert() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maestro-bench-cert-'));
    TLS.cert = path.join(dir, 'cert.pem');
    TLS.key = path.join(dir, 'key.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                                    '-keyout', TLS.key, '-out', TLS.cert, '-days', '2',
                                    '-subj', '/CN=localhost',
                                    '-addext', 'subjectAltName=DNS:localhost'],
                        { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl req: ${r.stderr}`);
}

function upstreamConf(prefix, port) {
    return `${mainConf({ workers: 1 })}http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path ${prefix}/tmp/body;
    server {
        listen 127.0.0.1:${port} backlog=4096;
        location = /healthz { return 200 'ok'; }
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '${COMPLETION}';
        }
        location = /stream/v1/chat/completions {
            default_type text/event-stream;
            return 200 "${SSE.replace(/"/g, '\\"')}";
        }
    }
    server {
        listen 127.0.0.1:${TLS.port} ssl backlog=4096;
        ssl_certificate ${TLS.cert};
        ssl_certificate_key ${TLS.key};
        ssl_session_cache shared:tls:1m;
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '${COMPLETION}';
        }
    }
}
`;
}

function gatewayConf(up, slowUrl) {
    return (prefix, port) => {
        return `${mainConf({ modules: [`${BUILD}/ngx_http_maestro_module.so`],
                             nofile: 20000, connections: 8192 })}thread_pool maestro threads=4 max_queue=65536;
thread_pool maestro_io threads=2 max_queue=65536;
http {
${httpCommon(prefix)}

    maestro_store_path ${prefix}/store;
    maestro_store_size 256m;
    maestro_llm_health_check off;
    maestro_llm_provider http://127.0.0.1:${up}/v1 name=upstream model=fake-model
                         retries=0 timeout=60s;
    maestro_llm_provider http://127.0.0.1:${up}/stream/v1 name=upstream-sse
                         model=fake-stream retries=0 timeout=60s;
    maestro_llm_provider http://127.0.0.1:${up}/v1 name=upstream-curl
                         model=fake-model-curl client=libcurl retries=0
                         timeout=60s;
    maestro_llm_provider http://127.0.0.1:${up}/stream/v1
                         name=upstream-sse-curl model=fake-stream-curl
                         client=libcurl retries=0 timeout=60s;
    maestro_llm_provider https://localhost:${TLS.port}/v1 name=tls
                         model=fake-model-tls client=nginx ca=${TLS.cert}
                         retries=0 timeout=60s;
    maestro_llm_provider https://localhost:${TLS.port}/v1 name=tls-curl
                         model=fake-model-tls-curl client=libcurl
                         ca=${TLS.cert} retries=0 timeout=60s;
    maestro_llm_provider ${slowUrl} name=slow
                         model=fake-model@fault=slow_stream:1000 retries=0
                         timeout=600s;

    maestro_limit_zone name=bench size=10m;

    upstream fake { server 127.0.0.1:${up}; keepalive 64; }
    upstream fake_tls { server 127.0.0.1:${TLS.port}; keepalive 64; }

    # the same pass-through with who-gets-in on: an API key (with its own
    # limits) and the limits of conf/secure.conf, set so nobody is refused
    server {
        listen 127.0.0.1:${port};
        server_name secure;
        maestro_auth on;
        maestro_limit zone=bench key=user rate=1000000r/s burst=100000;
        maestro_limit zone=bench key=endpoint rate=1000000r/s burst=100000;
        maestro_limit zone=bench key=ip rate=1000000r/s burst=100000;
        maestro_limit zone=bench key=user streams=1000;
        maestro_limit zone=bench key=user tokens=1000000000000/m;
        location /v1/ { maestro_api; }
        location /api/ { maestro_api; }
    }

    server {
        listen 127.0.0.1:${port} backlog=4096 default_server;
        location /v1/ { maestro_api; }
        location = /healthz { maestro_api; }
        location /proxy/ {
            proxy_pass http://fake/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
        location /proxy-tls/ {
            proxy_pass https://fake_tls/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate ${TLS.cert};
            proxy_ssl_session_reuse on;
        }
    }
}
`;
    };
}

// an API key for the secured server, with limits of its own to check
const BENCH_ADMIN = 'bench-admin-' + process.pid + '-0123456789abcdef';

function benchKey(port) {
    const body = JSON.stringify({ user_id: 'bench', limits: {
        rpm: 100000000, tpm: 1000000000000, max_parallel: 10000 } });
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST',
                                   path: '/api/v1/keys',
                                   headers: { Host: 'secure',
                                              Authorization: `Bearer ${BENCH_ADMIN}`,
                                              'Content-Type': 'application/json' } },
                                 (res) => {
            let text = '';
            res.on('data', (d) => { text += d; });
            res.on('end', () => {
                if (res.statusCode !== 201) {
                    reject(new Error(`POST /api/v1/keys: ${res.statusCode} ${text}`));
                } else {
                    resolve(JSON.parse(text).key);
                }
            });
        });
        req.on('error', reject);
        req.end(body);
    });
}

// ---- load --------------------------------------------------------------------

function wrk(url, env = {}, conns = 50) {
    const r = spawnSync('wrk', [`-t${Math.min(conns, 2)}`, `-c${conns}`,
                                `-d${conns === 1 ? LAT_DUR : DUR}`, '--latency', '-s',
                                path.join(HERE, 'gwpost.lua'), url],
                        { encoding: 'utf8', timeout: 120000,
                          env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
    const m = /RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)/.exec(r.stdout);
    if (!m) throw new Error(`wrk printed no result: ${r.stdout}`);
    return { requests: +m[1], rps: +m[2], p50: +m[3], p99: +m[4], errors: +m[5],
             non2xx: +m[6] };
}

async function waitPort(port, ms = 20000) {
    const t0 = Date.now();
    for (;;) {
        const ok = await new Promise((resolve) => {
            const s = net.connect(port, '127.0.0.1');
            s.on('connect', () => { s.destroy(); resolve(true); });
            s.on('error', () => resolve(false));
        });
        if (ok) return;
        if (Date.now() - t0 > ms) throw new Error(`port ${port} did not open`);
        await sleep(100);
    }
}

function spawnBounded(cmd, args, opts) {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], ...opts });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.stderrText = () => err;
    return child;
}

async function startPortkey() {
    const start = path.join(PEERS, 'node_modules/@portkey-ai/gateway/build/start-server.js');
    if (!fs.existsSync(start)) return null;
    const port = await freePort();
    const child = spawnBounded('node', ['--require', './force-loopback.cjs', '--require',
                                        './portkey-fetch-fix.cjs', start,
                                        `--port=${port}`, '--headless'], { cwd: PEERS });
    try {
        await waitPort(port);
    } catch (e) {
        child.kill('SIGKILL');
        throw new Error(`Portkey did not start: ${child.stderrText()}`);
    }
    return { port, child };
}

async function startFake() {
    const child = spawnBounded('node', [path.join(REPO, 'tests/fixtures/fake-openai.mjs'),
                                        '--port', '0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const port = await new Promise((resolve, reject) => {
        let text = '';
        const t = setTimeout(() => reject(new Error('fake-openai did not start')), 5000);
        child.stdout.on('data', (d) => {
            text += d;
            const m = /LISTENING (\d+)/.exec(text);
            if (m) { clearTimeout(t); resolve(+m[1]); }
        });
    });
    return { port, child };
}

function procStat(pid) {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rssKb: +(/VmRSS:\s+(\d+)/.exec(s) || [])[1],
             threads: +(/Threads:\s+(\d+)/.exec(s) || [])[1] };
}

function workersStat(pids) {
    const st = pids.map(procStat);
    return { rssKb: st.reduce((a, x) => a + x.rssKb, 0), threads: st.map((x) => x.threads) };
}

// N concurrent streams of about STREAM_SECS seconds each
async function longStreams(port, workers) {
    const words = Array.from({ length: STREAM_SECS - 1 }, (_, i) => `w${i}`).join(' ');
    const body = JSON.stringify({ model: 'fake-model@fault=slow_stream:1000', stream: true,
                                  messages: [{ role: 'user', content: words }] });
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const before = workersStat(workers);
    let connected = 0, done = 0, failed = 0, chunks = 0;
    const t0 = Date.now();

    const one = () => new Promise((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions',
                                   method: 'POST', agent,
                                   headers: { 'Content-Type': 'application/json',
                                              'Content-Length': Buffer.byteLength(body) } },
                                 (res) => {
            connected++;
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; chunks += (d.match(/^data: /gm) || []).length; });
            res.on('end', () => {
                if (res.statusCode === 200 && text.includes('data: [DONE]')
                    && !text.includes('"error"')) done++;
                else failed++;
                resolve();
            });
        });
        req.on('error', () => { failed++; resolve(); });
        req.setTimeout((STREAM_SECS + 60) * 1000, () => req.destroy());
        req.end(body);
    });

    const all = Promise.all(Array.from({ length: STREAMS }, one));
    // in the middle of the streams: memory and threads with all of them open
    await sleep(Math.min(STREAM_SECS * 1000 / 2, 10000));
    const during = workersStat(workers);
    const open = connected - done - failed;
    await all;
    agent.destroy();
    return { streams: STREAMS, open_mid: open, done, failed, chunks,
             wall_s: (Date.now() - t0) / 1000, before, during,
             kb_per_stream: (during.rssKb - before.rssKb) / Math.max(open, 1) };
}

// ---- report --------------------------------------------------------------------

async function main() {
    const res = {};
    note('gateway: fake upstream (nginx return 200), slow fake (node)');
    makeCert();
    TLS.port = await freePort();
    const up = await startNginx('upstream', upstreamConf, { workers: 1 });
    const slow = await startFake();
    process.env.MAESTRO_ADMIN_KEY = BENCH_ADMIN;
    const gw = await startNginx('gateway',
                                gatewayConf(up.port, `http://127.0.0.1:${slow.port}/v1`));
    delete process.env.MAESTRO_ADMIN_KEY;
    const apiKey = await benchKey(gw.port);
    let pk = null;
    try {
        pk = await startPortkey();
    } catch (e) {
        res.portkeyError = e.message.split('\n')[0];
    }

    try {
        if (process.env.BENCH_GW_HOLD) {
            // for profiling: the servers only, for BENCH_GW_HOLD seconds
            note(`holding: upstream ${up.port}, gateway ${gw.port} (Host: secure, `
                 + `Authorization: Bearer ${apiKey}) `
                 + `(workers ${gw.workers.join(',')})`);
            await sleep(+process.env.BENCH_GW_HOLD * 1000);
            return;
        }
        for (const stream of [false, true]) {
            const key = stream ? 'stream' : 'plain';
            const p = stream ? '/stream/v1/chat/completions' : '/v1/chat/completions';
            const env = stream ? { STREAM: '1' } : {};
            note(`gateway: ${key}: direct, proxy_pass, maestro, portkey`);
            const targets = {
                direct: [`http://127.0.0.1:${up.port}${p}`, env],
                proxy: [`http://127.0.0.1:${gw.port}/proxy${p}`, env],
                maestro: [`http://127.0.0.1:${gw.port}/v1/chat/completions`,
                          { ...env, MODEL: stream ? 'fake-stream' : 'fake-model' }],
                curl: [`http://127.0.0.1:${gw.port}/v1/chat/completions`,
                       { ...env, MODEL: stream ? 'fake-stream-curl'
                                               : 'fake-model-curl' }],
            };
            targets.secure = [`http://127.0.0.1:${gw.port}/v1/chat/completions`,
                              { ...env, MODEL: stream ? 'fake-stream' : 'fake-model',
                                HOST: 'secure', BEARER: apiKey }];
            if (pk) {
                targets.portkey = [`http://127.0.0.1:${pk.port}/v1/chat/completions`,
                                   { ...env, PORTKEY: '1', CUSTOM_HOST:
                                     `http://127.0.0.1:${up.port}${stream ? '/stream' : ''}/v1` }];
            }
            const r = {}, one = {};
            for (const [k, [url, e]] of Object.entries(targets)) {
                r[k] = wrk(url, e);             // 50 connections: throughput
                one[k] = wrk(url, e, 1);        // one connection: latency
            }
            res[key] = r;
            res[`${key}_c1`] = one;
        }

        /* TLS to the provider: proxy_pass https vs Maestro's two clients */
        note('gateway: TLS to the provider: proxy_pass, maestro, maestro (libcurl)');
        res.tls = {};
        res.tls_c1 = {};
        for (const [k, url, e] of [
            ['proxy', `http://127.0.0.1:${gw.port}/proxy-tls/v1/chat/completions`, {}],
            ['maestro', `http://127.0.0.1:${gw.port}/v1/chat/completions`,
             { MODEL: 'fake-model-tls' }],
            ['curl', `http://127.0.0.1:${gw.port}/v1/chat/completions`,
             { MODEL: 'fake-model-tls-curl' }]]) {
            res.tls[k] = wrk(url, e);
            res.tls_c1[k] = wrk(url, e, 1);
        }

        note(`gateway: ${STREAMS} concurrent streams of ~${STREAM_SECS} s through maestro`);
        res.long = await longStreams(gw.port, gw.workers);
    } finally {
        if (pk) pk.child.kill('SIGTERM');
        slow.child.stdin.end();
        slow.child.kill('SIGTERM');
        await stopNginx(gw);
        await stopNginx(up);
    }

    say('4) LLM gateway: a chat completion through each gateway, same fake upstream');
    say(`   (nginx return 200 of a canned chat.completion / SSE stream), wrk -t2 -c50 -d${DUR}`);
    say();
    for (const key of ['plain', 'stream']) {
        const r = res[key];
        const rows = [];
        const names = { direct: 'upstream directly (baseline)', proxy: 'nginx proxy_pass',
                        maestro: 'Maestro pass-through',
                        secure: 'Maestro, API key + limits on',
                        curl: 'Maestro, client=libcurl', portkey: 'Portkey gateway' };
        for (const k of ['direct', 'proxy', 'maestro', 'secure', 'curl', 'portkey']) {
            if (!r[k]) continue;
            rows.push([`${names[k]}${key === 'stream' ? ', stream' : ''}`, f(r[k].rps, 0),
                       f(r[k].p50, 0), f(r[k].p99, 0),
                       k === 'direct' ? '-' : f(r[k].p50 - r.direct.p50, 0),
                       k === 'direct' ? '-' : f(r[k].p99 - r.direct.p99, 0),
                       `${r[k].errors}/${r[k].non2xx}`]);
        }
        table(['path', 'req/s', 'p50 us', 'p99 us', 'added p50', 'added p99',
               'err/non2xx'], rows);
        const c1 = res[`${key}_c1`];
        say(`   one connection (latency): p50 us ${['direct', 'proxy', 'maestro', 'curl',
                                                   'portkey']
            .filter((k) => c1[k]).map((k) => `${k} ${f(c1[k].p50, 0)}`).join(', ')};`
            + ` added p50: proxy_pass ${f(c1.proxy.p50 - c1.direct.p50, 0)},`
            + ` Maestro ${f(c1.maestro.p50 - c1.direct.p50, 0)} us`);
        say(`   Maestro / proxy_pass req/s: ${f(r.maestro.rps / r.proxy.rps, 2)}`
            + ` (API key + limits on: ${f(r.secure.rps / r.proxy.rps, 2)}`
            + `, ${f(r.secure.rps / r.maestro.rps, 2)} of off)`
            + (r.curl ? ` (client=libcurl: ${f(r.curl.rps / r.proxy.rps, 2)})` : '')
            + (r.portkey ? `;  Maestro / Portkey req/s: ${f(r.maestro.rps / r.portkey.rps, 1)}x`
                         : `;  Portkey: ${res.portkeyError || 'not installed'}`));
        say();
    }
    if (res.tls) {
        const t = res.tls, c1 = res.tls_c1;
        say('   TLS to the provider (the fake upstream\'s https listener, certificate verified,');
        say('   connections kept): a chat completion, not streamed');
        say();
        const names = { proxy: 'nginx proxy_pass https', maestro: 'Maestro, client=nginx',
                        curl: 'Maestro, client=libcurl' };
        table(['path', 'req/s', 'p50 us', 'p99 us', 'p50 us, one conn', 'err/non2xx',
               'vs proxy_pass'],
              ['proxy', 'maestro', 'curl'].filter((k) => t[k]).map((k) => [
                  names[k], f(t[k].rps, 0), f(t[k].p50, 0), f(t[k].p99, 0),
                  f(c1[k].p50, 0), `${t[k].errors}/${t[k].non2xx}`,
                  f(t[k].rps / t.proxy.rps, 2) + 'x']));
        say();
    }
    const l = res.long;
    say(`   ${l.streams} concurrent streams of ~${STREAM_SECS} s (a chunk a second) through`
        + ` Maestro: ${l.done} complete, ${l.failed} failed, ${l.open_mid} open at mid-run,`
        + ` wall ${f(l.wall_s)} s`);
    say(`     workers RSS ${f(l.before.rssKb / 1024)} MB before, ${f(l.during.rssKb / 1024)} MB`
        + ` with them open = ${f(l.kb_per_stream)} KB per stream; threads per worker`
        + ` ${l.before.threads.join('/')} before, ${l.during.threads.join('/')} during`);
    say();

    fs.mkdirSync(RESULTS, { recursive: true });
    fs.appendFileSync(path.join(RESULTS, 'latest.txt'), out.join('\n') + '\n');
    fs.writeFileSync(path.join(RESULTS, 'gateway.json'), JSON.stringify(res, null, 2) + '\n');
}

main().catch(async (e) => {
    process.stderr.write(`gateway bench failed: ${e.stack || e}\n`);
    await stopAll();
    process.exit(1);
});
