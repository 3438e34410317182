import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import {
    ConfigService,
    CreatePaymentErrorResult,
    CreatePaymentResult,
    CreateRefundResult,
    ID,
    idsAreEqual,
    isGraphQlErrorResult,
    Logger,
    Order,
    OrderService,
    Payment,
    PaymentState,
    ProcessContext,
    RequestContext,
    RequestContextService,
    TransactionalConnection,
} from '@vendure/core';
import { randomUUID } from 'node:crypto';
import { LessThanOrEqual } from 'typeorm';

import { CONTRACT_BASE, CVCO_PLUGIN_OPTIONS } from './constants';
import { CvcoNotificationEvent, CvcoPaymentRecord } from './entities';
import { CvcoErrorBody, cvcoError, CvcoFailure, errorBody, outcomeUnknown } from './errors';
import { CvcoMetadata, CvcoPluginOptions, PluginPayment } from './types';
import { Exports } from './exports';
import { WasmPool } from './wasm';
import { AWAITING_BENEFICIARY } from './payment-process';
import { CvcoPaymentRequestRecord } from './payment-request.entity';

const loggerCtx = 'CvcoPlugin';
/** Vendure payment states in which ANCV may still change something we must follow. */
const OPEN_STATES: PaymentState[] = [AWAITING_BENEFICIARY];
/**
 * A CVCo payment Vendure holds 'Authorized' is a pre-reservation awaiting its deferred capture: final
 * for the beneficiary, yet ANCV still captures, cancels or expires it (cvco-core's needs_following),
 * so it is polled too; a lost expiry notification must not leave it looking open.
 */
const AWAITING_CAPTURE: PaymentState = 'Authorized';
const COVERING_STATES: PaymentState[] = ['Authorized', 'Settled'];

/** The contract's Payment object (host-adapters/PROTOCOL.md), as the plugin's `render_payment` makes it. */
export interface ContractPayment {
    payment_id: string;
    order_ref: string;
    amount_cents: number;
    /** The plugin's statuses, plus `unknown`: the creation's outcome is not known yet (reconciling). */
    status: string;
    final: boolean;
    /** ANCV's transaction; null while the creation's outcome is unknown. */
    transaction_id: string | null;
    sequence: number;
    [key: string]: unknown;
}

/** The `checkout` export's answer (PROTOCOL.md §1, `current_payment` filled by the adapter). */
interface Checkout {
    eligible: boolean;
    ineligible_reason: CvcoErrorBody | null;
    current_payment: ContractPayment | null;
    [key: string]: unknown;
}

/** `parse_request` of a `create_payment` body: normalised, beneficiary required for `identifier`. */
interface CreateRequest {
    order_ref: string;
    mode: string;
    beneficiary?: string;
    attempt: string;
}

type Listener = (payment: ContractPayment) => void;

