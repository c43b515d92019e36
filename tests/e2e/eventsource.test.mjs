/*
 * Copyright (C) Maestro authors
 */

/*
 * The browser's own EventSource (headless Chromium) on Maestro's SSE:
 * every event of a workflow, in order, with lastEventId; across workers;
 * the monitor stream; and the browser's automatic reconnection resuming
 * after the last id when the server restarts under it.
 */

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { launch } from './lib/browser.mjs';
import { startUiServer, DIST } from './lib/server.mjs';
import { api, chain, waitStatus } from '../integration/lib/harness.mjs';


/* runs in the page: collect a stream until done/error (data) or timeout */
function collect({ url, ms }) {
    return new Promise((resolve) => {
        const es = new EventSource(url);
        const got = [];
        let opens = 0;
        const names = ['workflow_update', 'agent_status', 'log_entry',
                       'token', 'done', 'error'];
        const end = () => { es.close(); resolve({ got, opens }); };

        es.onopen = () => { opens++; };
        for (const n of names) {
            es.addEventListener(n, (e) => {
                if (n === 'error' && !e.data) {
                    return;             /* the connection's own error */
                }
                got.push({ name: n, id: Number(e.lastEventId),
                           data: JSON.parse(e.data) });
                if (n === 'done' || n === 'error') end();
            });
        }
        setTimeout(end, ms);
    });
}


describe('EventSource in headless Chromium', {
    skip: !fs.existsSync(DIST + '/index.html') && 'html/dist is missing',
}, () => {
    let srv, browser, page;

    before(async () => {
        srv = await startUiServer({ workers: 2 });
        browser = await launch();
        page = await browser.context.newPage();
        await page.goto(`${srv.base}/healthz`);
    });

    after(async () => {
        await browser?.close();
        await srv?.stop();
    });

    test('every event of a workflow, in order, with lastEventId',
         async () => {
        const r = await api(srv.base, 'POST', '/api/v1/workflows', {
            prompt: 'in the browser',
            workflow: chain(['a', 'echo'], ['s', 'sleep', { ms: 500 }],
                            ['b', 'echo']),
        });
        assert.equal(r.status, 202);

        const res = await page.evaluate(collect, {
            url: `/api/v1/workflows/${r.json.id}/events`, ms: 10000 });
        const ids = res.got.map((e) => e.id);
        assert.deepEqual(ids, ids.map((_, i) => i + 1), 'contiguous from 1');
        assert.equal(res.got[0].name, 'workflow_update');
        assert.equal(res.got[res.got.length - 1].name, 'done');
        assert.equal(res.opens, 1);

        const wf = await waitStatus(srv.base, r.json.id, 'complete', 5000);
        assert.equal(wf.last_event_id, ids.length);
    });

    test('the browser resumes after a restart drops its stream',
         async () => {
        const r = await api(srv.base, 'POST', '/api/v1/workflows', {
            prompt: 'across a reload',
            workflow: chain(['a', 'echo'], ['s', 'sleep', { ms: 2500 }],
                            ['b', 'echo']),
        });

        const pending = page.evaluate(collect, {
            url: `/api/v1/workflows/${r.json.id}/events`, ms: 20000 });
        await new Promise((ok) => setTimeout(ok, 700));
        await srv.restart();

        const res = await pending;
        const ids = res.got.map((e) => e.id);
        /* no gap, no repeat: the browser sent Last-Event-ID itself, and
           another worker resumed the workflow from its checkpoint */
        assert.deepEqual(ids, ids.map((_, i) => i + 1));
        assert.equal(res.got[res.got.length - 1].name, 'done');
        assert.ok(res.opens >= 2, `reconnected (${res.opens} opens)`);
    });

    test('the monitor stream sees new workflows', async () => {
        const pending = page.evaluate((ms) => new Promise((resolve) => {
            const es = new EventSource('/api/v1/events?user_id=browser');
            const got = [];
            es.addEventListener('workflow_update', (e) => {
                got.push(JSON.parse(e.data));
                if (got.some((x) => x.status === 'complete')) {
                    es.close();
                    resolve(got);
                }
            });
            setTimeout(() => { es.close(); resolve(got); }, ms);
        }), 10000);

        await new Promise((ok) => setTimeout(ok, 500));
        await api(srv.base, 'POST', '/api/v1/workflows', {
            prompt: 'watched', user_id: 'browser',
            workflow: chain(['a', 'echo']),
        });

        const got = await pending;
        assert.deepEqual(got.map((x) => x.status),
                         ['queued', 'running', 'complete']);
        assert.ok(got.every((x) => x.user_id === 'browser'));
    });
});
