/*
 * Copyright (C) Maestro authors
 */

/*
 * Integration test harness: starts a real nginx (the Debian binary) with the
 * module loaded from build/, in a fresh temporary prefix, on a free loopback
 * port, and talks to it with real clients (fetch, node:http, a raw SSE reader
 * and the "eventsource" package).
 *
 * Every nginx started here is stopped by its test file's after hook, and,
 * whatever happens, killed (master and workers, by pid) when the test
 * process exits. Prefixes are removed at exit unless a test failed, in
 * which case they are kept and their paths printed.
 *
 * After every test, the [alert]/[crit]/[emerg] lines that test added to
 * the error.log of any Maestro it could reach fail it (see "error.log
 * after every test" below).
 */

import { spawn, spawnSync } from 'node:child_process';
import { beforeEach, afterEach } from 'node:test';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';


export const REPO = path.resolve(fileURLToPath(import.meta.url),
                                 '../../../..');
export const BUILD = process.env.MST_BUILD
    ? path.resolve(REPO, process.env.MST_BUILD) : path.join(REPO, 'build');
export const NGINX = process.env.NGINX || '/usr/sbin/nginx';
export const FIXTURES = path.join(BUILD, 'fixtures');
export const ID_RE = /^wf_[0-9a-f]{20}$/;
export const FINAL = ['complete', 'failed', 'cancelled'];

export { sleep };


/* ---- process bookkeeping: nothing is left running ------------------------ */

const live = new Set();         /* running Maestro / fake instances */
const prefixes = new Set();     /* temp dirs to remove at exit */
let keepAll = !!process.env.MST_KEEP;

function cleanupSync(code) {
    for (const inst of live) {
        try {
            inst.killSync();
        } catch {
            /* already gone */
        }
    }
    live.clear();

    const failed = (code !== undefined && code !== 0)
        || (process.exitCode !== undefined && process.exitCode !== 0);

    for (const dir of prefixes) {
        if (failed || keepAll) {
            process.stderr.write(`# maestro: kept test prefix ${dir}\n`);
        } else {
            try {
                fs.rmSync(dir, { recursive: true, force: true });
            } catch {
                /* best effort */
            }
        }
    }
    prefixes.clear();
}

process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
        cleanupSync(1);
        process.exit(sig === 'SIGINT' ? 130 : 143);
    });
}


/* ---- small utilities ----------------------------------------------------- */

export async function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

export function mkPrefix(tag = 'maestro') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
    prefixes.add(dir);
    return dir;
}

/*
 * Calls fn until it returns a truthy value (returned); throws after
 * timeoutMs with what the last call returned or threw.
 */
export async function waitFor(fn, timeoutMs = 10000, intervalMs = 50,
    what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    let last, lastErr;

    for (;;) {
        try {
            last = await fn();
            lastErr = undefined;
            if (last) {
                return last;
            }
        } catch (e) {
            lastErr = e;
        }

        if (Date.now() >= deadline) {
            const detail = lastErr ? `last error: ${lastErr.stack || lastErr}`
                : `last value: ${JSON.stringify(last)}`;
            throw new Error(`timed out after ${timeoutMs} ms waiting for `
                            + `${what}; ${detail}`);
        }

        await sleep(intervalMs);
    }
}

function tail(text, lines = 40) {
    return text.split('\n').slice(-lines).join('\n');
}

function readIf(file) {
    try {
        return fs.readFileSync(file, 'utf8');
    } catch {
        return '';
    }
}

function lines(v) {
    if (v === undefined || v === null || v === false) {
        return '';
    }
    return (Array.isArray(v) ? v.join('\n') : String(v)) + '\n';
}

function processAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return e.code === 'EPERM';
    }
}

