/*
 * Copyright (C) Maestro authors
 */

/*
 * Headless Chromium (the Debian "chromium" package) driven by
 * playwright-core, with a fresh profile per launch. playwright-core and
 * axe-core come from html/node_modules (html/package.json devDependencies),
 * so the e2e tests need `cd html && npm ci` first; no browser download.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

import { REPO } from '../../integration/lib/harness.mjs';

const require = createRequire(path.join(REPO, 'html/package.json'));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO, 'tests/out/screenshots');
export const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core'),
                                          'utf8');

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];

/* {context, close()}: a persistent context on a fresh user-data-dir */
export async function launch(opts = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maestro-chromium-'));
    const context = await chromium.launchPersistentContext(dir, {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        headless: true,
        viewport: opts.viewport || { width: 1280, height: 900 },
        locale: opts.locale || 'en-US',
        colorScheme: 'dark',
        reducedMotion: opts.reducedMotion,
        serviceWorkers: opts.serviceWorkers || 'allow',
    });
    return {
        context,
        async close() {
            await context.close().catch(() => {});
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

export async function screenshot(page, name) {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

/*
 * Runs axe-core in the page (WCAG 2.0/2.1 A and AA rules); returns the
 * violations whose impact is serious or critical.
 */
export async function axeSerious(page, context = null) {
    const has = await page.evaluate(() => typeof window.axe !== 'undefined');
    if (!has) {
        /*
         * evaluated through the DevTools protocol: the page's CSP forbids
         * inline scripts, which addScriptTag() would add
         */
        await page.evaluate(AXE_SOURCE);
    }
    const res = await page.evaluate(async (ctx) => window.axe.run(
        ctx || document, {
            runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',
                                             'wcag21aa', 'best-practice'] },
            resultTypes: ['violations'],
        }), context);
    return res.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.slice(0, 5).map((n) => n.target
                           .join(' ') + ' :: ' + n.failureSummary) }));
}
