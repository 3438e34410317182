import { PaymentProcess } from '@vendure/core';

/** The beneficiary has been asked in the ANCV app; ANCV's answer comes by notification or polling. */
export const AWAITING_BENEFICIARY = 'CvcoAwaitingBeneficiary';

declare module '@vendure/core/dist/service/helpers/payment-state-machine/payment-state' {
    interface CustomPaymentStates {
        CvcoAwaitingBeneficiary: never;
    }
}

/**
 * Vendure's payment states have no "waiting for the payer" (Created cannot be the outcome of
 * createPayment): this process adds one, left for Settled (full or partial authorization),
 * Declined (declined, expired, failed) or Cancelled.
 */
export const cvcoPaymentProcess: PaymentProcess<typeof AWAITING_BENEFICIARY> = {
    transitions: {
        Created: { to: [AWAITING_BENEFICIARY], mergeStrategy: 'merge' },
        [AWAITING_BENEFICIARY]: { to: ['Settled', 'Declined', 'Cancelled', 'Error'] },
    },
};
