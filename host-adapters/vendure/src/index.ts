export { CvcoPlugin } from './cvco.plugin';
export { cvcoPaymentHandler } from './cvco.handler';
export { CvcoService, ContractPayment } from './cvco.service';
export { CvcoPluginOptions } from './types';
export { CvcoPaymentRecord, CvcoNotificationEvent } from './entities';
