import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import {
    CreatePaymentErrorResult,
    CreatePaymentResult,
    CreateRefundResult,
    ID,
    isGraphQlErrorResult,
    Logger,
    Order,
    OrderService,
    Payment,
    ProcessContext,
    RequestContext,
    RequestContextService,
    SettlePaymentResult,
    SettlePaymentErrorResult,
    TransactionalConnection,
} from '@vendure/core';
import { randomUUID } from 'node:crypto';
import { In, LessThanOrEqual } from 'typeorm';

import { CONTRACT_BASE, CVCO_PLUGIN_OPTIONS } from './constants';
import { ContractPayment, CvcoService } from './cvco.service';
import { CvcoPaymentRecord } from './entities';
import { CvcoErrorBody, cvcoError, CvcoFailure, errorBody, outcomeUnknown } from './errors';
import { ExportName, Exports } from './exports';
import { CvcoPaymentRequestRecord, CvcoRefundAttempt, PluginPaymentRequest } from './payment-request.entity';
import { CvcoMetadata, CvcoPluginOptions, PluginPayment } from './types';

const loggerCtx = 'CvcoPaymentRequests';
const COVERING = ['Authorized', 'Settled'];
const PAID = ['authorized', 'partially_authorized'];
/** Order states that take a payment (the second after a modification or a partial capture). */
const PAYABLE = ['ArrangingPayment', 'ArrangingAdditionalPayment'];
// The transactions list reads the newest LIST_TAKE payments and counts up to TOTAL_CAP (PROTOCOL.md).
const LIST_TAKE = 1000;
const TOTAL_CAP = 10_000;

/** The contract payment id of a request (rows written before the column: the local id). */
const paymentIdOf = (r: CvcoPaymentRequestRecord) => r.paymentId ?? r.localId;

/** The sequence of a request's Payment before its Vendure payment: one step per thing recorded. */
const requestSequence = (r: CvcoPaymentRequestRecord) =>
    1 + (r.request ? 1 : 0) + (r.final ? 1 : 0) + (r.transactionId ? 1 : 0) + (r.error ? 1 : 0);

/** A cvco error of the catalogue (`detail` appended to both messages), thrown. */
const fail = (code: string, field?: string, detail?: [string, string]) => new CvcoFailure(cvcoError(code, { field, detail }));

/** An unreadable query parameter: 400 `invalid_request` naming it (PROTOCOL.md Conventions), as cvco-host. */
export const badQuery = (field: string) => new CvcoFailure(cvcoError('invalid_request', { field }), 400);

/** `parse_request` outputs (cvco_core::contract), the bodies every adapter checks alike. */
interface RequestBody {
    order_ref: string;
    amount_cents?: number | null;
    delivery: 'email' | 'qr';
    email?: string | null;
    expires_in_s?: number | null;
    capture: 'immediate' | 'deferred';
    attempt: string;
}
interface RefundBody {
    amount_cents?: number | null;
    reason?: string | null;
    attempt: string;
}
interface FinaliseBody {
    amount_cents?: number | null;
}

/** The contract's payment request object (PROTOCOL.md §2). */
export interface ContractPaymentRequest {
    request_id: string;
    /** What this request pays, as GET /payments/{id} reads it. */
    payment_id: string;
    order_ref: string;
    amount_cents: number;
    delivery: string;
    email_masked: string | null;
    capture: 'immediate' | 'deferred';
    status: string;
    final: boolean;
    finalised: boolean;
    expires_at: string | null;
    qr_payload: string | null;
    qr_svg: string | null;
    payment: ContractPayment | null;
    error: CvcoErrorBody | null;
    created_at: string;
    updated_at: string;
}


/**
 * PROTOCOL.md §2 on Vendure: payment requests (MOTO with delay, pre-reservations), their
 * settlement (deferred capture through the handler's settlePayment), refunds with an attempt
 * key through Vendure's own refund flow, and the transactions list. Used by the Admin API
 * extension and the back-office HTTP controller.
 */
@Injectable()
export class CvcoPaymentRequests implements OnApplicationBootstrap, OnApplicationShutdown {
    private timer?: NodeJS.Timeout;
    private polling = false;
    private stopped = false;
    /** Vendure payment id → the refund attempt its createRefund hook must use (set around refundOrder). */
    private refundIntents = new Map<string, { input: Record<string, unknown> }>();

    constructor(
        @Inject(CVCO_PLUGIN_OPTIONS) private options: CvcoPluginOptions,
        private connection: TransactionalConnection,
        private orderService: OrderService,
        private requestContextService: RequestContextService,
        private processContext: ProcessContext,
        private service: CvcoService,
    ) {}

    onApplicationBootstrap() {
        this.service.requestNotified = about => this.notified(about);
        if (!this.processContext.isServer) return;
        this.timer = setInterval(() => void this.poll(), this.options.pollIntervalMs ?? 3000);
    }

    onApplicationShutdown() {
        this.stopped = true;
        if (this.timer) clearInterval(this.timer);
    }

    get pluginOptions(): CvcoPluginOptions {
        return this.options;
    }

    private get methodCode() {
        return this.options.paymentMethodCode ?? 'cvco';
    }
    private get requests() {
        // Outside any request transaction: the record must survive the call's outcome.
        return this.connection.rawConnection.getRepository(CvcoPaymentRequestRecord);
    }
    private get refunds() {
        return this.connection.rawConnection.getRepository(CvcoRefundAttempt);
    }
    private call<T>(fn: ExportName, input: unknown): Promise<T> {
        return this.service.pool.call<T>(fn, input);
    }
    /** A request body checked by the plugin's `parse_request`: the same errors as every adapter's. */
    private parse<T>(operation: 'create_payment_request' | 'refund' | 'finalise', text: string): Promise<T> {
        return this.call<T>(Exports.parseRequest, { operation, body: text });
    }
    private background(): Promise<RequestContext> {
        return this.requestContextService.create({ apiType: 'admin' });
    }

