import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
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

import { CONTRACT_BASE, CVCO_PLUGIN_OPTIONS } from './constants';
import { CvcoErrorBody, cvcoError, CvcoFailure, isCvcoErrorBody } from './errors';
import { CvcoMetadata, CvcoPluginOptions, PluginPayment } from './types';
import { WasmPool } from './wasm';
import { AWAITING_BENEFICIARY } from './payment-process';

const loggerCtx = 'CvcoPlugin';
/** Vendure payment states in which ANCV may still change something we must follow. */
const OPEN_STATES: PaymentState[] = [AWAITING_BENEFICIARY];
const COVERING_STATES: PaymentState[] = ['Authorized', 'Settled'];

/** The contract's Payment object (host-adapters/PROTOCOL.md). */
export interface ContractPayment {
    payment_id: string;
    order_ref: string;
    amount_cents: number;
    currency: string;
    mode: string;
    status: string;
    final: boolean;
    authorized_cents: number;
    remaining_cents: number;
    refunded_cents: number;
    order_total_cents: number;
    order_remaining_cents: number;
    beneficiary_masked: string;
    deadline: string | null;
    next_action: { type: string; qr_payload?: string; expires_at?: string };
    ancv_state: string;
    ancv_label_fr: string;
    ancv_label_en: string;
    transaction_id: string;
    authorizations: Array<{ number: string; amount_cents: number; validated_at: string }>;
    error: unknown;
    sequence: number;
    created_at: string;
    updated_at: string;
    events_url: string;
}

type Listener = (payment: ContractPayment) => void;

@Injectable()
export class CvcoService implements OnApplicationBootstrap, OnApplicationShutdown {
    readonly pool: WasmPool;
    private locks = new Map<string, Promise<unknown>>();
    private listeners = new Map<string, Set<Listener>>();
    /** Open SSE streams, ended at shutdown so the HTTP server can close. */
    private streams = new Set<() => void>();
    private pollTimer?: NodeJS.Timeout;
    private polling = false;
    private stopped = false;

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
    get minAmountCents(): number {
        return this.options.minAmountCents ?? 2000;
    }

    onApplicationBootstrap() {
        if (!this.processContext.isServer) return;
        // Reconcile what was in flight before a restart, then keep polling what stays open.
        const every = this.options.pollIntervalMs ?? 3000;
        this.pollTimer = setInterval(() => void this.pollOpenPayments(), every);
        setTimeout(() => void this.pollOpenPayments(), 0);
    }

    async onApplicationShutdown() {
        this.stopped = true;
        if (this.pollTimer) clearInterval(this.pollTimer);
        for (const set of this.listeners.values()) set.clear();
        for (const end of [...this.streams]) end();
        await this.pool.close();
    }

