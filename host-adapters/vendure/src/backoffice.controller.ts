import { Controller, Get, Param, Post, Query, Req, Res } from '@nestjs/common';
import { Allow, Ctx, Logger, Permission, RequestContext } from '@vendure/core';
import type { Request, Response } from 'express';
import { createHmac, timingSafeEqual } from 'node:crypto';

import { CvcoPluginOptions } from './types';
import { cvcoError, CvcoFailure } from './errors';
import { sendError } from './cvco.controller';
import { CvcoPaymentRequests } from './payment-requests';

type RawRequest = Request & { rawBody?: Buffer };

/** The request's body as text for the plugin's `parse_request` (contractGuard kept its bytes). */
const text = (req: RawRequest) => (req.rawBody ? req.rawBody.toString('utf8') : '');

/**
 * The CSRF token of a Vendure session: an HMAC of its session token under a key derived from the
 * plugin's secrets. Stateless, so it holds as long as the session (which survives a restart).
 */
export function csrfToken(options: CvcoPluginOptions, ctx: RequestContext): string | undefined {
    const token = ctx.session?.token;
    if (!token) return undefined;
    const key = createHmac('sha256', options.notificationSecret).update('cvco-vendure-csrf-v1').digest();
    return createHmac('sha256', key).update(token).digest('base64url');
}

function sameToken(given: string | undefined, expected: string | undefined): boolean {
    if (!given || !expected) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * PROTOCOL.md §2 on Vendure, for administrator sessions (the Admin API's cookie or bearer
 * token): reading needs ReadOrder, acting UpdateOrder plus the session's CSRF token in
 * `X-CSRF-Token` (from `GET /cvco/v1/staff/session`). Errors are the cvco error body, the
 * missing session, permission and token included (401 `unauthorized`, 403 `forbidden`).
 */
@Controller('cvco/v1')
export class CvcoBackOfficeController {
    constructor(
        private requests: CvcoPaymentRequests,
    ) {}

    private get options(): CvcoPluginOptions {
        return this.requests.pluginOptions;
    }

    private async answer(
        ctx: RequestContext,
        req: Request,
        res: Response,
        permission: Permission,
        work: () => Promise<unknown>,
    ) {
        try {
            if (!ctx.activeUserId) throw new CvcoFailure(cvcoError('unauthorized'));
            if (!ctx.userHasPermissions([permission])) throw new CvcoFailure(cvcoError('forbidden'));
            if (req.method !== 'GET' && !sameToken(req.header('x-csrf-token'), csrfToken(this.options, ctx))) {
                throw new CvcoFailure(
                    cvcoError('forbidden', { detail: ['Jeton CSRF absent ou invalide (X-CSRF-Token).', 'Missing or invalid CSRF token (X-CSRF-Token).'] }),
                );
            }
            const body = await work();
            if (body && typeof body === 'object' && 'created' in body && 'request' in body) {
                const { created, request } = body as { created: boolean; request: unknown };
                res.status(created ? 201 : 200).json(request);
            } else {
                res.status(200).json(body);
            }
        } catch (e) {
            const failure =
                e instanceof CvcoFailure
                    ? e
                    : (Logger.error(`cvco back-office: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 'CvcoPlugin'),
                      new CvcoFailure(cvcoError('internal')));
            sendError(res, failure.body, failure.status);
        }
    }

    /** The staff session's CSRF token, for the state-changing calls (as pretix's and cvco-host's). */
    @Get('staff/session')
    @Allow(Permission.Public)
    session(@Ctx() ctx: RequestContext, @Req() req: Request, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.ReadOrder, async () => ({
            csrf_token: csrfToken(this.options, ctx),
            user_id: String(ctx.activeUserId),
        }));
    }

    @Post('payment-requests')
    @Allow(Permission.Public)
    create(@Ctx() ctx: RequestContext, @Req() req: RawRequest, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.UpdateOrder, () => this.requests.create(ctx, text(req)));
    }

    @Get('payment-requests')
    @Allow(Permission.Public)
    list(@Ctx() ctx: RequestContext, @Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.ReadOrder, () => this.requests.list(ctx, q));
    }

    @Get('payment-requests/:id')
    @Allow(Permission.Public)
    get(@Ctx() ctx: RequestContext, @Param('id') id: string, @Req() req: Request, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.ReadOrder, () => this.requests.get(ctx, id));
    }

    @Post('payment-requests/:id/cancel')
    @Allow(Permission.Public)
    cancel(@Ctx() ctx: RequestContext, @Param('id') id: string, @Req() req: Request, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.UpdateOrder, () => this.requests.cancel(ctx, id));
    }

    @Post('payment-requests/:id/finalise')
    @Allow(Permission.Public)
    finalise(@Ctx() ctx: RequestContext, @Param('id') id: string, @Req() req: RawRequest, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.UpdateOrder, () => this.requests.finalise(ctx, id, text(req)));
    }

    @Post('payments/:id/refund')
    @Allow(Permission.Public)
    refund(@Ctx() ctx: RequestContext, @Param('id') id: string, @Req() req: RawRequest, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.UpdateOrder, () => this.requests.refund(ctx, id, text(req)));
    }

    @Get('transactions')
    @Allow(Permission.Public)
    transactions(@Ctx() ctx: RequestContext, @Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
        return this.answer(ctx, req, res, Permission.ReadOrder, () => this.requests.transactions(ctx, q));
    }
}
