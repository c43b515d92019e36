/*
 * Copyright (C) Maestro authors
 */

/*
 * maestro_store_encryption_key: with a key, what a workflow leaves in the
 * store (record, checkpoints, events) reads back through the API and is
 * nowhere in the store's files; without one it is (the control that lets
 * the first check fail). A store written in clear keeps its records when
 * sealing is turned on, and a record sealed with a key the configuration
 * no longer has is an error, never garbage.
 */

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
    startMaestro, api, submit, waitStatus, sse, chain, mkPrefix,
} from './lib/harness.mjs';


const KEY1 = '3c'.repeat(32);


/* a 0600 file holding a key; its path */
function keyFile(dir, name, text) {
    const f = path.join(dir, name);

    fs.writeFileSync(f, text, { mode: 0o600 });
    return f;
}


/* whether any file of the store directory holds s */
function storeHas(dir, s) {
    return fs.readdirSync(dir).some((f) => fs.readFileSync(path.join(dir, f))
                                             .includes(Buffer.from(s)));
}


/*
 * submits a prompt to the echo chain and checks all of it reads back (and
 * that the listing has it, unless the store holds a record it cannot open)
 */
async function runAndRead(m, prompt, listed = true) {
    const wf = await submit(m.base, { prompt,
                                      workflow: chain(['a', 'echo']) });
    await waitStatus(m.base, wf.id, 'complete', 10000);

    const rec = await api(m.base, 'GET', `/api/v1/workflows/${wf.id}`);
    assert.equal(rec.status, 200);
    assert.equal(rec.json.prompt, prompt);
    assert.ok(rec.json.result.includes(prompt), 'echo result has it');

    const cps = await api(m.base, 'GET',
                          `/api/v1/workflows/${wf.id}/checkpoints`);
    assert.equal(cps.status, 200);
    assert.ok(cps.json.items.length > 0);
    assert.ok(JSON.stringify(cps.json.items).includes(prompt),
              'a checkpoint holds it');

    const ev = await sse(`${m.base}/api/v1/workflows/${wf.id}/events`,
                         { timeoutMs: 5000 });
    assert.equal(ev.status, 200);
    assert.equal(ev.events[ev.events.length - 1].event, 'done');
    assert.ok(ev.events.some((e) => JSON.stringify(e.data)
                                        .includes(prompt)),
              'an event holds it');

    if (listed) {
        const list = await api(m.base, 'GET', '/api/v1/workflows?limit=10');
        assert.equal(list.status, 200);
        assert.ok(list.json.items.some((w) => w.id === wf.id));
    }

    return wf.id;
}


describe('store encryption at rest', () => {
    const running = [];

    after(async () => {
        for (const m of running) {
            try {
                m.assertCleanLog();
            } finally {
                await m.stop();
            }
        }
    });

    async function start(opts) {
        const m = await startMaestro({ workers: 1, ...opts });
        running.push(m);
        return m;
    }

    async function stop(m) {
        running.splice(running.indexOf(m), 1);
        try {
            m.assertCleanLog();
        } finally {
            await m.stop();
        }
    }

    test('sealed: reads back, and the prompt is not in the files',
         async () => {
        const dir = mkPrefix('maestro-key');
        const key = keyFile(dir, 'store.key', `${KEY1}\n`);
        const store = path.join(mkPrefix('maestro-store'), 'store');
        const prompt = 'cobalt-marmoset-52817 wants a plan';

        const m = await start({ storePath: store, http: [
            `maestro_store_encryption_key id=1 file=${key} active;`,
        ] });

        await runAndRead(m, prompt);

        assert.equal(storeHas(store, 'cobalt-marmoset-52817'), false,
                     'the prompt is in the store in clear');
        assert.equal(storeHas(store, '"status":"complete"'), false);

        /* nor is the key in the log */
        assert.doesNotMatch(m.errorLog(), /3c3c3c3c/);

        await stop(m);
    });

    test('plain (no key): the prompt is in the files', async () => {
        const store = path.join(mkPrefix('maestro-store'), 'store');
        const prompt = 'vermilion-axolotl-90210 wants a plan';

        const m = await start({ storePath: store, seal: false });

        await runAndRead(m, prompt);
        assert.equal(storeHas(store, 'vermilion-axolotl-90210'), true);

        await stop(m);
    });

    test('turned on over a plain store, then a key lost', async () => {
        const dir = mkPrefix('maestro-key');
        const key1 = keyFile(dir, 'k1.key', Buffer.from(KEY1, 'hex'));
        const key2 = keyFile(dir, 'k2.key', `${'9d'.repeat(32)}\n`);
        const store = path.join(mkPrefix('maestro-store'), 'store');

        /* written in clear */
        let m = await start({ storePath: store, seal: false });
        const old = await runAndRead(m, 'saffron-tapir-11 in clear');
        await stop(m);

        /* sealing on: the old one still reads, the new one is sealed */
        m = await start({ storePath: store, http: [
            `maestro_store_encryption_key id=1 file=${key1} active;`,
        ] });

        const rec = await api(m.base, 'GET', `/api/v1/workflows/${old}`);
        assert.equal(rec.status, 200);
        assert.equal(rec.json.prompt, 'saffron-tapir-11 in clear');

        const sealed = await runAndRead(m, 'indigo-okapi-77 sealed');
        assert.equal(storeHas(store, 'indigo-okapi-77'), false);
        await stop(m);

        /* key 1 rotated out too early: its records are errors */
        m = await start({ storePath: store, http: [
            `maestro_store_encryption_key id=2 file=${key2} active;`,
        ], allowLog: [/record sealed with key id 1/] });

        const r = await api(m.base, 'GET', `/api/v1/workflows/${sealed}`);
        assert.equal(r.status, 500);
        assert.equal(r.json.error.code, 'store_sealed');
        assert.doesNotMatch(r.text, /indigo/);
        assert.match(m.errorLog(), new RegExp('\\[error\\].*maestro: store: '
            + 'record sealed with key id 1, which is not configured'));

        /* a listing does not skip it silently */
        const list = await api(m.base, 'GET', '/api/v1/workflows?limit=10');
        assert.equal(list.status, 500);
        assert.equal(list.json.error.code, 'store_sealed');

        /* the plain one still reads, and a new workflow runs sealed */
        const again = await api(m.base, 'GET', `/api/v1/workflows/${old}`);
        assert.equal(again.status, 200);
        await runAndRead(m, 'umber-quokka-5 with key 2', false);
        assert.equal(storeHas(store, 'umber-quokka-5'), false);

        await stop(m);
    });
});