    // ------------------------------------------------------------------ orders

    private async orderByRef(ctx: RequestContext, ref: unknown): Promise<Order> {
        const order = typeof ref === 'string' && ref ? await this.orderService.findOneByCode(ctx, ref) : undefined;
        if (!order) throw fail('order_not_found', 'order_ref');
        return order;
    }

    async orderById(ctx: RequestContext, id: ID): Promise<Order> {
        const order = await this.orderService.findOne(ctx, id);
        if (!order) throw fail('order_not_found');
        return order;
    }

    private async remaining(ctx: RequestContext, order: Order): Promise<number> {
        const payments = await this.orderService.getOrderPayments(ctx, order.id);
        const covered = payments.filter(p => COVERING.includes(p.state)).reduce((s, p) => s + p.amount, 0);
        return Math.max(0, order.totalWithTax - covered);
    }

    // ------------------------------------------------------------------ payment requests

    /**
     * POST /payment-requests (and the Admin API's mutation; `text`: the request's body):
     * idempotent per order and attempt. One open request per order: another attempt is 409
     * `payment_in_progress` naming the open one's `payment_id`.
     */
    async create(ctx: RequestContext, text: string): Promise<{ created: boolean; request: ContractPaymentRequest }> {
        const { order_ref, amount_cents, delivery, email, expires_in_s, capture, attempt } = await this.parse<RequestBody>('create_payment_request', text);
        // Already checked and normalised by parse_request: this call only gives the masked form.
        const emailChecked =
            delivery === 'email' && email ? await this.call<{ value: string; masked: string }>(Exports.validateBeneficiary, { input: email }) : undefined;
        const order = await this.orderByRef(ctx, order_ref);
        return this.service.withLock(`order:${order.code}`, async () => {
            const same = await this.requests.findOne({ where: { orderCode: order.code, attempt } });
            if (same) {
                if (same.outcome === 'unknown') await this.refreshRecord(same);
                return { created: false, request: await this.render(ctx, (await this.requests.findOne({ where: { id: same.id } }))!) };
            }
            // One open request per order: a second one could be paid too, and the order take only one.
            for (const r of await this.requests.find({ where: { orderCode: order.code, final: false } })) {
                const now = r.outcome === 'unknown' ? await this.refreshRecord(r).catch(() => r) : r;
                if (!now.final) {
                    throw new CvcoFailure(
                        cvcoError('payment_in_progress', {
                            payment_id: paymentIdOf(now),
                            detail: ['Une demande de paiement est en cours pour cette commande.', 'A payment request is open for this order.'],
                        }),
                    );
                }
            }
            // Nor while a shopper's payment is open on it (the shopper's path checks requests too).
            const shopper = await this.service.openShopperPayment(ctx, order);
            if (shopper) {
                throw new CvcoFailure(
                    cvcoError('payment_in_progress', {
                        payment_id: shopper.payment_id,
                        detail: ['Un paiement est en cours pour cette commande.', 'A payment is in progress for this order.'],
                    }),
                );
            }
            if (order.currencyCode !== 'EUR') throw fail('currency_not_supported');
            if (!PAYABLE.includes(order.state)) {
                throw fail('illegal_transition', undefined, ["La commande n'attend pas de paiement.", 'The order is not awaiting payment.']);
            }
            const remaining = await this.remaining(ctx, order);
            const amount = amount_cents ?? remaining;
            if (remaining === 0) throw fail('illegal_transition', undefined, ['La commande est déjà payée.', 'The order is already paid.']);
            if (amount > remaining) {
                throw fail('invalid_amount', 'amount_cents', ['Au plus le reste dû de la commande.', 'At most what the order still needs.']);
            }
            const input: Record<string, unknown> = {
                order_ref: order.code,
                amount_cents: amount,
                delivery,
                idempotency_key: `vendure-req-${order.code}-${attempt}`,
                capture_mode: capture === 'deferred' ? 'DEFERRED' : 'NORMAL',
            };
            if (emailChecked) input.email = emailChecked.value;
            if (expires_in_s != null) input.expires_in_s = expires_in_s;
            if (this.options.adjustable !== undefined) input.adjustable = this.options.adjustable;
            if (this.options.publicUrl) {
                input.notification_url = `${this.options.publicUrl.replace(/\/$/, '')}${CONTRACT_BASE}/notifications`;
            }
            const record = await this.requests.save(
                new CvcoPaymentRequestRecord({
                    localId: `preq_${randomUUID().replace(/-/g, '')}`,
                    paymentId: `pay_${randomUUID().replace(/-/g, '')}`,
                    requestId: null,
                    orderId: String(order.id),
                    orderCode: order.code,
                    attempt,
                    amountCents: amount,
                    delivery,
                    emailMasked: emailChecked?.masked ?? null,
                    capture,
                    createInput: input as any,
                    outcome: 'unknown',
                    request: null,
                    error: null,
                    transactionId: null,
                    attach: 'none',
                    finalised: false,
                    final: false,
                    tries: 0,
                    nextPollAt: new Date(Date.now() + 1000),
                }),
            );
            const answer = await this.callCreate(record);
            if (answer.refused) {
                // Refused outright: nothing was sent; the same attempt may be sent again corrected.
                await this.requests.delete(record.id);
                throw new CvcoFailure(answer.refused);
            }
            if (answer.unknown) {
                Logger.warn(`payment request ${record.localId} of ${order.code}: outcome unknown (${answer.unknown.code}), kept to reconcile`, loggerCtx);
                // The same attempt again is safe and settles it; the payment it names is readable meanwhile.
                throw new CvcoFailure(errorBody({ ...answer.unknown, retryable: true, payment_id: paymentIdOf(record) }));
            }
            return { created: true, request: await this.render(ctx, record) };
        });
    }

