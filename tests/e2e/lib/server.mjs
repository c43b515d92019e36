/*
 * Copyright (C) Maestro authors
 */

/*
 * A real nginx with the Maestro module that also serves the built UI
 * (html/dist) the way production does: SPA fallback, long-lived hashed
 * assets, gzip. The configuration comes from the integration harness's
 * buildConf(); unlike startMaestro() the prefix and port are kept across
 * stop()/start() so a test can restart the server and the browser
 * reconnects to the same origin and store.
 */

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
    REPO, NGINX, buildConf, childPids, freePort, mkPrefix, sleep,
} from '../../integration/lib/harness.mjs';

export const DIST = path.join(REPO, 'html/dist');

const running = new Set();

process.on('exit', () => {
    for (const s of running) {
        s.killSync();
    }
});

/* what conf/maestro.conf sends with the UI's shell */
export const UI_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/* The UI's locations; what the lead puts in conf/maestro.conf too. */
export function uiServerLines(dist = DIST) {
    return [
        '        gzip on;',
        '        gzip_types text/css application/javascript '
            + 'application/json application/manifest+json image/svg+xml;',
        '        location / {',
        `            root ${dist};`,
        '            try_files $uri /index.html;',
        '            add_header Cache-Control "no-cache";',
        `            add_header Content-Security-Policy "${UI_CSP}" always;`,
        '            add_header X-Content-Type-Options nosniff always;',
        '            add_header Referrer-Policy no-referrer always;',
        '        }',
        '        location /assets/ {',
        `            root ${dist};`,
        '            try_files $uri =404;',
        '            add_header Cache-Control '
            + '"public, max-age=31536000, immutable";',
        '        }',
        '        location = /sw.js {',
        `            root ${dist};`,
        '            add_header Cache-Control "no-cache";',
        '        }',
    ];
}

export const UI_TYPES = [
    '    types {',
    '        text/html html;',
    '        text/css css;',
    '        application/javascript js mjs;',
    '        application/json json;',
    '        application/manifest+json webmanifest;',
    '        image/svg+xml svg;',
    '        image/png png;',
    '    }',
    '    default_type application/octet-stream;',
];

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

/*
 * What the server saw of each request's credential, without the secret:
 * logs/seen.log has one line per request, "METHOD URI auth=key|other|none
 * ws=key|other|none lei=<Last-Event-ID> status" (auth: an
 * "Authorization: Bearer mk_..." header; ws: a "maestro.bearer.mk_..."
 * WebSocket subprotocol). Only with opts.auth.
 */
export const SEEN_HTTP = [
    '    map $http_authorization $maestro_e2e_auth {',
    '        default other;',
    '        "" none;',
    '        "~^Bearer mk_" key;',
    '    }',
    '    map $http_sec_websocket_protocol $maestro_e2e_ws {',
    '        default other;',
    '        "" none;',
    '        "~(^|[ ,])maestro\\.bearer\\.mk_" key;',
    '    }',
    "    log_format maestro_e2e_seen '$request_method $uri "
        + "auth=$maestro_e2e_auth ws=$maestro_e2e_ws "
        + "lei=$http_last_event_id $status';",
];

/* parses logs/seen.log (SEEN_HTTP) */
export function parseSeen(text) {
    return text.split('\n').filter(Boolean).map((l) => {
        const m = /^(\S+) (\S+) auth=(\S+) ws=(\S+) lei=(\S*) (\d+)$/
            .exec(l);
        return m ? { method: m[1], uri: m[2], auth: m[3], ws: m[4],
                     lastEventId: m[5] === '-' ? '' : m[5],
                     status: Number(m[6]) } : { line: l };
    });
}

/*
 * opts: buildConf() options (agents, workflows, defaultWorkflow, ...), plus
 * port (default: a free one) and auth: true (maestro_auth on, an admin
 * credential given to the master as MAESTRO_ADMIN_KEY, logs/seen.log).
 * Returns {base, port, prefix, start(), stop(), restart(), killSync()};
 * start() has already been called. With auth also {adminKey,
 * createKey(body) -> the key record with its secret "key", seen()}.
 */