/* child pids of pid, from /proc (children file, else a scan of stat) */
export function childPids(pid) {
    try {
        const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`,
                                     'utf8');
        return text.trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
        /* CONFIG_PROC_CHILDREN missing: scan */
    }

    const out = [];
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) {
            continue;
        }
        const stat = readIf(`/proc/${d}/stat`);
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(rest[1]) === pid) {
            out.push(Number(d));
        }
    }
    return out;
}


/* ---- configuration ------------------------------------------------------- */

export const DEFAULT_AGENTS = {
    planner: 'plugin=planner.so',
    llm: 'plugin=llm.so',
    reviewer: 'plugin=reviewer.so',
    echo: `plugin=${FIXTURES}/echo.so`,
    sleep: `plugin=${FIXTURES}/sleep.so`,
    fail: `plugin=${FIXTURES}/fail.so`,
    crash: `plugin=${FIXTURES}/crash.so`,
    noop: `plugin=${FIXTURES}/noop.so`,
    memory: `plugin=${FIXTURES}/memory.so`,
};

/* quote an nginx configuration argument when it needs it */
export function ngxQuote(s) {
    if (/^[^\s;{}'"\\$#]+$/.test(s)) {
        return s;
    }
    return `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/*
 * The nginx.conf text for a prefix and port. Every piece is overridable:
 *   workers, user, errorLogLevel, main (extra main lines), events,
 *   threadPools, loadModule, storePath, storeSize, storeSync, pluginsDir,
 *   agents ({name: "plugin=... config=..."}; a null value removes one),
 *   workflows ({name: graph object}, written to PREFIX/workflows/),
 *   workflowFiles ({name: path}), defaultWorkflow (false: omit "default"),
 *   leaseTimeout, http (extra http lines), listenParams (e.g. "reuseport"),
 *   server (extra server lines),
 *   locations (replaces the two locations), maestroHttp (replaces all
 *   maestro_* http lines), conf (function (ctx) -> whole text),
 *   seal (true: the store sealed with a key of the run; the default is
 *   MST_TEST_SEAL=1 in the environment, so any suite can run sealed;
 *   no effect when the http lines name a key of their own).
 */
export function buildConf(opts, prefix, port) {
    const o = opts || {};
    const ctx = { prefix, port, opts: o };

    if (typeof o.conf === 'function') {
        return o.conf(ctx);
    }

    const workers = o.workers ?? 2;
    let user = o.user;
    if (user === undefined) {
        user = (process.getuid && process.getuid() === 0)
            ? 'user root root;' : '';
    }

    const agents = { ...DEFAULT_AGENTS, ...(o.agents || {}) };
    const agentLines = Object.entries(agents)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `    maestro_agent ${k} ${v};`);

    const wfFiles = {};
    if (o.defaultWorkflow !== false) {
        wfFiles.default = typeof o.defaultWorkflow === 'string'
            ? o.defaultWorkflow
            : path.join(REPO, 'conf/workflows/default.json');
    }
    if (o.workflows) {
        fs.mkdirSync(path.join(prefix, 'workflows'), { recursive: true });
        for (const [name, graph] of Object.entries(o.workflows)) {
            const file = path.join(prefix, 'workflows', `${name}.json`);
            fs.writeFileSync(file, typeof graph === 'string'
                ? graph : JSON.stringify(graph, null, 2));
            wfFiles[name] = file;
        }
    }
    Object.assign(wfFiles, o.workflowFiles || {});
    const wfLines = Object.entries(wfFiles)
        .map(([k, v]) => `    maestro_workflow ${k} ${v};`);

    const seal = (o.seal ?? process.env.MST_TEST_SEAL === '1')
        && !lines(o.http).includes('maestro_store_encryption_key');
    if (seal && !process.env.MST_TEST_SEAL_KEY) {
        process.env.MST_TEST_SEAL_KEY = crypto.randomBytes(32).toString('hex');
    }

    const maestroHttp = o.maestroHttp !== undefined ? lines(o.maestroHttp) : [
        `    maestro_store_path ${o.storePath ?? path.join(prefix, 'store')};`,
        ...(seal ? ['    maestro_store_encryption_key id=1 '
                    + 'env=MST_TEST_SEAL_KEY active;'] : []),
        `    maestro_store_size ${o.storeSize ?? '256m'};`,
        `    maestro_store_sync ${o.storeSync ?? 'off'};`,
        `    maestro_plugins_dir ${o.pluginsDir ?? path.join(BUILD,
                                                             'plugins')};`,
        ...agentLines,
        ...wfLines,
        `    maestro_lease_timeout ${o.leaseTimeout ?? '3s'};`,
        // off unless asked: a check would take faults queued for a test
        `    maestro_llm_health_check ${o.healthCheck ?? 'off'};`,
    ].join('\n') + '\n';

    const locations = o.locations !== undefined ? lines(o.locations) : [
        '        location /api/ {',
        '            maestro_api;',
        '            client_max_body_size 0;',
        '        }',
        '        location = /healthz {',
        '            maestro_api;',
        '        }',
    ].join('\n') + '\n';

    const tmp = path.join(prefix, 'tmp');

    return [
        o.loadModule ?? `load_module ${BUILD}/ngx_http_maestro_module.so;`,
        '',
        user,
        'daemon off;',
        'master_process on;',
        `worker_processes ${workers};`,
        `error_log logs/error.log ${o.errorLogLevel ?? 'info'};`,
        'pid logs/nginx.pid;',
        lines(o.main),
        `events { ${o.events ?? 'worker_connections 4096;'} }`,
        '',
        o.threadPools
            ?? 'thread_pool maestro threads=8;\n'
               + 'thread_pool maestro_io threads=2;',
        '',
        'http {',
        `    access_log logs/access.log;`,
        `    client_body_temp_path ${tmp}/body;`,
        `    proxy_temp_path ${tmp}/proxy;`,
        `    fastcgi_temp_path ${tmp}/fastcgi;`,
        `    uwsgi_temp_path ${tmp}/uwsgi;`,
        `    scgi_temp_path ${tmp}/scgi;`,
        '',
        maestroHttp,
        lines(o.http),
        '    server {',
        `        listen 127.0.0.1:${port}${o.listenParams ? ' ' + o.listenParams
                                                  : ''};`,
        lines(o.server),
        locations,
        '    }',
        '}',
        '',
    ].join('\n');
}

function writeConf(opts, prefix, port) {
    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
    const confPath = path.join(prefix, 'nginx.conf');
    fs.writeFileSync(confPath, buildConf(opts, prefix, port));
    return confPath;
}


/* ---- nginx -t ------------------------------------------------------------ */

/*
 * conf: a string (whole config; "{{PREFIX}}" and "{{PORT}}" replaced), an
 * options object for buildConf(), or a function (ctx) -> string.
 * Returns {code, stderr, stdout, log, output (stderr + log), prefix, confPath}.
 */
export async function nginxT(conf) {
    const prefix = mkPrefix('maestro-t');
    const port = await freePort();
    let confPath;

    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });

    if (typeof conf === 'string') {
        confPath = path.join(prefix, 'nginx.conf');
        fs.writeFileSync(confPath, conf.replaceAll('{{PREFIX}}', prefix)
                                       .replaceAll('{{PORT}}', String(port)));
    } else if (typeof conf === 'function') {
        confPath = writeConf({ conf }, prefix, port);
    } else {
        confPath = writeConf(conf || {}, prefix, port);
    }

    const errorLog = path.join(prefix, 'error.log');
    const r = spawnSync(NGINX, ['-t', '-p', prefix + '/', '-c', confPath,
                                '-e', errorLog],
                        { encoding: 'utf8', timeout: 20000 });
    const log = readIf(errorLog);

    return {
        code: r.status === null ? -1 : r.status,
        signal: r.signal,
        stderr: r.stderr || '',
        stdout: r.stdout || '',
        log,
        output: (r.stderr || '') + '\n' + log,
        prefix,
        confPath,
    };
}


