// Starting and stopping the nginx instances of the benchmarks: each in a
// fresh temporary prefix, on a free port of 127.0.0.1, stopped (SIGQUIT
// to its own master, SIGKILL after 5 s) before the script exits, even on
// error or Ctrl-C. Shared by bench.mjs and gateway.mjs.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const NGINX = process.env.NGINX || '/usr/sbin/nginx';

const started = [];          // nginx masters started here

export function note(line) { // progress, not part of the report
    process.stderr.write(`# ${line}\n`);
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

export async function get(port, p, ms = 1000) {
    try {
        const r = await fetch(`http://127.0.0.1:${port}${p}`,
                              { signal: AbortSignal.timeout(ms) });
        return { status: r.status, text: await r.text() };
    } catch {
        return { status: 0, text: '' };
    }
}

// "user root root;" when run as root (the workers must read the prefix)
export function userLine() {
    return process.getuid && process.getuid() === 0 ? 'user root root;' : '';
}

// the start of every http {}: no access log, long keep-alive, temp paths
export function httpCommon(prefix) {
    return `    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path ${prefix}/tmp/body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;`;
}

// the main context every benchmark nginx shares: foreground, own master,
// error log and pid in the prefix; modules: load_module paths
export function mainConf({ modules = [], workers = 2, nofile = 0,
                           connections = 4096 } = {}) {
    return modules.map((m) => `load_module ${m};\n`).join('') + `${userLine()}
daemon off;
master_process on;
worker_processes ${workers};
${nofile ? `worker_rlimit_nofile ${nofile};\n` : ''}error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections ${connections}; }
`;
}

export function workerPids(master) {
    try {
        return fs.readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
            .trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
        return [];
    }
}

export function readTail(file, n = 20) {
    try {
        return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
        return '';
    }
}

// confText(prefix, port) -> nginx.conf; files: { name: text } written to
// the prefix first; ready: a path that answers 200 once nginx is up
export async function startNginx(label, confText, { files = {}, ready = '/healthz',
                                                    workers = 2 } = {}) {
    const prefix = fs.mkdtempSync(path.join(os.tmpdir(), `maestro-bench-${label}-`));
    for (const d of ['logs', 'tmp', 'store']) fs.mkdirSync(path.join(prefix, d));
    for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(prefix, name), text);
    }
    const port = await freePort();
    const conf = path.join(prefix, 'nginx.conf');
    fs.writeFileSync(conf, confText(prefix, port));

    const child = spawn(NGINX, ['-p', prefix + '/', '-c', conf],
                        { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
    const srv = { label, prefix, port, child, exited, pid: child.pid };
    started.push(srv);

    const t0 = Date.now();
    for (;;) {
        if (child.exitCode !== null) {
            throw new Error(`nginx exited at start: ${stderr}\n`
                + readTail(path.join(prefix, 'logs/error.log')));
        }
        const r = await get(port, ready);
        if (r.status === 200) break;
        if (Date.now() - t0 > 10000) throw new Error(`nginx did not answer ${ready}`);
        await sleep(50);
    }
    for (let i = 0; i < 100; i++) {           // until all workers exist
        srv.workers = workerPids(child.pid);
        if (srv.workers.length >= workers) break;
        await sleep(50);
    }
    return srv;
}

// an error.log's alert, crit and emerg lines, and crashed workers
function errorLogProblems(srv) {
    const text = readTail(path.join(srv.prefix, 'logs/error.log'), 5000);
    return (text.match(/^.*\[(alert|crit|emerg)\].*$/gm) || [])
        .concat(text.match(/^.*exited on signal.*$/gm) || []);
}

// SIGQUIT, then SIGKILL after killAfterMs (srv.stuck); srv.bad: the
// error.log's problems; the prefix removed unless BENCH_KEEP. Once.
export async function stopNginx(srv, { killAfterMs = 5000 } = {}) {
    if (srv.stopped) return;
    srv.stopped = true;
    if (srv.child.exitCode === null && srv.child.signalCode === null) {
        srv.child.kill('SIGQUIT');          // graceful, our master only
        const t = setTimeout(() => {        // stuck: our master, then its workers
            note(`${srv.label}: nginx did not stop on SIGQUIT in`
                 + ` ${killAfterMs / 1000} s; SIGKILL`);
            srv.stuck = true;
            srv.child.kill('SIGKILL');
            for (const w of srv.workers || []) {
                try { process.kill(w, 'SIGKILL'); } catch { /* gone */ }
            }
        }, killAfterMs);
        await srv.exited;
        clearTimeout(t);
    }
    srv.bad = errorLogProblems(srv);
    if (srv.bad.length) {
        note(`error.log of ${srv.label}: ${srv.bad.length} alert/crit lines,`
             + ` e.g. ${srv.bad[0]}`);
    }
    if (!process.env.BENCH_KEEP) fs.rmSync(srv.prefix, { recursive: true, force: true });
    else note(`kept ${srv.prefix}`);
}

export async function stopAll() {
    for (const s of started) {
        try { await stopNginx(s); } catch { /* best effort */ }
    }
}

function stopAllSync() {
    for (const s of started) {
        if (s.child.exitCode === null && s.child.signalCode === null) {
            // fast shutdown: the master stops its own workers
            try { s.child.kill('SIGTERM'); } catch { /* gone */ }
        }
    }
}
process.on('exit', stopAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { stopAllSync(); process.exit(130); });
}
