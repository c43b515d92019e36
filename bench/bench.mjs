// Maestro benchmarks: orchestration overhead vs LangGraph.js, and GET /healthz
// vs nginx's own `return 200`. Run by bench/run.sh (make bench); see
// bench/README.md for what each number means.
//
// Everything here is bounded: every child process has a timeout, nginx
// listens on 127.0.0.1 only, and every nginx started here is stopped (by its
// own master pid) before this script exits, even on error.

import { spawnSync, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
    NGINX, note, get, startNginx, stopNginx, stopAll, mainConf, httpCommon,
} from './lib/nginx.mjs';
import { f, report } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const BUILD = path.resolve(process.env.BUILD || path.join(REPO, 'build'));
const WFLOAD = path.join(BUILD, 'bench/wfload');
const COREBENCH = path.join(BUILD, 'bench/corebench');
const PEERS = path.join(BUILD, 'peers');
const RESULTS = path.join(HERE, 'results');

// sizes (override with env for a quick run: BENCH_QUICK=1)
const QUICK = !!process.env.BENCH_QUICK;
const N_TPUT = +(process.env.BENCH_N || (QUICK ? 300 : 10000));
const N_TPUT_SYNC = +(process.env.BENCH_N_SYNC || (QUICK ? 100 : 500));
const N_LAT = +(process.env.BENCH_N_LAT || (QUICK ? 50 : 200));
const N_SSE = +(process.env.BENCH_N_SSE || (QUICK ? 20 : 50));
const CONC = +(process.env.BENCH_CONC || 32);
const N_LG = +(process.env.BENCH_N_LG || (QUICK ? 300 : 2000));
const N_CORE = +(process.env.BENCH_N_CORE || (QUICK ? 1000 : 10000));
const WRK_DUR = process.env.BENCH_WRK_DURATION || (QUICK ? '3s' : '10s');
const WRK_RUNS = +(process.env.BENCH_WRK_RUNS || 3);

const { lines: out, say, table } = report();

// ---- nginx launcher -----------------------------------------------------

const SEQ5 = {
    name: 'bench5',
    entry: 'n1',
    max_steps: 10,
    nodes: Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`n${i}`,
        { agent: 'noop' }])),
    edges: [
        { from: 'n1', to: 'n2' }, { from: 'n2', to: 'n3' },
        { from: 'n3', to: 'n4' }, { from: 'n4', to: 'n5' },
        { from: 'n5', to: '$end' },
    ],
};

// a random store key for the sealed runs, read by nginx from its env
process.env.MAESTRO_BENCH_STORE_KEY = crypto.randomBytes(32).toString('hex');

function confText(prefix, port, sync, writemap, crypt = false) {
    return `${mainConf({ modules: [`${BUILD}/ngx_http_maestro_module.so`] })}
thread_pool maestro threads=4 max_queue=65536;
thread_pool maestro_io threads=2 max_queue=65536;

http {
${httpCommon(prefix)}

    maestro_store_path ${prefix}/store;
    maestro_store_size 1g;
    maestro_store_sync ${sync ? 'on' : 'off'};
    maestro_store_writemap ${writemap ? 'on' : 'off'};
    ${crypt ? 'maestro_store_encryption_key id=1 env=MAESTRO_BENCH_STORE_KEY '
              + 'active;' : ''}
    maestro_plugins_dir ${BUILD}/fixtures;
    maestro_agent noop plugin=noop.so;
    maestro_workflow bench5 ${prefix}/bench5.json;
    maestro_queue_size 4096;

    server {
        listen 127.0.0.1:${port};

        location /api/ {
            maestro_api;
            client_max_body_size 0;
        }
        location = /healthz {
            maestro_api;
        }
        location = /ok {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }

    # the limit check: the same /healthz behind Maestro's limit and behind
    # nginx's limit_req, rates that never refuse (Host picks the server)
    maestro_limit_zone name=bench size=10m;
    limit_req_zone $binary_remote_addr zone=ngxbench:10m rate=1000000r/s;

    server {
        listen 127.0.0.1:${port};
        server_name lim-maestro;
        location = /healthz {
            maestro_api;
            maestro_limit zone=bench key=ip rate=1000000r/s burst=1000000;
        }
    }

    server {
        listen 127.0.0.1:${port};
        server_name lim-nginx;
        location = /healthz {
            maestro_api;
            limit_req zone=ngxbench burst=1000000 nodelay;
        }
    }
}
`;
}