/* ---- error.log after every test ----------------------------------------- */

/*
 * Each Maestro's error.log is read in windows: what it gained while a test
 * ran is that test's, and the test fails, naming the lines, when an
 * [alert], [crit] or [emerg] line in its window is not allowed. Allowed
 * are the instance's allowLog patterns (startMaestro's opts.allowLog,
 * m.allowLog()) and, for the current test only, m.allowLogInTest().
 * What no test was charged with (start-up, before/after hooks, between
 * tests) is left to m.assertCleanLog() in the file's after hook.
 */

const BAD_LOG_RE = /\[(alert|crit|emerg)\]/;
const watched = new Set();      /* instances a test may have written to */
let inTest = false;

beforeEach(() => {
    inTest = true;
    for (const m of watched) {
        if (m.exited) {
            watched.delete(m);
        } else {
            m._testBegin();
        }
    }
});

afterEach(() => {
    const bad = [];

    inTest = false;

    for (const m of watched) {
        const lines = m._testEnd();
        if (lines.length) {
            bad.push(`error.log of ${m.prefix} has ${lines.length} `
                     + '[alert]/[crit]/[emerg] line(s) from this test:\n'
                     + lines.slice(0, 10).join('\n'));
        }
        if (m.exited) {
            watched.delete(m);
        }
    }

    if (bad.length) {
        assert.fail(bad.join('\n'));
    }
});

/*
 * The complete lines of file between byte offsets from and to (to: the
 * end of the last complete line when omitted). Returns {lines, end}.
 */
function logLines(file, from, to) {
    let buf;
    try {
        buf = fs.readFileSync(file);
    } catch {
        return { lines: [], end: from };
    }
    let end = to ?? buf.lastIndexOf(0x0a) + 1;
    if (end < from) {
        end = from;
    }
    const text = buf.subarray(from, end).toString('utf8');
    return { lines: text.split('\n').filter(Boolean), end };
}


/* ---- a running Maestro --------------------------------------------------- */

/*
 * opts: everything buildConf() takes, plus
 *   allowLog: [RegExp] error.log [alert]/[crit]/[emerg] lines accepted
 *             for the instance's whole life, by the check after every
 *             test and by assertCleanLog() (prefer m.allowLogInTest() in
 *             the one test that provokes them),
 *   startTimeoutMs (default 10000).
 */
