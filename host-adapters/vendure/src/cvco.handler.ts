import { Injector, LanguageCode, PaymentMethodHandler } from '@vendure/core';

import { CVCO_HANDLER_CODE } from './constants';
import { CvcoService } from './cvco.service';
import { CvcoPaymentRequests } from './payment-requests';

let service: CvcoService;
let requests: CvcoPaymentRequests;

/**
 * Chèque-Vacances Connect as a Vendure payment method. The payment starts `Created` (the beneficiary
 * confirms in the ANCV app); the plugin's service settles it (NORMAL capture: ANCV captures on
 * authorization), declines or cancels it once ANCV's answer is known, by notification or polling.
 * `addPaymentToOrder` metadata: `{beneficiary, attempt?}`; the amount is Vendure's own remainder.
 */
export const cvcoPaymentHandler = new PaymentMethodHandler({
    code: CVCO_HANDLER_CODE,
    description: [
        { languageCode: LanguageCode.en, value: 'Chèque-Vacances Connect (ANCV)' },
        { languageCode: LanguageCode.fr, value: 'Chèque-Vacances Connect (ANCV)' },
    ],
    args: {},
    init(injector: Injector) {
        service = injector.get(CvcoService);
        requests = injector.get(CvcoPaymentRequests);
    },
    // A paid payment request (metadata.cvco_request) is attached by the back-office service.
    createPayment: (ctx, order, amount, args, metadata) =>
        metadata?.cvco_request ? requests.paymentForRequest(order, metadata) : service.createAncvPayment(order, amount, metadata),
    // Deferred capture (pre-reservation): Vendure's settlePayment captures at ANCV.
    settlePayment: async (ctx, order, payment) => (await requests.settleHook(payment)) ?? service.settleResult(payment),
    cancelPayment: (ctx, order, payment) => service.cancelAncvPayment(payment),
    // POST /payments/{id}/refund passes its attempt's idempotency key; Vendure's own refunds get a fresh one.
    createRefund: async (ctx, input, amount, order, payment) =>
        (await requests.refundHook(payment)) ?? service.refundAncvPayment(payment, amount, input.reason ?? undefined),
});