async function startBenchNginx(label, { sync, writemap = false, crypt = false }) {
    return startNginx(label, (prefix, port) => confText(prefix, port, sync, writemap,
                                                        crypt),
                      { files: { 'bench5.json': JSON.stringify(SEQ5) } });
}

// ---- runners --------------------------------------------------------------

function runJson(cmd, args, { timeoutMs, cwd } = {}) {
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs,
                                     maxBuffer: 64 << 20 });
    if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
    const lines = (r.stdout || '').trim().split('\n').filter((l) => l.startsWith('{'));
    const objs = lines.map((l) => JSON.parse(l));
    const err = objs.find((o) => o.error);
    if (err || r.status !== 0) {
        throw new Error(`${path.basename(cmd)} ${args.join(' ')}: `
            + `${err ? err.error : `exit ${r.status}`} ${r.stderr || ''}`);
    }
    return objs;
}

function wfload(srv, mode, n, extra = []) {
    const [o] = runJson(WFLOAD, ['-m', mode, '-p', String(srv.port), '-n', String(n),
                                 '-P', srv.workers.join(','), '-t', '150', ...extra],
                        { timeoutMs: 160000 });
    return o;
}

function langgraph(conc) {
    const args = ['langgraph-bench.mjs', 'seq', String(N_LG), 'memory'];
    if (conc > 1) args.push(String(conc));
    const objs = runJson('node', args, { cwd: PEERS, timeoutMs: 180000 });
    const seq = objs.find((o) => o.graph === 'seq5');
    const base = objs.find((o) => o.graph === 'plain-js-baseline');
    if (!seq) throw new Error('langgraph-bench.mjs printed no seq5 line');
    return { ...seq, plain_js_per_run_us: base ? base.per_run_us : null };
}

function parseWrk(text) {
    const rps = +(/Requests\/sec:\s+([\d.]+)/.exec(text) || [])[1];
    const toUs = (v, unit) => +v * ({ us: 1, ms: 1e3, s: 1e6 }[unit]);
    const pct = {};
    for (const m of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$/gm)) {
        pct[m[1]] = toUs(m[2], m[3]);
    }
    const non2xx = +((/Non-2xx or 3xx responses:\s+(\d+)/.exec(text) || [])[1] || 0);
    const errs = /Socket errors:.*/.exec(text);
    return { rps, p50: pct['50'], p99: pct['99'], non2xx, errs: errs ? errs[0] : '' };
}