    /** Serialises work per key (an order code or an ANCV transaction id) inside this process. */
    private async withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
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
        if (order.currencyCode !== 'EUR') return fail(cvcoError('currency_not_supported'));
        const beneficiary = metadata.beneficiary;
        if (typeof beneficiary !== 'string' || !beneficiary) {
            return fail(cvcoError('invalid_beneficiary', 'beneficiary'));
        }
        const attempt =
            typeof metadata.attempt === 'string' && /^.{1,64}$/.test(metadata.attempt)
                ? metadata.attempt
                : randomUUID();
        try {
            const checked = await this.pool.call<{ value: string; masked: string }>('validate_beneficiary', {
                input: beneficiary,
            });
            const input: Record<string, unknown> = {
                order_ref: order.code,
                amount_cents: amount,
                channel: 'ecommerce',
                beneficiary: checked.value,
                idempotency_key: `vendure-${order.code}-${attempt}`,
            };
            if (this.options.adjustable !== undefined) input.adjustable = this.options.adjustable;
            if (this.options.publicUrl) {
                input.notification_url = `${this.options.publicUrl.replace(/\/$/, '')}${CONTRACT_BASE}/notifications`;
            }
            const payment = await this.createWithRetry(input);
            const cvco: CvcoMetadata = {
                attempt,
                mode: 'identifier',
                beneficiary_masked: checked.masked,
                sequence: 1,
                ancv_sequence: 0,
                events: [],
                payment,
                error: null,
            };
            // The Vendure Payment row is written after we return: look again shortly.
            setTimeout(() => void this.refresh(payment.id).catch(() => undefined), 300);
            return {
                amount,
                state: AWAITING_BENEFICIARY,
                transactionId: payment.id,
                metadata: { cvco, public: { cvco_payment_id: payment.id, beneficiary: checked.masked } },
            };
        } catch (e) {
            if (e instanceof CvcoFailure) return fail(e.body);
            throw e;
        }
    }

    /** A retryable failure may hide a payment ANCV created: the same idempotency key finds it again. */
    private async createWithRetry(input: Record<string, unknown>): Promise<PluginPayment> {
        for (let attempt = 1; ; attempt++) {
            try {
                return await this.pool.call<PluginPayment>('create_payment', input);
            } catch (e) {
                if (!(e instanceof CvcoFailure) || !e.body.retryable || attempt >= 3) throw e;
                await new Promise(r => setTimeout(r, 200 * attempt));
            }
        }
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
            const after = await this.pool.call<PluginPayment>('cancel_payment', { payment_id: payment.transactionId });
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
                const after = await this.pool.call<PluginPayment>('refund_payment', input);
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

    private nextMetadata(m: CvcoMetadata, p: PluginPayment): CvcoMetadata {
        const visible = (x: PluginPayment) =>
            JSON.stringify([x.status, x.final, x.authorized_cents, x.refunded_cents, x.ancv_state, x.next_action]);
        const changed = visible(m.payment) !== visible(p);
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
    async refresh(transactionId: string, seen?: { eventId: string; sequence: number }): Promise<'recorded' | 'duplicate' | 'unknown'> {
        if (this.stopped) return 'unknown';
        return this.withLock(transactionId, async () => {
            const ctx = await this.backgroundContext();
            const vp = await this.findPayment(ctx, transactionId);
            if (!vp) return 'unknown';
            let m = vp.metadata?.cvco as CvcoMetadata | undefined;
            if (!m) return 'unknown';
            if (seen) {
                if (m.events.includes(seen.eventId) || seen.sequence <= m.ancv_sequence) return 'duplicate';
            }
            let p = await this.pool.call<PluginPayment>('get_payment', { payment_id: transactionId });
            if (!p.final && p.next_action.type === 'wait_for_app' && p.next_action.deadline) {
                // ANCV expires it itself; past a grace period we cancel so nothing stays open forever.
                const late = Date.now() - Date.parse(p.next_action.deadline) > 30_000;
                if (late) p = await this.pool.call<PluginPayment>('cancel_payment', { payment_id: transactionId });
            }
            m = this.nextMetadata(m, p);
            if (seen) {
                m.events = [...m.events, seen.eventId].slice(-100);
                m.ancv_sequence = Math.max(m.ancv_sequence, seen.sequence);
            }
            await this.connection.getRepository(ctx, Payment).update(vp.id, { metadata: { ...vp.metadata, cvco: m } as any });
            await this.moveVendurePayment(ctx, vp, p);
            await this.broadcast(ctx, transactionId);
            return 'recorded';
        });
    }

    private async moveVendurePayment(ctx: RequestContext, vp: Payment, p: PluginPayment) {
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
            const open = await this.connection.getRepository(ctx, Payment).find({
                where: OPEN_STATES.map(state => ({ method: this.methodCode, state })),
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

    /** §3: verify, deduplicate by event id and sequence, then read the truth with `get_payment`. */
    async handleNotification(headers: Record<string, string>, body: string): Promise<{ status: number; body?: unknown }> {
        let verified: { event_id: string; notification: { transaction_id?: string; sequence: number } };
        try {
            verified = await this.pool.call('verify_notification', { headers, body });
        } catch (e) {
            if (e instanceof CvcoFailure) {
                return { status: e.body.code.startsWith('notification_') ? 400 : e.status, body: e.body };
            }
            throw e;
        }
        const tx = verified.notification.transaction_id;
        if (!tx) return { status: 200, body: { duplicate: false, ignored: true } };
        try {
            const outcome = await this.refresh(tx, { eventId: verified.event_id, sequence: verified.notification.sequence });
            if (outcome === 'duplicate') return { status: 200, body: { duplicate: true } };
            // Not recorded yet (the Vendure payment row is still being written): ANCV retries later.
            if (outcome === 'unknown') return { status: 404, body: cvcoError('payment_not_found') };
            return { status: 204 };
        } catch (e) {
            if (e instanceof CvcoFailure) return { status: e.status, body: e.body };
            throw e;
        }
    }

    // ---------------------------------------------------------------- the shopper endpoints

    /** The shopper's own order: the session's active order, the customer's, or Vendure's order-by-code rule. */
    async shopperOrder(ctx: RequestContext, orderRef: unknown): Promise<Order> {
        if (typeof orderRef !== 'string' || !orderRef) throw new CvcoFailure(cvcoError('invalid_request', 'order_ref'));
        const order = await this.orderService.findOneByCode(ctx, orderRef, ['customer', 'customer.user']);
        if (!order || !(await this.canAccess(ctx, order))) throw new CvcoFailure(cvcoError('order_not_found'));
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

    private remaining(order: Order, payments: Payment[]): number {
        const covered = payments.filter(p => COVERING_STATES.includes(p.state)).reduce((sum, p) => sum + p.amount, 0);
        return Math.max(0, order.totalWithTax - covered);
    }

    private ineligibility(order: Order, remaining: number): CvcoErrorBody | null {
        if (order.currencyCode !== 'EUR') return cvcoError('currency_not_supported');
        if (order.state !== 'ArrangingPayment' || remaining === 0) return cvcoError('illegal_transition');
        if (remaining < this.minAmountCents) return cvcoError('amount_below_minimum', 'amount_cents');
        return null;
    }

    async checkout(ctx: RequestContext, orderRef: unknown) {
        const order = await this.shopperOrder(ctx, orderRef);
        const { all, cvco } = await this.cvcoPayments(ctx, order);
        const remaining = this.remaining(order, all);
        const reason = this.ineligibility(order, remaining);
        const open = cvco.filter(p => !(p.metadata.cvco as CvcoMetadata).payment.final).pop();
        return {
            order_ref: order.code,
            order_total_cents: order.totalWithTax,
            order_remaining_cents: remaining,
            currency: order.currencyCode,
            eligible: reason === null,
            ineligible_reason: reason,
            min_amount_cents: this.minAmountCents,
            adjustable: this.options.adjustable ?? true,
            authorization_timeout_s: this.options.authorizationTimeoutS ?? 180,
            modes: ['identifier'],
            current_payment: open ? this.toContract(open, order, all) : null,
        };
    }

    /** POST /payments: idempotent per order and attempt; the amount is the order's remainder. */
    async createShopperPayment(ctx: RequestContext, body: any): Promise<{ created: boolean; payment: ContractPayment }> {
        if (!body || typeof body !== 'object') throw new CvcoFailure(cvcoError('invalid_request'));
        const { order_ref, mode, beneficiary, attempt } = body;
        if (typeof attempt !== 'string' || attempt.length < 1 || attempt.length > 64) {
            throw new CvcoFailure(cvcoError('invalid_request', 'attempt'));
        }
        if (mode !== 'identifier') throw new CvcoFailure(cvcoError('invalid_request', 'mode'));
        if (typeof beneficiary !== 'string') throw new CvcoFailure(cvcoError('invalid_beneficiary', 'beneficiary'));
        await this.pool.call('validate_beneficiary', { input: beneficiary }).catch((e: unknown) => {
            if (e instanceof CvcoFailure && e.body.code === 'invalid_beneficiary') {
                throw new CvcoFailure({ ...e.body, field: 'beneficiary' });
            }
            throw e;
        });
        const order = await this.shopperOrder(ctx, order_ref);
        return this.withLock(`order:${order.code}`, async () => {
            const before = await this.cvcoPayments(ctx, order);
            const same = before.cvco.find(p => (p.metadata.cvco as CvcoMetadata).attempt === attempt);
            if (same) return { created: false, payment: this.toContract(same, order, before.all) };
            if (before.cvco.some(p => OPEN_STATES.includes(p.state))) {
                throw new CvcoFailure(cvcoError('payment_in_progress'));
            }
            const reason = this.ineligibility(order, this.remaining(order, before.all));
            if (reason) throw new CvcoFailure(reason);
            const result = await this.connection.withTransaction(ctx, tx =>
                this.orderService.addPaymentToOrder(tx, order.id, {
                    method: this.methodCode,
                    metadata: { beneficiary, attempt, mode },
                }),
            );
            if (isGraphQlErrorResult(result)) {
                const message = (result as { paymentErrorMessage?: string }).paymentErrorMessage;
                let parsed: unknown;
                try {
                    parsed = message ? JSON.parse(message) : undefined;
                } catch {
                    parsed = undefined;
                }
                if (isCvcoErrorBody(parsed)) throw new CvcoFailure(parsed);
                throw new CvcoFailure({ ...cvcoError('illegal_transition'), message_en: result.message });
            }
            const after = await this.cvcoPayments(ctx, order);
            const created = after.cvco.find(p => (p.metadata.cvco as CvcoMetadata).attempt === attempt);
            if (!created) throw new CvcoFailure(cvcoError('internal'));
            const fresh = (await this.orderService.findOne(ctx, order.id)) ?? order;
            return { created: true, payment: this.toContract(created, fresh, after.all) };
        });
    }

    /** A payment of the shopper's session, by its ANCV transaction id. */
    async shopperPayment(ctx: RequestContext, paymentId: string): Promise<ContractPayment> {
        const vp = await this.findPayment(ctx, paymentId);
        if (!vp || !vp.metadata?.cvco) throw new CvcoFailure(cvcoError('payment_not_found'));
        const order = await this.orderService.findOne(ctx, vp.order.id, ['customer', 'customer.user']);
        if (!order || !(await this.canAccess(ctx, order))) throw new CvcoFailure(cvcoError('payment_not_found'));
        const { all } = await this.cvcoPayments(ctx, order);
        const current = all.find(p => idsAreEqual(p.id, vp.id)) ?? vp;
        return this.toContract(current, order, all);
    }

    async cancelShopperPayment(ctx: RequestContext, paymentId: string): Promise<ContractPayment> {
        const current = await this.shopperPayment(ctx, paymentId);
        if (current.final) throw new CvcoFailure(cvcoError('illegal_transition'));
        await this.pool.call<PluginPayment>('cancel_payment', { payment_id: paymentId });
        await this.refresh(paymentId);
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
        const set = this.listeners.get(transactionId);
        if (!set || set.size === 0) return;
        const vp = await this.findPayment(ctx, transactionId);
        if (!vp) return;
        const order = await this.orderService.findOne(ctx, vp.order.id);
        if (!order) return;
        const { all } = await this.cvcoPayments(ctx, order);
        const current = all.find(p => idsAreEqual(p.id, vp.id)) ?? vp;
        const payment = this.toContract(current, order, all);
        for (const listener of [...set]) listener(payment);
    }

    toContract(vp: Payment, order: Order, payments: Payment[]): ContractPayment {
        const m = vp.metadata.cvco as CvcoMetadata;
        const p = m.payment;
        const na = p.next_action;
        const next_action = p.final
            ? { type: 'none' }
            : na.type === 'show_qr'
              ? { type: 'show_qr', qr_payload: na.payload, expires_at: na.expires_at }
              : { type: 'wait_for_app' };
        return {
            payment_id: p.id,
            order_ref: order.code,
            amount_cents: p.amount_cents,
            currency: p.currency,
            mode: m.mode,
            status: p.status,
            final: p.final,
            authorized_cents: p.authorized_cents,
            remaining_cents: p.remaining_cents,
            refunded_cents: p.refunded_cents,
            order_total_cents: order.totalWithTax,
            order_remaining_cents: this.remaining(order, payments),
            beneficiary_masked: m.beneficiary_masked,
            deadline: na.deadline ?? p.expires_at ?? null,
            next_action,
            ancv_state: p.ancv_state,
            ancv_label_fr: p.ancv_label_fr,
            ancv_label_en: p.ancv_label_en,
            transaction_id: p.id,
            authorizations: p.payers.flatMap(payer =>
                payer.authorizations.map(a => ({ number: a.number, amount_cents: a.amount_cents, validated_at: a.validated_at })),
            ),
            error: p.status === 'failed' ? (m.error ?? cvcoError('internal')) : null,
            sequence: m.sequence,
            created_at: new Date(vp.createdAt).toISOString(),
            updated_at: p.updated_at,
            events_url: `${CONTRACT_BASE}/payments/${encodeURIComponent(p.id)}/events`,
        };
    }
}
