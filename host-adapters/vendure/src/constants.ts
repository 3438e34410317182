export const CVCO_PLUGIN_OPTIONS = Symbol('CVCO_PLUGIN_OPTIONS');
/** Code of the PaymentMethodHandler (the PaymentMethod's own code is `paymentMethodCode`). */
export const CVCO_HANDLER_CODE = 'cvco';
export const CONTRACT_BASE = '/cvco/v1';
