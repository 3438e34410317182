import createPlugin, { Plugin } from '@extism/extism';
import { readFile } from 'node:fs/promises';

import { CatalogueEntry, catalogueLoaded, CvcoErrorBody, cvcoError, CvcoFailure, installCatalogue, isCvcoErrorBody } from './errors';
import { ExportName, Exports } from './exports';
import { CvcoPluginOptions } from './types';

/**
 * A small pool of `cvco_plugin.wasm` instances. A plugin instance runs one call at a time; an
 * instance whose call failed at the Extism level (transport, timeout) is closed and replaced, as
 * the plugin's contract asks.
 */
export class WasmPool {
    private idle: Plugin[] = [];
    private waiters: Array<(p: Plugin) => void> = [];
    private created = 0;
    private closed = false;
    private wasm?: Promise<Buffer>;
    private catalogue?: Promise<void>;

    constructor(private readonly options: CvcoPluginOptions) {}

    private async create(): Promise<Plugin> {
        this.wasm ??= readFile(this.options.wasmPath);
        const o = this.options;
        const config: Record<string, string> = {
            api_base_url: o.apiUrl,
            shop_id: o.shopId,
            client_id: o.clientId,
            client_secret: o.clientSecret,
            notification_secret: o.notificationSecret,
            request_timeout_ms: String(o.requestTimeoutMs ?? 10000),
        };
        // The merchant's settings live in the plugin's config only: its `checkout` export applies them.
        if (o.minAmountCents !== undefined) config.min_amount_cents = String(o.minAmountCents);
        if (o.authorizationTimeoutS !== undefined) config.authorization_timeout_s = String(o.authorizationTimeoutS);
        if (o.adjustable !== undefined) config.adjustable = String(o.adjustable);
        const budget = o.requestTimeoutMs ?? 10000;
        return createPlugin(
            { wasm: [{ data: new Uint8Array(await this.wasm) }] },
            {
                useWasi: false,
                runInWorker: true,
                allowHttpResponseHeaders: true,
                allowedHosts: o.allowedHosts ?? [new URL(o.apiUrl).hostname],
                // The budget is enforced on each HTTP request: a call cut by Extism's own timeout
                // while a request is in flight leaks a setInterval in rc13 (#handleInvoke writes to
                // the terminated worker forever) and the process never exits. Extism's timeout stays
                // as the last resort for a plugin stuck elsewhere.
                fetch: (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(budget) }),
                timeoutMs: budget * 3,
                config,
            },
        );
    }

    private async acquire(): Promise<Plugin> {
        const ready = this.idle.pop();
        if (ready) return ready;
        if (this.created < (this.options.poolSize ?? 2)) {
            this.created++;
            try {
                return await this.create();
            } catch (e) {
                this.created--;
                throw e;
            }
        }
        return new Promise(resolve => this.waiters.push(resolve));
    }

    private release(plugin: Plugin) {
        const waiter = this.waiters.shift();
        if (waiter) waiter(plugin);
        else if (this.closed) void plugin.close();
        else this.idle.push(plugin);
    }

    private async discard(plugin: Plugin) {
        this.created--;
        await plugin.close().catch(() => undefined);
        // Someone may be waiting for an instance that will now never come back: make a new one.
        const waiter = this.waiters.shift();
        if (waiter && !this.closed) {
            this.created++;
            this.create().then(waiter, () => {
                this.created--;
                this.waiters.unshift(waiter);
            });
        }
    }

    /** Reads the plugin's `error_catalogue` once per process: every error this adapter builds comes from it. */
    loadCatalogue(): Promise<void> {
        if (catalogueLoaded()) return Promise.resolve();
        this.catalogue ??= this.invoke<{ errors: CatalogueEntry[] }>(Exports.errorCatalogue, {}).then(
            c => installCatalogue(c.errors),
            e => {
                this.catalogue = undefined;
                throw e;
            },
        );
        return this.catalogue;
    }

    /** Calls an export; resolves with its `ok`, throws `CvcoFailure` with its typed error. */
    async call<T>(fn: ExportName, input: unknown): Promise<T> {
        await this.loadCatalogue();
        return this.invoke<T>(fn, input);
    }

    private async invoke<T>(fn: ExportName, input: unknown): Promise<T> {
        if (this.closed) throw new CvcoFailure(transportError('plugin pool closed'));
        const plugin = await this.acquire();
        let answer: { ok?: T; error?: CvcoErrorBody };
        try {
            const out = await plugin.call(fn, JSON.stringify(input));
            answer = out ? out.json() : {};
        } catch (e) {
            await this.discard(plugin);
            throw new CvcoFailure(extismError(String(e)));
        }
        this.release(plugin);
        if (answer.error && isCvcoErrorBody(answer.error)) throw new CvcoFailure(answer.error);
        if (answer.ok === undefined) throw new CvcoFailure(transportError('empty plugin answer'));
        return answer.ok;
    }

    async close() {
        this.closed = true;
        const idle = this.idle;
        this.idle = [];
        await Promise.all(idle.map(p => p.close().catch(() => undefined)));
    }
}

/**
 * Extism refuses a request to a host missing from `allowedHosts` by trapping the call, which would
 * look like a retryable transport failure. @extism/extism 2.0.0-rc13 says (measured):
 * `Call error: HTTP request to "http://127.0.0.1:7999/oauth/token" is not allowed (no allowedHosts
 * match "127.0.0.1")`. That is a configuration error, never worth a retry.
 */
const HOST_NOT_ALLOWED = /is not allowed \(no allowedHosts match "([^"]*)"\)/;

/** The typed error of a call that failed in Extism itself (trap, timeout, worker gone). */
export function extismError(detail: string): CvcoErrorBody {
    const refused = HOST_NOT_ALLOWED.exec(detail);
    if (refused) {
        return cvcoError('config_invalid', {
            field: 'allowed_hosts',
            detail: [
                `L'hôte de l'API ANCV (${refused[1]}) manque dans allowedHosts du plugin : ajoutez-le à la configuration.`,
                `The ANCV API host (${refused[1]}) is missing from the plugin's allowedHosts: add it to the configuration.`,
            ],
        });
    }
    return transportError(detail);
}

function transportError(detail: string): CvcoErrorBody {
    return cvcoError(/timeout|timed out/i.test(detail) ? 'upstream_timeout' : 'upstream_unavailable');
}
