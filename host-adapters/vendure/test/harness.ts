import { ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { DefaultLogger, dummyPaymentHandler, LogLevel, mergeConfig } from '@vendure/core';
import { createTestEnvironment, registerInitializer, SimpleGraphQLClient, SqljsInitializer, testConfig } from '@vendure/testing';
import gql from 'graphql-tag';

import { CvcoPlugin } from '../src';
import { storefront, STOREFRONT_ROUTE } from './storefront';

// Tests never phone home (Vendure's telemetry also writes .vendure/ into the package).
process.env.VENDURE_DISABLE_TELEMETRY = 'true';

export const SHOP_ID = 'SHOP-DEMO-01';
export const NOTIFICATION_SECRET = 'whsec_demo_change_me';

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const port = (server.address() as { port: number }).port;
            server.close(() => resolve(port));
        });
    });
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20000): Promise<T> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
        try {
            const v = await probe();
            if (v) return v;
        } catch (e) {
            last = e;
        }
        await new Promise(r => setTimeout(r, 150));
    }
    throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** The real sandbox binary (CVCO_SANDBOX_BIN), on a free port, stopped with SIGTERM. */
export class Sandbox {
    private child?: ChildProcess;
    url = '';
    log = '';

    async start() {
        const bin = process.env.CVCO_SANDBOX_BIN;
        if (!bin) throw new Error('CVCO_SANDBOX_BIN is not set (path of the cvco-sandbox binary)');
        const port = await freePort();
        this.url = `http://127.0.0.1:${port}`;
        this.child = spawn(bin, ['--port', String(port), '--approve-delay-ms', '400'], { stdio: ['ignore', 'pipe', 'pipe'] });
        this.child.stdout!.on('data', d => (this.log += d));
        this.child.stderr!.on('data', d => (this.log += d));
        await until('the sandbox', async () => (await fetch(`${this.url}/admin/shops`)).ok, 15000);
    }

