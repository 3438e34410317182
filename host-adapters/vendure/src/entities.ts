import { DeepPartial, ID, VendureEntity } from '@vendure/core';
import { Column, Entity, Index } from 'typeorm';

import { CvcoErrorBody } from './errors';
import { PluginPayment } from './types';

/**
 * The adapter's own record of a CVCo payment, written BEFORE the plugin's `create_payment` call with
 * the exact input (idempotency key included), so an answer that is lost, late or never comes (the
 * process died) leaves a record to reconcile instead of money taken without one.
 * Its `paymentId` is the contract's `payment_id` (stable from the first answer on); the Vendure
 * Payment (its `transactionId` is ANCV's) follows once the transaction is known.
 */
@Entity('cvco_payment_record')
@Index(['orderCode', 'attempt'], { unique: true })
export class CvcoPaymentRecord extends VendureEntity {
    constructor(input?: DeepPartial<CvcoPaymentRecord>) {
        super(input);
    }

    @Index({ unique: true })
    @Column()
    paymentId!: string;

    @Column('varchar')
    orderId!: ID;

    @Index()
    @Column()
    orderCode!: string;

    @Column()
    attempt!: string;

    @Column()
    mode!: string;

    @Column()
    beneficiaryMasked!: string;

    @Column('int')
    amountCents!: number;

    /** The exact `create_payment` input: reconciliation sends it again as is. */
    @Column('simple-json')
    createInput!: Record<string, unknown>;

    /** `unknown` (outcome not known yet), `created` (ANCV answered a transaction), `failed` (refused). */
    @Index()
    @Column()
    outcome!: 'unknown' | 'created' | 'failed';

    @Index()
    @Column('varchar', { nullable: true })
    transactionId!: string | null;

    /** The payment as ANCV last answered it (created only). */
    @Column('simple-json', { nullable: true })
    payment!: PluginPayment | null;

    @Column('simple-json', { nullable: true })
    error!: CvcoErrorBody | null;

    /**
     * Who gives the transaction its Vendure payment: `none` Vendure itself (the handler answered it
     * inside addPaymentToOrder), `pending` this adapter (widget path, reconciliation), `done` attached.
     */
    @Column('varchar', { default: 'none' })
    attach!: 'none' | 'pending' | 'done';

    /** Reconciliation back-off: calls made and the earliest time of the next one (ms). */
    @Column('int', { default: 0 })
    reconcileTries!: number;

    @Column({ type: Date, nullable: true })
    nextReconcileAt!: Date | null;

    /** Sequence of the contract Payment while this record alone describes it (SSE event id). */
    @Column('int', { default: 1 })
    sequence!: number;
}

/**
 * Notifications already processed: ANCV resends the same event id, and one whose sequence is not
 * above the highest recorded for its object (`transaction:<id>`, the plugin's `object_key`) is
 * older news. Either is acknowledged as a duplicate.
 */
@Entity('cvco_notification')
export class CvcoNotificationEvent extends VendureEntity {
    constructor(input?: DeepPartial<CvcoNotificationEvent>) {
        super(input);
    }

    @Index({ unique: true })
    @Column()
    eventId!: string;

    /** Null on rows written before object keys. */
    @Index()
    @Column('varchar', { nullable: true })
    objectKey!: string | null;

    @Column('int', { nullable: true })
    sequence!: number | null;
}
