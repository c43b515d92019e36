// Fan-out benchmark (issue #4): Maestro's SSE and WebSocket subscribers
// next to nchan's, same nginx binary, same worker settings, same machine,
// same number of subscribers, events of the same size at the same rate.
// Run by bench/run.sh after bench.mjs (BENCH_ONLY=fanout runs only this);
// see bench/README.md, section 3.
//
// For every scenario (transport x subscribers x workflows) it starts a fresh
// nginx with Maestro, submits the workflows, opens the subscribers with the
// C load client (build/bench/fanload) and measures while an agent emits
// events; then a fresh nginx with nchan, the same subscribers, and the
// client publishes the same number of events of the same size at the same
// rate. Everything is bounded: child processes have timeouts, nginx
// listens on 127.0.0.1 only and every nginx started here is stopped (by
// its own master pid) before this script exits.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
    NGINX, note, sleep, get, mainConf, httpCommon, startNginx, stopNginx,
    stopAll,
} from './lib/nginx.mjs';
import { f, pad, report } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const BUILD = path.resolve(process.env.BUILD || path.join(REPO, 'build'));
const NCHAN = process.env.NCHAN_MODULE || '/usr/lib/nginx/modules/ngx_nchan_module.so';
const FANLOAD = path.join(BUILD, 'bench/fanload');
const RESULTS = path.join(HERE, 'results');
const MARK = '3) Fan-out:';

const QUICK = !!process.env.BENCH_QUICK;
const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== ''
    ? process.env[k] : d);
const N_SSE = +env('BENCH_FANOUT_SSE', QUICK ? 1000 : 10000);
const N_WS = +env('BENCH_FANOUT_WS', QUICK ? 200 : 1000);
const WFS = String(env('BENCH_FANOUT_WFS', '1,100')).split(',').map(Number);
const FLUSH_MS = +env('BENCH_FANOUT_FLUSH_MS', 100);
const WRITEMAP = env('BENCH_FANOUT_WRITEMAP', '') === '1';
const POLL_MS = +env('BENCH_FANOUT_POLL_MS', 10);
const WARM_MS = +env('BENCH_FANOUT_WARM_MS', 1000);
const WIN_MS = +env('BENCH_FANOUT_WINDOW_MS', QUICK ? 2000 : 6000);
const EMIT_MS = WARM_MS + WIN_MS + 2000;     // the sleep step / publishing
const TRANSPORTS = String(env('BENCH_FANOUT_TRANSPORTS', 'sse,ws')).split(',');
const SYSTEMS = String(env('BENCH_FANOUT_SYSTEMS', 'maestro,nchan')).split(',');

// worker_rlimit_nofile 50000, unless the hard limit is lower (a container
// without CAP_SYS_RESOURCE: setrlimit() would fail with an [alert])
const HARD_NOFILE = (() => {
    const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
    const v = (r.stdout || '').trim();
    return v === 'unlimited' ? Infinity : +v || 50000;
})();
const NOFILE = Math.min(50000, HARD_NOFILE);

const { lines: out, say, table } = report();

// ---- nginx launcher (the style of bench.mjs) ----------------------------


function maestroConf(prefix, port) {
    return `${mainConf({ modules: [`${BUILD}/ngx_http_maestro_module.so`],
                        nofile: NOFILE, connections: 20000 })}
thread_pool maestro threads=128 max_queue=65536;
thread_pool maestro_io threads=2 max_queue=65536;

http {
${httpCommon(prefix)}

    maestro_store_path ${prefix}/store;
    maestro_store_size 1g;
    maestro_store_sync off;
    maestro_store_writemap ${WRITEMAP ? 'on' : 'off'};
    maestro_plugins_dir ${BUILD}/fixtures;
    maestro_agent sleep plugin=sleep.so;
    maestro_agent fail plugin=fail.so;
    maestro_flush_interval ${FLUSH_MS}ms;
    maestro_poll_interval ${POLL_MS}ms;
    maestro_ws_ping 300s;
    maestro_queue_size 4096;

    server {
        listen 127.0.0.1:${port} backlog=4096;
        location /api/ {
            maestro_api;
            client_max_body_size 0;
        }
        location = /healthz {
            maestro_api;
        }
    }
}
`;
}

