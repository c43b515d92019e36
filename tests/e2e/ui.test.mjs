/*
 * Copyright (C) Maestro authors
 */

/*
 * End-to-end tests of the web UI (html/dist) in real headless Chromium
 * against a real nginx with the Maestro module. The LLM provider is the
 * fake OpenAI server streaming slowly, so a run lasts long enough to watch
 * the agents move and the answer stream in.
 *
 * Needs: `cd html && npm ci && npm run build` (dist/ and playwright-core),
 * `make` (the module and plugins), /usr/bin/chromium.
 * Screenshots: tests/out/screenshots/.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { startFakeOpenAI, waitFor, sleep, api } from
    '../integration/lib/harness.mjs';
import { startUiServer, DIST, UI_CSP } from './lib/server.mjs';
import { launch, screenshot, axeSerious } from './lib/browser.mjs';

const ROUTES = ['prompt', 'monitor', 'metrics', 'agents'];

/* records, in the page, every status each agent tile and graph node shows
   and every distinct length of the answer, so fast transitions are seen */
function recorder() {
    window.__seen = { status: {}, answer: [], connection: [] };
    const note = () => {
        for (const el of document.querySelectorAll(
            '.mst-tile[data-node], g.mst-graph__node[data-node]')) {
            const n = el.getAttribute('data-node');
            const s = el.getAttribute('data-status');
            const list = (window.__seen.status[n] ||= []);
            if (list[list.length - 1] !== s) {
                list.push(s);
            }
        }
        const a = document.querySelector('#answer');
        if (a && a.getAttribute('data-final') !== 'true') {
            const len = a.textContent.length;
            const l = window.__seen.answer;
            if (l[l.length - 1] !== len) {
                l.push(len);
            }
        }
        const c = document.querySelector('[data-connection]');
        if (c) {
            const l = window.__seen.connection;
            const v = c.getAttribute('data-connection');
            if (l[l.length - 1] !== v) {
                l.push(v);
            }
        }
    };
    new MutationObserver(note).observe(document, {
        subtree: true, childList: true, attributes: true,
        characterData: true,
        attributeFilter: ['data-status', 'data-connection', 'data-final'],
    });
}

/*
 * The next LLM calls are slow: the planner's answer comes after a pause
 * (so "planning" lasts), the answers stream a word every 60 ms.
 */
async function slowRun(fake) {
    await fake.control(['slow_first_byte:800', 'slow_stream:60',
                        'slow_stream:60', 'slow_stream:60', 'slow_stream:60',
                        'slow_stream:60', 'slow_stream:60']);
}

async function gotoRoute(page, base, route) {
    await page.goto(`${base}/${route}`);
    await page.waitForSelector('#main-heading');
}