    /** One `create_payment_request` with the record's stored input; the record follows its outcome. */
    private async callCreate(record: CvcoPaymentRequestRecord): Promise<{ unknown?: CvcoErrorBody; refused?: CvcoErrorBody }> {
        let r: PluginPaymentRequest;
        try {
            r = await this.call<PluginPaymentRequest>(Exports.createPaymentRequest, record.createInput);
        } catch (e) {
            const body = e instanceof CvcoFailure ? e.body : cvcoError('internal');
            if (outcomeUnknown(body)) {
                record.tries += 1;
                record.nextPollAt = new Date(Date.now() + Math.min(60_000, 1000 * 2 ** Math.min(record.tries - 1, 6)));
                await this.requests.update(record.id, { tries: record.tries, nextPollAt: record.nextPollAt });
                return { unknown: body };
            }
            return { refused: body };
        }
        this.apply(record, r);
        record.outcome = 'created';
        record.requestId = r.id;
        await this.requests.save(record);
        return {};
    }

    /** Records ANCV's answer on the record (not saved). */
    private apply(record: CvcoPaymentRequestRecord, r: PluginPaymentRequest) {
        record.request = r;
        record.final = r.final;
        if (r.payment) record.transactionId = r.payment.id;
        if (r.payment && PAID.includes(r.payment.status) && r.payment.final && record.attach === 'none') record.attach = 'pending';
    }

    /** Reads the request again at ANCV (or replays its creation), and attaches a paid one to its order. */
    async refreshRecord(record: CvcoPaymentRequestRecord): Promise<CvcoPaymentRequestRecord> {
        return this.service.withLock(`req:${record.localId}`, async () => {
            const r = (await this.requests.findOne({ where: { id: record.id } })) ?? record;
            let replayed = false;
            if (r.outcome === 'unknown') {
                const answer = await this.callCreate(r);
                if (answer.refused) {
                    r.outcome = 'failed';
                    r.final = true;
                    r.error = answer.refused;
                    await this.requests.save(r);
                }
                if ((r.outcome as string) !== 'created') return r;
                replayed = true;
            }
            // A replayed creation answers the request as it was made, without the transaction a
            // beneficiary may have paid meanwhile: read it (else a paid request never reaches its order).
            const paidUnseen = !r.transactionId && PAID.includes(r.request?.status ?? '');
            if (r.outcome === 'created' && r.requestId && (replayed || paidUnseen || !r.final || r.attach === 'pending')) {
                const fresh = await this.call<PluginPaymentRequest>(Exports.getPaymentRequest, { request_id: r.requestId });
                this.apply(r, fresh);
                r.nextPollAt = null;
                await this.requests.save(r);
            }
            if (r.attach === 'pending') await this.attach(r);
            return r;
        });
    }

    /**
     * A verified notification about a request (`requestId`) or about a transaction no payment
     * carries, of an order with requests: those still open are read now, a paid one attached.
     */
    private async notified(about: { requestId?: string; orderCode?: string; transactionId?: string }): Promise<boolean> {
        const rows = about.requestId
            ? await this.requests.find({ where: { requestId: about.requestId } })
            : await this.requests.find({
                  where: [
                      { orderCode: about.orderCode, final: false },
                      { orderCode: about.orderCode, attach: 'pending' },
                      { orderCode: about.orderCode, transactionId: about.transactionId },
                  ],
              });
        for (const r of rows) {
            if (r.outcome !== 'failed') await this.refreshRecord(r);
        }
        return rows.length > 0;
    }

    /** A paid request gives its order a Vendure Payment, once (the handler answers it from the record). */
    private async attach(record: CvcoPaymentRequestRecord) {
        const ctx = await this.background();
        const tx = record.transactionId!;
        const existing = await this.connection.getRepository(ctx, Payment).findOne({ where: { transactionId: tx, method: this.methodCode } });
        if (existing) {
            record.attach = 'done';
            await this.requests.update(record.id, { attach: 'done' });
            return;
        }
        const order = await this.orderService.findOne(ctx, record.orderId);
        if (!order || !PAYABLE.includes(order.state)) {
            // ANCV took money this order can no longer take: kept, listed, and said loudly.
            Logger.error(
                `payment request ${record.requestId} paid (transaction ${tx}) but order ${record.orderCode} is ${order?.state}: refund or attach it by hand`,
                loggerCtx,
            );
            record.attach = 'failed';
            await this.requests.update(record.id, { attach: 'failed' });
            return;
        }
        const result = await this.connection.withTransaction(ctx, t =>
            this.orderService.addPaymentToOrder(t, order.id, { method: this.methodCode, metadata: { cvco_request: record.localId } }),
        );
        if (isGraphQlErrorResult(result)) {
            Logger.error(`transaction ${tx} of request ${record.requestId} not attached to ${record.orderCode}: ${result.message}`, loggerCtx);
            return;
        }
        record.attach = 'done';
        await this.requests.update(record.id, { attach: 'done' });
        Logger.info(`payment request ${record.requestId} paid: transaction ${tx} attached to order ${record.orderCode}`, loggerCtx);
    }