function nchanConf(prefix, port) {
    return `${mainConf({ modules: [NCHAN], nofile: NOFILE, connections: 20000 })}
http {
${httpCommon(prefix)}

    server {
        listen 127.0.0.1:${port} backlog=4096;
        location = /healthz {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
        location ~ ^/pub/(\\w+)$ {
            nchan_publisher;
            nchan_channel_id $1;
        }
        location ~ ^/sub/(\\w+)$ {
            nchan_subscriber websocket eventsource;
            nchan_channel_id $1;
        }
    }
}
`;
}

// fan-out needs both workers up and past their init before it measures
async function startFanNginx(label, confFn) {
    const srv = await startNginx(label, confFn);
    if (srv.workers.length < 2) throw new Error(`nginx (${label}): workers not found`);
    await sleep(200);
    return srv;
}

// thousands of connections can take a while to close
const stopFanNginx = (srv) => stopNginx(srv, { killAfterMs: 10000 });

// ---- the load client ----------------------------------------------------

// runs fanload; resolves with { ready, result } (its two JSON lines)
function fanload(args, timeoutMs) {
    return new Promise((resolve, reject) => {
        const child = spawn(FANLOAD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        const res = {};
        let stderr = '';
        const t = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`fanload timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        child.stderr.on('data', (d) => { stderr += d; });
        readline.createInterface({ input: child.stdout }).on('line', (l) => {
            if (!l.startsWith('{')) return;
            const o = JSON.parse(l);
            if (o.phase) res[o.phase] = o;
            else res.result = o;
        });
        child.on('exit', (code) => {
            clearTimeout(t);
            if (!res.result) {
                reject(new Error(`fanload exit ${code}: ${stderr}`));
            } else {
                res.code = code;
                resolve(res);
            }
        });
    });
}

// ---- Maestro --------------------------------------------------------------

// a workflow that is idle while the subscribers connect (the "gate" fails
// once and waits for its retry's backoff, without events), then runs the
// sleep agent for EMIT_MS: one agent_status event per maestro_flush_interval
function fanGraph(gateMs) {
    return {
        name: 'fanout',
        entry: 'gate',
        max_steps: 5,
        nodes: {
            gate: { agent: 'fail', config: { fail_times: 1 },
                    retry: { max: 1, backoff_ms: gateMs } },
            /* progress once per flush: one call per event, as nchan's
               publisher POSTs once per message */
            emit: { agent: 'sleep', config: { ms: EMIT_MS, tick_ms: FLUSH_MS },
                    timeout_ms: EMIT_MS + 60000 },
        },
        edges: [{ from: 'gate', to: 'emit' }, { from: 'emit', to: '$end' }],
    };
}

async function postJson(port, p, body) {
    const r = await fetch(`http://127.0.0.1:${port}${p}`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body), signal: AbortSignal.timeout(5000),
    });
    return { status: r.status, json: await r.json() };
}

async function wfGet(port, id) {
    const r = await get(port, `/api/v1/workflows/${id}`, 5000);
    return r.status === 200 ? JSON.parse(r.text) : null;
}

// mean size of the agent_status "data" of a finished workflow's stream
async function agentStatusSize(port, id) {
    const r = await get(port, `/api/v1/workflows/${id}/events`, 10000);
    const sizes = [];
    const re = /^event: agent_status\ndata: (.*)$/gm;
    for (const m of r.text.matchAll(re)) {
        if (m[1].includes('"sleeping"')) sizes.push(Buffer.byteLength(m[1]));
    }
    return sizes.length ? Math.round(sizes.reduce((a, b) => a + b) / sizes.length) : 0;
}

async function runMaestro(transport, nsubs, nwf) {
    const label = `maestro-${transport}-${nsubs}-${nwf}`;
    note(`${label}: ${nsubs} ${transport} subscribers over ${nwf} workflow(s)`);
    const srv = await startFanNginx(label, maestroConf);
    const gateMs = 3000 + Math.round(nsubs * 0.4);
    let res, wfs = [];
    try {
        const graph = fanGraph(gateMs);
        for (let i = 0; i < nwf; i++) {
            const r = await postJson(srv.port, '/api/v1/workflows',
                                     { prompt: `fan-out ${i}`, workflow: graph });
            if (r.status !== 202) throw new Error(`submit: ${r.status} ${JSON.stringify(r.json)}`);
            wfs.push({ id: r.json.id });
        }
        // every gate has failed once and waits: note each workflow's last id
        const tGate = Date.now();
        for (const w of wfs) {
            for (;;) {
                const rec = await wfGet(srv.port, w.id);
                const g = rec && rec.agents && rec.agents.gate;
                if (g && g.attempts >= 1 && g.status === 'waiting') {
                    w.last = rec.last_event_id;
                    break;
                }
                if (Date.now() - tGate > 10000) throw new Error(`gate of ${w.id} not waiting`);
                await sleep(20);
            }
        }
        const suffix = transport === 'ws' ? 'ws' : 'events';
        const paths = path.join(srv.prefix, 'paths.txt');
        fs.writeFileSync(paths, wfs.map((w) =>
            `/api/v1/workflows/${w.id}/${suffix}?last_event_id=${w.last}`).join('\n') + '\n');

        res = await fanload(['-m', transport, '-p', String(srv.port), '-n', String(nsubs),
                             '-f', paths, '-P', srv.workers.join(','),
                             '-w', String(WARM_MS), '-W', String(WIN_MS),
                             '-F', String(gateMs + 15000),
                             '-t', String((gateMs + EMIT_MS) / 1000 + 60)],
                            (gateMs + EMIT_MS) + 90000);
        res.gate_ms = gateMs;
        res.gate_left_ms = gateMs - (Date.now() - tGate);

        // what each workflow wrote while the subscribers listened (they
        // should all be complete by now; wait a little for stragglers)
        let written = 0, complete = 0, expected = 0;
        const tEnd = Date.now();
        for (const w of wfs) {
            let rec;
            for (;;) {
                rec = await wfGet(srv.port, w.id);
                if (!rec || rec.status !== 'running' || Date.now() - tEnd > 10000) break;
                await sleep(50);
            }
            w.written = rec ? rec.last_event_id - w.last : 0;
            w.status = rec ? rec.status : 'unknown';
            written += w.written;
            if (rec && rec.status === 'complete') complete++;
        }
        for (let k = 0; k < nsubs; k++) expected += wfs[k % nwf].written;
        res.written_per_wf = written / nwf;
        res.rate_per_wf = res.written_per_wf / (EMIT_MS / 1000);
        res.expected_deliveries = expected;
        res.wf_complete = complete;
        res.wf_not_complete = [];
        for (const w of wfs.filter((x) => x.status !== 'complete').slice(0, 3)) {
            const rec = await wfGet(srv.port, w.id);
            res.wf_not_complete.push(rec ? {
                id: w.id, status: rec.status, last_event_id: rec.last_event_id,
                gate: rec.agents && rec.agents.gate, emit: rec.agents && rec.agents.emit,
            } : { id: w.id, status: 'unreadable' });
        }
        const done = wfs.find((x) => x.status === 'complete');
        res.payload = done ? await agentStatusSize(srv.port, done.id) : 0;
    } finally {
        await stopFanNginx(srv);
    }
    res.bad = srv.bad;
    res.stuck = !!srv.stuck;
    return res;
}

// ---- nchan ------------------------------------------------------------------

async function runNchan(transport, nsubs, nchans, ratePerChan, size) {
    const label = `nchan-${transport}-${nsubs}-${nchans}`;
    note(`${label}: ${nsubs} ${transport} subscribers over ${nchans} channel(s),`
         + ` ${ratePerChan.toFixed(1)} msg/s per channel, ${size} B`);
    const srv = await startFanNginx(label, nchanConf);
    let res;
    try {
        const paths = path.join(srv.prefix, 'paths.txt');
        fs.writeFileSync(paths, Array.from({ length: nchans }, (_, i) => `/sub/c${i}`)
            .join('\n') + '\n');
        const secs = EMIT_MS / 1000;
        res = await fanload(['-m', transport, '-p', String(srv.port), '-n', String(nsubs),
                             '-f', paths, '-P', srv.workers.join(','),
                             '-w', String(WARM_MS), '-W', String(WIN_MS),
                             '-F', '15000', '-t', String(secs + 90),
                             '--pub-port', String(srv.port), '--pub-chans', String(nchans),
                             '--pub-rate', String(ratePerChan), '--pub-secs', String(secs),
                             '--pub-size', String(size), '--pub-conns', '16',
                             '--pub-prefix', '/pub/c'],
                            secs * 1000 + 120000);
        res.expected_deliveries = res.result.published * (nsubs / nchans);
    } finally {
        await stopFanNginx(srv);
    }
    res.bad = srv.bad;
    res.stuck = !!srv.stuck;
    return res;
}

// ---- report ---------------------------------------------------------------

function metrics(run) {
    const r = run.result;
    const conns = r.connected || 1;
    return {
        eps: r.events_per_s,
        p50: r.p50_ms, p99: r.p99_ms,
        cpu_us: r.window_deliveries ? r.server_cpu_ms * 1e3 / r.window_deliveries : NaN,
        mem_kb: (r.rss_idle_kb - r.rss_before_kb) / conns,
        anon_kb: (r.anon_idle_kb - r.anon_before_kb) / conns,
        mem_end_kb: (r.rss_end_kb - r.rss_before_kb) / conns,
        client_pct: 100 * r.client_cpu_ms / r.window_ms,
        server_pct: 100 * r.server_cpu_ms / r.window_ms,
        client_us: r.window_deliveries ? r.client_cpu_ms * 1e3 / r.window_deliveries : NaN,
        delivered: r.total_deliveries,
        expected: run.expected_deliveries,
    };
}

function machine() {
    const v = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
    const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
    let git = '', nchan = '';
    try {
        git = execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%h %s'],
                           { encoding: 'utf8' }).trim();
    } catch { /* not a repository */ }
    try {
        nchan = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'],
                             { encoding: 'utf8' }).trim();
    } catch { /* not from a package */ }
    return {
        date: new Date().toISOString(),
        nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
        cpu, load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
        nginx: (v.stderr || v.stdout).trim().replace(/^nginx version: /, ''),
        nchan, git, modified: gitDirty(),
        so_built: (() => {
            try {
                return fs.statSync(path.join(BUILD, 'ngx_http_maestro_module.so'))
                    .mtime.toISOString();
            } catch { return '?'; }
        })(),
    };
}

