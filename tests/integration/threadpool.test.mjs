/*
 * Copyright (C) Maestro authors
 */

/*
 * A full io thread pool queue: the posts that do not fit are answered
 * (503 queue_full), each is logged with the directive that raises the
 * limit, nothing leaks or crashes, and the server goes on afterwards.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startMaestro, stopClean, api, submit, waitStatus, chain,
} from './lib/harness.mjs';


const ECHO = chain(['a', 'echo']);
const OVERFLOW = 'maestro: thread pool "maestro_io" queue overflow: '
                 + 'raise max_queue= of thread_pool "maestro_io"';


describe('io thread pool queue overflow', () => {
    let m;

    before(async () => {
        m = await startMaestro({
            workers: 1,
            threadPools: 'thread_pool maestro threads=2;\n'
                         + 'thread_pool maestro_io threads=1 max_queue=1;',
        });
    });

    after(() => stopClean(m));

    test('a burst: each answer is 202 or 503 queue_full, and logged',
         async () => {
        const rs = await Promise.all(Array.from({ length: 64 }, (_, i) =>
            api(m.base, 'POST', '/api/v1/workflows',
                { prompt: `burst ${i}`, workflow: ECHO })));

        const full = rs.filter((r) => r.status === 503);
        for (const r of rs) {
            assert.ok(r.status === 202 || r.status === 503,
                      `${r.status} ${r.text}`);
        }
        assert.ok(full.length > 0, 'the burst filled the queue');
        for (const r of full) {
            assert.equal(r.json.error.code, 'queue_full');
            assert.equal(r.json.error.message,
                         'the io thread pool queue is full');
        }

        const log = m.errorLog();
        const lines = log.split('\n').filter((l) => l.includes(OVERFLOW));
        assert.ok(lines.length >= full.length,
                  `${lines.length} overflow lines for ${full.length} 503s`);
        assert.match(lines[0], /\[error\]/);

        /* the accepted ones run to the end */
        for (const r of rs.filter((x) => x.status === 202)) {
            await waitStatus(m.base, r.json.id, 'complete', 20000);
        }
    });

    test('the server goes on after the burst', async () => {
        const w = await submit(m.base, { prompt: 'after', workflow: ECHO });
        const done = await waitStatus(m.base, w.id, 'complete', 20000);
        assert.equal(done.status, 'complete');
    });
});
