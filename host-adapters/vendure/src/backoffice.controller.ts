import { Body, Controller, Get, Param, Post, Query, Res } from '@nestjs/common';
import { Allow, Ctx, Logger, Permission, RequestContext } from '@vendure/core';
import type { Response } from 'express';

import { cvcoError, CvcoFailure } from './errors';
import { boError, CvcoPaymentRequests } from './payment-requests';

/**
 * PROTOCOL.md §2 on Vendure, for administrator sessions (the Admin API's cookie or bearer
 * token): reading needs ReadOrder, acting UpdateOrder. Errors are the cvco error body, the
 * missing session and permission included (401 `unauthorized`, 403 `forbidden`).
 */
@Controller('cvco/v1')
export class CvcoBackOfficeController {
    constructor(private requests: CvcoPaymentRequests) {}

    private async answer(ctx: RequestContext, res: Response, permission: Permission, work: () => Promise<unknown>, status = 200) {
        try {
            if (!ctx.activeUserId) throw new CvcoFailure(boError('unauthorized'));
            if (!ctx.userHasPermissions([permission])) throw new CvcoFailure(boError('forbidden'));
            const body = await work();
            if (body && typeof body === 'object' && 'created' in body && 'request' in body) {
                const { created, request } = body as { created: boolean; request: unknown };
                res.status(created ? 201 : 200).json(request);
            } else {
                res.status(status).json(body);
            }
        } catch (e) {
            const failure =
                e instanceof CvcoFailure
                    ? e
                    : (Logger.error(`cvco back-office: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 'CvcoPlugin'),
                      new CvcoFailure(cvcoError('internal')));
            res.status(failure.status).json(failure.body);
        }
    }

    @Post('payment-requests')
    @Allow(Permission.Public)
    create(@Ctx() ctx: RequestContext, @Body() body: unknown, @Res() res: Response) {
        return this.answer(ctx, res, Permission.UpdateOrder, () => this.requests.create(ctx, body));
    }

    @Get('payment-requests')
    @Allow(Permission.Public)
    list(@Ctx() ctx: RequestContext, @Query() q: Record<string, string>, @Res() res: Response) {
        return this.answer(ctx, res, Permission.ReadOrder, () =>
            this.requests.list(ctx, { status: q.status, from: q.from, to: q.to, order_ref: q.order_ref }),
        );
    }

    @Get('payment-requests/:id')
    @Allow(Permission.Public)
    get(@Ctx() ctx: RequestContext, @Param('id') id: string, @Res() res: Response) {
        return this.answer(ctx, res, Permission.ReadOrder, () => this.requests.get(ctx, id));
    }

    @Post('payment-requests/:id/cancel')
    @Allow(Permission.Public)
    cancel(@Ctx() ctx: RequestContext, @Param('id') id: string, @Res() res: Response) {
        return this.answer(ctx, res, Permission.UpdateOrder, () => this.requests.cancel(ctx, id));
    }

    @Post('payment-requests/:id/finalise')
    @Allow(Permission.Public)
    finalise(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() body: unknown, @Res() res: Response) {
        return this.answer(ctx, res, Permission.UpdateOrder, () => this.requests.finalise(ctx, id, body ?? {}));
    }

    @Post('payments/:id/refund')
    @Allow(Permission.Public)
    refund(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() body: unknown, @Res() res: Response) {
        return this.answer(ctx, res, Permission.UpdateOrder, () => this.requests.refund(ctx, id, body));
    }

    @Get('transactions')
    @Allow(Permission.Public)
    transactions(@Ctx() ctx: RequestContext, @Query() q: Record<string, string>, @Res() res: Response) {
        return this.answer(ctx, res, Permission.ReadOrder, () => this.requests.transactions(ctx, q));
    }
}