@Injectable()
export class CvcoService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
    readonly pool: WasmPool;
    private locks = new Map<string, Promise<unknown>>();
    private listeners = new Map<string, Set<Listener>>();
    /** Open SSE streams, ended at shutdown so the HTTP server can close. */
    private streams = new Set<() => void>();
    private pollTimer?: NodeJS.Timeout;
    private polling = false;
    private stopped = false;
    /**
     * Set by CvcoPaymentRequests (it depends on this service, not the reverse): a notification
     * about a payment request, or about a transaction of an order that has one, reads it at once.
     */
    requestNotified?: (about: { requestId?: string; orderCode?: string; transactionId?: string }) => Promise<boolean>;
    /** The start-up check and first reconciliation, once done. */
    started?: Promise<void>;
    connectionCheck?: Awaited<ReturnType<CvcoService['startupCheck']>>;

    constructor(
        @Inject(CVCO_PLUGIN_OPTIONS) readonly options: CvcoPluginOptions,
        private connection: TransactionalConnection,
        private orderService: OrderService,
        private requestContextService: RequestContextService,
        private configService: ConfigService,
        private processContext: ProcessContext,
    ) {
        this.pool = new WasmPool(options);
    }

    get methodCode(): string {
        return this.options.paymentMethodCode ?? 'cvco';
    }

    /** The error catalogue is read before the first request (a plugin that does not load stops the start). */
    async onModuleInit() {
        await this.pool.loadCatalogue();
    }

    onApplicationBootstrap() {
        if (!this.processContext.isServer) return;
        // Check the configuration, reconcile what was in flight before a restart (unknown
        // creations included), then keep polling what stays open.
        const every = this.options.pollIntervalMs ?? 3000;
        this.pollTimer = setInterval(() => void this.pollOpenPayments(), every);
        this.started = this.startupCheck().then(async check => {
            this.connectionCheck = check;
            await this.pollOpenPayments();
        });
    }

    async onApplicationShutdown() {
        this.stopped = true;
        if (this.pollTimer) clearInterval(this.pollTimer);
        for (const set of this.listeners.values()) set.clear();
        for (const end of [...this.streams]) end();
        await this.pool.close();
    }

    /**
     * Serialises work per key (an order code or an ANCV transaction id) inside this process. The
     * one lock table of the plugin: the back-office's payment requests take `order:<code>` here too.
     */
    async withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
        const before = this.locks.get(key) ?? Promise.resolve();
        const run = before.catch(() => undefined).then(work);
        const tail = run.catch(() => undefined);
        this.locks.set(key, tail);
        try {
            return await run;
        } finally {
            if (this.locks.get(key) === tail) this.locks.delete(key);
        }
    }

    private async backgroundContext(): Promise<RequestContext> {
        return this.requestContextService.create({ apiType: 'admin' });
    }

    // ---------------------------------------------------------------- records (write-ahead)

    private get records() {
        // Never inside a Vendure request transaction: the record must survive the call's outcome.
        return this.connection.rawConnection.getRepository(CvcoPaymentRecord);
    }

    private recordsOfOrder(orderCode: string): Promise<CvcoPaymentRecord[]> {
        return this.records.find({ where: { orderCode }, order: { id: 'ASC' } });
    }

    /**
     * Records the creation (outcome `unknown`, with the exact input) and only then calls
     * `create_payment`. A refusal deletes the record (nothing was created at ANCV); an unknown
     * outcome (retryable error, Extism failure) keeps it for reconciliation.
     */
    private async createAtAncv(
        order: Order,
        amount: number,
        beneficiary: string,
        attempt: string,
        attach: 'none' | 'pending',
    ): Promise<{ record?: CvcoPaymentRecord; payment?: PluginPayment; error?: CvcoErrorBody }> {
        // Already normalised by `parse_request`: this call only gives the masked form.
        let checked: { value: string; masked: string };
        try {
            checked = await this.pool.call(Exports.validateBeneficiary, { input: beneficiary });
        } catch (e) {
            if (e instanceof CvcoFailure) return { error: e.body };
            throw e;
        }
        const input: Record<string, unknown> = {
            order_ref: order.code,
            amount_cents: amount,
            channel: 'ecommerce',
            beneficiary: checked.value,
            idempotency_key: `vendure-${order.code}-${attempt}`,
        };
        if (this.options.publicUrl) {
            input.notification_url = `${this.options.publicUrl.replace(/\/$/, '')}${CONTRACT_BASE}/notifications`;
        }
        const record = await this.records.save(
            new CvcoPaymentRecord({
                paymentId: `pay_${randomUUID().replace(/-/g, '')}`,
                orderId: String(order.id),
                orderCode: order.code,
                attempt,
                mode: 'identifier',
                beneficiaryMasked: checked.masked,
                amountCents: amount,
                createInput: input as any,
                outcome: 'unknown',
                transactionId: null,
                payment: null,
                error: null,
                attach,
                reconcileTries: 0,
                nextReconcileAt: new Date(Date.now() + 1000),
                sequence: 1,
            }),
        );
        const answer = await this.withLock(`record:${record.paymentId}`, () => this.callCreate(record));
        if (answer.refused) {
            await this.records.delete(record.id);
            return { error: answer.refused };
        }
        return { record, payment: answer.payment, error: answer.unknown };
    }

    /** One `create_payment` call with the record's stored input; the record follows its outcome. */
    private async callCreate(record: CvcoPaymentRecord): Promise<{ payment?: PluginPayment; unknown?: CvcoErrorBody; refused?: CvcoErrorBody }> {
        let payment: PluginPayment;
        try {
            payment = await this.pool.call<PluginPayment>(Exports.createPayment, record.createInput);
        } catch (e) {
            const body = e instanceof CvcoFailure ? e.body : cvcoError('internal');
            if (!(e instanceof CvcoFailure)) Logger.error(`create_payment ${record.paymentId}: ${String(e)}`, loggerCtx);
            if (outcomeUnknown(body)) {
                record.reconcileTries += 1;
                record.nextReconcileAt = new Date(Date.now() + Math.min(60_000, 1000 * 2 ** Math.min(record.reconcileTries - 1, 6)));
                await this.records.update(record.id, { reconcileTries: record.reconcileTries, nextReconcileAt: record.nextReconcileAt });
                Logger.warn(`payment ${record.paymentId} of ${record.orderCode}: outcome unknown (${body.code}), kept to reconcile`, loggerCtx);
                return { unknown: body };
            }
            return { refused: body };
        }
        Object.assign(record, { outcome: 'created', transactionId: payment.id, payment, error: null, sequence: record.sequence + 1 });
        await this.records.update(record.id, {
            outcome: 'created',
            transactionId: payment.id,
            payment: payment as any,
            error: null,
            sequence: record.sequence,
        });
        return { payment };
    }

    /**
     * Reconciles an `unknown` record: the same creation again, same input and idempotency key (ANCV
     * answers the transaction it made, never a second one). Created → attached to the order;
     * refused → `failed`; still unknown → later (back-off). Callers hold the order's lock.
     */
    private async reconcileRecord(ctx: RequestContext, paymentId: string): Promise<CvcoPaymentRecord | undefined> {
        const record = await this.withLock(`record:${paymentId}`, async () => {
            const r = await this.records.findOne({ where: { paymentId } });
            if (!r || r.outcome !== 'unknown') return r ?? undefined;
            const answer = await this.callCreate(r);
            if (answer.refused) {
                Object.assign(r, { outcome: 'failed', error: answer.refused, sequence: r.sequence + 1 });
                await this.records.update(r.id, { outcome: 'failed', error: answer.refused as any, sequence: r.sequence });
            } else if (answer.payment) {
                Logger.info(`payment ${r.paymentId} of ${r.orderCode} reconciled: transaction ${answer.payment.id}`, loggerCtx);
                if (r.attach === 'none') {
                    // Its Vendure payment was recorded in Error: this adapter attaches the transaction now.
                    r.attach = 'pending';
                    await this.records.update(r.id, { attach: 'pending' });
                }
            }
            return r;
        });
        if (record?.outcome === 'created') await this.attach(ctx, record);
        if (record) await this.broadcastRecord(ctx, record);
        return record;
    }

    /** Reconciles one record under its order's lock (poller, start-up, notifications). */
    async reconcile(paymentId: string): Promise<CvcoPaymentRecord | undefined> {
        const r = await this.records.findOne({ where: { paymentId } });
        if (!r) return undefined;
        const ctx = await this.backgroundContext();
        return this.withLock(`order:${r.orderCode}`, () => this.reconcileRecord(ctx, paymentId));
    }

    /** Gives a created transaction its Vendure payment (idempotent: once per transaction). */
    private async attach(ctx: RequestContext, record: CvcoPaymentRecord): Promise<Payment | undefined> {
        if (record.outcome !== 'created' || !record.transactionId) return undefined;
        const existing = await this.findPayment(ctx, record.transactionId);
        if (existing) {
            if (record.attach !== 'done') await this.records.update(record.id, { attach: 'done' });
            return existing;
        }
        if (record.attach !== 'pending') return undefined;
        const order = await this.orderService.findOne(ctx, record.orderId);
        if (!order || order.state !== 'ArrangingPayment') {
            // ANCV holds a transaction this order can no longer take: keep the record, tell the merchant.
            Logger.error(
                `transaction ${record.transactionId} (payment ${record.paymentId}) cannot be attached to order ${record.orderCode} in state ${order?.state}`,
                loggerCtx,
            );
            return undefined;
        }
        const result = await this.connection.withTransaction(ctx, tx =>
            this.orderService.addPaymentToOrder(tx, order.id, { method: this.methodCode, metadata: { cvco_record: record.paymentId } }),
        );
        if (isGraphQlErrorResult(result)) {
            Logger.error(`transaction ${record.transactionId} not attached to ${record.orderCode}: ${result.message}`, loggerCtx);
            return undefined;
        }
        record.attach = 'done';
        await this.records.update(record.id, { attach: 'done' });
        await this.refresh(record.transactionId).catch(() => undefined);
        return this.findPayment(ctx, record.transactionId);
    }

    /** Start-up check: the plugin reaches ANCV with this configuration (`check_connection`). */
    async startupCheck(): Promise<{ ok: true; shop_id: string; api_base_url: string } | { ok: false; error: CvcoErrorBody }> {
        try {
            const ok = await this.pool.call<{ ok: true; shop_id: string; api_base_url: string }>(Exports.checkConnection, {});
            Logger.info(`connected to ANCV at ${ok.api_base_url} as ${ok.shop_id}`, loggerCtx);
            return ok;
        } catch (e) {
            const error = e instanceof CvcoFailure ? e.body : cvcoError('internal');
            const log = error.retryable ? Logger.warn.bind(Logger) : Logger.error.bind(Logger);
            log(`start-up check failed: ${error.code}${error.field ? ` (${error.field})` : ''}: ${error.message_en}`, loggerCtx);
            return { ok: false, error };
        }
    }

    // ---------------------------------------------------------------- the PaymentMethodHandler side

    /** `createPayment` of the handler: asks ANCV for the order's amount, never the browser's. */
    async createAncvPayment(
        order: Order,
        amount: number,
        metadata: Record<string, unknown>,
    ): Promise<CreatePaymentResult | CreatePaymentErrorResult> {
        const fail = (error: CvcoErrorBody): CreatePaymentErrorResult => ({
            amount,
            state: 'Error',
            errorMessage: JSON.stringify(error),
            metadata: { cvco_error: error },
        });
        let record: CvcoPaymentRecord | undefined;
        let payment: PluginPayment | undefined;
        if (typeof metadata.cvco_record === 'string') {
            // The adapter attaches a transaction it already created (widget path, reconciliation).
            record = (await this.records.findOne({ where: { paymentId: metadata.cvco_record } })) ?? undefined;
            if (!record || record.orderCode !== order.code || !record.payment) return fail(cvcoError('internal'));
            payment = record.payment;
        } else {
            // A storefront calling addPaymentToOrder itself: same rules as POST /payments.
            let asked: CreateRequest;
            try {
                asked = await this.parseRequest(
                    JSON.stringify({ order_ref: order.code, beneficiary: metadata.beneficiary, attempt: metadata.attempt ?? randomUUID() }),
                );
                const rules = await this.checkoutOf(order, amount);
                if (rules.ineligible_reason) return fail(rules.ineligible_reason);
            } catch (e) {
                if (e instanceof CvcoFailure) return fail(e.body);
                throw e;
            }
            const { attempt } = asked;
            const ctx = await this.backgroundContext();
            const same = await this.records.findOne({ where: { orderCode: order.code, attempt } });
            if (same) return fail(cvcoError('payment_in_progress', { payment_id: same.paymentId }));
            const open = await this.openPayment(ctx, order, attempt);
            if (open) return fail(cvcoError('payment_in_progress', { payment_id: open.payment_id }));
            const made = await this.createAtAncv(order, amount, asked.beneficiary!, attempt, 'none');
            if (!made.payment) return fail(made.error ?? cvcoError('internal'));
            record = made.record!;
            payment = made.payment;
        }
        const cvco: CvcoMetadata = {
            payment_id: record.paymentId,
            attempt: record.attempt,
            mode: 'identifier',
            beneficiary_masked: record.beneficiaryMasked,
            sequence: record.sequence + 1,
            payment,
            error: null,
        };
        // The Vendure Payment row is written after we return: look again shortly.
        setTimeout(() => void this.refresh(payment!.id).catch(() => undefined), 300);
        return {
            amount,
            state: AWAITING_BENEFICIARY,
            transactionId: payment.id,
            metadata: { cvco, public: { cvco_payment_id: record.paymentId, beneficiary: record.beneficiaryMasked } },
        };
    }

    /** `settlePayment`: NORMAL capture means ANCV captured on authorization; only check it did. */
    settleResult(payment: Payment): { success: true } | { success: false; errorMessage: string } {
        const p = (payment.metadata?.cvco as CvcoMetadata | undefined)?.payment;
        if (p && (p.status === 'authorized' || p.status === 'partially_authorized')) return { success: true };
        return { success: false, errorMessage: JSON.stringify(cvcoError('illegal_transition')) };
    }

    /** `cancelPayment`: cancels at ANCV unless ANCV already ended it without money. */
    async cancelAncvPayment(payment: Payment): Promise<{ success: boolean; errorMessage?: string; metadata?: any }> {
        const m = payment.metadata?.cvco as CvcoMetadata | undefined;
        if (!m || !payment.transactionId) return { success: true };
        const p = m.payment;
        if (p.final && p.authorized_cents === 0) return { success: true };
        try {
            const after = await this.pool.call<PluginPayment>(Exports.cancelPayment, { payment_id: payment.transactionId });
            return { success: true, metadata: { cvco: this.nextMetadata(m, after) } };
        } catch (e) {
            if (e instanceof CvcoFailure) return { success: false, errorMessage: JSON.stringify(e.body) };
            throw e;
        }
    }

    /** `createRefund`: one idempotency key per Vendure refund, kept across the retries. */
    async refundAncvPayment(payment: Payment, amount: number, reason?: string): Promise<CreateRefundResult> {
        if (!payment.transactionId) return { state: 'Failed', metadata: { cvco_error: cvcoError('payment_not_found') } };
        const key = `vendure-refund-${payment.id}-${randomUUID()}`;
        const input: Record<string, unknown> = { payment_id: payment.transactionId, idempotency_key: key, amount_cents: amount };
        if (reason) input.reason = reason.slice(0, 200);
        for (let attempt = 1; ; attempt++) {
            try {
                const after = await this.pool.call<PluginPayment>(Exports.refundPayment, input);
                const refund = after.refunds[after.refunds.length - 1];
                setTimeout(() => void this.refresh(after.id).catch(() => undefined), 0);
                return { state: 'Settled', transactionId: refund?.id ?? '', metadata: { refunded_cents: after.refunded_cents } };
            } catch (e) {
                if (!(e instanceof CvcoFailure)) throw e;
                if (e.body.retryable && attempt < 3) {
                    await new Promise(r => setTimeout(r, 200 * attempt));
                    continue;
                }
                return { state: 'Failed', metadata: { cvco_error: e.body } };
            }
        }
    }

    // ---------------------------------------------------------------- following ANCV

    /** Any change of ANCV's payment is a new contract Payment: a new sequence (SSE event id). */
    private nextMetadata(m: CvcoMetadata, p: PluginPayment): CvcoMetadata {
        const changed = JSON.stringify(m.payment) !== JSON.stringify(p);
        return { ...m, payment: p, sequence: m.sequence + (changed ? 1 : 0) };
    }

    private async findPayment(ctx: RequestContext, transactionId: string): Promise<Payment | undefined> {
        const found = await this.connection.getRepository(ctx, Payment).findOne({
            where: { transactionId, method: this.methodCode },
            relations: ['order'],
        });
        return found ?? undefined;
    }

    /** Re-reads a payment at ANCV, records it, moves the Vendure payment and order, tells SSE subscribers. */
    async refresh(transactionId: string): Promise<'recorded' | 'unknown'> {
        if (this.stopped) return 'unknown';
        return this.withLock(transactionId, async () => {
            const ctx = await this.backgroundContext();
            const vp = await this.findPayment(ctx, transactionId);
            if (!vp) return 'unknown';
            const m = vp.metadata?.cvco as CvcoMetadata | undefined;
            if (!m) return 'unknown';
            let p = await this.pool.call<PluginPayment>(Exports.getPayment, { payment_id: transactionId });
            if (!p.final && p.next_action.type === 'wait_for_app' && p.next_action.deadline) {
                // ANCV expires it itself; past a grace period we cancel so nothing stays open forever.
                const late = Date.now() - Date.parse(p.next_action.deadline) > 30_000;
                if (late) p = await this.pool.call<PluginPayment>(Exports.cancelPayment, { payment_id: transactionId });
            }
            const next = this.nextMetadata(m, p);
            // Written only when something changed: the row's updated_at is the Payment's host side.
            if (JSON.stringify(next) !== JSON.stringify(m)) {
                await this.connection.getRepository(ctx, Payment).update(vp.id, { metadata: { ...vp.metadata, cvco: next } as any });
            }
            await this.moveVendurePayment(ctx, vp, p);
            await this.broadcast(ctx, transactionId);
            return 'recorded';
        });
    }

    private async moveVendurePayment(ctx: RequestContext, vp: Payment, p: PluginPayment) {
        if (vp.state === AWAITING_CAPTURE && p.status === 'expired') {
            // ANCV expired the uncaptured authorization at the end of its window: the order no longer
            // holds it. Vendure's Authorized goes to Cancelled (not Declined), without a second call to ANCV.
            const out = await this.connection.withTransaction(ctx, async tx => {
                await this.connection.getRepository(tx, Payment).update(vp.id, { errorMessage: 'expired' });
                return this.orderService.transitionPaymentToState(tx, vp.id, 'Cancelled');
            });
            if (isGraphQlErrorResult(out)) Logger.error(`payment ${vp.id} (${p.id}) could not follow ANCV expired: ${out.message}`, loggerCtx);
            return;
        }
        if (!OPEN_STATES.includes(vp.state) || !p.final) return;
        const outcome = await this.connection.withTransaction(ctx, async tx => {
            if (p.status === 'authorized' || p.status === 'partially_authorized') {
                // A partial authorization pays only part: the order keeps the rest for another method.
                if (p.authorized_cents !== vp.amount) {
                    await this.connection.getRepository(tx, Payment).update(vp.id, { amount: p.authorized_cents });
                }
                return this.orderService.settlePayment(tx, vp.id);
            }
            if (p.status === 'cancelled') return this.orderService.cancelPayment(tx, vp.id);
            await this.connection
                .getRepository(tx, Payment)
                .update(vp.id, { errorMessage: `${p.status}${p.abort_reason ? `: ${p.abort_reason}` : ''}` });
            return this.orderService.transitionPaymentToState(tx, vp.id, 'Declined');
        });
        if (isGraphQlErrorResult(outcome)) {
            Logger.error(`payment ${vp.id} (${p.id}) could not follow ANCV ${p.status}: ${outcome.message}`, loggerCtx);
        }
    }

    private async pollOpenPayments() {
        if (this.polling || this.stopped) return;
        this.polling = true;
        try {
            const ctx = await this.backgroundContext();
            // Creations whose outcome is unknown, due for another try; created ones left unattached.
            const due = await this.records.find({
                where: [
                    { outcome: 'unknown', nextReconcileAt: LessThanOrEqual(new Date()) },
                    { outcome: 'created', attach: 'pending' },
                ],
            });
            for (const r of due) {
                if (this.stopped) break;
                await this.withLock(`order:${r.orderCode}`, async () => {
                    if (r.outcome === 'unknown') await this.reconcileRecord(ctx, r.paymentId);
                    else await this.attach(ctx, r);
                }).catch(e => Logger.warn(`reconciling ${r.paymentId}: ${e instanceof Error ? e.message : e}`, loggerCtx));
            }
            const open = await this.connection.getRepository(ctx, Payment).find({
                where: [...OPEN_STATES, AWAITING_CAPTURE].map(state => ({ method: this.methodCode, state })),
            });
            for (const vp of open) {
                if (this.stopped) break;
                if (!vp.transactionId) continue;
                await this.refresh(vp.transactionId).catch(e =>
                    Logger.warn(`polling ${vp.transactionId}: ${e instanceof Error ? e.message : e}`, loggerCtx),
                );
            }
        } catch (e) {
            if (!this.stopped) Logger.warn(`polling: ${e instanceof Error ? e.message : e}`, loggerCtx);
        } finally {
            this.polling = false;
        }
    }

    /**
     * §3: verify, deduplicate (event id, then the sequence per `object_key`, as every adapter), then
     * read the truth with `get_payment`. A transaction no Vendure payment knows yet may be the answer
     * of a creation still in flight or of unknown outcome: the order's unknown records are reconciled
     * first, then the notification applies. One still unknown: 204, no payment changes.
     */
    async handleNotification(headers: Record<string, string>, body: string): Promise<{ status: number; body?: unknown }> {
        let verified: { event_id: string; object_key: string; notification: { merchant_order_id?: string; sequence: number } };
        try {
            verified = await this.pool.call(Exports.verifyNotification, { headers, body });
        } catch (e) {
            if (e instanceof CvcoFailure) {
                return { status: e.body.code.startsWith('notification_') ? 400 : e.status, body: e.body };
            }
            throw e;
        }
        const { event_id: eventId, object_key: objectKey } = verified;
        const sequence = verified.notification.sequence;
        const events = this.connection.rawConnection.getRepository(CvcoNotificationEvent);
        // A concurrent delivery of the same event loses on the unique event id: nothing to add.
        const processed = () => events.save(new CvcoNotificationEvent({ eventId, objectKey, sequence })).catch(() => undefined);
        const duplicate = { status: 200, body: { duplicate: true } };
        if (await events.findOne({ where: { eventId } })) return duplicate;
        const newest = await events
            .createQueryBuilder('n')
            .select('MAX(n.sequence)', 'sequence')
            .where('n.objectKey = :objectKey', { objectKey })
            .getRawOne<{ sequence: number | null }>();
        if (newest?.sequence != null && Number(newest.sequence) >= sequence) {
            await processed();
            return duplicate;
        }
        const colon = objectKey.indexOf(':');
        const tx = objectKey.slice(colon + 1);
        // Only transactions are followed here; a payment request (pre-transaction) is the back-office's.
        if (objectKey.slice(0, colon) !== 'transaction' || !tx) {
            // About an object that is not ours: nothing recorded (PROTOCOL.md §3), never a duplicate.
            if (objectKey.slice(0, colon) === 'pre_transaction' && tx && (await this.tellRequests({ requestId: tx }))) await processed();
            return { status: 204 };
        }
        try {
            const ctx = await this.backgroundContext();
            let known = !!(await this.findPayment(ctx, tx));
            const orderCode = verified.notification.merchant_order_id;
            if (!known && orderCode) {
                // Waiting for the order's lock also waits for a creation call in flight.
                await this.withLock(`order:${orderCode}`, async () => {
                    for (const r of await this.recordsOfOrder(orderCode)) {
                        if (r.outcome === 'unknown') await this.reconcileRecord(ctx, r.paymentId);
                        else if (r.outcome === 'created' && r.transactionId === tx) await this.attach(ctx, r);
                    }
                });
                known = !!(await this.findPayment(ctx, tx));
            }
            if (!known && orderCode) {
                // Perhaps the transaction of a payment request: attached to its order now, not at the next poll.
                await this.tellRequests({ orderCode, transactionId: tx });
                known = !!(await this.findPayment(ctx, tx));
            }
            // No payment carries it (yet): acknowledged, nothing recorded (PROTOCOL.md §3); polling reads the truth.
            if (!known) {
                Logger.info(`notification ${eventId} for a transaction no payment carries: ${tx}`, loggerCtx);
                return { status: 204 };
            }
            await this.refresh(tx);
            await processed();
            return { status: 204 };
        } catch (e) {
            if (e instanceof CvcoFailure) return { status: e.status, body: e.body };
            throw e;
        }
    }

    /** A failure here is left to the requests' poller: the notification is still acknowledged. */
    private async tellRequests(about: { requestId?: string; orderCode?: string; transactionId?: string }): Promise<boolean> {
        if (!this.requestNotified) return false;
        return this.requestNotified(about).catch(e => {
            Logger.warn(`notification for a payment request: ${e instanceof Error ? e.message : e}`, loggerCtx);
            return true;
        });
    }

    // ---------------------------------------------------------------- the shopper endpoints

    /** The shopper's own order: the session's active order, the customer's, or Vendure's order-by-code rule. */
    async shopperOrder(ctx: RequestContext, orderRef: unknown): Promise<Order> {
        // A missing order_ref names no order (as cvco-host and pretix answer).
        const notFound = () => new CvcoFailure(cvcoError('order_not_found', { field: 'order_ref' }));
        if (typeof orderRef !== 'string' || !orderRef) throw notFound();
        const order = await this.orderService.findOneByCode(ctx, orderRef, ['customer', 'customer.user']);
        if (!order || !(await this.canAccess(ctx, order))) throw notFound();
        return order;
    }

    private async canAccess(ctx: RequestContext, order: Order): Promise<boolean> {
        const activeOrderId = (ctx.session as { activeOrderId?: ID } | undefined)?.activeOrderId;
        if (activeOrderId && idsAreEqual(activeOrderId, order.id)) return true;
        const userId = order.customer?.user?.id;
        if (ctx.activeUserId && userId && idsAreEqual(ctx.activeUserId, userId)) return true;
        if (!order.orderPlacedAt) return false;
        const strategy = this.configService.orderOptions.orderByCodeAccessStrategy;
        return !!strategy && (await strategy.canAccessOrder(ctx, order));
    }

    private async cvcoPayments(ctx: RequestContext, order: Order): Promise<{ all: Payment[]; cvco: Payment[] }> {
        const all = await this.orderService.getOrderPayments(ctx, order.id);
        return { all, cvco: all.filter(p => p.method === this.methodCode && p.metadata?.cvco) };
    }

    /**
     * Every CVCo payment of an order as the contract shows it, oldest first: its Vendure payments,
     * then the records no Vendure payment carries (unknown outcome, failed, not attached yet).
     */
    private async orderContracts(
        ctx: RequestContext,
        order: Order,
    ): Promise<Array<{ payment: ContractPayment; attempt: string }>> {
        const { all, cvco } = await this.cvcoPayments(ctx, order);
        const out: Array<{ payment: ContractPayment; attempt: string }> = [];
        for (const vp of cvco) out.push({ payment: await this.toContract(vp, order, all), attempt: (vp.metadata.cvco as CvcoMetadata).attempt });
        const carried = new Set(out.map(x => x.payment.payment_id));
        for (const r of await this.recordsOfOrder(order.code)) {
            if (!carried.has(r.paymentId)) out.push({ payment: await this.recordContract(r, order, all), attempt: r.attempt });
        }
        return out;
    }

    /** The order's open payment request, if any (callers hold the order's lock). */
    private async openRequestOf(orderCode: string): Promise<CvcoPaymentRequestRecord | undefined> {
        const open = await this.connection.rawConnection.getRepository(CvcoPaymentRequestRecord).find({ where: { orderCode, final: false } });
        return open[0];
    }

    /** The order's shopper payment in progress (unknown included), for the back-office's own check; callers hold the order's lock. */
    async openShopperPayment(ctx: RequestContext, order: Order): Promise<ContractPayment | undefined> {
        return (await this.orderContracts(ctx, order)).find(x => !x.payment.final)?.payment;
    }

    /** The order's payment in progress under another attempt than `attempt`, if any. */
    private async openPayment(ctx: RequestContext, order: Order, attempt: string): Promise<ContractPayment | undefined> {
        return (await this.orderContracts(ctx, order)).find(x => x.attempt !== attempt && !x.payment.final)?.payment;
    }

    private remaining(order: Order, payments: Payment[]): number {
        const covered = payments.filter(p => COVERING_STATES.includes(p.state)).reduce((sum, p) => sum + p.amount, 0);
        return Math.max(0, order.totalWithTax - covered);
    }

    /** The contract's rules for this order: the plugin's `checkout` export (settings from its config). */
    private checkoutOf(order: Order, remaining: number): Promise<Checkout> {
        return this.pool.call<Checkout>(Exports.checkout, {
            order_ref: order.code,
            order_total_cents: order.totalWithTax,
            order_remaining_cents: remaining,
            currency: order.currencyCode,
            payable: order.state === 'ArrangingPayment',
            modes: ['identifier'],
        });
    }

    /** A `POST /payments` body, normalised by the plugin's `parse_request` (its errors as every adapter's). */
    private parseRequest(body: string): Promise<CreateRequest> {
        return this.pool.call<CreateRequest>(Exports.parseRequest, { operation: 'create_payment', body });
    }

    async checkout(ctx: RequestContext, orderRef: unknown): Promise<Checkout> {
        const order = await this.shopperOrder(ctx, orderRef);
        const { all } = await this.cvcoPayments(ctx, order);
        const rules = await this.checkoutOf(order, this.remaining(order, all));
        const open = (await this.orderContracts(ctx, order)).filter(x => !x.payment.final).pop();
        return { ...rules, current_payment: open?.payment ?? null };
    }

    /**
     * POST /payments (`body`: the request's text): idempotent per order and attempt; the amount is
     * the order's remainder. The order's unknown creations are reconciled first; while one of its
     * payments is in progress (unknown included) another attempt gets 409 `payment_in_progress`
     * with that payment's id.
     */
    async createShopperPayment(ctx: RequestContext, body: string): Promise<{ created: boolean; payment: ContractPayment }> {
        const { order_ref, mode, beneficiary, attempt } = await this.parseRequest(body);
        // This adapter offers the identifier only (the checkout's `modes`).
        if (mode !== 'identifier') throw new CvcoFailure(cvcoError('invalid_request', { field: 'mode' }));
        const order = await this.shopperOrder(ctx, order_ref);
        return this.withLock(`order:${order.code}`, async () => {
            const bg = await this.backgroundContext();
            for (const r of await this.recordsOfOrder(order.code)) {
                if (r.outcome === 'unknown') await this.reconcileRecord(bg, r.paymentId);
            }
            const fresh = async () => (await this.orderService.findOne(ctx, order.id)) ?? order;
            const current = await fresh();
            const known = await this.orderContracts(ctx, current);
            const same = known.find(x => x.attempt === attempt);
            if (same) return { created: false, payment: same.payment };
            const open = known.find(x => !x.payment.final);
            if (open) throw new CvcoFailure(cvcoError('payment_in_progress', { payment_id: open.payment.payment_id }));
            // A payment request from the back-office open on this order (unknown outcome included)
            // could be paid too: one open CVCo payment per order, whichever path made it.
            const request = await this.openRequestOf(current.code);
            if (request) {
                throw new CvcoFailure(
                    cvcoError('payment_in_progress', {
                        payment_id: request.paymentId ?? request.localId,
                        detail: ['Une demande de paiement est en cours pour cette commande.', 'A payment request is open for this order.'],
                    }),
                );
            }
            const { all } = await this.cvcoPayments(ctx, current);
            const amount = this.remaining(current, all);
            const rules = await this.checkoutOf(current, amount);
            if (rules.ineligible_reason) throw new CvcoFailure(rules.ineligible_reason);
            const made = await this.createAtAncv(current, amount, beneficiary!, attempt, 'pending');
            if (!made.record) throw new CvcoFailure(made.error ?? cvcoError('internal'));
            // Outcome unknown (PROTOCOL.md): kept as `unknown`, answered with the retryable error
            // naming it, so the caller follows that payment instead of starting another.
            if (!made.payment && made.error) {
                throw new CvcoFailure(errorBody({ ...made.error, retryable: true, payment_id: made.record.paymentId }));
            }
            if (made.payment) await this.attach(bg, made.record);
            const after = (await this.orderContracts(ctx, await fresh())).find(x => x.payment.payment_id === made.record!.paymentId);
            if (!after) throw new CvcoFailure(cvcoError('internal'));
            return { created: true, payment: after.payment };
        });
    }

    /** A payment of the shopper's session, by its contract id (or, for older payments, the transaction id). */
    async shopperPayment(ctx: RequestContext, paymentId: string): Promise<ContractPayment> {
        const record = await this.records.findOne({ where: { paymentId } });
        const vp = record?.transactionId
            ? await this.findPayment(ctx, record.transactionId)
            : record
              ? undefined
              : await this.findPayment(ctx, paymentId);
        const orderId = vp?.order.id ?? record?.orderId;
        if (orderId === undefined || (!record && !vp?.metadata?.cvco)) throw new CvcoFailure(cvcoError('payment_not_found'));
        const order = await this.orderService.findOne(ctx, orderId, ['customer', 'customer.user']);
        if (!order || !(await this.canAccess(ctx, order))) throw new CvcoFailure(cvcoError('payment_not_found'));
        const { all } = await this.cvcoPayments(ctx, order);
        const current = vp ? all.find(p => idsAreEqual(p.id, vp.id)) ?? vp : undefined;
        return current?.metadata?.cvco ? this.toContract(current, order, all) : this.recordContract(record!, order, all);
    }

    async cancelShopperPayment(ctx: RequestContext, paymentId: string): Promise<ContractPayment> {
        let current = await this.shopperPayment(ctx, paymentId);
        // Already cancelled (the retry of a lost answer): answered unchanged (PROTOCOL.md §1).
        if (current.final && current.status === 'cancelled') return current;
        if (current.final) throw new CvcoFailure(cvcoError('illegal_transition'));
        if (current.status === 'unknown') {
            // Nothing to cancel before ANCV says what it made: reconcile first.
            await this.reconcile(current.payment_id);
            current = await this.shopperPayment(ctx, paymentId);
            if (current.final) throw new CvcoFailure(cvcoError('illegal_transition'));
            if (!current.transaction_id) throw new CvcoFailure(cvcoError('payment_in_progress', { payment_id: current.payment_id }));
        }
        await this.pool.call<PluginPayment>(Exports.cancelPayment, { payment_id: current.transaction_id });
        await this.refresh(current.transaction_id!);
        return this.shopperPayment(ctx, paymentId);
    }

    /** Registers an open stream's end; returns its unregistration. */
    trackStream(end: () => void): () => void {
        this.streams.add(end);
        return () => this.streams.delete(end);
    }

    subscribe(paymentId: string, listener: Listener): () => void {
        let set = this.listeners.get(paymentId);
        if (!set) this.listeners.set(paymentId, (set = new Set()));
        set.add(listener);
        return () => {
            set!.delete(listener);
            if (set!.size === 0) this.listeners.delete(paymentId);
        };
    }

    private async broadcast(ctx: RequestContext, transactionId: string) {
        const vp = await this.findPayment(ctx, transactionId);
        if (!vp?.metadata?.cvco) return;
        const id = (vp.metadata.cvco as CvcoMetadata).payment_id ?? transactionId;
        const set = this.listeners.get(id);
        if (!set || set.size === 0) return;
        const order = await this.orderService.findOne(ctx, vp.order.id);
        if (!order) return;
        const { all } = await this.cvcoPayments(ctx, order);
        const current = all.find(p => idsAreEqual(p.id, vp.id)) ?? vp;
        const payment = await this.toContract(current, order, all);
        for (const listener of [...set]) listener(payment);
    }

    private async broadcastRecord(ctx: RequestContext, record: CvcoPaymentRecord) {
        const set = this.listeners.get(record.paymentId);
        if (!set || set.size === 0) return;
        const order = await this.orderService.findOne(ctx, record.orderId);
        if (!order) return;
        const found = (await this.orderContracts(ctx, order)).find(x => x.payment.payment_id === record.paymentId);
        if (found) for (const listener of [...set]) listener(found.payment);
    }

    /** The contract Payment of a Vendure payment of this adapter. */
    toContract(vp: Payment, order: Order, payments: Payment[]): Promise<ContractPayment> {
        const m = vp.metadata.cvco as CvcoMetadata;
        return this.render(
            { payment_id: m.payment_id ?? m.payment.id, mode: m.mode, beneficiary_masked: m.beneficiary_masked, sequence: m.sequence },
            { created: vp.createdAt, updated: vp.updatedAt, payment: m.payment, error: m.error as CvcoErrorBody | null },
            order,
            payments,
        );
    }

    /** The contract Payment of a record no Vendure payment carries (yet): unknown, failed or not attached. */
    recordContract(r: CvcoPaymentRecord, order: Order, payments: Payment[]): Promise<ContractPayment> {
        return this.render(
            { payment_id: r.paymentId, mode: r.mode, beneficiary_masked: r.beneficiaryMasked, sequence: r.sequence },
            { created: r.createdAt, updated: r.updatedAt, payment: r.outcome === 'created' ? r.payment : null, error: r.error, amount: r.amountCents },
            order,
            payments,
        );
    }

    /** The plugin's `render_payment`: the same Payment JSON as every other adapter's. */
    private render(
        ids: { payment_id: string; mode: string; beneficiary_masked: string; sequence: number },
        facts: { created: Date; updated: Date; payment: PluginPayment | null; error: CvcoErrorBody | null; amount?: number },
        order: Order,
        payments: Payment[],
    ): Promise<ContractPayment> {
        const input: Record<string, unknown> = {
            ...ids,
            order_ref: order.code,
            channel: 'ecommerce',
            order_total_cents: order.totalWithTax,
            order_remaining_cents: this.remaining(order, payments),
            created_at: new Date(facts.created).toISOString(),
            updated_at: new Date(facts.updated).toISOString(),
            events_url: `${CONTRACT_BASE}/payments/${encodeURIComponent(ids.payment_id)}/events`,
        };
        if (facts.payment) input.payment = facts.payment;
        else input.amount_cents = facts.amount;
        if (facts.error) input.error = facts.error;
        return this.pool.call<ContractPayment>(Exports.renderPayment, input);
    }
}