    /** The handler's createPayment for `metadata.cvco_request`: the paid request's transaction. */
    async paymentForRequest(order: Order, metadata: Record<string, unknown>): Promise<CreatePaymentResult | CreatePaymentErrorResult> {
        const record = await this.requests.findOne({ where: { localId: String(metadata.cvco_request) } });
        const p = record?.request?.payment;
        if (!record || record.orderCode !== order.code || !p || !PAID.includes(p.status)) {
            return { amount: 0, state: 'Error', errorMessage: JSON.stringify(cvcoError('internal')) };
        }
        const cvco: CvcoMetadata = {
            // The id the request named from the start stays the payment's.
            payment_id: paymentIdOf(record),
            attempt: record.attempt,
            mode: 'identifier',
            beneficiary_masked: record.emailMasked ?? '',
            // Above what the request's Payment showed before it was paid (SSE ids only increase).
            sequence: requestSequence(record) + 1,
            ancv_sequence: 0,
            events: [],
            payment: p,
            error: null,
        };
        if (record.delivery === 'qr') (cvco as { mode: string }).mode = 'qr';
        return {
            amount: p.authorized_cents,
            // Deferred: ANCV holds the money until Vendure's settlePayment captures it.
            state: record.capture === 'deferred' && p.captured_cents === 0 ? 'Authorized' : 'Settled',
            transactionId: p.id,
            metadata: { cvco, cvco_request_id: record.requestId, public: { cvco_request_id: record.requestId } },
        };
    }

    async byRequestId(requestId: string): Promise<CvcoPaymentRequestRecord> {
        const record = await this.requests.findOne({ where: [{ requestId }, { localId: requestId }] });
        if (!record) throw fail('pre_transaction_not_found');
        return record;
    }

    async get(ctx: RequestContext, requestId: string): Promise<ContractPaymentRequest> {
        return this.render(ctx, await this.byRequestId(requestId));
    }

    /** GET /payment-requests (`query`: the HTTP query) and the Admin API's list of an order. */
    async list(ctx: RequestContext, query: Record<string, unknown>, orderId?: ID) {
        const q = readQuery(query, ['status', 'from', 'to', 'order_ref']);
        const from = q.from ? parseDay(q.from, 'from') : undefined;
        const to = q.to ? parseDay(q.to, 'to', true) : undefined;
        const where: Record<string, unknown> = {};
        if (q.order_ref) where.orderCode = q.order_ref;
        if (orderId !== undefined) where.orderId = String(orderId);
        const rows = await this.requests.find({ where, order: { id: 'DESC' }, take: 500 });
        const items: ContractPaymentRequest[] = [];
        for (const r of rows) {
            if (from && r.createdAt < from) continue;
            if (to && r.createdAt >= to) continue;
            const json = await this.render(ctx, r);
            if (q.status && json.status !== q.status) continue;
            items.push(json);
        }
        return { items, total: items.length };
    }

    /** Cancels an unpaid request, or an authorized pre-reservation not finalised; a cancelled one is answered unchanged. */
    async cancel(ctx: RequestContext, requestId: string): Promise<ContractPaymentRequest> {
        let record = await this.byRequestId(requestId);
        if (record.outcome === 'unknown') record = await this.refreshRecord(record);
        if (record.outcome !== 'created' || !record.requestId) {
            if (record.outcome === 'unknown') throw new CvcoFailure(cvcoError('payment_in_progress', { payment_id: paymentIdOf(record) }));
            throw fail('illegal_transition');
        }
        const current = await this.render(ctx, record);
        if (current.status === 'cancelled') return current;
        const vp = record.transactionId ? await this.vendurePayment(ctx, record.transactionId) : undefined;
        if (vp && record.capture === 'deferred' && !record.finalised && vp.state === 'Authorized') {
            // An authorized pre-reservation: Vendure's cancelPayment cancels it at ANCV (handler hook).
            const out = await this.connection.withTransaction(ctx, t => this.orderService.cancelPayment(t, vp.id));
            if (isGraphQlErrorResult(out)) throw fail('illegal_transition', undefined, [out.message, out.message]);
            if (out.state !== 'Cancelled') throw new CvcoFailure(parseError(out.errorMessage) ?? cvcoError('illegal_transition'));
            await this.service.refresh(record.transactionId!).catch(() => undefined);
            return this.render(ctx, record);
        }
        if (current.final) throw fail('illegal_transition');
        await this.service.withLock(`req:${record.localId}`, async () => {
            const r = await this.call<PluginPaymentRequest>(Exports.cancelPaymentRequest, { request_id: record.requestId });
            const fresh = (await this.requests.findOne({ where: { id: record.id } }))!;
            this.apply(fresh, r);
            await this.requests.save(fresh);
            record = fresh;
        });
        return this.render(ctx, record);
    }

