import { Injector, LanguageCode, PaymentMethodHandler } from '@vendure/core';

import { CVCO_HANDLER_CODE } from './constants';
import { CvcoService } from './cvco.service';

let service: CvcoService;

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
    },
    createPayment: (ctx, order, amount, args, metadata) => service.createAncvPayment(order, amount, metadata),
    settlePayment: (ctx, order, payment) => service.settleResult(payment),
    cancelPayment: (ctx, order, payment) => service.cancelAncvPayment(payment),
    createRefund: (ctx, input, amount, order, payment) =>
        service.refundAncvPayment(payment, amount, input.reason ?? undefined),
});