    async json(method: string, route: string, body?: unknown): Promise<any> {
        const res = await fetch(`${this.url}${route}`, {
            method,
            headers: { 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
        return text ? JSON.parse(text) : null;
    }

    async stop() {
        const child = this.child;
        if (!child || child.exitCode !== null) return;
        const exited = new Promise(r => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
    }
}

/** A notification signed like ANCV does (HMAC-SHA256 over "t.body"). */
export function signedNotification(secret: string, body: object): { headers: Record<string, string>; body: string } {
    const raw = JSON.stringify(body);
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', secret).update(`${t}.${raw}`).digest('hex');
    return {
        body: raw,
        headers: { 'content-type': 'application/json', 'CVCo-Event-Id': (body as { id: string }).id, 'CVCo-Signature': `t=${t},v1=${v1}` },
    };
}

/**
 * sql.js keeps the database in memory and @vendure/testing writes it to disk only while it fills
 * it: this one keeps writing after every change, so a server started again on the same directory
 * (a "killed" process) finds its orders, payments and CVCo records.
 */
class PersistentSqljsInitializer extends SqljsInitializer {
    async populate(populateFn: () => Promise<void>) {
        await super.populate(populateFn);
        const options = (this as unknown as {
            connectionOptions: { autoSave: boolean; location: string; autoSaveCallback?: (data: Uint8Array) => void };
        }).connectionOptions;
        options.autoSave = true;
        // Written whole then renamed: a process killed mid-write leaves the previous file intact.
        options.autoSaveCallback = (data: Uint8Array) => {
            const partial = `${options.location}.partial`;
            writeFileSync(partial, data);
            renameSync(partial, options.location);
        };
    }
}

export interface VendureOptions {
    port?: number;
    /** Keep the database in this directory, written after every change; an existing one is reused as is. */
    dataDir?: string;
    /** Budget of one plugin call (CvcoPlugin's requestTimeoutMs). */
    requestTimeoutMs?: number;
    pollIntervalMs?: number;
    shop?: { shopId: string; clientId: string; clientSecret: string; notificationSecret: string };
    /** Shop sessions as cookies too (a browser's way), besides @vendure/testing's bearer tokens. */
    cookieSessions?: boolean;
    /** Price of the one variant (default 1000 = 10 €); 1 lets a quantity make any amount. */
    unitPriceCents?: number;
    /** Serve a stand-in storefront page with the widget from this directory (test/storefront.ts). */
    storefrontWidgetDir?: string;
}

export async function startVendure(sandboxUrl: string, options: VendureOptions = {}) {
    const port = options.port ?? (await freePort());
    const reused = !!options.dataDir && existsSync(path.join(options.dataDir, 'harness.js.sqlite'));
    registerInitializer(
        'sqljs',
        options.dataDir
            ? new PersistentSqljsInitializer(options.dataDir)
            : new SqljsInitializer(mkdtempSync(path.join(tmpdir(), 'cvco-vendure-'))),
    );
    const wasmPath = process.env.CVCO_PLUGIN_WASM;
    if (!wasmPath) throw new Error('CVCO_PLUGIN_WASM is not set (path of cvco_plugin.wasm)');
    const shop = options.shop ?? { shopId: SHOP_ID, clientId: 'demo-client', clientSecret: 'demo-secret', notificationSecret: NOTIFICATION_SECRET };
    const config = mergeConfig(testConfig, {
        apiOptions: { port },
        authOptions: options.cookieSessions ? { tokenMethod: ['cookie', 'bearer'] as const } : {},
        orderOptions: { orderItemsLimit: 1_000_000, orderLineItemsLimit: 1_000_000 },
        logger: process.env.LOG ? new DefaultLogger({ level: LogLevel.Info }) : testConfig.logger,
        paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
        plugins: [
            CvcoPlugin.init({
                wasmPath,
                apiUrl: sandboxUrl,
                ...shop,
                publicUrl: `http://127.0.0.1:${port}`,
                pollIntervalMs: options.pollIntervalMs ?? 1000,
                requestTimeoutMs: options.requestTimeoutMs,
            }),
        ],
    });
    if (options.storefrontWidgetDir) {
        config.apiOptions.middleware = [
            ...(config.apiOptions.middleware ?? []),
            { route: STOREFRONT_ROUTE, handler: storefront(options.storefrontWidgetDir), beforeListen: true },
        ];
    }
    const env = createTestEnvironment(config);
    await env.server.init({
        initialData: {
            defaultLanguage: 'en' as any,
            defaultZone: 'Europe',
            taxRates: [{ name: 'Zero', percentage: 0 }],
            shippingMethods: [{ name: 'Pickup', price: 0 }],
            paymentMethods: [
                { name: 'cvco', handler: { code: 'cvco', arguments: [] } },
                { name: 'card', handler: { code: dummyPaymentHandler.code, arguments: [{ name: 'automaticSettle', value: 'true' }] } },
            ],
            countries: [{ name: 'France', code: 'FR', zone: 'Europe' }],
            collections: [],
        },
    });
    await env.adminClient.asSuperAdmin();
    if (reused) {
        const { productVariants } = await env.adminClient.query(gql`{ productVariants(options: { filter: { sku: { eq: "NUIT" } } }) { items { id } } }`);
        return { ...env, baseUrl: `http://127.0.0.1:${port}`, variantId: productVariants.items[0].id as string };
    }
    const channel = await env.adminClient.query(gql`
        mutation {
            updateChannel(input: { id: "T_1", defaultCurrencyCode: EUR, availableCurrencyCodes: [EUR] }) {
                ... on Channel { id defaultCurrencyCode }
                ... on ErrorResult { errorCode message }
            }
        }
    `);
    if (channel.updateChannel.defaultCurrencyCode !== 'EUR') throw new Error(JSON.stringify(channel));
    const { taxCategories } = await env.adminClient.query(gql`{ taxCategories { items { id } } }`);
    const { createProduct } = await env.adminClient.query(gql`
        mutation { createProduct(input: { translations: [{ languageCode: en, name: "Nuit", slug: "nuit", description: "" }] }) { id } }
    `);
    const { createProductVariants } = await env.adminClient.query(
        gql`
            mutation ($input: [CreateProductVariantInput!]!) { createProductVariants(input: $input) { id } }
        `,
        {
            input: [
                {
                    productId: createProduct.id,
                    sku: 'NUIT',
                    price: options.unitPriceCents ?? 1000,
                    taxCategoryId: taxCategories.items[0].id,
                    trackInventory: 'FALSE',
                    translations: [{ languageCode: 'en', name: 'Nuit' }],
                },
            ],
        },
    );
    return { ...env, baseUrl: `http://127.0.0.1:${port}`, variantId: createProductVariants[0].id as string };
}

/** A guest order in ArrangingPayment worth `euros` € (10 € a night), in a fresh shop session. */
export async function orderInArrangingPayment(shop: SimpleGraphQLClient, variantId: string, euros: number) {
    await shop.asAnonymousUser();
    const check = (r: any, key: string) => {
        if (r[key]?.errorCode) throw new Error(`${key}: ${r[key].errorCode} ${r[key].message}`);
        return r[key];
    };
    const added = check(
        await shop.query(
            gql`mutation ($id: ID!, $q: Int!) { addItemToOrder(productVariantId: $id, quantity: $q) {
                ... on Order { id code totalWithTax } ... on ErrorResult { errorCode message } } }`,
            { id: variantId, q: euros / 10 },
        ),
        'addItemToOrder',
    );
    check(
        await shop.query(gql`mutation { setCustomerForOrder(input: { emailAddress: "guest@example.fr", firstName: "Anne", lastName: "Guest" }) {
            ... on Order { id } ... on ErrorResult { errorCode message } } }`),
        'setCustomerForOrder',
    );
    check(
        await shop.query(gql`mutation { setOrderShippingAddress(input: { fullName: "Anne Guest", streetLine1: "1 rue de la Paix", city: "Paris", postalCode: "75002", countryCode: "FR" }) {
            ... on Order { id } ... on ErrorResult { errorCode message } } }`),
    'setOrderShippingAddress',
    );
    const { eligibleShippingMethods } = await shop.query(gql`{ eligibleShippingMethods { id } }`);
    check(
        await shop.query(gql`mutation ($id: [ID!]!) { setOrderShippingMethod(shippingMethodId: $id) {
            ... on Order { id } ... on ErrorResult { errorCode message } } }`, { id: [eligibleShippingMethods[0].id] }),
        'setOrderShippingMethod',
    );
    const moved = check(
        await shop.query(gql`mutation { transitionOrderToState(state: "ArrangingPayment") {
            ... on Order { id state totalWithTax } ... on OrderStateTransitionError { errorCode message transitionError } } }`),
        'transitionOrderToState',
    );
    if (moved.state !== 'ArrangingPayment' || moved.totalWithTax !== euros * 100) throw new Error(JSON.stringify(moved));
    return { id: added.id as string, code: added.code as string };
}

export const ORDER_QUERY = gql`
    query ($id: ID!) { order(id: $id) { id code state totalWithTax
        payments { id method state amount transactionId errorMessage refunds { id state total transactionId } } } }
`;