    /**
     * Captures an authorized pre-reservation through Vendure's settlePayment (the handler's hook
     * calls `capture_payment`); with `amount_cents` (≤ authorized) the Vendure payment is that
     * amount, the rest of the order stays to pay.
     */
    async finalise(ctx: RequestContext, requestId: string, text: string): Promise<ContractPaymentRequest> {
        const amount = (await this.parse<FinaliseBody>('finalise', text)).amount_cents ?? undefined;
        let record = await this.byRequestId(requestId);
        if (record.outcome === 'created' && !record.final) record = await this.refreshRecord(record);
        const notReady = () =>
            fail('illegal_transition', undefined, ['Pré-réservation non autorisée ou déjà finalisée.', 'Pre-reservation not authorized or already finalised.']);
        if (record.capture !== 'deferred' || record.finalised || !record.transactionId) throw notReady();
        const vp = await this.vendurePayment(ctx, record.transactionId);
        if (!vp || vp.state !== 'Authorized') throw notReady();
        const p = (vp.metadata.cvco as CvcoMetadata).payment;
        if (amount !== undefined && amount > p.authorized_cents) {
            throw fail('invalid_amount', 'amount_cents', ['Au plus le montant autorisé.', 'At most the authorized amount.']);
        }
        if (amount !== undefined && amount !== vp.amount) {
            await this.connection.getRepository(ctx, Payment).update(vp.id, { amount });
        }
        const out = await this.connection.withTransaction(ctx, t => this.orderService.settlePayment(t, vp.id));
        if (isGraphQlErrorResult(out)) {
            throw new CvcoFailure(parseError((out as { paymentErrorMessage?: string }).paymentErrorMessage) ?? cvcoError('illegal_transition'));
        }
        if (out.state !== 'Settled') throw new CvcoFailure(parseError(out.errorMessage) ?? cvcoError('internal'));
        const order = await this.orderById(ctx, record.orderId);
        if (order.state === 'PaymentAuthorized' && (await this.remaining(ctx, order)) > 0) {
            // Part captured: the order needs the rest, by CVCo or another method.
            const moved = await this.orderService.transitionToState(ctx, order.id, 'ArrangingAdditionalPayment');
            if (isGraphQlErrorResult(moved)) Logger.error(`order ${order.code} after a partial capture: ${moved.message}`, loggerCtx);
        }
        return this.render(ctx, (await this.requests.findOne({ where: { id: record.id } }))!);
    }

    /** The handler's settlePayment of a CVCo payment: deferred ones are captured here, others only checked. */
    async settleHook(payment: Payment): Promise<SettlePaymentResult | SettlePaymentErrorResult | undefined> {
        const m = payment.metadata?.cvco as CvcoMetadata | undefined;
        const p = m?.payment as (PluginPayment & { capture_mode?: string }) | undefined;
        if (!m || !p || p.capture_mode !== 'DEFERRED' || !payment.transactionId) return undefined;
        if (p.captured_cents > 0) return { success: true };
        try {
            const after = await this.call<PluginPayment>(Exports.capturePayment, { payment_id: payment.transactionId, amount_cents: payment.amount });
            await this.requests.update({ transactionId: payment.transactionId }, { finalised: true });
            // The Vendure payment's metadata follows ANCV once it is Settled.
            setTimeout(() => void this.service.refresh(after.id).catch(() => undefined), 0);
            return { success: true, metadata: { cvco: { ...m, payment: after, sequence: m.sequence + 1 } } };
        } catch (e) {
            if (!(e instanceof CvcoFailure)) throw e;
            if (outcomeUnknown(e.body)) setTimeout(() => void this.recheckCapture(payment.transactionId!), 0);
            // Still authorized at Vendure: the capture may be asked again.
            return { success: false, state: 'Authorized' as any, errorMessage: JSON.stringify(e.body) };
        }
    }

    /** After a capture whose answer was lost: read the payment; captured at ANCV → settled here too. */
    private async recheckCapture(transactionId: string) {
        try {
            const p = await this.call<PluginPayment>(Exports.getPayment, { payment_id: transactionId });
            if (p.captured_cents > 0) {
                const ctx = await this.background();
                const vp = await this.vendurePayment(ctx, transactionId);
                if (vp && vp.state === 'Authorized') {
                    await this.connection.getRepository(ctx, Payment).update(vp.id, { metadata: { ...vp.metadata, cvco: { ...vp.metadata.cvco, payment: p } } as any });
                    await this.connection.withTransaction(ctx, t => this.orderService.settlePayment(t, vp.id));
                }
            }
        } catch (e) {
            Logger.warn(`re-reading ${transactionId} after a capture: ${e instanceof Error ? e.message : e}`, loggerCtx);
        }
    }

    private async vendurePayment(ctx: RequestContext, transactionId: string): Promise<Payment | undefined> {
        return (
            (await this.connection.getRepository(ctx, Payment).findOne({
                where: { transactionId, method: this.methodCode },
                relations: ['order'],
            })) ?? undefined
        );
    }

    async render(ctx: RequestContext, r: CvcoPaymentRequestRecord): Promise<ContractPaymentRequest> {
        const req = r.request;
        const payment = r.transactionId ? await this.transactionPayment(ctx, r) : null;
        const reqStatus = req ? (req.status === 'pending' ? 'awaiting_beneficiary' : req.status) : r.outcome;
        return {
            request_id: r.requestId ?? r.localId,
            payment_id: paymentIdOf(r),
            order_ref: r.orderCode,
            amount_cents: r.amountCents,
            delivery: r.delivery,
            email_masked: r.emailMasked,
            capture: r.capture,
            status: payment ? payment.status : reqStatus,
            final: payment ? payment.final : r.outcome === 'failed' || !!req?.final,
            finalised: r.finalised,
            expires_at: req?.expires_at ?? null,
            qr_payload: req?.qr_payload ?? null,
            qr_svg: r.delivery === 'qr' ? (req?.svg ?? null) : null,
            payment,
            error: r.error,
            created_at: new Date(r.createdAt).toISOString(),
            updated_at: new Date(r.updatedAt).toISOString(),
        };
    }

