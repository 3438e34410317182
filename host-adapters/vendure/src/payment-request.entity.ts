import { DeepPartial, ID, VendureEntity } from '@vendure/core';
import { Column, Entity, Index } from 'typeorm';

import { CvcoErrorBody } from './errors';
import { PluginPayment } from './types';

/** `cvco_core::plugin_api::PaymentRequest`: an ANCV pre-transaction as the wasm plugin reports it. */
export interface PluginPaymentRequest {
    id: string;
    order_ref: string;
    amount_cents: number;
    channel: string;
    delivery: 'email' | 'qr';
    email?: string;
    status: string;
    final: boolean;
    authorized_cents: number;
    remaining_cents: number;
    refunded_cents: number;
    ancv_state: string;
    created_at: string;
    expires_at: string;
    qr_payload: string;
    payment_url: string;
    svg?: string;
    payment?: PluginPayment;
}

/**
 * A CVCo payment request (MOTO with delay, pre-reservation) sent by staff for a Vendure order.
 * Written BEFORE `create_payment_request` with the exact input (idempotency key included): a lost
 * answer or a process killed mid-call leaves a record to reconcile, never an e-mail sent twice.
 * Once the beneficiary pays, the order gets a Vendure Payment (`attach`), Settled (immediate
 * capture) or Authorized (deferred: Vendure's settlePayment captures it).
 */
@Entity('cvco_payment_request')
@Index(['orderCode', 'attempt'], { unique: true })
export class CvcoPaymentRequestRecord extends VendureEntity {
    constructor(input?: DeepPartial<CvcoPaymentRequestRecord>) {
        super(input);
    }

    /** This adapter's id of the request, before ANCV names it. */
    @Index({ unique: true })
    @Column()
    localId!: string;

    /** ANCV's pre-transaction id: the contract's `request_id`; null while the creation's outcome is unknown. */
    @Index()
    @Column('varchar', { nullable: true })
    requestId!: string | null;

    /**
     * The contract's `payment_id` of what this request pays (`pay_…`): named by
     * `payment_in_progress` and by an unknown creation's error, read at GET /payments/{id}, and
     * kept by the Vendure payment once paid. Null on rows written before it: `localId` stands in.
     */
    @Index()
    @Column('varchar', { nullable: true })
    paymentId!: string | null;

    @Column('varchar')
    orderId!: ID;

    @Index()
    @Column()
    orderCode!: string;

    @Column()
    attempt!: string;

    @Column('int')
    amountCents!: number;

    @Column()
    delivery!: 'email' | 'qr';

    @Column('varchar', { nullable: true })
    emailMasked!: string | null;

    @Column()
    capture!: 'immediate' | 'deferred';

    /** The exact `create_payment_request` input: reconciliation sends it again as is. */
    @Column('simple-json')
    createInput!: Record<string, unknown>;

    @Index()
    @Column()
    outcome!: 'unknown' | 'created' | 'failed';

    /** The request as ANCV last answered it. */
    @Column('simple-json', { nullable: true })
    request!: PluginPaymentRequest | null;

    @Column('simple-json', { nullable: true })
    error!: CvcoErrorBody | null;

    @Index()
    @Column('varchar', { nullable: true })
    transactionId!: string | null;

    /** `none` nothing to attach yet, `pending` paid and to attach, `done` the order has its payment, `failed` the order could not take it. */
    @Column('varchar', { default: 'none' })
    attach!: 'none' | 'pending' | 'done' | 'failed';

    /** A deferred (pre-reservation) payment captured. */
    @Column('boolean', { default: false })
    finalised!: boolean;

    @Index()
    @Column('boolean', { default: false })
    final!: boolean;

    @Column('int', { default: 0 })
    tries!: number;

    @Column({ type: Date, nullable: true })
    nextPollAt!: Date | null;
}

/** A refund asked through POST /payments/{id}/refund: its attempt, so a retry never refunds twice. */
@Entity('cvco_refund_attempt')
@Index(['paymentId', 'attempt'], { unique: true })
export class CvcoRefundAttempt extends VendureEntity {
    constructor(input?: DeepPartial<CvcoRefundAttempt>) {
        super(input);
    }

    /** The contract payment id. */
    @Column()
    paymentId!: string;

    @Column()
    attempt!: string;

    /** The exact `refund_payment` input (its idempotency key comes from the attempt). */
    @Column('simple-json')
    input!: Record<string, unknown>;

    /**
     * `unknown` sent, answer not recorded yet; `read` its answer was lost but the payment was read
     * again from ANCV since (what it did is recorded; the same attempt again stays safe: same key);
     * `done` refunded; `failed` refused (nothing happened).
     */
    @Column()
    outcome!: 'unknown' | 'read' | 'done' | 'failed';
}
