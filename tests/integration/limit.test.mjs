/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_limit: a burst across 2 workers is exact, a refusal is 429 with
 * Retry-After and the RateLimit fields, a reload keeps the counts.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMaestro, api } from './lib/harness.mjs';

/* $maestro_limit_status in an access log of its own */
const LIMIT_LOG = '    log_format lim "$request_method $uri $status '
    + '$maestro_limit_status";\n    access_log logs/limit.log lim;';

async function statusLog(m) {
    const file = path.join(m.prefix, 'logs/limit.log');
    await new Promise((r) => setTimeout(r, 200));
    return fs.readFileSync(file, 'utf8').split('\n')
        .filter((l) => l.startsWith('POST /api/v1/workflows '))
        .map((l) => l.slice('POST /api/v1/workflows '.length));
}


describe('maestro_limit', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2,
            http: 'maestro_limit_zone name=rl size=1m;\n'
                + '    maestro_limit zone=rl key=ip+endpoint rate=1r/m '
                + 'burst=4;\n' + LIMIT_LOG,
            server: ['location /v1/ { maestro_api; }'],
        });
    });

    after(async () => { await m?.stop(); });

    test('burst=4: exactly 5 admitted, then 429 with the fields', async () => {
        const got = [];
        for (let i = 0; i < 8; i++) {
            got.push(await api(m.base, 'POST', '/api/v1/workflows',
                               { prompt: 'hi' }));
        }
        assert.deepEqual(got.map((r) => r.status),
                         [202, 202, 202, 202, 202, 429, 429, 429]);

        assert.equal(got[0].headers['ratelimit-policy'], '"default";q=5;w=60');
        assert.equal(got[0].headers.ratelimit, '"default";r=4;t=60');
        assert.equal(got[4].headers.ratelimit, '"default";r=0;t=300');

        const no = got[5];
        assert.equal(no.json.error.code, 'rate_limited');
        assert.equal(no.headers['retry-after'], '60');
        assert.equal(no.headers.ratelimit, '"default";r=0;t=300');

        assert.deepEqual(await statusLog(m), [
            ...Array(5).fill('202 PASSED'), ...Array(3).fill('429 REJECTED'),
        ]);
    });

    test('another endpoint class has its own bucket', async () => {
        const r = await api(m.base, 'GET', '/api/v1/workflows');
        assert.equal(r.status, 200);
    });

    test('/v1: 429 in OpenAI\'s shape', async () => {
        const body = { model: 'nope', messages: [{ role: 'user',
                                                   content: 'hi' }] };
        const got = [];
        for (let i = 0; i < 6; i++) {
            got.push(await api(m.base, 'POST', '/v1/chat/completions', body));
        }
        assert.notEqual(got[4].status, 429);
        const no = got[5];
        assert.equal(no.status, 429);
        assert.equal(no.json.error.code, 'rate_limit_exceeded');
        assert.equal(no.json.error.type, 'requests');
        assert.equal(no.json.error.param, null);
        assert.equal(no.headers['retry-after'], '60');
    });

    test('a reload keeps the counts', async () => {
        await m.reload();
        const r = await api(m.base, 'POST', '/api/v1/workflows',
                            { prompt: 'hi' });
        assert.equal(r.status, 429);
    });
});


describe('maestro_limit_dry_run on', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 2,
            http: 'maestro_limit_zone name=rl size=1m;\n'
                + '    maestro_limit zone=rl key=user+endpoint rate=1r/m;\n'
                + '    maestro_limit_dry_run on;\n'
                + '    maestro_limit_log_level warn;\n' + LIMIT_LOG,
        });
    });

    after(async () => { await m?.stop(); });

    test('a refusal is logged, not made', async () => {
        const got = [];
        for (let i = 0; i < 3; i++) {
            got.push(await api(m.base, 'POST', '/api/v1/workflows',
                               { prompt: 'hi' }));
        }
        assert.deepEqual(got.map((r) => r.status), [202, 202, 202]);
        assert.equal(got[2].headers['retry-after'], undefined);
        assert.equal(got[2].headers.ratelimit, '"default";r=0;t=60');

        const log = fs.readFileSync(m.errorLogPath, 'utf8');
        const lines = log.split('\n').filter((l) => l.includes('dry run'));
        assert.equal(lines.length, 2, log);
        assert.match(lines[0], /\[warn\].*local caller would be refused/);

        assert.deepEqual(await statusLog(m), ['202 PASSED',
            '202 REJECTED_DRY_RUN', '202 REJECTED_DRY_RUN']);
    });
});
