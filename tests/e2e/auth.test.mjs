/*
 * Copyright (C) Maestro authors
 */

/*
 * The web UI against a server that requires credentials (maestro_auth on,
 * an admin credential from MAESTRO_ADMIN_KEY, an API key made with it
 * through POST /api/v1/keys), in headless Chromium: the UI asks for the
 * key in an accessible dialog, refuses a wrong one, keeps the right one in
 * sessionStorage (never localStorage, never a URL) and sends it on every
 * request: a Bearer header on REST and SSE (read with fetch(), since
 * EventSource sends no headers), the maestro.bearer.<key> subprotocol on
 * WebSockets. What the server saw is read from its own access log
 * (logs/seen.log: which credential each request carried, never the
 * secret). A 403 is a clear message; sign out forgets the key. With
 * upgrades refused by a proxy, the live view runs on SSE with the header
 * and resumes with Last-Event-ID across a server restart.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { api, sleep, startFakeOpenAI, waitFor } from
    '../integration/lib/harness.mjs';
import { DIST, startUiServer } from './lib/server.mjs';
import { axeSerious, launch, screenshot } from './lib/browser.mjs';

const WRONG = 'mk_0123456789abcdef_' + 'A'.repeat(43);
const DIALOG = '[role="dialog"][aria-modal="true"]';

const bearer = (k) => ({ Authorization: `Bearer ${k}` });

/* the next LLM answers stream a word every ms milliseconds */
async function slowRun(fake, ms, n = 6) {
    await fake.control(Array.from({ length: n }, () => `slow_stream:${ms}`));
}

/* every request the page makes: url, method, its headers */
function recordRequests(page) {
    const reqs = [];
    page.on('request', async (r) => {
        const entry = { url: r.url(), method: r.method(), headers: {} };
        reqs.push(entry);
        try {
            entry.headers = await r.allHeaders();
        } catch {
            /* the page went away */
        }
    });
    return reqs;
}

async function dialogVisible(page) {
    return page.locator(DIALOG).isVisible();
}

async function openUserPanel(page) {
    const b = page.locator('button[data-action="user"]');
    if (await b.getAttribute('aria-expanded') !== 'true') {
        await b.click();
    }
    await page.waitForSelector('#user-panel .mst-me');
}

async function signIn(page, key) {
    await page.waitForSelector(DIALOG, { state: 'visible' });
    await page.fill('#auth-key', key);
    await page.click(`${DIALOG} .cds--modal-footer .cds--btn--primary`);
    await page.waitForSelector(DIALOG, { state: 'detached' });
}

