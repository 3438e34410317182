/**
 * A Vendure server with the CVCo plugin for the contract suite (tests/contract, driver `vendure`):
 * `node dist/test/serve.js --port P --sandbox-url URL`, shop credentials and the plugin path from
 * CVCO_SHOP_ID, CVCO_CLIENT_ID, CVCO_CLIENT_SECRET, CVCO_NOTIFICATION_SECRET, CVCO_PLUGIN_WASM.
 * Shop sessions are cookies (as a browser's); one product variant costs 1 cent, so the driver
 * makes an order of any amount through Vendure's own shop API. `/storefront/pay/{code}` is a
 * stand-in storefront page with the widget from CVCO_WIDGET_DIST (default: the repository's
 * dist/widget), for the suite's browser test (test/storefront.ts). `--data-dir DIR` keeps the
 * database there, written after every change: a server started again on the same DIR (after a
 * kill) resumes with it and reconciles what was in flight. Test use only.
 */
import path from 'node:path';

import { startVendure } from './harness';

function arg(name: string): string {
    const i = process.argv.indexOf(name);
    const value = i >= 0 ? process.argv[i + 1] : undefined;
    if (!value) throw new Error(`${name} is required`);
    return value;
}

function optionalArg(name: string): string | undefined {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
}

function secret(name: string): string {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is required`);
    return value;
}

async function main() {
    const env = await startVendure(arg('--sandbox-url'), {
        port: Number(arg('--port')),
        // Same directory again after a kill: the same database (orders, payments, CVCo records).
        dataDir: optionalArg('--data-dir'),
        shop: {
            shopId: secret('CVCO_SHOP_ID'),
            clientId: secret('CVCO_CLIENT_ID'),
            clientSecret: secret('CVCO_CLIENT_SECRET'),
            notificationSecret: secret('CVCO_NOTIFICATION_SECRET'),
        },
        cookieSessions: true,
        unitPriceCents: 1,
        // dist/test/serve.js → the repository root is four levels up.
        storefrontWidgetDir: process.env.CVCO_WIDGET_DIST || path.resolve(__dirname, '../../../../dist/widget'),
    });
    console.log(`vendure ready on ${env.baseUrl} (variant ${env.variantId})`);
    const stop = async () => {
        await env.server.destroy();
        process.exit(0);
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
}

main().catch(e => {
    console.error(e);
    process.exit(1);
});
