// Soak: submit far more workflows than the store's map holds, for a
// while, and watch that throughput stays steady and the store stays flat
// (workflow retention and store pressure at their defaults, issue #12).
//
//   BUILD=build node bench/soak.mjs
//
// Env: SOAK_SECONDS (600), SOAK_INTERVAL (10 s a line), SOAK_CONC (32
// connections), SOAK_STORE (maestro_store_size, 256m), SOAK_PROMPT (bytes
// of each prompt, 1000: about 10 KB stored a workflow), SOAK_WORKERS (2).
// Prints a line per interval: workflows accepted per second, refusals by
// status, the store's used bytes (/healthz store.used_bytes) and the
// workflows active; then one JSON line with the summary. The nginx is
// stopped at the end, also on error.

import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
    note, get, startNginx, stopNginx, stopAll, mainConf, httpCommon,
} from './lib/nginx.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUILD = path.resolve(process.env.BUILD || path.join(HERE, '..', 'build'));
const SECONDS = +(process.env.SOAK_SECONDS || 600);
const INTERVAL = +(process.env.SOAK_INTERVAL || 10);
const CONC = +(process.env.SOAK_CONC || 32);
const STORE = process.env.SOAK_STORE || '256m';
const PROMPT = +(process.env.SOAK_PROMPT || 1000);
const WORKERS = +(process.env.SOAK_WORKERS || 2);

const SEQ2 = {
    name: 'soak2', entry: 'a', max_steps: 4,
    nodes: { a: { agent: 'noop' }, b: { agent: 'noop' } },
    edges: [{ from: 'a', to: 'b' }, { from: 'b', to: '$end' }],
};

function confText(prefix, port) {
    return `${mainConf({ modules: [`${BUILD}/ngx_http_maestro_module.so`],
                         workers: WORKERS })}
thread_pool maestro threads=4 max_queue=65536;
thread_pool maestro_io threads=2 max_queue=65536;

http {
${httpCommon(prefix)}

    maestro_store_path ${prefix}/store;
    maestro_store_size ${STORE};
    maestro_plugins_dir ${BUILD}/fixtures;
    maestro_agent noop plugin=noop.so;
    maestro_workflow soak2 ${prefix}/soak2.json;
    maestro_queue_size 4096;
    client_body_buffer_size 64k;

    server {
        listen 127.0.0.1:${port};
        location /api/ {
            maestro_api;
        }
        location = /healthz {
            maestro_api;
        }
    }
}
`;
}

function post(agent, port, body) {
    return new Promise((resolve) => {
        const req = http.request({
            host: '127.0.0.1', port, method: 'POST', path: '/api/v1/workflows',
            agent, headers: { 'Content-Type': 'application/json',
                              'Content-Length': Buffer.byteLength(body) },
            timeout: 30000,
        }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => resolve(0));
        req.end(body);
    });
}

const pct = (a, b) => (b ? (100 * a / b).toFixed(1) : '0');

async function main() {
    const srv = await startNginx('soak', confText,
                                 { files: { 'soak2.json': JSON.stringify(SEQ2) },
                                   workers: WORKERS });
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
    const filler = 'x'.repeat(PROMPT);
    const status = {};
    let accepted = 0;
    let seq = 0;
    let stop = false;

    note(`soak: ${SECONDS} s, ${CONC} connections, ${PROMPT} B prompts, `
         + `maestro_store_size ${STORE}, ${WORKERS} workers`);

    async function loop() {
        while (!stop) {
            const body = JSON.stringify({ workflow: 'soak2',
                                          prompt: `soak ${seq++} ${filler}` });
            const s = await post(agent, srv.port, body);
            if (s === 202) {
                accepted++;
            } else {
                status[s] = (status[s] || 0) + 1;
                if (s === 503) await new Promise((r) => setTimeout(r, 1));
            }
        }
    }

    const loops = Array.from({ length: CONC }, loop);
    const rows = [];
    const t0 = Date.now();
    let last = 0;

    for (let i = 1; i * INTERVAL <= SECONDS; i++) {
        await new Promise((r) => setTimeout(r, t0 + i * INTERVAL * 1000 - Date.now()));
        const h = await get(srv.port, '/healthz', 5000);
        let j = {};
        try { j = JSON.parse(h.text); } catch { /* none */ }
        const row = {
            t: i * INTERVAL,
            per_s: +((accepted - last) / INTERVAL).toFixed(1),
            refused: { ...status },
            used_mb: +((j.store?.used_bytes || 0) / 1048576).toFixed(1),
            map_mb: +((j.store?.map_bytes || 0) / 1048576).toFixed(0),
            active: j.workflows?.active,
        };
        last = accepted;
        rows.push(row);
        process.stdout.write(`t=${String(row.t).padStart(4)} s  `
            + `${String(row.per_s).padStart(7)} workflows/s  `
            + `store ${row.used_mb} / ${row.map_mb} MB (${pct(row.used_mb, row.map_mb)}%)  `
            + `active ${row.active}  refused ${JSON.stringify(row.refused)}\n`);
    }

    stop = true;
    await Promise.all(loops);
    agent.destroy();
    await stopNginx(srv);

    // steady: the second half against the first (past the first minute)
    const warm = rows.filter((r) => r.t > 60);
    const half = Math.floor(warm.length / 2);
    const avg = (a) => a.reduce((s, r) => s + r.per_s, 0) / (a.length || 1);
    const first = avg(warm.slice(0, half));
    const second = avg(warm.slice(half));
    const used = warm.map((r) => r.used_mb);
    const summary = {
        seconds: SECONDS, accepted, refused: status,
        prompt_mb: +(accepted * PROMPT / 1048576).toFixed(0),
        map_mb: rows[0]?.map_mb,
        per_s_first_half: +first.toFixed(1), per_s_second_half: +second.toFixed(1),
        second_over_first: +(second / (first || 1)).toFixed(3),
        per_s_min: Math.min(...warm.map((r) => r.per_s)),
        per_s_max: Math.max(...warm.map((r) => r.per_s)),
        store_mb_after_1min: used[0], store_mb_end: used[used.length - 1],
        store_mb_max: Math.max(...used),
        log_problems: srv.bad?.length || 0,
    };
    process.stdout.write(JSON.stringify(summary) + '\n');
}

main().catch(async (e) => {
    process.stderr.write(`soak: ${e.stack || e}\n`);
    await stopAll();
    process.exit(1);
});