describe('web UI with maestro_auth on', {
    timeout: 240000,
    skip: !fs.existsSync(path.join(DIST, 'index.html'))
        && 'html/dist is missing',
}, () => {
    let fake;
    let srv;
    let browser;
    let alice;
    const cspViolations = [];

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startUiServer({
            workers: 2, auth: true,
            http: [`    maestro_llm_provider ${fake.url} `
                   + 'model=fake-model timeout=30s;',
                   /* a closed stream is noticed (and logged) soon */
                   '    maestro_sse_heartbeat 1s;'],
        });
        alice = await srv.createKey({
            user_id: 'alice', team: 'red', name: 'e2e',
            limits: { rpm: 600, tpm: 100000, max_parallel: 4 },
            budget_usd: 5, budget_period: 'month',
        });
        browser = await launch();
    });

    after(async () => {
        await browser?.close();
        await srv?.stop();
        await fake?.stop();
    });

    const newPage = async () => {
        const p = await browser.context.newPage();
        p.on('pageerror', (e) => {
            process.stderr.write(`# pageerror: ${e.message}\n`);
        });
        p.on('console', (m) => {
            if (/Content Security Policy/i.test(m.text())) {
                cspViolations.push(m.text());
            }
        });
        return p;
    };

    test('the server refuses the API without a key', async () => {
        const r = await api(srv.base, 'GET', '/api/v1/workflows');
        assert.equal(r.status, 401);
        assert.match(r.headers['www-authenticate'], /^Bearer /);
        const me = await api(srv.base, 'GET', '/api/v1/me', null,
                             bearer(alice.key));
        assert.equal(me.status, 200);
        assert.equal(me.json.user_id, 'alice');
    });

    let page;
    let reqs;

    test('the UI asks for a key: labelled dialog, focus kept inside, '
         + 'Escape closes; a wrong key is refused; the right one works',
         async () => {
        page = await newPage();
        reqs = recordRequests(page);
        await page.goto(`${srv.base}/prompt`);
        await page.waitForSelector(DIALOG, { state: 'visible' });

        /* labelled by its heading; the field by its label; focus in it */
        const name = await page.locator(DIALOG).evaluate((d) =>
            d.getAttribute('aria-label')
            ?? document.getElementById(d.getAttribute('aria-labelledby'))
                ?.textContent.trim());
        assert.equal(name, 'API key');
        assert.equal(await page.getAttribute('#auth-key', 'type'),
                     'password');
        assert.equal(await page.locator('label[for="auth-key"]')
            .textContent(), 'API key');
        await page.waitForFunction(() =>
            document.activeElement?.id === 'auth-key');
        const v = await axeSerious(page);
        assert.deepEqual(v, [], JSON.stringify(v, null, 2));
        await screenshot(page, 'auth-dialog');

        /* Tab and Shift+Tab never leave the dialog, not even for a
           moment (on the keydown: Carbon's keyboard wrap) */
        const keys = ['Tab', 'Tab', 'Tab', 'Tab', 'Tab', 'Tab',
                      'Shift+Tab', 'Shift+Tab', 'Shift+Tab'];
        for (const [i, key] of keys.entries()) {
            await page.keyboard.press(key);
            const inside = await page.evaluate((sel) => {
                const d = document.querySelector(sel);
                return d !== null && d.contains(document.activeElement);
            }, DIALOG);
            assert.ok(inside, `focus left the dialog after ${key} #${i}: `
                      + await page.evaluate(() => document.activeElement
                          ?.outerHTML.slice(0, 120)));
        }

        /* Escape closes it (from the field; on a button with a tooltip
           shown, Carbon's first Escape closes the tooltip); the user
           panel offers to sign in again */
        await page.focus('#auth-key');
        await page.keyboard.press('Escape');
        await page.waitForSelector(DIALOG, { state: 'detached' });
        await openUserPanel(page);
        await page.click('button[data-action="sign-in"]');
        await page.waitForSelector(DIALOG, { state: 'visible' });

        /* a wrong key: an error in the dialog, nothing kept */
        await page.fill('#auth-key', WRONG);
        await page.click(`${DIALOG} .cds--modal-footer .cds--btn--primary`);
        await page.waitForSelector('.cds--form-requirement');
        assert.match(await page.locator('.cds--form-requirement')
            .textContent(), /This key was not accepted: invalid API key/);
        assert.ok(await dialogVisible(page));
        assert.equal(await page.evaluate(() =>
            sessionStorage.getItem('maestro.apikey')), null);
        await screenshot(page, 'auth-dialog-wrong-key');

        /* the right key: kept for the tab, the dialog goes */
        await page.fill('#auth-key', alice.key);
        await page.keyboard.press('Enter');
        await page.waitForSelector(DIALOG, { state: 'detached' });
        const stored = await page.evaluate(() => ({
            session: sessionStorage.getItem('maestro.apikey'),
            local: Object.keys(localStorage).map((k) =>
                localStorage.getItem(k)),
        }));
        assert.equal(stored.session, alice.key);
        assert.ok(!stored.local.some((x) => x.includes(alice.key)),
                  'not in localStorage');

        /* the caller: user, team, key, budget, limits (the panel is
           still open from the sign-in above) */
        await openUserPanel(page);
        await page.waitForSelector('#user-panel [data-me="user"]');
        assert.equal(await page.textContent('#user-panel [data-me="user"]'),
                     'alice');
        assert.equal(await page.textContent('#user-panel [data-me="team"]'),
                     'red');
        assert.match(await page.textContent('#user-panel [data-me="key"]'),
                     new RegExp(`^${alice.id}`));
        assert.match(await page.textContent('#user-panel '
                                            + '[data-me="budget"]'),
                     /\$5\.00/);
        /* "600", or "600 · 598 left now" where the server reports the
           limit's state */
        assert.match(await page.textContent('#user-panel '
                                            + '[data-limit="rpm"]'),
                     /^600( · [\d,]+ left now)?$/);
        assert.equal(await page.locator('#user-id').count(), 0,
                     'a key\'s user is the key\'s');
        const vp = await axeSerious(page, '#user-panel');
        assert.deepEqual(vp, [], JSON.stringify(vp, null, 2));
        await screenshot(page, 'auth-user-panel');
        await page.keyboard.press('Escape');
    });

    test('a prompt runs live over the WebSocket with the key', async () => {
        const sockets = [];
        page.on('websocket', (ws) => sockets.push(ws.url()));
        await page.fill('#prompt', 'Explain what an nginx upstream is.');
        await slowRun(fake, 60);
        await page.click('button[type=submit]');
        await page.waitForSelector('[data-connection="open"]'
                                   + '[data-transport="websocket"]');
        await page.waitForSelector('#answer[data-final="true"]',
                                   { timeout: 90000 });
        const id = await page.evaluate(() =>
            sessionStorage.getItem('maestro.current'));
        const rec = await api(srv.base, 'GET', `/api/v1/workflows/${id}`,
                              null, bearer(alice.key));
        assert.equal(rec.json.status, 'complete');
        assert.equal(rec.json.user_id, 'alice', 'run as the key\'s user');
        assert.equal((await page.textContent('#answer')).trim(),
                     rec.json.result.trim());

        /* the server saw the key on the upgrade, as a subprotocol */
        await waitFor(() => srv.seen().some((e) =>
            e.uri === `/api/v1/workflows/${id}/ws`), 5000, 50,
                      'the WebSocket in the log');
        const ws = srv.seen().filter((e) =>
            e.uri === `/api/v1/workflows/${id}/ws`);
        assert.ok(ws.every((e) => e.ws === 'key' && e.status === 101),
                  JSON.stringify(ws));

        /* every API request of the page carried the Bearer header, and
           the key was in no URL */
        const apiReqs = reqs.filter((r) => /\/api\/v1\//.test(r.url));
        const mine = apiReqs.filter((r) => r.headers.authorization
            === `Bearer ${alice.key}`);
        assert.ok(mine.some((r) => r.method === 'POST'
            && r.url.endsWith('/api/v1/workflows')), 'the submit');
        assert.ok(mine.some((r) => r.url.endsWith('/api/v1/analyze')));
        assert.ok(mine.some((r) => r.url.endsWith('/api/v1/me')));
        /* after the key was given, no request went without it */
        const first = apiReqs.findIndex((r) => r.headers.authorization
            === `Bearer ${alice.key}`);
        const without = apiReqs.slice(first).filter((r) =>
            r.headers.authorization !== `Bearer ${alice.key}`);
        assert.deepEqual(without.map((r) => r.url), []);
        for (const u of [...reqs.map((r) => r.url), ...sockets]) {
            assert.ok(!u.includes(alice.key), `key in a URL: ${u}`);
            assert.ok(!u.includes(alice.key.slice(20)), `key in ${u}`);
        }
        assert.ok(sockets.some((u) => u.endsWith(`/api/v1/workflows/${id}`
                                                 + '/ws')));
        const log = fs.readFileSync(path.join(srv.prefix,
                                              'logs/error.log'), 'utf8');
        assert.ok(!log.includes(alice.key.slice(20)), 'no key in error.log');
    });

    test('the monitor feed (SSE over fetch) carries the header and shows '
         + 'new workflows live', async () => {
        await page.click('a[data-route="monitor"]');
        await page.waitForSelector('[data-feed="live"]');
        const sub = await api(srv.base, 'POST', '/api/v1/workflows', {
            prompt: 'from the side', workflow: {
                name: 'side', entry: 'a', nodes: { a: { agent: 'echo' } },
                edges: [{ from: 'a', to: '$end' }] },
        }, bearer(alice.key));
        assert.equal(sub.status, 202, JSON.stringify(sub.json));
        const row = page.locator(`tr[data-workflow-id="${sub.json.id}"]`);
        await row.waitFor({ timeout: 8000 });
        await waitFor(async () => /Complete/.test(await row.textContent()),
                      15000, 100, 'the row completes from the feed');
        const feed = reqs.filter((r) => r.url.endsWith('/api/v1/events'));
        assert.ok(feed.length >= 1);
        assert.ok(feed.every((r) => r.headers.authorization
            === `Bearer ${alice.key}`
            && r.headers.accept === 'text/event-stream'),
                  JSON.stringify(feed.map((r) => r.headers)));
        /* the server agrees: the feed request carried a key */
        await page.goto(`${srv.base}/prompt`);       /* ends the feed */
        await waitFor(() => srv.seen().some((e) =>
            e.uri === '/api/v1/events'), 5000, 50, 'the feed in the log');
        assert.ok(srv.seen().filter((e) => e.uri === '/api/v1/events')
            .every((e) => e.auth === 'key' && e.status === 200));
    });

    test('reload keeps the key within the tab; another tab asks again',
         async () => {
        await page.reload();
        await page.waitForSelector('#main-heading');
        await openUserPanel(page);
        await page.waitForSelector('#user-panel [data-me="user"]');
        assert.equal(await dialogVisible(page), false);
        assert.equal(await page.evaluate(() =>
            sessionStorage.getItem('maestro.apikey')), alice.key);
        await page.keyboard.press('Escape');

        const other = await newPage();
        await other.goto(`${srv.base}/monitor`);
        await other.waitForSelector(DIALOG, { state: 'visible' });
        assert.equal(await other.evaluate(() =>
            sessionStorage.getItem('maestro.apikey')), null);
        await other.close();
    });

    test('360 px wide: the dialog fits, in Korean too', async () => {
        const small = await launch({ viewport: { width: 360, height: 760 },
                                     locale: 'ko-KR' });
        try {
            const p = await small.context.newPage();
            await p.goto(`${srv.base}/prompt`);
            await p.waitForSelector(DIALOG, { state: 'visible' });
            assert.equal(await p.locator(DIALOG).getAttribute('aria-label'),
                         'API 키');
            const w = await p.evaluate(() =>
                document.documentElement.scrollWidth);
            assert.ok(w <= 360, `the page is ${w} px wide`);
            const box = await p.locator(DIALOG).boundingBox();
            assert.ok(box.x >= 0 && box.x + box.width <= 360,
                      JSON.stringify(box));
            await screenshot(p, 'auth-dialog-narrow-ko');
        } finally {
            await small.close();
        }
    });

    test('a 403 says what the key may not do', async () => {
        /* agent logs span every user: tenants get 403 */
        await page.goto(`${srv.base}/agents`);
        await page.waitForSelector('tr[data-agent="llm"]');
        await page.click('tr[data-agent="llm"] button');
        const alert = page.locator('.mst-forbidden[role="alert"]');
        await alert.waitFor();
        assert.match(await alert.textContent(), /Not allowed/);
        assert.match(await alert.textContent(), /Your key may not do this/);
        await screenshot(page, 'auth-forbidden');
        await alert.locator('button').click();
        await alert.waitFor({ state: 'detached' });
    });

    test('sign out forgets the key and asks again', async () => {
        await page.goto(`${srv.base}/prompt`);
        await page.waitForSelector('#main-heading');
        await openUserPanel(page);
        await page.click('button[data-action="sign-out"]');
        await page.waitForSelector(DIALOG, { state: 'visible' });
        assert.deepEqual(await page.evaluate(() => ({
            key: sessionStorage.getItem('maestro.apikey'),
            current: sessionStorage.getItem('maestro.current'),
        })), { key: null, current: null });
        /* and in again */
        await signIn(page, alice.key);
        await page.close();
    });

    test('a key revoked meanwhile brings the dialog back, with why',
         async () => {
        const carol = await srv.createKey({ user_id: 'carol' });
        const p = await newPage();
        await p.goto(`${srv.base}/prompt`);
        await signIn(p, carol.key);
        const r = await api(srv.base, 'DELETE', `/api/v1/keys/${carol.id}`,
                            null, bearer(srv.adminKey));
        assert.equal(r.status, 200, JSON.stringify(r.json));
        await p.click('a[data-route="monitor"]');
        await p.waitForSelector(DIALOG, { state: 'visible' });
        assert.match(await p.textContent(DIALOG), /was not accepted/);
        assert.equal(await p.evaluate(() =>
            sessionStorage.getItem('maestro.apikey')), null);
        /* a valid key again: the refused list loads */
        await signIn(p, alice.key);
        await p.waitForSelector('[data-feed="live"]');
        await p.close();
    });

    test('no Content-Security-Policy violation; no alert in error.log',
         () => {
        assert.deepEqual(cspViolations, []);
        assert.deepEqual(srv.errorLog().split('\n').filter((l) =>
            /\[(alert|crit|emerg)\]/.test(l)), []);
    });
});