    /**
     * The contract Payment of a paid request: its Vendure payment once the order has it, else
     * (not attached yet, or the order could not take it) ANCV's transaction as recorded: the
     * money is shown where it is, never hidden.
     */
    private async transactionPayment(ctx: RequestContext, r: CvcoPaymentRequestRecord): Promise<ContractPayment | null> {
        const vp = await this.vendurePayment(ctx, r.transactionId!);
        if (vp?.metadata?.cvco) {
            const order = await this.orderService.findOne(ctx, vp.order.id);
            const all = order ? await this.orderService.getOrderPayments(ctx, order.id) : [];
            if (order) return this.renderPayment(all.find(x => x.id === vp.id) ?? vp, order, all);
        }
        const p = r.request?.payment;
        return p ? this.renderRequest(ctx, r, { payment: p }) : null;
    }

    /**
     * The contract Payment of a request (`render_payment`): its transaction when given, else the
     * request itself (awaiting the beneficiary, expired, cancelled), its refusal, or unknown.
     */
    private async renderRequest(ctx: RequestContext, r: CvcoPaymentRequestRecord, facts: { payment?: PluginPayment } = {}): Promise<ContractPayment> {
        const order = await this.orderById(ctx, r.orderId);
        const id = paymentIdOf(r);
        const input: Record<string, unknown> = {
            payment_id: id,
            order_ref: r.orderCode,
            mode: r.delivery === 'qr' ? 'qr' : 'identifier',
            channel: r.delivery === 'qr' ? 'proximity' : 'moto',
            order_total_cents: order.totalWithTax,
            order_remaining_cents: await this.remaining(ctx, order),
            sequence: requestSequence(r),
            created_at: new Date(r.createdAt).toISOString(),
            updated_at: new Date(r.updatedAt).toISOString(),
            events_url: `${CONTRACT_BASE}/payments/${encodeURIComponent(id)}/events`,
        };
        if (r.emailMasked) input.beneficiary_masked = r.emailMasked;
        if (r.requestId) input.request_id = r.requestId;
        if (facts.payment) input.payment = facts.payment;
        else {
            input.amount_cents = r.amountCents;
            if (r.error) input.error = r.error;
            else if (r.request) {
                const status = r.request.status === 'pending' ? 'awaiting_beneficiary' : r.request.status;
                input.request = { status, expires_at: r.request.expires_at, ...(r.delivery === 'qr' ? { qr_payload: r.request.qr_payload } : {}) };
            }
        }
        return this.call<ContractPayment>(Exports.renderPayment, input);
    }

    /**
     * GET /payments/{id} for staff (PROTOCOL.md §2): any CVCo payment of the shop, by its contract
     * id (a shopper's, or a payment request's, paid or not) or its ANCV transaction id.
     */
    async staffPayment(ctx: RequestContext, paymentId: string): Promise<ContractPayment> {
        const record = await this.connection.rawConnection.getRepository(CvcoPaymentRecord).findOne({ where: { paymentId } });
        if (record) {
            const vp = record.transactionId ? await this.vendurePayment(ctx, record.transactionId) : undefined;
            if (vp?.metadata?.cvco) return this.contractOf(ctx, vp.id);
            const order = await this.orderById(ctx, record.orderId);
            return this.renderRecord(record, order, await this.orderService.getOrderPayments(ctx, order.id));
        }
        const request = await this.requests.findOne({ where: [{ paymentId }, { localId: paymentId }] });
        if (request) {
            const fresh = request.outcome === 'unknown' ? await this.refreshRecord(request).catch(() => request) : request;
            return (fresh.transactionId ? await this.transactionPayment(ctx, fresh) : null) ?? this.renderRequest(ctx, fresh);
        }
        const vp = await this.vendurePayment(ctx, paymentId);
        if (!vp?.metadata?.cvco) throw fail('payment_not_found');
        return this.contractOf(ctx, vp.id);
    }

    /** The contract Payment of a Vendure payment / of a CvcoPaymentRecord: CvcoService's renderer (render_payment). */
    private renderPayment(vp: Payment, order: Order, all: Payment[]): Promise<ContractPayment> {
        return this.service.toContract(vp, order, all);
    }
    private renderRecord(r: CvcoPaymentRecord, order: Order, all: Payment[]): Promise<ContractPayment> {
        return this.service.recordContract(r, order, all);
    }

    // ------------------------------------------------------------------ refunds