function gitDirty() {
    try {
        return execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no',
                                    '--', 'ngx_maestro_module'], { encoding: 'utf8' })
            .split('\n').filter(Boolean).map((l) => l.slice(3));
    } catch {
        return [];
    }
}

async function main() {
    for (const f of [FANLOAD, path.join(BUILD, 'fixtures/sleep.so'),
                     path.join(BUILD, 'fixtures/fail.so')]) {
        if (!fs.existsSync(f)) throw new Error(`${f} is missing`);
    }
    const haveNchan = fs.existsSync(NCHAN);
    const m = machine();
    const t0 = Date.now();
    const runs = [];

    for (const transport of TRANSPORTS) {
        const nsubs = transport === 'ws' ? N_WS : N_SSE;
        for (const nwf of WFS) {
            const row = { transport, nsubs, nwf };
            runs.push(row);
            try {
                if (SYSTEMS.includes('maestro')) {
                    row.maestro = await runMaestro(transport, nsubs, nwf);
                }
            } catch (e) {
                row.maestroError = e.message.split('\n')[0];
                note(`maestro ${transport} ${nsubs}/${nwf}: ${row.maestroError}`);
            }
            try {
                if (SYSTEMS.includes('nchan') && haveNchan) {
                    const rate = row.maestro ? row.maestro.rate_per_wf : 1000 / FLUSH_MS;
                    const size = row.maestro && row.maestro.payload ? row.maestro.payload
                        : (runs.find((x) => x.maestro && x.maestro.payload) || { maestro: { payload: 250 } })
                            .maestro.payload;
                    row.nchan = await runNchan(transport, nsubs, nwf, rate, size);
                }
            } catch (e) {
                row.nchanError = e.message.split('\n')[0];
                note(`nchan ${transport} ${nsubs}/${nwf}: ${row.nchanError}`);
            }
        }
    }

    say(`${MARK} Maestro SSE / WebSocket subscribers vs nchan (same nginx, same machine)`);
    say(`   date ${m.date}   nproc ${m.nproc}   cpu ${m.cpu}   load avg at start ${m.load}`);
    say(`   nginx ${m.nginx}   nchan ${m.nchan || (haveNchan ? '?' : 'missing')}`
        + `   tree ${m.git}${m.modified.length ? ` + uncommitted ${m.modified.join(' ')}` : ''}`
        + `   (module .so built ${m.so_built})`);
    say('   both: worker_processes 2, worker_connections 20000, worker_rlimit_nofile'
        + ` ${NOFILE}${NOFILE < 50000 ? ' (the hard limit here; 50000 is refused)' : ''},`
        + ' access_log off;');
    say(`   Maestro: maestro_poll_interval ${POLL_MS}ms, maestro_flush_interval ${FLUSH_MS}ms`
        + ` (the sleep agent: one agent_status per flush), store sync off;`);
    say('   nchan: the client POSTs each message (the same size as Maestro\'s agent_status'
        + ' data, "ts" embedded) at the same per-channel rate.');
    say(`   window ${WIN_MS} ms after ${WARM_MS} ms of warm-up; latency = receipt - "ts"`
        + ' (ms resolution, same clock); load client: build/bench/fanload (C, epoll)');
    say();

    const rows = [];
    const warns = [];
    for (const r of runs) {
        const wfLabel = `${r.nwf} ${r.nwf === 1 ? 'topic' : 'topics'}`;
        const mm = r.maestro ? metrics(r.maestro) : null;
        const nm = r.nchan ? metrics(r.nchan) : null;
        const line = (sys, x, ratios) => [sys, r.transport.toUpperCase(),
            `${x.subs}`, wfLabel, f(x.eps, 0), f(x.p50, 1), f(x.p99, 1),
            f(x.cpu_us, 2), f(x.mem_kb, 2), ...ratios];
        if (mm) {
            rows.push(line('Maestro', { ...mm, subs: r.maestro.result.connected },
                           nm ? [f(mm.cpu_us / nm.cpu_us, 2) + 'x',
                                 f(mm.mem_kb / nm.mem_kb, 2) + 'x'] : ['n/a', 'n/a']));
        } else if (r.maestroError) {
            rows.push(['Maestro', r.transport.toUpperCase(), r.nsubs, wfLabel,
                       `FAILED: ${r.maestroError.slice(0, 60)}`, '', '', '', '', '', '']);
        }
        if (nm) {
            rows.push(line('nchan', { ...nm, subs: r.nchan.result.connected }, ['1.00x', '1.00x']));
        } else if (r.nchanError) {
            rows.push(['nchan', r.transport.toUpperCase(), r.nsubs, wfLabel,
                       `FAILED: ${r.nchanError.slice(0, 60)}`, '', '', '', '', '', '']);
        }
    }
    table(['system', 'transport', 'subscribers', 'workflows/channels', 'events/s delivered',
           'p50 ms', 'p99 ms', 'CPU us/event', 'KB/idle conn', 'CPU vs nchan',
           'mem vs nchan'], rows);
    say();
    say('   events/s = deliveries to all subscribers in the window / window; CPU us/event ='
        + ' utime+stime of both workers');
    say('   (all threads, /proc) over the window / deliveries in it; KB/idle conn = VmRSS'
        + ' of the workers after');
    say('   opening the idle subscribers - before, / subscribers. Issue target: both'
        + ' ratios <= 1.5x.');
    say();
    for (const r of runs) {
        for (const [sys, run] of [['Maestro', r.maestro], ['nchan', r.nchan]]) {
            if (!run) continue;
            const x = metrics(run), o = run.result;
            const src = sys === 'Maestro'
                ? `${f(run.rate_per_wf, 1)} events/s per workflow written (${f(run.written_per_wf, 0)}`
                  + ` each), ${run.wf_complete}/${r.nwf} complete, payload ${run.payload} B`
                : `${o.published} published in ${f(o.pub_ms / 1000, 1)} s (planned`
                  + ` ${f(EMIT_MS / 1000, 1)} s, ${o.pub_errors} errors), payload ${o.pub_size} B`;
            say(`   ${pad(`${sys} ${r.transport} ${o.connected}/${r.nwf}:`, 22)} ${src};`
                + ` delivered ${x.delivered}/${f(x.expected, 0)} over ${f(o.source_ms / 1000, 1)} s;`
                + ` connect ${f(o.connect_ms, 0)} ms; server CPU ${f(x.server_pct, 0)}%,`
                + ` client CPU ${f(x.client_pct, 0)}% (${f(x.client_us, 2)} us/event);`
                + ` p90 ${f(o.p90_ms, 1)} max ${f(o.max_ms, 1)} ms;`
                + ` RssAnon ${f(x.anon_kb, 2)} KB/conn idle, VmRSS after traffic`
                + ` ${f(x.mem_end_kb, 2)} KB/conn; per worker: idle RSS +`
                + `${o.worker_rss_idle_delta_kb.map((v) => f(v, 0)).join('/')} KB,`
                + ` CPU ${o.worker_cpu_ms.map((v) => f(v, 0)).join('/')} ms`);
            for (const w of run.wf_not_complete || []) {
                warns.push(`${sys} ${r.transport} ${o.connected}/${r.nwf}: workflow ${w.id}`
                    + ` still ${w.status} 10 s after the last delivery: ${JSON.stringify(w)}`);
            }
            if (o.failed || o.error || o.pre_ready_deliveries || o.bad_status
                || (x.expected && x.delivered < x.expected)) {
                warns.push(`${sys} ${r.transport} ${o.connected}/${r.nwf}: failed ${o.failed}`
                    + ` (${o.first_bad || ''}), pre-ready deliveries ${o.pre_ready_deliveries},`
                    + ` delivered ${x.delivered} of ${f(x.expected, 0)}, error "${o.error}"`);
            }
            if (run.bad && run.bad.length) {
                warns.push(`${sys} ${r.transport} ${o.connected}/${r.nwf}: error.log has`
                    + ` ${run.bad.length} alert/crit lines, e.g. ${run.bad[0]}`);
            }
            if (run.stuck) warns.push(`${sys} ${r.transport}: nginx did not stop on SIGQUIT`);
        }
    }
    for (const w of warns) say(`   WARNING ${w}`);
    say();
    say(`fan-out bench time ${f((Date.now() - t0) / 1000)} s`);

    fs.mkdirSync(RESULTS, { recursive: true });
    const latest = path.join(RESULTS, 'latest.txt');
    let prev = '';
    try { prev = fs.readFileSync(latest, 'utf8'); } catch { /* first run */ }
    const cut = prev.indexOf(MARK);          // replace an earlier fan-out section
    if (cut >= 0) prev = prev.slice(0, cut);
    if (prev && !prev.endsWith('\n\n')) prev += '\n';
    fs.writeFileSync(latest, prev + out.join('\n') + '\n');
    fs.writeFileSync(path.join(RESULTS, 'fanout.json'),
                     JSON.stringify({ machine: m, runs }, null, 2) + '\n');
}

main().catch(async (e) => {
    process.stderr.write(`fan-out bench failed: ${e.stack || e}\n`);
    await stopAll();
    process.exit(1);
});