describe('web UI with maestro_auth on, WebSocket upgrades refused', {
    timeout: 240000,
    skip: !fs.existsSync(path.join(DIST, 'index.html'))
        && 'html/dist is missing',
}, () => {
    let fake;
    let srv;
    let browser;
    let key;

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startUiServer({
            workers: 2, auth: true,
            http: [`    maestro_llm_provider ${fake.url} `
                   + 'model=fake-model timeout=30s;',
                   /* a closed stream is noticed (and logged) soon */
                   '    maestro_sse_heartbeat 1s;'],
            /* a proxy that does not pass upgrades on */
            server: ['        location ~ ^/api/v1/workflows/[^/]+/ws$ {',
                     '            return 403;',
                     '        }'],
        });
        key = (await srv.createKey({ user_id: 'bob' })).key;
        browser = await launch();
    });

    after(async () => {
        await browser?.close();
        await srv?.stop();
        await fake?.stop();
    });

    test('the live view streams over SSE with the header and resumes '
         + 'with Last-Event-ID after a server restart', async () => {
        const p = await browser.context.newPage();
        const reqs = recordRequests(p);
        p.on('console', (m) => {
            if (process.env.E2E_DEBUG) {
                process.stderr.write(`# console: ${m.text()}\n`);
            }
        });
        await p.goto(`${srv.base}/prompt`);
        await signIn(p, key);
        await p.fill('#prompt', 'Explain the nginx event loop in detail, '
                     + 'with examples of timers and sockets.');
        await slowRun(fake, 150);
        await p.click('button[type=submit]');
        await p.waitForSelector('[data-connection="open"]'
                                + '[data-transport="sse"]');
        await waitFor(async () => (await p.textContent('#answer'))
            .includes('Echo'), 30000, 50, 'some tokens');
        const id = await p.evaluate(() =>
            sessionStorage.getItem('maestro.current'));

        await srv.stop();
        await p.waitForSelector('[data-connection="reconnecting"]');
        await sleep(1000);
        await srv.start();
        await p.waitForSelector('#answer[data-final="true"]',
                                { timeout: 90000 });
        assert.equal(await p.getAttribute('[data-connection]',
                                          'data-transport'), 'sse');

        const rec = await api(srv.base, 'GET', `/api/v1/workflows/${id}`,
                              null, bearer(key));
        assert.equal(rec.json.status, 'complete');
        assert.equal((await p.textContent('#answer')).trim(),
                     rec.json.result.trim());
        /* every log entry once: nothing replayed twice */
        const lines = await p.locator('#prompt-log li').allTextContents();
        assert.equal(new Set(lines).size, lines.length, lines.join('\n'));

        /* the browser's view: the header on every stream request, the
           reconnect with Last-Event-ID (a header: the URL has no id) */
        const streams = reqs.filter((r) => r.url.endsWith(
            `/api/v1/workflows/${id}/events`));
        assert.ok(streams.length >= 2, `${streams.length} stream requests`);
        assert.ok(streams.every((r) => r.headers.authorization
            === `Bearer ${key}`), JSON.stringify(streams));
        assert.equal(streams[0].headers['last-event-id'], undefined);
        const resumed = streams.slice(1).map((r) =>
            Number(r.headers['last-event-id']));
        assert.ok(resumed.every((n) => n > 0), `resumed from ${resumed}`);

        /* the server's view, from its access log */
        await waitFor(() => srv.seen().filter((e) =>
            e.uri === `/api/v1/workflows/${id}/events`
            && e.lastEventId !== '').length >= 1, 5000, 50,
                      'the resumed stream in the log');
        const seen = srv.seen().filter((e) =>
            e.uri === `/api/v1/workflows/${id}/events`);
        assert.ok(seen.every((e) => e.auth === 'key'), JSON.stringify(seen));
        assert.ok(seen.some((e) => Number(e.lastEventId) > 0
                            && e.status === 200), JSON.stringify(seen));
        /* the refused upgrades got no key in a URL either */
        assert.ok(reqs.every((r) => !r.url.includes(key)));
        await screenshot(p, 'auth-sse-resumed');
        await p.close();
        /* SIGTERM mid-step: the master kills a worker that has not exited
           in time ("exited on signal 9"), as nginx does; nothing else */
        assert.deepEqual(srv.errorLog().split('\n').filter((l) =>
            /\[(alert|crit|emerg)\]/.test(l)
            && !/worker process \d+ exited on signal 9/.test(l)), []);
    });
});
