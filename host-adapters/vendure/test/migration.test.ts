import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { dummyPaymentHandler, generateMigration, mergeConfig, runMigrations } from '@vendure/core';
import { testConfig } from '@vendure/testing';
import ts from 'typescript';

import { CvcoPlugin } from '../src';
import { NOTIFICATION_SECRET, Sandbox, SHOP_ID, signedNotification, startVendure } from './harness';

/**
 * A shop that ran the plugin before the back-office (issue 11) upgrades its database the way
 * Vendure upgrades any plugin's entities: `generateMigration` writes the difference, `runMigrations`
 * applies it (README "Upgrading"). Production runs with `synchronize: false`, as here.
 */
// sql.js (the test database's engine) ships no types: the little used here.
interface SqlDb {
    exec(sql: string): Array<{ values: unknown[][] }>;
    run(sql: string): void;
    export(): Uint8Array;
    close(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const initSqlJs: () => Promise<{ Database: new (data?: Uint8Array) => SqlDb }> = require('sql.js');

const shop = { shopId: SHOP_ID, clientId: 'demo-client', clientSecret: 'demo-secret', notificationSecret: NOTIFICATION_SECRET };

function columns(db: SqlDb, table: string): string[] {
    return (db.exec(`PRAGMA table_info("${table}")`)[0]?.values ?? []).map(row => String(row[1]));
}
function tables(db: SqlDb): string[] {
    return (db.exec("SELECT name FROM sqlite_master WHERE type = 'table'")[0]?.values ?? []).map(row => String(row[0]));
}

// The plugin reads ANCV's clock to check a notification's age: the real sandbox.
const sandbox = new Sandbox();

describe('CVCo plugin: upgrading an existing database', () => {
    before(() => sandbox.start());
    after(() => sandbox.stop());

    it('a database from before the back-office gets its tables and columns from a generated migration; its rows are kept and read', async () => {
        const ancv = sandbox.url;
        const dir = mkdtempSync(path.join(tmpdir(), 'cvco-vendure-upgrade-'));
        const file = path.join(dir, 'harness.js.sqlite');
        const first = await startVendure(ancv, { dataDir: dir });
        await first.server.destroy();

        // The schema as the plugin left it before issue 11: no payment-request or refund-attempt
        // tables, notifications kept by event id only (no objectKey, no sequence).
        const SQL = await initSqlJs();
        const old = new SQL.Database(readFileSync(file));
        for (const name of (old.exec("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cvco_notification' AND sql LIKE '%objectKey%'")[0]?.values ?? []).map(r => String(r[0]))) {
            old.run(`DROP INDEX "${name}"`);
        }
        old.run('ALTER TABLE cvco_notification DROP COLUMN objectKey');
        old.run('ALTER TABLE cvco_notification DROP COLUMN sequence');
        old.run('DROP TABLE cvco_payment_request');
        old.run('DROP TABLE cvco_refund_attempt');
        old.run(`INSERT INTO cvco_notification (createdAt, updatedAt, eventId) VALUES (datetime('now'), datetime('now'), 'evt_before_upgrade')`);
        writeFileSync(file, old.export());
        old.close();

        const config = (migrations: unknown[] = []) =>
            mergeConfig(testConfig, {
                dbConnectionOptions: { type: 'sqljs', location: file, autoSave: true, synchronize: false, migrations: migrations as any },
                paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
                plugins: [CvcoPlugin.init({ wasmPath: process.env.CVCO_PLUGIN_WASM!, apiUrl: ancv, ...shop })],
            });
        const outputDir = path.join(dir, 'migrations');
        mkdirSync(outputDir);
        const generated = await generateMigration(config(), { name: 'cvco-back-office', outputDir });
        assert.ok(generated, 'a migration is generated for the new tables and columns');
        const source = readFileSync(generated, 'utf8');
        const up = source.slice(source.indexOf('public async up'), source.indexOf('public async down'));
        const queries = [...up.matchAll(/queryRunner\.query\(`([^`]*)`/g)].map(m => m[1]);
        assert.ok(queries.some(q => /CREATE TABLE "cvco_payment_request"/.test(q)), up);
        assert.ok(queries.some(q => /CREATE TABLE "cvco_refund_attempt"/.test(q)), up);
        assert.ok(queries.some(q => /"objectKey"/.test(q) && /"sequence"/.test(q)), up);
        // Nothing but the plugin's own tables changes (SQLite rebuilds cvco_notification: its
        // index is dropped and made again on it).
        const cvcoIndexes = queries.flatMap(q => /CREATE (?:UNIQUE )?INDEX "(\w+)" ON "cvco_/.exec(q)?.[1] ?? []);
        for (const q of queries) {
            const dropped = /^DROP INDEX "(\w+)"$/.exec(q);
            if (dropped) assert.ok(cvcoIndexes.includes(dropped[1]), q);
            else assert.match(q, /"(temporary_)?cvco_/, q);
        }

        // The migration as the shop's build would compile it, then applied by Vendure.
        const js = generated.replace(/\.ts$/, '.js');
        writeFileSync(js, ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } }).outputText);
        const ran = await runMigrations(config(Object.values(require(js))));
        assert.equal(ran.length, 1);

        const upgraded = new SQL.Database(readFileSync(file));
        assert.ok(['cvco_payment_request', 'cvco_refund_attempt'].every(t => tables(upgraded).includes(t)));
        assert.ok(['objectKey', 'sequence'].every(c => columns(upgraded, 'cvco_notification').includes(c)));
        assert.ok(columns(upgraded, 'cvco_payment_request').includes('paymentId'));
        assert.equal(upgraded.exec("SELECT count(*) FROM cvco_notification WHERE eventId = 'evt_before_upgrade'")[0].values[0][0], 1);
        upgraded.close();

        // The upgraded shop runs: the event recorded before is still a duplicate, a new one is
        // read, and the back-office reads its (empty) requests.
        const env = await startVendure(ancv, { dataDir: dir });
        try {
            const post = (n: { headers: Record<string, string>; body: string }) =>
                fetch(`${env.baseUrl}/cvco/v1/notifications`, { method: 'POST', headers: n.headers, body: n.body });
            const event = {
                id: 'evt_before_upgrade', type: 'transaction.updated', created_at: new Date().toISOString(), shop_id: SHOP_ID,
                merchant_order_id: 'UPGRADE-1', transaction_id: 'tx_after_upgrade', state: 'VALIDATED', sequence: 3,
            };
            const before = await post(signedNotification(NOTIFICATION_SECRET, event));
            assert.equal(before.status, 200, await before.clone().text());
            assert.deepEqual(await before.json(), { duplicate: true });
            const fresh = await post(signedNotification(NOTIFICATION_SECRET, { ...event, id: 'evt_after_upgrade' }));
            assert.equal(fresh.status, 204, await fresh.text());
            const csrf = (await (await env.adminClient.fetch(`${env.baseUrl}/cvco/v1/staff/session`)).json()).csrf_token;
            assert.equal(typeof csrf, 'string');
            const list = await env.adminClient.fetch(`${env.baseUrl}/cvco/v1/payment-requests`);
            assert.equal(list.status, 200);
            assert.deepEqual(await list.json(), { items: [], total: 0 });
        } finally {
            await env.server.destroy();
        }
    });
});