export async function startMaestro(opts = {}) {
    const prefix = mkPrefix('maestro');
    const port = await freePort();
    const confPath = writeConf(opts, prefix, port);
    const errorLogPath = path.join(prefix, 'logs/error.log');
    const base = `http://127.0.0.1:${port}`;
    const allow = [...(opts.allowLog || [])];
    let testAllow = [];         /* m.allowLogInTest(): this test only */
    let testFrom = null;        /* log offset where the current test began */
    const charged = [];         /* [from, to) windows a test was charged */
    let out = '';
    let exited = null;

    const child = spawn(NGINX, ['-p', prefix + '/', '-c', confPath,
                                '-e', errorLogPath],
                        { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const exitP = new Promise((resolve) => {
        child.on('exit', (code, signal) => {
            exited = { code, signal };
            resolve(exited);
        });
        child.on('error', (err) => {
            exited = { code: -1, signal: null, err };
            resolve(exited);
        });
    });

    const m = {
        port, base, prefix, confPath, errorLogPath,
        pid: child.pid,
        child,
        get exited() { return exited; },
        output: () => out,
        errorLog: () => readIf(errorLogPath),
        logTail: (n = 40) => tail(readIf(errorLogPath), n),
        workerPids: () => (exited ? [] : childPids(child.pid)),
        allowLog: (re) => { allow.push(re); },

        killSync() {
            if (exited) {
                return;
            }
            const workers = childPids(child.pid);
            try {
                process.kill(child.pid, 'SIGKILL');
            } catch {
                /* gone */
            }
            for (const w of workers) {
                try {
                    process.kill(w, 'SIGKILL');
                } catch {
                    /* gone */
                }
            }
        },

        /*
         * SIGQUIT (graceful), SIGTERM after 5 s, SIGKILL after 10 s. A
         * graceful stop that ends in time must leave no
         * socket open: nginx's "open socket ... left" alerts of a request
         * the module never finalised are written then, after every test's
         * and assertCleanLog()'s window, so they are checked here.
         */
        async stop() {
            let leftOpen = null;
            if (!exited) {
                const workers = childPids(child.pid);
                const from = logLines(errorLogPath, 0).end;
                let forced = false;
                child.kill('SIGQUIT');
                const t1 = setTimeout(() => {
                    forced = true;
                    child.kill('SIGTERM');
                }, 5000);
                const t2 = setTimeout(() => m.killSync(), 10000);
                await exitP;
                clearTimeout(t1);
                clearTimeout(t2);
                const left = logLines(errorLogPath, from).lines
                    .filter((l) => /open socket #\d+ left/.test(l))
                    .filter((l) => !allow.some((re) => re.test(l)));
                if (!forced && left.length) {
                    leftOpen = `a graceful stop left sockets open `
                        + `(${prefix}):\n` + left.slice(0, 5).join('\n');
                }
                /* workers orphaned by a killed master must not linger */
                await waitFor(() => workers.every((w) => !processAlive(w)),
                              3000, 50, 'workers to exit').catch(() => {
                    for (const w of workers) {
                        try {
                            process.kill(w, 'SIGKILL');
                        } catch {
                            /* gone */
                        }
                    }
                });
            }
            live.delete(m);
            if (leftOpen) {
                keepAll = true;
                throw new Error(leftOpen);
            }
            return exited;
        },

        /*
         * SIGHUP (nginx -s reload): resolves once a full new set of workers
         * runs and /healthz answers. Returns {oldPids, newPids}.
         */
        /* drained: also wait for the old workers to exit (until then
           they may still accept a connection, and end its streams as
           they go) */
        async reload({ drained = false } = {}) {
            const oldPids = m.workerPids();
            const workers = opts.workers ?? 2;
            process.kill(child.pid, 'SIGHUP');
            const newPids = await waitFor(() => {
                const now = m.workerPids().filter((p) => !oldPids.includes(p));
                return now.length >= workers ? now : null;
            }, 10000, 50, 'new workers after reload');
            await waitFor(async () => (await healthz(base)) === 200, 10000,
                          50, '/healthz after reload');
            if (drained) {
                await waitFor(() => oldPids.every((p) => !processAlive(p)),
                              10000, 20, 'old workers gone after reload');
            }
            return { oldPids, newPids };
        },

        /* kill -9 one worker (the first, or the given pid); returns its pid */
        kill9Worker(pid) {
            const target = pid ?? m.workerPids()[0];
            assert.ok(target, 'no worker to kill');
            process.kill(target, 'SIGKILL');
            return target;
        },

        /* kill -9 every worker; the master respawns them */
        kill9AllWorkers() {
            const pids = m.workerPids();
            for (const p of pids) {
                process.kill(p, 'SIGKILL');
            }
            return pids;
        },

        /* resolves when the master has as many live workers as configured
           and none of them is in "exclude" */
        async waitWorkers(exclude = [], timeoutMs = 10000) {
            const workers = opts.workers ?? 2;
            return waitFor(() => {
                const now = m.workerPids()
                    .filter((p) => !exclude.includes(p) && processAlive(p));
                return now.length >= workers ? now : null;
            }, timeoutMs, 50, 'workers respawned');
        },

        /*
         * The current test provokes lines matching re on purpose (a
         * crashing plugin, kill -9 of a worker): they are accepted in
         * what the log gains until this test ends, and nowhere else.
         */
        allowLogInTest: (re) => {
            assert.ok(inTest, 'allowLogInTest() outside a test');
            testAllow.push(re);
        },

        _testBegin() {
            testFrom = logLines(errorLogPath, 0).end;
            testAllow = [];
        },

        /* the bad lines this test added; its window is then charged */
        _testEnd() {
            const from = testFrom ?? 0;
            const { lines: got, end } = logLines(errorLogPath, from);
            const okRes = [...allow, ...testAllow];
            testFrom = null;
            testAllow = [];
            charged.push([from, end]);
            return got.filter((l) => BAD_LOG_RE.test(l)
                              && !okRes.some((re) => re.test(l)));
        },

        /*
         * [alert], [crit], [emerg] lines not matched by an allowed pattern
         * in what no test was charged with
         */
        badLogLines(extraAllow = []) {
            const okRes = [...allow, ...extraAllow];
            const uncharged = [];
            let at = 0;
            for (const [from, to] of charged) {     /* in log order */
                uncharged.push(...logLines(errorLogPath, at, from).lines);
                at = to;
            }
            uncharged.push(...logLines(errorLogPath, at).lines);
            return uncharged.filter((l) => BAD_LOG_RE.test(l))
                .filter((l) => !okRes.some((re) => re.test(l)));
        },

        assertCleanLog(extraAllow = []) {
            const bad = m.badLogLines(extraAllow);
            if (bad.length) {
                assert.fail(`error.log of ${prefix} has ${bad.length} `
                            + '[alert]/[crit]/[emerg] line(s) outside the '
                            + 'tests, first ones:\n'
                            + bad.slice(0, 10).join('\n'));
            }
        },
    };

    live.add(m);
    watched.add(m);
    if (inTest) {
        testFrom = 0;           /* started by the test: all of it is its */
    }

    const deadline = Date.now() + (opts.startTimeoutMs ?? 10000);
    for (;;) {
        if (exited) {
            live.delete(m);
            throw new Error(`nginx exited during start (${JSON.stringify(
                exited)}); prefix ${prefix}\n--- output:\n${tail(out)}\n`
                + `--- error.log:\n${m.logTail()}`);
        }
        if (await healthz(base) === 200) {
            break;
        }
        if (Date.now() > deadline) {
            m.killSync();
            live.delete(m);
            keepAll = true;
            throw new Error(`maestro did not answer GET /healthz within `
                + `${opts.startTimeoutMs ?? 10000} ms; prefix ${prefix}\n`
                + `--- output:\n${tail(out)}\n--- error.log:\n${m.logTail()}`);
        }
        await sleep(50);
    }

    return m;
}

async function healthz(base) {
    try {
        const r = await fetch(`${base}/healthz`,
                              { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        return r.status;
    } catch {
        return 0;
    }
}


/* ---- HTTP helpers -------------------------------------------------------- */

function plainHeaders(h) {
    const o = {};
    for (const [k, v] of h.entries()) {
        o[k] = v;
    }
    return o;
}

/*
 * fetch-based request. body: an object/array (sent as JSON with
 * Content-Type application/json unless headers say otherwise), a string or
 * a Buffer (sent as is, with application/json unless headers say otherwise),
 * or undefined. Returns {status, headers (plain, lower-case), json, text}.
 */
export async function api(base, method, p, body, headers = {}) {
    const h = { ...headers };
    let data;

    if (body !== undefined && body !== null) {
        const hasCt = Object.keys(h).some((k) => k.toLowerCase()
                                                 === 'content-type');
        if (!hasCt) {
            h['Content-Type'] = 'application/json';
        }
        data = (typeof body === 'string' || Buffer.isBuffer(body))
            ? body : JSON.stringify(body);
    }

    let r, text;
    for (let attempt = 1; ; attempt++) {
        try {
            r = await fetch(base + p, {
                method, headers: h, body: data,
                signal: AbortSignal.timeout(15000),
            });
            text = await r.text();
            break;
        } catch (e) {
            /*
             * A pooled keep-alive connection to a worker that was killed
             * (kill -9 and crash tests) fails once: retry a GET on a new
             * connection, as any HTTP client would. Never a POST.
             */
            const sock = /closed|reset|socket|ECONN/i
                .test(String(e.cause && (e.cause.code || e.cause.message)));
            if (method !== 'GET' || !sock || attempt >= 3) {
                throw e;
            }
        }
    }
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        /* not JSON */
    }
    return { status: r.status, headers: plainHeaders(r.headers), json, text };
}

/*
 * node:http request for what fetch cannot do exactly: chunked uploads, no
 * Content-Type at all, huge bodies answered early. opts: {method, path,
 * headers, body (Buffer|string), chunked (send without Content-Length),
 * chunkSize}. Tolerates the server closing while the body is still being
 * sent. Returns {status, headers, json, text} (status 0 and error when no
 * response arrived).
 */
export function rawRequest(base, opts) {
    const u = new URL(base);
    const body = opts.body === undefined ? null
        : (Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body));

    return new Promise((resolve) => {
        const headers = { ...(opts.headers || {}) };
        if (body && !opts.chunked) {
            headers['Content-Length'] = String(body.length);
        }
        const req = http.request({
            host: u.hostname, port: u.port, method: opts.method || 'GET',
            path: opts.path, headers, agent: false,
        });
        let done = false;
        const finish = (v) => {
            if (!done) {
                done = true;
                clearTimeout(timer);
                resolve(v);
            }
        };
        const timer = setTimeout(() => {
            req.destroy();
            finish({ status: 0, error: 'timeout', headers: {}, json: null,
                     text: '' });
        }, opts.timeoutMs ?? 15000);

        req.on('response', (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            const end = () => {
                let json = null;
                try {
                    json = JSON.parse(text);
                } catch {
                    /* not JSON */
                }
                finish({ status: res.statusCode, headers: res.headers, json,
                         text });
            };
            res.on('end', end);
            res.on('error', end);
            res.on('close', end);
        });
        req.on('error', (err) => {
            /* EPIPE / ECONNRESET after an early answer is fine: the
               response handler resolves; otherwise report it */
            setTimeout(() => finish({ status: 0, error: String(err),
                                      headers: {}, json: null, text: '' }),
                       500);
        });

        if (body) {
            if (opts.chunked) {
                const size = opts.chunkSize || 64 * 1024;
                let off = 0;
                const pump = () => {
                    while (off < body.length) {
                        const chunk = body.subarray(off, off + size);
                        off += size;
                        if (!req.write(chunk)) {
                            req.once('drain', pump);
                            return;
                        }
                    }
                    req.end();
                };
                pump();
            } else {
                req.end(body);
            }
        } else {
            req.end();
        }
    });
}

/*
 * A response held open (an SSE follow, the monitor): resolves with its
 * status once the headers are in (a refusal: once its body is), and
 * close() to end it from our side.
 */
export function openStream(base, p, headers = {}) {
    const u = new URL(base);
    return new Promise((resolve, reject) => {
        const req = http.request({
            host: u.hostname, port: u.port, path: p, method: 'GET',
            headers: { Accept: 'text/event-stream', ...headers },
            agent: false,
        }, (res) => {
            let text = '';
            const got = { status: res.statusCode, headers: res.headers,
                          text: () => text, close: () => { req.destroy(); } };
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('error', () => {});
            if (res.statusCode === 200) {
                resolve(got);
            } else {
                /* a refusal: its whole answer */
                res.on('end', () => resolve(got));
            }
        });
        req.on('error', (e) => { if (!req.destroyed) reject(e); });
        req.end();
    });
}


export async function submit(base, body, headers) {
    const r = await api(base, 'POST', '/api/v1/workflows', body, headers);
    assert.equal(r.status, 202, `submit: ${r.status} ${r.text}`);
    assert.match(r.json.id, ID_RE);
    return r.json;
}

/*
 * Submits a workflow whose step may kill the worker before its 202 is
 * written: the workflow exists, the client just lost the answer; then it
 * is found by its user_id (body.user_id is set to a fresh one).
 */
export async function submitCrashing(base, body) {
    const user = `u-crash-${process.pid}-${Date.now()}`;
    try {
        return await submit(base, { ...body, user_id: user });
    } catch (e) {
        assert.match(String(e.cause || e), /closed|reset|socket/i);
        return waitFor(async () => {
            const r = await api(base, 'GET',
                                `/api/v1/workflows?user_id=${user}`);
            return r.status === 200 && r.json.items.length === 1
                && r.json.items[0];
        }, 10000, 50, 'the crashed submission in the list');
    }
}

export async function getWorkflow(base, id) {
    const r = await api(base, 'GET', `/api/v1/workflows/${id}`);
    assert.equal(r.status, 200, `GET ${id}: ${r.status} ${r.text}`);
    return r.json;
}

/* polls GET /api/v1/workflows/{id} until its status is one of statuses */
export async function waitStatus(base, id, statuses = FINAL,
    timeoutMs = 20000) {
    const want = Array.isArray(statuses) ? statuses : [statuses];
    let last = null;
    try {
        return await waitFor(async () => {
            last = await getWorkflow(base, id);
            return want.includes(last.status) ? last : null;
        }, timeoutMs, 50, `${id} status in ${want.join('|')}`);
    } catch (e) {
        throw new Error(`workflow ${id} not in ${want.join('|')} after `
                        + `${timeoutMs} ms; last: ${JSON.stringify(last)}`
                        + `\n${e.message}`);
    }
}


/* ---- SSE ----------------------------------------------------------------- */

function parseData(s) {
    try {
        return JSON.parse(s);
    } catch {
        return s;
    }
}

/*
 * A minimal raw SSE reader over fetch's body stream. Returns a handle at
 * once: {events, comments, ready (resolves to the response), done
 * (resolves to the result), close()}. The result is {status, headers,
 * events: [{id, event, data}], comments: [text], ended: 'done' | 'close' |
 * 'timeout' | 'abort' | 'stop' | 'error' | 'http', closed (server closed the
 * stream), json/text (for a non-SSE answer)}.
 *
 * opts: lastEventId (Last-Event-ID header), method, body, headers, signal,
 * timeoutMs (default 30000), untilClose (keep reading after done/error
 * until the server closes: proves it does), stopWhen(ev, events).
 */
export function openSSE(url, opts = {}) {
    const ac = new AbortController();
    const events = [];
    const comments = [];
    let reason = null;
    let resolveReady;
    const ready = new Promise((r) => { resolveReady = r; });

    if (opts.signal) {
        opts.signal.addEventListener('abort', () => {
            reason = reason || 'abort';
            ac.abort();
        });
    }

    const timer = setTimeout(() => {
        reason = reason || 'timeout';
        ac.abort();
    }, opts.timeoutMs ?? 30000);

    const done = (async () => {
        const headers = { Accept: 'text/event-stream',
                          ...(opts.headers || {}) };
        if (opts.lastEventId !== undefined && opts.lastEventId !== null) {
            headers['Last-Event-ID'] = String(opts.lastEventId);
        }
        let body;
        if (opts.body !== undefined) {
            body = typeof opts.body === 'string' ? opts.body
                : JSON.stringify(opts.body);
            headers['Content-Type'] = headers['Content-Type']
                || 'application/json';
        }

        let res;
        try {
            res = await fetch(url, { method: opts.method || 'GET', headers,
                                     body, signal: ac.signal });
        } catch (e) {
            clearTimeout(timer);
            resolveReady(null);
            return { status: 0, headers: {}, events, comments,
                     ended: reason || 'error', error: String(e),
                     closed: false };
        }

        const result = { status: res.status, headers: plainHeaders(res.headers),
                         events, comments, closed: false };
        resolveReady(result);

        if (res.status !== 200
            || !(result.headers['content-type'] || '')
                   .startsWith('text/event-stream')) {
            result.text = await res.text().catch(() => '');
            result.json = parseData(result.text);
            result.ended = 'http';
            clearTimeout(timer);
            return result;
        }

        const decoder = new TextDecoder();
        let buf = '';
        let cur = { id: undefined, event: undefined, data: [] };
        let finalSeen = false;

        const dispatch = () => {
            if (cur.data.length === 0 && cur.event === undefined
                && cur.id === undefined) {
                return null;
            }
            const raw = cur.data.join('\n');
            const ev = {
                id: cur.id === undefined ? undefined : Number(cur.id),
                event: cur.event || 'message',
                data: parseData(raw),
                raw,
            };
            cur = { id: undefined, event: undefined, data: [] };
            events.push(ev);
            return ev;
        };

        try {
            for await (const chunk of res.body) {
                buf += decoder.decode(chunk, { stream: true });
                let nl;
                while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
                    const line = buf.slice(0, nl);
                    buf = buf.slice(nl + (buf[nl] === '\r'
                                          && buf[nl + 1] === '\n' ? 2 : 1));
                    if (line === '') {
                        const ev = dispatch();
                        if (!ev) {
                            continue;
                        }
                        if (ev.event === 'done' || ev.event === 'error') {
                            finalSeen = true;
                        }
                        if (opts.stopWhen && opts.stopWhen(ev, events)) {
                            reason = 'stop';
                            ac.abort();
                            break;
                        }
                        if (finalSeen && !opts.untilClose) {
                            reason = 'done';
                            ac.abort();
                            break;
                        }
                        continue;
                    }
                    if (line[0] === ':') {
                        comments.push(line.slice(1).trim());
                        continue;
                    }
                    const c = line.indexOf(':');
                    const field = c < 0 ? line : line.slice(0, c);
                    let value = c < 0 ? '' : line.slice(c + 1);
                    if (value[0] === ' ') {
                        value = value.slice(1);
                    }
                    if (field === 'id') {
                        cur.id = value;
                    } else if (field === 'event') {
                        cur.event = value;
                    } else if (field === 'data') {
                        cur.data.push(value);
                    }
                }
                if (reason) {
                    break;
                }
            }
            if (!reason) {
                result.closed = true;
                reason = finalSeen ? 'done' : 'close';
            }
        } catch (e) {
            if (!reason) {
                reason = 'error';
                result.error = String(e);
            }
        } finally {
            clearTimeout(timer);
        }

        result.ended = reason;
        result.finalSeen = finalSeen;
        return result;
    })();

    return {
        events, comments, ready, done,
        close() {
            reason = reason || 'abort';
            ac.abort();
            return done;
        },
        /* resolves when pred(events) holds (or rejects after timeoutMs) */
        waitEvents(pred, timeoutMs = 15000) {
            return waitFor(() => pred(events), timeoutMs, 20, 'SSE events');
        },
    };
}

/* reads a whole stream: resolves to openSSE's result */
export function sse(url, opts = {}) {
    return openSSE(url, opts).done;
}

export const SSE_NAMES = ['workflow_update', 'agent_status', 'log_entry',
                          'token', 'done', 'error'];

/*
 * The same with a real EventSource client (package "eventsource"): resolves
 * to {events: [{id, event, data, lastEventId}], ended, errors} once a done
 * or error event arrives (then closes the source so it does not
 * reconnect), or after timeoutMs.
 */
export async function eventSource(url, opts = {}) {
    const { EventSource } = await import('eventsource');
    const events = [];
    const errors = [];

    return new Promise((resolve) => {
        const es = new EventSource(url, {
            fetch: (input, init) => {
                const headers = { ...(init.headers || {}) };
                if (opts.lastEventId !== undefined) {
                    headers['Last-Event-ID'] = String(opts.lastEventId);
                }
                return fetch(input, { ...init, headers });
            },
        });
        let finished = false;
        const finish = (ended) => {
            if (!finished) {
                finished = true;
                clearTimeout(timer);
                es.close();
                resolve({ events, errors, ended });
            }
        };
        const timer = setTimeout(() => finish('timeout'),
                                 opts.timeoutMs ?? 30000);

        for (const name of opts.names || SSE_NAMES) {
            es.addEventListener(name, (ev) => {
                if (typeof ev.data !== 'string') {
                    /* a connection error, not an "error" event */
                    errors.push(ev.message || ev.code || 'error');
                    if (opts.stopOnError) {
                        finish('connection-error');
                    }
                    return;
                }
                events.push({
                    id: ev.lastEventId === '' ? undefined
                        : Number(ev.lastEventId),
                    lastEventId: ev.lastEventId,
                    event: ev.type,
                    data: parseData(ev.data),
                });
                if (name === 'done' || name === 'error') {
                    finish(name);
                }
            });
        }
    });
}

/* ids 1..n, strictly increasing, no gaps: returns an error text or null */
export function idProblems(events, from = 1) {
    for (let i = 0; i < events.length; i++) {
        if (events[i].id !== from + i) {
            return `event #${i} has id ${events[i].id}, expected ${from + i}`
                + ` (ids: ${events.map((e) => e.id).join(',')})`;
        }
    }
    return null;
}

export function assertContiguous(events, from = 1) {
    const p = idProblems(events, from);
    assert.equal(p, null, p || '');
}

/* comparable form of events: id, name, data */
export function strip(events) {
    return events.map((e) => ({ id: e.id, event: e.event, data: e.data }));
}


/* ---- the fake OpenAI server ---------------------------------------------- */

/*
 * Spawns tests/fixtures/fake-openai.mjs (CLI: --port 0, prints
 * "LISTENING <port>", exits when its stdin closes). Returns {port, url
 * (http://127.0.0.1:port/v1), stats(), control(faults), stop()}.
 */
/*
 * A self-signed certificate for "localhost", made once per test process
 * with the openssl command: { cert, key } paths.
 */
let testCert = null;

export function localhostCert() {
    if (testCert) {
        return testCert;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maestro-cert-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048',
                                    '-nodes', '-keyout', key, '-out', cert,
                                    '-days', '2', '-subj', '/CN=localhost',
                                    '-addext', 'subjectAltName=DNS:localhost'],
                        { encoding: 'utf8' });
    assert.equal(r.status, 0, `openssl req: ${r.stderr || r.error}`);
    testCert = { cert, key };
    return testCert;
}


/* tls: true for HTTPS (its url is https://localhost:port/v1, its ca the
   certificate to trust) */
export async function startFakeOpenAI(args = [], { tls: wantTls } = {}) {
    const script = path.join(REPO, 'tests/fixtures/fake-openai.mjs');
    assert.ok(fs.existsSync(script), `${script} does not exist`);
    const tls = wantTls ? localhostCert() : null;

    if (tls) {
        args = [...args, '--tls-cert', tls.cert, '--tls-key', tls.key];
    }

    const child = spawn(process.execPath, [script, '--port', '0', ...args],
                        { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let exited = null;
    const exitP = new Promise((resolve) => {
        child.on('exit', (code, signal) => {
            exited = { code, signal };
            resolve(exited);
        });
    });
    child.stderr.on('data', (d) => { out += d; });

    const port = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(
            `fake-openai did not print LISTENING within 5 s:\n${out}`)), 5000);
        child.stdout.on('data', (d) => {
            out += d;
            const m = /LISTENING (\d+)/.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve(Number(m[1]));
            }
        });
        exitP.then((e) => {
            clearTimeout(timer);
            reject(new Error(`fake-openai exited: ${JSON.stringify(e)}\n`
                             + out));
        });
    });

    /* TLS: the certificate is for "localhost", the address 127.0.0.1 */
    const root = tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
    const call = (method, p, body) => new Promise((resolve, reject) => {
        const req = (tls ? https : http).request(`${root}${p}`, {
            method, ca: tls ? fs.readFileSync(tls.cert) : undefined,
            headers: body ? { 'Content-Type': 'application/json' } : {},
        }, (res) => {
            let text = '';
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, text }));
        });
        req.on('error', reject);
        req.end(body ? JSON.stringify(body) : undefined);
    });
    const fake = {
        port,
        url: `${root}/v1`,
        ca: tls ? tls.cert : null,
        output: () => out,
        async stats() {
            return JSON.parse((await call('GET', '/__stats')).text);
        },
        async reset() {
            const r = await call('POST', '/__reset');
            assert.equal(r.status, 200, `__reset: ${r.status}`);
        },
        async control(faults) {
            const r = await call('POST', '/__control', { faults });
            assert.equal(r.status, 200, `__control: ${r.status}`);
            return JSON.parse(r.text);
        },
        killSync() {
            if (!exited) {
                child.kill('SIGKILL');
            }
        },
        async stop() {
            if (!exited) {
                child.stdin.end();
                const t = setTimeout(() => child.kill('SIGKILL'), 2000);
                await exitP;
                clearTimeout(t);
            }
            live.delete(fake);
        },
    };
    live.add(fake);
    return fake;
}


/* an after() hook's end: Maestro's log clean, then everything stopped */
export async function stopClean(m, ...others) {
    try {
        m?.assertCleanLog();
    } finally {
        await m?.stop();
        for (const o of others) {
            await o?.stop();
        }
    }
}


/* ---- graphs used by several files ---------------------------------------- */

export function chain(...nodes) {
    /* chain(['a', 'echo', cfg], ['s', 'sleep', {ms: 100}], ...) */
    const g = { name: 'chain', entry: nodes[0][0], nodes: {}, edges: [] };
    nodes.forEach(([name, agent, config, extra], i) => {
        g.nodes[name] = { agent, ...(config ? { config } : {}),
                          ...(extra || {}) };
        g.edges.push({ from: name,
                       to: i + 1 < nodes.length ? nodes[i + 1][0] : '$end' });
    });
    return g;
}
