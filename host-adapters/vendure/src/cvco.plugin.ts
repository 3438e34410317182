import type { NextFunction, Request, Response } from 'express';
import { PluginCommonModule, Type, VendurePlugin } from '@vendure/core';

import { adminApiSchema, CvcoAdminResolver } from './admin-api';
import { CvcoBackOfficeController } from './backoffice.controller';
import { CVCO_PLUGIN_OPTIONS } from './constants';
import { contractGuard, CvcoController } from './cvco.controller';
import { cvcoPaymentHandler } from './cvco.handler';
import { CvcoNotificationEvent, CvcoPaymentRecord } from './entities';
import { CvcoService } from './cvco.service';
import { CvcoPaymentRequestRecord, CvcoRefundAttempt } from './payment-request.entity';
import { CvcoPaymentRequests } from './payment-requests';
import { cvcoPaymentProcess } from './payment-process';
import { CvcoPluginOptions } from './types';

const MAX_NOTIFICATION_BYTES = 64 * 1024;

/** Keeps the notification's exact bytes: the signature covers them, not a re-serialised JSON. */
function rawBody(req: Request & { rawBody?: Buffer; _body?: boolean }, res: Response, next: NextFunction) {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_NOTIFICATION_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
        if (size > MAX_NOTIFICATION_BYTES) {
            res.status(413).json({ code: 'notification_malformed', message_fr: 'Notification trop grande.', message_en: 'Notification too large.', retryable: false });
            return;
        }
        req.rawBody = Buffer.concat(chunks);
        req._body = true; // tells the JSON body parser the body is already read
        next();
    });
    req.on('error', next);
}

/**
 * Chèque-Vacances Connect payments for Vendure.
 * ```ts
 * plugins: [CvcoPlugin.init({ wasmPath, apiUrl, shopId, clientId, clientSecret, notificationSecret, publicUrl })]
 * ```
 * then create a PaymentMethod with code `cvco` and the handler `cvco`.
 */
@VendurePlugin({
    imports: [PluginCommonModule],
    controllers: [CvcoController, CvcoBackOfficeController],
    entities: [CvcoPaymentRecord, CvcoNotificationEvent, CvcoPaymentRequestRecord, CvcoRefundAttempt],
    providers: [CvcoService, CvcoPaymentRequests, { provide: CVCO_PLUGIN_OPTIONS, useFactory: () => CvcoPlugin.options }],
    adminApiExtensions: { schema: adminApiSchema, resolvers: [CvcoAdminResolver] },
    configuration: config => {
        config.paymentOptions.paymentMethodHandlers.push(cvcoPaymentHandler);
        config.paymentOptions.process = [...(config.paymentOptions.process ?? []), cvcoPaymentProcess];
        config.apiOptions.middleware.push({ route: '/cvco/v1/notifications', handler: rawBody, beforeListen: true });
        config.apiOptions.middleware.push({ route: '/cvco/v1', handler: contractGuard, beforeListen: true });
        return config;
    },
    compatibility: '^3.0.0',
})
export class CvcoPlugin {
    static options: CvcoPluginOptions;

    static init(options: CvcoPluginOptions): Type<CvcoPlugin> {
        for (const key of ['wasmPath', 'apiUrl', 'shopId', 'clientId', 'clientSecret', 'notificationSecret'] as const) {
            if (!options[key]) throw new Error(`CvcoPlugin.init: ${key} is required`);
        }
        this.options = options;
        return CvcoPlugin;
    }
}