export async function startUiServer(opts = {}) {
    const prefix = opts.prefix || mkPrefix('maestro-e2e');
    const port = opts.port || await freePort();
    const base = `http://127.0.0.1:${port}`;
    const auth = Boolean(opts.auth);
    const adminKey = auth ? (opts.adminKey
        || 'admin-' + crypto.randomBytes(24).toString('hex')) : null;
    const conf = buildConf({
        ...opts,
        http: [...UI_TYPES,
               ...(auth ? ['    maestro_auth on;', ...SEEN_HTTP] : []),
               ...(opts.http ? [].concat(opts.http) : [])],
        server: [...(auth ? ['        access_log logs/seen.log '
                             + 'maestro_e2e_seen;'] : []),
                 ...uiServerLines(), ...(opts.server
                                         ? [].concat(opts.server) : [])],
    }, prefix, port);
    const env = { ...process.env };
    delete env.MAESTRO_ADMIN_KEY;
    if (auth) {
        env.MAESTRO_ADMIN_KEY = adminKey;
    }

    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
    const confPath = path.join(prefix, 'nginx.conf');
    fs.writeFileSync(confPath, conf);

    let child = null;
    let exitP = null;
    let out = '';

    const s = {
        base, port, prefix, confPath, adminKey,
        output: () => out,

        /* POST /api/v1/keys with the admin credential */
        async createKey(body) {
            const r = await fetch(`${base}/api/v1/keys`, {
                method: 'POST',
                headers: { Authorization: `Bearer ${adminKey}`,
                           'Content-Type': 'application/json' },
                body: JSON.stringify(body),
            });
            const json = await r.json();
            if (r.status !== 201) {
                throw new Error(`POST /api/v1/keys: ${r.status} `
                                + JSON.stringify(json));
            }
            return json;
        },

        seen: () => {
            try {
                return parseSeen(fs.readFileSync(
                    path.join(prefix, 'logs/seen.log'), 'utf8'));
            } catch {
                return [];
            }
        },
        errorLog: () => {
            try {
                return fs.readFileSync(path.join(prefix, 'logs/error.log'),
                                       'utf8');
            } catch {
                return '';
            }
        },

        async start() {
            child = spawn(NGINX, ['-p', prefix + '/', '-c', confPath,
                                  '-e', path.join(prefix, 'logs/error.log')],
                          { stdio: ['ignore', 'pipe', 'pipe'], env });
            child.stdout.on('data', (d) => { out += d; });
            child.stderr.on('data', (d) => { out += d; });
            let exited = false;
            exitP = new Promise((resolve) => {
                child.on('exit', () => { exited = true; resolve(); });
                child.on('error', () => { exited = true; resolve(); });
            });
            running.add(s);
            const deadline = Date.now() + 10000;
            while (await healthz(base) !== 200) {
                if (exited || Date.now() > deadline) {
                    s.killSync();
                    throw new Error(`nginx did not start on ${base}\n${out}`);
                }
                await sleep(50);
            }
        },

        /* SIGTERM: a fast shutdown that drops open SSE connections */
        async stop() {
            if (!child || child.exitCode !== null) {
                running.delete(s);
                return;
            }
            const workers = childPids(child.pid);
            child.kill('SIGTERM');
            const t = setTimeout(() => s.killSync(), 5000);
            await exitP;
            clearTimeout(t);
            for (const w of workers) {
                try {
                    process.kill(w, 'SIGKILL');
                } catch {
                    /* gone */
                }
            }
            running.delete(s);
        },

        async restart() {
            await s.stop();
            await s.start();
        },

        killSync() {
            if (!child || child.exitCode !== null) {
                return;
            }
            const workers = childPids(child.pid);
            for (const p of [child.pid, ...workers]) {
                try {
                    process.kill(p, 'SIGKILL');
                } catch {
                    /* gone */
                }
            }
        },
    };

    await s.start();
    return s;
}