    /**
     * POST /payments/{id}/refund: through Vendure's refundOrder (a Vendure Refund is recorded),
     * the handler's createRefund calling `refund_payment` with the key of this attempt, so the
     * same payment + attempt never refunds twice.
     */
    async refund(ctx: RequestContext, paymentId: string, text: string): Promise<ContractPayment> {
        const { amount_cents, reason, attempt } = await this.parse<RefundBody>('refund', text);
        const vp = await this.paymentOf(ctx, paymentId);
        return this.service.withLock(`refund:${vp.id}`, async () => {
            const previous = await this.refunds.findOne({ where: { paymentId, attempt } });
            if (previous?.outcome === 'done') return this.contractOf(ctx, vp.id);
            // Another attempt's answer was lost: its outcome must be read before a new refund
            // (PROTOCOL.md §2 "Lost answers"); until a read succeeds, 409 naming the payment.
            const lost = (await this.refunds.find({ where: { paymentId, outcome: 'unknown' } })).filter(r => r.attempt !== attempt);
            if (lost.length) {
                const read = await this.service.refresh(vp.transactionId).catch(() => 'unknown' as const);
                if (read !== 'recorded') throw new CvcoFailure(cvcoError('payment_in_progress', { payment_id: paymentId }));
                for (const r of lost) await this.refunds.update(r.id, { outcome: 'read' });
            }
            const current = await this.paymentById(ctx, vp.id);
            const m = current.metadata.cvco as CvcoMetadata;
            const left = m.payment.captured_cents - m.payment.refunded_cents;
            const amount = amount_cents ?? left;
            // The same attempt again replays its own input (same key: ANCV answers the refund it
            // made), even when the payment read since already counts it.
            if (!previous && (amount > left || amount <= 0)) throw fail('refund_exceeds_captured', 'amount_cents');
            const input: Record<string, unknown> = previous?.input ?? {
                payment_id: current.transactionId,
                amount_cents: amount,
                idempotency_key: `vendure-refund-${paymentId}-${attempt}`,
            };
            if (!previous && reason) input.reason = reason;
            const row = previous ?? (await this.refunds.save(new CvcoRefundAttempt({ paymentId, attempt, input: input as any, outcome: 'unknown' })));
            this.refundIntents.set(String(current.id), { input });
            let out;
            try {
                out = await this.connection.withTransaction(ctx, t =>
                    this.orderService.refundOrder(t, {
                        paymentId: current.id,
                        amount: input.amount_cents as number,
                        lines: [],
                        shipping: 0,
                        adjustment: 0,
                        reason: typeof input.reason === 'string' ? input.reason : undefined,
                    }),
                );
            } finally {
                this.refundIntents.delete(String(current.id));
            }
            if (isGraphQlErrorResult(out)) {
                await this.refunds.delete(row.id);
                const code = out.errorCode === 'REFUND_AMOUNT_ERROR' ? 'refund_exceeds_captured' : 'illegal_transition';
                throw fail(code, code === 'refund_exceeds_captured' ? 'amount_cents' : undefined, [out.message, out.message]);
            }
            if (out.state !== 'Settled') {
                const error = (out.metadata?.cvco_error as CvcoErrorBody | undefined) ?? cvcoError('internal');
                if (outcomeUnknown(error)) {
                    // It may have happened at ANCV: read the payment again; the same attempt is safe.
                    await this.service.refresh(current.transactionId).catch(() => undefined);
                } else {
                    await this.refunds.delete(row.id);
                }
                throw new CvcoFailure(error);
            }
            await this.refunds.update(row.id, { outcome: 'done' });
            await this.service.refresh(current.transactionId).catch(() => undefined);
            return this.contractOf(ctx, current.id);
        });
    }

    /**
     * A refund attempt left `unknown`: reads its payment from ANCV (recorded on the Vendure
     * payment); once read, `read`. Under the payment's refund lock, so never during its own call.
     */
    private async readAfterLostRefund(row: CvcoRefundAttempt) {
        const ctx = await this.background();
        const vp = await this.paymentOf(ctx, row.paymentId);
        await this.service.withLock(`refund:${vp.id}`, async () => {
            const now = await this.refunds.findOne({ where: { id: row.id } });
            if (now?.outcome !== 'unknown' || !vp.transactionId) return;
            if ((await this.service.refresh(vp.transactionId)) === 'recorded') {
                await this.refunds.update(row.id, { outcome: 'read' });
                Logger.info(`refund ${row.paymentId}/${row.attempt}: answer lost, payment read again`, loggerCtx);
            }
        });
    }

    /** The handler's createRefund: the attempt's key when the refund comes from POST /refund, else undefined. */
    async refundHook(payment: Payment): Promise<CreateRefundResult | undefined> {
        const intent = this.refundIntents.get(String(payment.id));
        if (!intent) return undefined;
        try {
            const after = await this.call<PluginPayment>(Exports.refundPayment, intent.input);
            const refund = after.refunds[after.refunds.length - 1];
            return { state: 'Settled', transactionId: refund?.id ?? '', metadata: { refunded_cents: after.refunded_cents } };
        } catch (e) {
            if (!(e instanceof CvcoFailure)) throw e;
            return { state: 'Failed', metadata: { cvco_error: e.body } };
        }
    }

    /** A CVCo Vendure payment by its contract id (a record's or a request's `pay_…`, or the ANCV transaction id). */
    private async paymentOf(ctx: RequestContext, paymentId: string): Promise<Payment> {
        const record = await this.connection.rawConnection.getRepository(CvcoPaymentRecord).findOne({ where: { paymentId } });
        const request = record ? undefined : await this.requests.findOne({ where: { paymentId } });
        const tx = record?.transactionId ?? request?.transactionId ?? paymentId;
        const vp = await this.vendurePayment(ctx, tx);
        if (!vp?.metadata?.cvco) throw fail('payment_not_found');
        return vp;
    }

    private async paymentById(ctx: RequestContext, id: ID): Promise<Payment> {
        const vp = await this.connection.getRepository(ctx, Payment).findOne({ where: { id }, relations: ['order'] });
        if (!vp) throw fail('payment_not_found');
        return vp;
    }

    private async contractOf(ctx: RequestContext, id: ID): Promise<ContractPayment> {
        const vp = await this.paymentById(ctx, id);
        const order = await this.orderById(ctx, vp.order.id);
        const all = await this.orderService.getOrderPayments(ctx, order.id);
        return await this.renderPayment(all.find(x => x.id === vp.id) ?? vp, order, all);
    }

    // ------------------------------------------------------------------ transactions