describe('web UI in headless Chromium', { timeout: 240000 }, () => {
    let fake;
    let srv;
    let browser;
    let page;
    let firstId;
    const cspViolations = [];

    before(async () => {
        assert.ok(fs.existsSync(path.join(DIST, 'index.html')),
                  'html/dist is missing: cd html && npm ci && npm run build');
        fake = await startFakeOpenAI();
        srv = await startUiServer({
            workers: 2,
            http: `    maestro_llm_provider ${fake.url} `
                + 'model=fake-model timeout=30s;',
        });
        browser = await launch();
        page = await browser.context.newPage();
        page.on('pageerror', (e) => {
            process.stderr.write(`# pageerror: ${e.message}\n`);
        });
        page.on('console', (m) => {
            if (/Content Security Policy/i.test(m.text())) {
                cspViolations.push(m.text());
            }
        });
        await page.addInitScript(recorder);
    });

    after(async () => {
        await browser?.close();
        await srv?.stop();
        await fake?.stop();
    });

    test('first render', async (t) => {
        const t0 = Date.now();
        await page.goto(`${srv.base}/`);
        await page.waitForSelector('#main-heading');
        const wall = Date.now() - t0;
        const nav = await page.evaluate(() => {
            const e = performance.getEntriesByType('navigation')[0];
            const fcp = performance.getEntriesByName(
                'first-contentful-paint')[0];
            return { dcl: Math.round(e.domContentLoadedEventEnd),
                     fcp: fcp ? Math.round(fcp.startTime) : null };
        });
        t.diagnostic(`first render: ${wall} ms wall, DOMContentLoaded `
                     + `${nav.dcl} ms, first contentful paint ${nav.fcp} ms`);
        assert.equal(await page.textContent('h1'), 'Prompt');
        assert.equal(await page.title(), 'Prompt · Maestro');

        /* the shell's security headers */
        const r = await fetch(`${srv.base}/`);
        await r.arrayBuffer();
        assert.equal(r.headers.get('content-security-policy'), UI_CSP);
        assert.match(UI_CSP, /script-src 'self';/);
        assert.doesNotMatch(UI_CSP, /unsafe-inline/);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    });

    test('submit a prompt with a context file; agents move; answer streams',
         async () => {
        await gotoRoute(page, srv.base, 'prompt');
        const posted = [];
        page.on('request', (r) => {
            if (r.method() === 'POST' && r.url().endsWith('/api/v1/workflows')) {
                posted.push(JSON.parse(r.postData()));
            }
        });

        /* the complexity tag, intent and route are the server's */
        const analyzed = [];
        const onReq = (r) => {
            if (r.url().endsWith('/api/v1/analyze')) {
                analyzed.push(JSON.parse(r.postData()).prompt);
            }
        };
        page.on('request', onReq);
        await page.fill('#prompt', 'Why does this fail?\n```\nlocation / '
                        + '{ proxy_pass http://up; }\n```');
        await page.waitForSelector('.mst-complexity[data-source="server"] '
                                   + '[data-complexity="complex"]');
        await page.waitForSelector('[data-route-name="default"]');
        assert.match(await page.textContent('.mst-complexity'),
                     /Route: default/);
        assert.match(await page.textContent('[data-intent]'), /^Intent: \S/);
        assert.ok(analyzed.some((p) => p.includes('```')), `${analyzed}`);
        page.off('request', onReq);

        await page.fill('#prompt', 'First list the parts of nginx, then '
                        + 'explain what an upstream is.');
        await page.waitForSelector('.mst-complexity[data-source="server"] '
                                   + '[data-complexity="complex"]');
        await page.setInputFiles('input[type=file]', {
            name: 'notes.md', mimeType: 'text/markdown',
            buffer: Buffer.from('# Notes\nnginx has workers.\n'),
        });
        await page.waitForSelector('text=notes.md');

        const sockets = [];
        const onWs = (ws) => sockets.push(ws.url());
        page.on('websocket', onWs);
        await slowRun(fake);
        await page.click('button[type=submit]');
        await page.waitForSelector('text=Processing');
        /* the live events come over a WebSocket */
        await page.waitForSelector('[data-connection="open"]'
                                   + '[data-transport="websocket"]');
        assert.ok(sockets.some((u) => /\/api\/v1\/workflows\/wf_[0-9a-f]+\/ws/
            .test(u)), `sockets ${sockets}`);
        page.off('websocket', onWs);
        await page.waitForSelector('#answer[data-final="true"]',
                                   { timeout: 90000 });

        assert.equal(posted.length, 1);
        assert.deepEqual(posted[0].context,
                         [{ name: 'notes.md',
                            content: '# Notes\nnginx has workers.\n' }]);
        assert.match(posted[0].prompt, /^First list the parts/);

        const seen = await page.evaluate(() => window.__seen);
        /* planner plans, llm executes, all complete */
        assert.ok(seen.status.planner?.includes('planning'),
                  JSON.stringify(seen.status));
        assert.equal(seen.status.planner.at(-1), 'complete');
        assert.ok(seen.status.llm?.includes('executing'),
                  JSON.stringify(seen.status));
        assert.equal(seen.status.llm.at(-1), 'complete');
        assert.equal(seen.status.reviewer?.at(-1), 'complete');
        for (const node of ['planner', 'llm']) {
            const s = seen.status[node];
            assert.ok(s.indexOf('complete') > s.findIndex((x) =>
                x === 'planning' || x === 'executing'), `${node}: ${s}`);
        }
        /* the answer grew in several steps before the final result */
        assert.ok(seen.answer.filter((n) => n > 0).length >= 3,
                  `answer lengths ${seen.answer}`);

        const answer = await page.textContent('#answer');
        assert.match(answer, /Echo:/);
        assert.equal(await page.getAttribute('[data-connection]',
                                             'data-transport'), 'websocket');
        /* the graph is the definition: planner -> llm -> reviewer, the
           review loop back to llm */
        assert.equal(await page.getAttribute('.mst-graph',
                                             'data-graph-source'),
                     'definition');
        assert.deepEqual(await page.locator('path.mst-graph__edge')
            .evaluateAll((es) => es.map((e) => e.getAttribute('data-edge'))),
                         ['planner->llm', 'llm->reviewer', 'reviewer->llm']);
        await page.waitForSelector('text=Complete');
        firstId = (await page.evaluate(() =>
            sessionStorage.getItem('maestro.current')));
        assert.match(firstId, /^wf_[0-9a-f]{20}$/);
        const rec = await api(srv.base, 'GET', `/api/v1/workflows/${firstId}`);
        assert.equal(rec.json.status, 'complete');
        assert.equal(answer.trim(), rec.json.result.trim());

        /* tiles: status, task, tokens, last log lines */
        const llmTokens = await page.textContent(
            '.mst-tile[data-node="llm"] [data-metric="tokens"]');
        assert.ok(Number(llmTokens.replace(/\D/g, '')) > 0, llmTokens);
        assert.ok(await page.locator('.mst-tile[data-node="llm"] '
                                     + '.mst-tile__logs li').count() > 0);
        assert.ok(await page.locator('#prompt-log li').count() > 0);
        await screenshot(page, 'prompt');

        /* the header has the notification */
        await page.click('button[data-action="notifications"]');
        await page.waitForSelector('#notes-panel .mst-note');
        await screenshot(page, 'notifications');
        await page.keyboard.press('Escape');
    });

    test('the workflow is in the monitor; selecting it shows its agents',
         async () => {
        await page.click('a[data-route="monitor"]');
        assert.equal(new URL(page.url()).pathname, '/monitor');
        const row = page.locator(`tr[data-workflow-id="${firstId}"]`);
        await row.waitFor();
        assert.match(await row.textContent(), /Complete/);
        const completed = Number(await page.textContent(
            '[data-count="completed"]'));
        assert.ok(completed >= 1);
        await row.locator('button').click();
        await page.waitForSelector('.mst-tile[data-node="reviewer"]'
                                   + '[data-status="complete"]');
        await page.waitForSelector('#monitor-log li');
        await screenshot(page, 'monitor');
    });

    test('metrics tabs and the agents screen', async () => {
        await page.click('a[data-route="metrics"]');
        await page.waitForSelector('[role="tab"]');
        const names = ['performance', 'tokens', 'efficiency', 'cost', 'flow'];
        for (let i = 0; i < names.length; i++) {
            await page.getByRole('tab').nth(i).click();
            await sleep(400);
            await screenshot(page, `metrics-${names[i]}`);
        }
        await page.getByRole('tab').nth(3).click();
        await page.waitForSelector('[data-empty="cost"]');
        await page.getByRole('tab').nth(4).click();
        await page.waitForSelector('.mst-sankey svg rect');

        await page.click('a[data-route="agents"]');
        await page.waitForSelector('tr[data-agent="llm"]');
        await page.click('tr[data-agent="llm"] button');
        await page.waitForSelector('#agent-log li');
        assert.match(await page.textContent('#agent-log'), /llm/);
        await screenshot(page, 'agents');
    });

    test('a fan-out graph: the monitor follows it live and draws it',
         async () => {
        await gotoRoute(page, srv.base, 'monitor');
        /* the monitor feed (SSE) is open: new rows come without polling */
        await page.waitForSelector('[data-feed="live"]');
        const graph = {
            name: 'fan', entry: 'a',
            nodes: { a: { agent: 'echo' },
                     /* long enough to see both running on a busy machine */
                     b: { agent: 'sleep', config: { ms: 6000 } },
                     c: { agent: 'sleep', config: { ms: 6000 } },
                     d: { agent: 'echo' } },
            edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'c' },
                    { from: 'b', to: 'd' }, { from: 'c', to: 'd' },
                    { from: 'd', to: '$end' }],
        };
        const sub = await api(srv.base, 'POST', '/api/v1/workflows',
                              { prompt: 'fan out', workflow: graph });
        assert.equal(sub.status, 202, JSON.stringify(sub.json));
        const id = sub.json.id;
        const t0 = Date.now();
        const row = page.locator(`tr[data-workflow-id="${id}"]`);
        /* the safety-net poll is 15 s while the feed is live */
        await row.waitFor({ timeout: 8000 });
        const appeared = Date.now() - t0;
        assert.ok(appeared < 8000, `row after ${appeared} ms`);
        await row.locator('button').click();
        await page.waitForSelector('.mst-graph[data-graph-source='
                                   + '"definition"] g.mst-graph__node');
        assert.equal(await page.locator('g.mst-graph__node').count(), 4);
        assert.equal(await page.locator('path.mst-graph__edge').count(), 4);
        assert.deepEqual(await page.locator('path.mst-graph__edge')
            .evaluateAll((es) => es.map((e) => e.getAttribute('data-edge'))),
                         ['a->b', 'a->c', 'b->d', 'c->d']);
        assert.equal(await page.locator('circle.mst-graph__end').count(), 1);
        /* fan-out: b and c side by side in one layer, a before, d after
           (once the nodes have moved from any inferred layout) */
        await page.waitForFunction(() => {
            const x = (n) => document.querySelector(
                `g.mst-graph__node[data-node="${n}"]`)
                ?.getBoundingClientRect().x;
            return x('b') !== undefined && x('b') === x('c');
        }, null, { timeout: 5000 }).catch(() => {});
        const xy = await page.locator('g.mst-graph__node').evaluateAll(
            (gs) => Object.fromEntries(gs.map((g) => {
                const r = g.getBoundingClientRect();
                return [g.getAttribute('data-node'),
                        [Math.round(r.x), Math.round(r.y)]];
            })));
        assert.equal(xy.b[0], xy.c[0], JSON.stringify(xy));
        assert.notEqual(xy.b[1], xy.c[1], JSON.stringify(xy));
        assert.ok(xy.a[0] < xy.b[0] && xy.b[0] < xy.d[0], JSON.stringify(xy));
        /* the branches run in parallel */
        await page.waitForFunction(() => ['b', 'c'].every((n) =>
            document.querySelector(`g.mst-graph__node[data-node="${n}"]`)
                ?.getAttribute('data-status') === 'executing'),
                                   null, { timeout: 10000 });
        await page.waitForSelector('[data-connection][data-transport='
                                   + '"websocket"]');
        await screenshot(page, 'monitor-fanout');
        /* the row turns complete from the feed */
        await waitFor(async () => /Complete/.test(await row.textContent()),
                      15000, 100, 'the fan-out row completes');
        await page.waitForSelector('g.mst-graph__node[data-node="d"]'
                                   + '[data-status="complete"]');

        /* the Flow Sankey: the same 4 edges */
        await page.click('a[data-route="metrics"]');
        await page.waitForSelector('[role="tab"]');
        await page.getByRole('tab').nth(4).click();
        await page.selectOption('#flow-workflow', id);
        await waitFor(async () => await page.locator(
            '.mst-sankey__link').count() === 4, 10000, 100,
                      'four Sankey links');
        await screenshot(page, 'metrics-flow-fanout');
    });

    test('theme and language switch, and persist', async () => {
        await gotoRoute(page, srv.base, 'prompt');
        assert.equal(await page.getAttribute('html', 'data-theme'), 'g100');
        await page.click('button[data-action="theme"]');
        assert.equal(await page.getAttribute('html', 'data-theme'), 'white');
        const bg = await page.evaluate(() =>
            getComputedStyle(document.body).backgroundColor);
        assert.equal(bg, 'rgb(255, 255, 255)');
        await page.click('button[data-action="language"]');
        assert.equal(await page.getAttribute('html', 'lang'), 'ko');
        assert.equal(await page.textContent('h1'), '프롬프트');
        await page.reload();
        await page.waitForSelector('#main-heading');
        assert.equal(await page.textContent('h1'), '프롬프트');
        assert.equal(await page.getAttribute('html', 'data-theme'), 'white');
        await screenshot(page, 'prompt-light-ko');
        await gotoRoute(page, srv.base, 'monitor');
        await screenshot(page, 'monitor-light-ko');
        await page.click('button[data-action="language"]');
        await page.click('button[data-action="theme"]');
        assert.equal(await page.textContent('h1'), 'Workflow Monitor');
        assert.equal(await page.getAttribute('html', 'data-theme'), 'g100');
    });

    test('keyboard only: skip link, navigation, send, select', async () => {
        const kb = await browser.context.newPage();
        await kb.goto(`${srv.base}/prompt`);
        await kb.waitForSelector('#main-heading');

        const focused = () => kb.evaluate(() => {
            const el = document.activeElement;
            const cs = getComputedStyle(el);
            return { tag: el.tagName, id: el.id, text: el.textContent.trim()
                         .slice(0, 40), cls: String(el.className),
                     route: el.getAttribute('data-route'),
                     outline: cs.outlineStyle !== 'none'
                         && parseFloat(cs.outlineWidth) > 0,
                     border: cs.borderTopStyle !== 'none'
                         && parseFloat(cs.borderTopWidth) >= 2,
                     width: el.getBoundingClientRect().width,
                     shadow: cs.boxShadow !== 'none' };
        });

        await kb.keyboard.press('Tab');
        let f = await focused();
        assert.match(f.cls, /skip-to-content/, JSON.stringify(f));
        assert.ok((f.outline || f.shadow || f.border) && f.width > 10,
                  `skip link focus is visible ${JSON.stringify(f)}`);
        await kb.keyboard.press('Enter');
        f = await focused();
        assert.equal(f.id, 'main-content', 'the skip link skips to main');

        /* from the top, Tab to the "Workflow Monitor" link and open it */
        await kb.reload();
        await kb.waitForSelector('#main-heading');
        for (let i = 0; i < 30; i++) {
            await kb.keyboard.press('Tab');
            f = await focused();
            if (f.route === 'monitor') {
                break;
            }
        }
        assert.equal(f.route, 'monitor', 'reached the side nav by Tab');
        assert.ok(f.outline || f.shadow, `visible focus ${JSON.stringify(f)}`);
        await kb.keyboard.press('Enter');
        await kb.waitForURL(/\/monitor$/);
        /* the screen may still be loading (a lazy chunk) */
        await kb.waitForFunction(() =>
            document.activeElement?.id === 'main-heading', null,
                                 { timeout: 5000 }).catch(() => {});
        f = await focused();
        assert.equal(f.id, 'main-heading', 'focus moved to the new heading');

        /* Tab to the first workflow id and select it */
        for (let i = 0; i < 30; i++) {
            await kb.keyboard.press('Tab');
            f = await focused();
            if (/^wf_/.test(f.text)) {
                break;
            }
        }
        assert.match(f.text, /^wf_/, 'reached a workflow id by Tab');
        assert.ok(f.outline || f.shadow, `visible focus ${JSON.stringify(f)}`);
        await kb.keyboard.press('Enter');
        await kb.waitForSelector('#selected-title');

        /* back to Prompt, type and send with Ctrl+Enter */
        await kb.goto(`${srv.base}/prompt`);
        await kb.waitForSelector('#main-heading');
        for (let i = 0; i < 30; i++) {
            await kb.keyboard.press('Tab');
            f = await focused();
            if (f.id === 'prompt') {
                break;
            }
        }
        assert.equal(f.id, 'prompt', 'reached the prompt by Tab');
        await kb.keyboard.type('Say hello.');
        await kb.keyboard.press('Control+Enter');
        await kb.waitForSelector('#answer[data-final="true"]',
                                 { timeout: 60000 });
        await kb.close();
    });

    test('axe-core: no serious or critical violations, both themes',
         async () => {
        const found = {};
        for (const theme of ['g100', 'white']) {
            const p = await browser.context.newPage();
            await p.addInitScript((th) => {
                localStorage.setItem('maestro.theme', th);
            }, theme);
            for (const route of ROUTES) {
                await gotoRoute(p, srv.base, route);
                if (route === 'monitor') {
                    await p.locator('tbody button').first().click();
                    await p.waitForSelector('#selected-title');
                }
                if (route === 'agents') {
                    await p.locator('tbody button').first().click();
                    await p.waitForSelector('#agent-log');
                }
                await sleep(500);
                const v = await axeSerious(p);
                if (v.length) {
                    found[`${theme} ${route}`] = v;
                }
                if (route === 'metrics') {
                    for (let i = 1; i < 5; i++) {
                        await p.getByRole('tab').nth(i).click();
                        await sleep(400);
                        const vt = await axeSerious(p);
                        if (vt.length) {
                            found[`${theme} metrics tab ${i}`] = vt;
                        }
                    }
                }
            }
            await p.close();
        }
        assert.deepEqual(found, {}, JSON.stringify(found, null, 2));
    });

    test('the whole run so far broke no Content-Security-Policy rule',
         async () => {
        assert.deepEqual(cspViolations, []);
    });

    test('360 px wide: no horizontal scrolling', async () => {
        const small = await launch({ viewport: { width: 360, height: 760 } });
        try {
            const p = await small.context.newPage();
            for (const route of ROUTES) {
                await gotoRoute(p, srv.base, route);
                if (route === 'monitor') {
                    await p.locator('tbody button').first().click();
                    await p.waitForSelector('#selected-title');
                }
                await sleep(500);
                const w = await p.evaluate(() =>
                    document.documentElement.scrollWidth);
                assert.ok(w <= 360, `${route} is ${w} px wide`);
                await screenshot(p, `narrow-${route}`);
            }
            await p.click('.cds--header__menu-toggle');
            await p.waitForSelector('a[data-route="agents"]',
                                    { state: 'visible' });
            await sleep(400);           /* the menu slides in */
            await screenshot(p, 'narrow-menu');
            await p.click('a[data-route="agents"]');
            await p.waitForURL(/\/agents$/);
        } finally {
            await small.close();
        }
    });

    test('server restart: the live view reconnects and resumes; the shell '
         + 'opens offline', async () => {
        const p = await browser.context.newPage();
        await p.addInitScript(recorder);
        const streams = [];
        p.on('request', (r) => {
            if (/\/events/.test(r.url())) {
                streams.push(r.url());
            }
        });
        p.on('websocket', (ws) => streams.push(ws.url()));
        await gotoRoute(p, srv.base, 'prompt');
        /* the service worker controls the page from now on */
        await p.evaluate(() => navigator.serviceWorker.ready);

        await p.fill('#prompt', 'Explain the nginx event loop in detail, '
                     + 'with examples of timers and sockets.');
        await p.waitForSelector('.mst-complexity[data-source="server"] '
                                + '[data-route-name="default"]');
        await fake.control(['slow_stream:120', 'slow_stream:120',
                            'slow_stream:120', 'slow_stream:120',
                            'slow_stream:120', 'slow_stream:120']);
        await p.click('button[type=submit]');
        await p.waitForSelector('[data-connection="open"]'
                                + '[data-transport="websocket"]');
        await waitFor(async () => (await p.textContent('#answer'))
            .includes('Echo'), 30000, 50, 'some tokens');
        const id = await p.evaluate(() =>
            sessionStorage.getItem('maestro.current'));

        await srv.stop();
        await p.waitForSelector('[data-connection="reconnecting"]');
        await screenshot(p, 'restart-reconnecting');

        /* offline: a new tab still gets the app shell from the SW */
        const off = await browser.context.newPage();
        await off.goto(`${srv.base}/monitor`);
        await off.waitForSelector('#main-heading');
        assert.equal(await off.textContent('h1'), 'Workflow Monitor');
        await screenshot(off, 'offline-shell');
        await off.close();

        await sleep(1500);
        await srv.start();
        await p.waitForSelector('#answer[data-final="true"]',
                                { timeout: 90000 });
        const seen = await p.evaluate(() => window.__seen);
        assert.ok(seen.connection.includes('reconnecting'),
                  `connection states ${seen.connection}`);
        assert.ok(streams.some((u) => /\/ws\?last_event_id=\d+/.test(u)),
                  `resumed with last_event_id: ${streams.join(' ')}`);
        /* still a WebSocket after the restart (no SSE fallback) */
        assert.equal(await p.getAttribute('[data-connection]',
                                          'data-transport'), 'websocket');
        assert.ok(!streams.some((u) => /\/workflows\/wf_[0-9a-f]+\/events/
            .test(u)), streams.join(' '));

        const rec = await api(srv.base, 'GET', `/api/v1/workflows/${id}`);
        assert.equal(rec.json.status, 'complete');
        assert.equal((await p.textContent('#answer')).trim(),
                     rec.json.result.trim());
        /* every log entry once */
        const lines = await p.locator('#prompt-log li').allTextContents();
        assert.equal(new Set(lines).size <= lines.length, true);
        const ev = await p.evaluate(async (wid) => {
            const r = await fetch(`/api/v1/workflows/${wid}`);
            return (await r.json()).last_event_id;
        }, id);
        assert.ok(ev > 0);
        await screenshot(p, 'restart-resumed');
        await p.close();
    });
});