function wrk(port, p, host) {
    const r = spawnSync('wrk', ['-t2', '-c50', `-d${WRK_DUR}`, '--latency',
                                ...(host ? ['-H', `Host: ${host}`] : []),
                                `http://127.0.0.1:${port}${p}`],
                        { encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
    return parseWrk(r.stdout);
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
// ---- the benchmarks ---------------------------------------------------------

function throughput(srv) {
    wfload(srv, 'throughput', 200, ['-c', String(CONC)]);   // warm-up
    return wfload(srv, 'throughput', N_TPUT, ['-c', String(CONC)]);
}

async function orchestration() {
    const res = {};

    note('orchestration: maestro_store_sync off');
    let srv = await startBenchNginx('nosync', { sync: false });
    try {
        wfload(srv, 'latency', 20);                         // warm-up
        res.lat = wfload(srv, 'latency', N_LAT);
        res.sse = wfload(srv, 'sse', N_SSE);
        res.tput = throughput(srv);
    } finally {
        await stopNginx(srv);
    }
    res.badNoSync = srv.bad;

    note('orchestration: maestro_store_sync off, maestro_store_writemap on');
    srv = await startBenchNginx('writemap', { sync: false, writemap: true });
    try {
        res.tputMap = throughput(srv);
    } finally {
        await stopNginx(srv);
    }
    res.badMap = srv.bad;

    note('orchestration: sync off, maestro_store_encryption_key (sealed)');
    srv = await startBenchNginx('crypt', { sync: false, crypt: true });
    try {
        res.tputCrypt = throughput(srv);
    } finally {
        await stopNginx(srv);
    }
    res.badCrypt = srv.bad;

    note('orchestration: the runner alone (corebench)');
    res.core = runJson(COREBENCH, [BUILD, String(N_CORE), '0', '0'],
                       { timeoutMs: 120000 })[0];
    res.coreMap = runJson(COREBENCH, [BUILD, String(N_CORE), '0', '1'],
                          { timeoutMs: 120000 })[0];
    res.coreCrypt = runJson(COREBENCH, [BUILD, String(N_CORE), '0', '0', '1'],
                            { timeoutMs: 120000 })[0];

    note('orchestration: maestro_store_sync on');
    srv = await startBenchNginx('sync', { sync: true });
    try {
        wfload(srv, 'latency', 10);
        res.latSync = wfload(srv, 'latency', Math.min(N_LAT, 100));
        res.tputSync = wfload(srv, 'throughput', N_TPUT_SYNC, ['-c', String(CONC)]);
    } finally {
        await stopNginx(srv);
    }
    res.badSync = srv.bad;

    note(`LangGraph.js: seq ${N_LG} memory (concurrency 1, then ${CONC})`);
    try {
        res.lg = langgraph(1);
        res.lgConc = langgraph(CONC);
    } catch (e) {
        res.lgError = e.message.split('\n')[0];
    }
    return res;
}

async function healthz() {
    note(`healthz: wrk -t2 -c50 -d${WRK_DUR} x${WRK_RUNS}, alternating`);
    const srv = await startBenchNginx('healthz', { sync: false });
    /* name -> [path, Host] */
    const targets = { '/healthz': ['/healthz'], '/ok': ['/ok'],
                      'maestro_limit': ['/healthz', 'lim-maestro'],
                      'limit_req': ['/healthz', 'lim-nginx'] };
    const runs = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
    try {
        for (const [k, [p, host]] of Object.entries(targets)) { // body check
            const r = await fetch(`http://127.0.0.1:${srv.port}${p}`,
                                  { headers: host ? { Host: host } : {} });
            const text = await r.text();
            if (r.status !== 200) throw new Error(`GET ${k} -> ${r.status}`);
            runs[k].body = text.length;
        }
        spawnSync('wrk', ['-t2', '-c50', '-d1s', `http://127.0.0.1:${srv.port}/healthz`],
                  { timeout: 10000 });                       // warm-up
        const names = Object.keys(targets);
        for (let i = 0; i < WRK_RUNS; i++) {
            const order = i % 2 ? [...names].reverse() : names;
            for (const k of order) {
                runs[k].push(wrk(srv.port, ...targets[k]));
            }
        }
    } finally {
        await stopNginx(srv);
    }
    const summary = {};
    for (const [p, rs] of Object.entries(runs)) {
        const mid = median(rs.map((r) => r.rps));
        const at = rs.find((r) => r.rps === mid);
        summary[p] = { rps: mid, all: rs.map((r) => r.rps), p50: at.p50, p99: at.p99,
                       non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
                       errs: rs.map((r) => r.errs).filter(Boolean), body: rs.body };
    }
    summary.bad = srv.bad;
    return summary;
}

function machine() {
    const v = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
    const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
    let git = '';
    try {
        git = execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%h %s'],
                           { encoding: 'utf8' }).trim();
    } catch { /* not a repository */ }
    return {
        date: new Date().toISOString(),
        nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
        cpu, mem: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
        kernel: os.release(),
        load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
        nginx: (v.stderr || v.stdout).trim().replace(/^nginx version: /, ''),
        node: process.version,
        wrk: (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout || '').split('\n')[0],
        git,
    };
}

async function main() {
    const m = machine();
    const t0 = Date.now();
    say('Maestro benchmarks');
    say(`  date ${m.date}   nproc ${m.nproc}   cpu ${m.cpu}   mem ${m.mem}`);
    say(`  nginx ${m.nginx}   node ${m.node}   kernel ${m.kernel}   load avg at start ${m.load}`);
    say(`  ${m.wrk}`);
    say(`  tree ${m.git}${QUICK ? '   (BENCH_QUICK: reduced sizes)' : ''}`);
    say('  nginx: worker_processes 2, thread_pool maestro threads=4, '
        + 'maestro_io threads=2, access_log off; client and server share the CPUs');
    say();

    const o = await orchestration();
    const h = await healthz();

    say('1) Orchestration overhead: 5-step sequential workflow of the noop agent');
    say('   (n1 -> n2 -> n3 -> n4 -> n5, every step checkpointed in LMDB), '
        + `submitted over HTTP by bench/wfload (C)`);
    say();
    const tp = o.tput, ts = o.tputSync, tm = o.tputMap;
    const lgUs = o.lg ? o.lg.per_node_us : NaN;
    const lgcUs = o.lgConc ? o.lgConc.per_node_us : NaN;
    const rows = [
        [`Maestro, sync off, ${tp.n} wf, ${tp.conc} conns`, f(tp.wps), f(tp.per_step_us),
         f(lgUs / tp.per_step_us, 2) + 'x'],
        [`Maestro, sync off, writemap on, ${tm.n} wf, ${tm.conc} conns`, f(tm.wps),
         f(tm.per_step_us), f(lgUs / tm.per_step_us, 2) + 'x'],
        [`Maestro, sync off, sealed (encryption key), ${o.tputCrypt.n} wf, `
         + `${o.tputCrypt.conc} conns`, f(o.tputCrypt.wps), f(o.tputCrypt.per_step_us),
         f(lgUs / o.tputCrypt.per_step_us, 2) + 'x'],
        [`Maestro, sync on (fsync), ${ts.n} wf, ${ts.conc} conns`, f(ts.wps),
         f(ts.per_step_us), f(lgUs / ts.per_step_us, 2) + 'x'],
        [`Maestro, sync off, latency p50 / 5 (sequential)`, f(1e6 / o.lat.p50_us),
         f(o.lat.per_step_p50_us), f(lgUs / o.lat.per_step_p50_us, 2) + 'x'],
        [`Maestro, sync on,  latency p50 / 5 (sequential)`, f(1e6 / o.latSync.p50_us),
         f(o.latSync.per_step_p50_us), f(lgUs / o.latSync.per_step_p50_us, 2) + 'x'],
        [`Maestro, sync off, SSE stream latency p50 / 5`, f(1e6 / o.sse.p50_us),
         f(o.sse.per_step_p50_us), f(lgUs / o.sse.per_step_p50_us, 2) + 'x'],
        [`runner alone (corebench), sync off, one thread`, f(o.core.workflows_per_s),
         f(o.core.us_per_step), f(lgUs / o.core.us_per_step, 2) + 'x'],
        [`runner alone (corebench), sync off, writemap on`, f(o.coreMap.workflows_per_s),
         f(o.coreMap.us_per_step), f(lgUs / o.coreMap.us_per_step, 2) + 'x'],
        [`runner alone (corebench), sync off, sealed`, f(o.coreCrypt.workflows_per_s),
         f(o.coreCrypt.us_per_step), f(lgUs / o.coreCrypt.us_per_step, 2) + 'x'],
    ];
    if (o.lg) {
        rows.push([`LangGraph.js MemorySaver, ${o.lg.runs} runs, conc 1 (baseline)`,
                   f(o.lg.workflows_per_s), f(lgUs), '1.00x']);
        rows.push([`LangGraph.js MemorySaver, ${o.lgConc.runs} runs, conc ${o.lgConc.concurrency}`,
                   f(o.lgConc.workflows_per_s), f(lgcUs), f(lgUs / lgcUs, 2) + 'x']);
    } else {
        rows.push(['LangGraph.js', 'n/a', 'n/a', `(${o.lgError})`]);
    }
    table(['system', 'workflows/s', 'us/step', 'ratio LG/this'], rows);
    say();
    say(`   ratio = LangGraph.js per-node time (concurrency 1) / this row's per-step time;`);
    say('   > 1 means Maestro spends less wall time per step. Issue target: >= 50x.');
    say(`   Throughput (sync off): wall ${f(tp.wall_ms)} ms (submit phase ${f(tp.submit_ms)} ms),`
        + ` 503 retries ${tp.retries_503}, not complete ${tp.not_complete}`);
    say(`     server CPU ${f(tp.server_cpu_ms)} ms = ${f(tp.server_cpu_per_step_us)} us CPU per step`
        + ` (2 workers + pool threads); client CPU ${f(tp.client_cpu_ms)} ms`
        + ` (${f(100 * tp.client_cpu_ms / tp.wall_ms)}% of one core)`);
    say(`   Throughput (sync on): wall ${f(ts.wall_ms)} ms, server CPU ${f(ts.server_cpu_per_step_us)}`
        + ` us/step, client CPU ${f(100 * ts.client_cpu_ms / ts.wall_ms)}% of one core,`
        + ` not complete ${ts.not_complete}`);
    say(`   Latency (sync off, ${o.lat.n} sequential): p50 ${f(o.lat.p50_us)} us, p90 ${f(o.lat.p90_us)},`
        + ` p99 ${f(o.lat.p99_us)}, min ${f(o.lat.min_us)};`
        + ` server timings.total_ms p50 ${f(o.lat.server_total_ms_p50)};`
        + ` ${f(o.lat.polls_per_run)} GETs per run`);
    say(`   Latency (sync on, ${o.latSync.n} sequential): p50 ${f(o.latSync.p50_us)} us,`
        + ` p99 ${f(o.latSync.p99_us)}`);
    say(`   SSE (${o.sse.n} sequential POST /api/v1/stream/workflow to "done"): p50 ${f(o.sse.p50_us)} us,`
        + ` p99 ${f(o.sse.p99_us)} (wake-up of subscribers follows maestro_poll_interval)`);
    if (o.lg) {
        say(`   LangGraph.js: in-process, no HTTP, in-memory checkpointer; plain-JS floor`
            + ` for the same 5 calls is ~${f(o.lg.plain_js_per_run_us, 2)} us per run.`);
    }
    say();

    say('2) GET /healthz (maestro_api) vs location = /ok { return 200 ... } (same nginx, same config)');
    say(`   wrk -t2 -c50 -d${WRK_DUR} --latency, ${WRK_RUNS} runs each, alternating; median run`);
    say();
    const hz = h['/healthz'], ok = h['/ok'];
    table(['endpoint', 'req/s', 'p50 us', 'p99 us', 'runs (req/s)', 'ratio'], [
        ['nginx return 200 /ok (baseline)', f(ok.rps, 0), f(ok.p50, 0), f(ok.p99, 0),
         ok.all.map((x) => f(x, 0)).join(' '), '1.00'],
        ['maestro GET /healthz', f(hz.rps, 0), f(hz.p50, 0), f(hz.p99, 0),
         hz.all.map((x) => f(x, 0)).join(' '), f(hz.rps / ok.rps, 2)],
    ]);
    say('   ratio = req/s of the row / req/s of the baseline (1.00 = as fast as nginx alone)');
    if (hz.non2xx || ok.non2xx) say(`   non-2xx: /healthz ${hz.non2xx}, /ok ${ok.non2xx}`);
    for (const e of [...hz.errs, ...ok.errs]) say(`   wrk: ${e}`);

    const ml = h.maestro_limit, lr = h.limit_req;
    const added = (x) => 1e6 / x.rps - 1e6 / hz.rps;   // us per request
    say();
    say('3) the limit check: the same GET /healthz behind maestro_limit and behind nginx limit_req');
    say('   (key ip, rates that never refuse; same nginx, same run, alternating)');
    say();
    table(['limiter', 'req/s', 'p50 us', 'p99 us', 'runs (req/s)', 'vs limit_req'], [
        ['nginx limit_req', f(lr.rps, 0), f(lr.p50, 0), f(lr.p99, 0),
         lr.all.map((x) => f(x, 0)).join(' '), '1.00'],
        ['maestro_limit', f(ml.rps, 0), f(ml.p50, 0), f(ml.p99, 0),
         ml.all.map((x) => f(x, 0)).join(' '), f(ml.rps / lr.rps, 2)],
    ]);
    say(`   cost per request (limiter minus plain /healthz): limit_req ${f(added(lr), 2)} us,`
        + ` maestro_limit ${f(added(ml), 2)} us; time per request maestro / limit_req:`
        + ` ${f(lr.rps / ml.rps, 2)}x (target <= 1.2x)`);
    if (ml.non2xx || lr.non2xx) say(`   non-2xx: maestro_limit ${ml.non2xx}, limit_req ${lr.non2xx}`);
    for (const b of [o.badNoSync, o.badMap, o.badCrypt, o.badSync, h.bad].filter((x) => x && x.length)) {
        say(`   WARNING error.log: ${b.length} alert/crit lines, e.g. ${b[0]}`);
    }
    say();
    say(`total bench time ${f((Date.now() - t0) / 1000)} s`);

    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'latest.txt'), out.join('\n') + '\n');
    fs.writeFileSync(path.join(RESULTS, 'latest.json'),
                     JSON.stringify({ machine: m, orchestration: o, healthz: h }, null, 2) + '\n');
}

main().catch(async (e) => {
    process.stderr.write(`bench failed: ${e.stack || e}\n`);
    await stopAll();
    process.exit(1);
});