    /** GET /transactions: every CVCo payment (Vendure's, then records no Vendure payment carries), newest first. */
    async transactions(ctx: RequestContext, query: Record<string, unknown>) {
        const q = readQuery(query, ['from', 'to', 'status', 'min_amount_cents', 'max_amount_cents', 'order_ref']);
        const from = q.from ? parseDay(q.from, 'from') : undefined;
        const to = q.to ? parseDay(q.to, 'to', true) : undefined;
        const num = (k: string) => {
            if (q[k] === undefined) return undefined;
            const n = /^\d{1,15}$/.test(q[k]!) ? Number(q[k]) : NaN;
            if (!Number.isSafeInteger(n)) throw badQuery(k);
            return n;
        };
        const min = num('min_amount_cents');
        const max = num('max_amount_cents');
        const payments = await this.connection.getRepository(ctx, Payment).find({
            where: { method: this.methodCode },
            relations: ['order'],
            order: { id: 'DESC' },
            take: LIST_TAKE,
        });
        const orders = new Map<string, { order: Order; all: Payment[] }>();
        const orderOf = async (id: ID) => {
            let o = orders.get(String(id));
            if (!o) {
                const order = await this.orderById(ctx, id);
                o = { order, all: await this.orderService.getOrderPayments(ctx, id) };
                orders.set(String(id), o);
            }
            return o;
        };
        const items: Array<ContractPayment & { _at: number }> = [];
        const carried = new Set<string>();
        for (const vp of payments) {
            if (!vp.metadata?.cvco) continue;
            if (q.order_ref && vp.order.code !== q.order_ref) continue;
            const { order, all } = await orderOf(vp.order.id);
            const c = await this.renderPayment(all.find(x => x.id === vp.id) ?? vp, order, all);
            carried.add(c.payment_id);
            items.push({ ...c, _at: +new Date(vp.createdAt) });
        }
        const records = await this.connection.rawConnection
            .getRepository(CvcoPaymentRecord)
            .find({ where: q.order_ref ? { orderCode: q.order_ref } : {}, order: { id: 'DESC' }, take: LIST_TAKE });
        for (const r of records) {
            if (carried.has(r.paymentId) || (r.transactionId && carried.has(r.transactionId))) continue;
            const { order, all } = await orderOf(r.orderId);
            items.push({ ...await this.renderRecord(r, order, all), _at: +new Date(r.createdAt) });
        }
        const out = items
            .filter(p => (!from || p._at >= +from) && (!to || p._at < +to))
            .filter(p => !q.status || p.status === q.status)
            .filter(p => (min === undefined || p.amount_cents >= min) && (max === undefined || p.amount_cents <= max))
            .sort((a, b) => b._at - a._at)
            .map(({ _at, ...p }) => p as ContractPayment);
        // Both reads stop at LIST_TAKE rows: past that the count is a lower bound (PROTOCOL.md).
        const capped = payments.length >= LIST_TAKE || records.length >= LIST_TAKE || out.length > TOTAL_CAP;
        return { items: out.slice(0, TOTAL_CAP), total: Math.min(out.length, TOTAL_CAP), total_capped: capped };
    }

    // ------------------------------------------------------------------ poller

    private async poll() {
        if (this.polling || this.stopped) return;
        this.polling = true;
        try {
            const due = await this.requests.find({
                where: [
                    { outcome: 'unknown', nextPollAt: LessThanOrEqual(new Date()) },
                    { outcome: 'created', final: false },
                    { outcome: 'created', attach: In(['pending']) },
                ],
            });
            for (const r of due) {
                if (this.stopped) break;
                await this.refreshRecord(r).catch(e => Logger.warn(`request ${r.localId}: ${e instanceof Error ? e.message : e}`, loggerCtx));
            }
            // Refunds whose answer never came (lost, or the process died during the call): the
            // payment is read again until a read succeeds, so the record matches what ANCV did.
            const stalled = await this.refunds.find({ where: { outcome: 'unknown', updatedAt: LessThanOrEqual(new Date(Date.now() - 2000)) } });
            for (const row of stalled) {
                if (this.stopped) break;
                await this.readAfterLostRefund(row).catch(e => Logger.warn(`refund ${row.paymentId}/${row.attempt}: ${e instanceof Error ? e.message : e}`, loggerCtx));
            }
        } catch (e) {
            if (!this.stopped) Logger.warn(`polling requests: ${e instanceof Error ? e.message : e}`, loggerCtx);
        } finally {
            this.polling = false;
        }
    }
}

function parseError(message: string | undefined | null): CvcoErrorBody | undefined {
    if (!message) return undefined;
    try {
        const v = JSON.parse(message);
        return v && typeof v.code === 'string' ? v : undefined;
    } catch {
        return undefined;
    }
}

/** The query parameters an endpoint reads, as text; one given twice (an array) is unreadable. Others are ignored. */
function readQuery(query: Record<string, unknown>, keys: string[]): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const k of keys) {
        const v = query[k];
        if (v === undefined || v === '') continue;
        if (typeof v !== 'string') throw badQuery(k);
        out[k] = v;
    }
    return out;
}

/** RFC 3339, or `YYYY-MM-DD` as a Paris day (its start; `to` a day means up to its end). */
function parseDay(value: string, field: string, end = false): Date {
    const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (day) {
        const start = new Date(Date.UTC(+day[1], +day[2] - 1, +day[3]));
        if (start.getUTCMonth() !== +day[2] - 1 || start.getUTCDate() !== +day[3]) throw badQuery(field);
        const utc = Date.UTC(+day[1], +day[2] - 1, +day[3] + (end ? 1 : 0));
        // Paris is UTC+1 or UTC+2: the offset of that instant in Paris.
        const paris = new Date(new Date(utc).toLocaleString('en-US', { timeZone: 'Europe/Paris' }));
        const utcView = new Date(new Date(utc).toLocaleString('en-US', { timeZone: 'UTC' }));
        return new Date(utc - (+paris - +utcView));
    }
    const t = Date.parse(value);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(t)) throw badQuery(field);
    return new Date(t);
}
