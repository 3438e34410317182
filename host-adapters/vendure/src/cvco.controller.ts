import { Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { Allow, Ctx, Logger, Permission, RequestContext } from '@vendure/core';
import type { NextFunction, Request, Response } from 'express';

import { CvcoErrorBody, CvcoFailure, cvcoError, errorBody, isCvcoErrorBody } from './errors';
import { ContractPayment, CvcoService } from './cvco.service';
import { CvcoPaymentRequests } from './payment-requests';

/** Largest request body read; a larger one is a 413 (as cvco-host). */
const BODY_LIMIT = 64 * 1024;
/** Up to this size a too-large body is still drained so the client reads its 413; beyond, the connection closes. */
const DRAIN_LIMIT = 1024 * 1024;

function isJson(contentType: string | undefined): boolean {
    const m = (contentType ?? '').split(';')[0].trim().toLowerCase();
    return m === 'application/json' || (m.startsWith('application/') && m.endsWith('+json'));
}

const invalid = (detail: [string, string]) => cvcoError('invalid_request', { detail });

/** What a 4xx/5xx the framework made itself (unknown route, unreadable request) says as a cvco body. */
function frameworkError(status: number): CvcoErrorBody {
    if (status === 404) return cvcoError('not_found');
    if (status === 405) return invalid(['Méthode non autorisée.', 'Method not allowed.']);
    if (status >= 500) return cvcoError('internal');
    return invalid(['Requête illisible (chemin, en-têtes).', 'Unreadable request (path, headers).']);
}

/**
 * Express middleware for everything under `/cvco/v1` (the same guard as cvco-host's): the body is
 * read whole and kept as `req.rawBody` (the plugin's `parse_request` reads its text, so malformed
 * JSON gets the same error as on every adapter); state-changing calls take JSON only (415); bodies
 * over 64 KiB get 413; and any error the framework answers itself leaves as a cvco error body.
 */
export function contractGuard(req: Request & { rawBody?: Buffer; _body?: boolean }, res: Response, next: NextFunction) {
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
        if (res.statusCode < 400 || isCvcoErrorBody(body)) return json(body);
        sendError(res, frameworkError(res.statusCode), res.statusCode);
        return res;
    };
    // Notifications keep their own reader (the signature covers the exact bytes, whatever the headers).
    if (req._body || req.rawBody) return next();
    const tooLarge = () => invalid(['Corps de requête trop volumineux.', 'Request body too large.']);
    if (Number(req.headers['content-length'] ?? 0) > DRAIN_LIMIT) {
        res.set('Connection', 'close');
        return sendError(res, tooLarge(), 413);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= BODY_LIMIT) chunks.push(chunk);
        else if (size > DRAIN_LIMIT && !done) {
            done = true;
            res.set('Connection', 'close');
            sendError(res, tooLarge(), 413);
            req.destroy();
        }
    });
    req.on('error', e => {
        if (!done) next(e);
        done = true;
    });
    req.on('end', () => {
        if (done) return;
        done = true;
        if (size > BODY_LIMIT) return sendError(res, tooLarge(), 413);
        const changesState = !['GET', 'HEAD', 'OPTIONS'].includes(req.method);
        const contentType = req.headers['content-type'];
        if (changesState && (contentType !== undefined || size > 0) && !isJson(contentType)) {
            return sendError(res, invalid(['Corps JSON attendu (Content-Type: application/json).', 'JSON body expected (Content-Type: application/json).']), 415);
        }
        req.rawBody = Buffer.concat(chunks);
        req._body = true; // the JSON parser skips a body already read
        try {
            req.body = req.rawBody.length ? JSON.parse(req.rawBody.toString('utf8')) : {};
        } catch {
            req.body = undefined; // for controllers reading @Body(); the contract's parse the raw text
        }
        next();
    });
}

/** The cvco error body as compact JSON in the contract's key order: byte-identical on every adapter. */
export function sendError(res: Response, body: CvcoErrorBody, status: number) {
    // A Buffer, so Express adds no charset: `application/json` as the contract and other adapters say.
    res.status(status).set('Content-Type', 'application/json').send(Buffer.from(JSON.stringify(errorBody(body))));
}

function sendFailure(res: Response, e: unknown) {
    if (!(e instanceof CvcoFailure)) {
        Logger.error(`cvco: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 'CvcoPlugin');
        e = new CvcoFailure(cvcoError('internal'));
    }
    const failure = e as CvcoFailure;
    sendError(res, failure.body, failure.status);
}

/** PROTOCOL.md §1 (the widget's endpoints) and §3 (ANCV notifications), under `/cvco/v1`. */
@Controller('cvco/v1')
export class CvcoController {
    constructor(
        private service: CvcoService,
        private requests: CvcoPaymentRequests,
    ) {}

    private async answer(res: Response, work: () => Promise<unknown>, status = 200) {
        try {
            const body = await work();
            res.status(status).json(body);
        } catch (e) {
            sendFailure(res, e);
        }
    }

    @Get('checkout')
    @Allow(Permission.Owner)
    checkout(@Ctx() ctx: RequestContext, @Query('order_ref') orderRef: string, @Res() res: Response) {
        return this.answer(res, () => this.service.checkout(ctx, orderRef));
    }

    @Post('payments')
    @Allow(Permission.Owner)
    async create(@Ctx() ctx: RequestContext, @Req() req: Request & { rawBody?: Buffer }, @Res() res: Response) {
        try {
            // The plugin parses the request's text; Nest's JSON parser has read it already unless
            // the raw-body middleware kept it (then malformed JSON gets the same error as elsewhere).
            const text = req.rawBody ? req.rawBody.toString('utf8') : JSON.stringify(req.body ?? null);
            const { created, payment } = await this.service.createShopperPayment(ctx, text);
            res.status(created ? 201 : 200).json(payment);
        } catch (e) {
            sendFailure(res, e);
        }
    }

    @Get('payments/:id')
    @Allow(Permission.Owner)
    get(@Ctx() ctx: RequestContext, @Param('id') id: string, @Res() res: Response) {
        // Staff (an administrator who may read orders) read any payment of the shop (PROTOCOL.md §2).
        const staff = !!ctx.activeUserId && ctx.userHasPermissions([Permission.ReadOrder]);
        return this.answer(res, () => (staff ? this.requests.staffPayment(ctx, id) : this.service.shopperPayment(ctx, id)));
    }

    @Post('payments/:id/cancel')
    @Allow(Permission.Owner)
    cancel(@Ctx() ctx: RequestContext, @Param('id') id: string, @Res() res: Response) {
        return this.answer(res, () => this.service.cancelShopperPayment(ctx, id));
    }

    /** SSE: the current Payment, then one event per change; closed after a final one. */
    @Get('payments/:id/events')
    @Allow(Permission.Owner)
    async events(@Ctx() ctx: RequestContext, @Param('id') id: string, @Req() req: Request, @Res() res: Response) {
        let current: ContractPayment;
        try {
            current = await this.service.shopperPayment(ctx, id);
        } catch (e) {
            sendFailure(res, e);
            return;
        }
        res.status(200);
        res.setHeader('Content-Type', 'text/event-stream');
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('X-Accel-Buffering', 'no');
        res.flushHeaders();
        let lastSent = Number(req.header('last-event-id') ?? 0) || 0;
        let closed = false;
        const close = () => {
            if (closed) return;
            closed = true;
            clearInterval(ping);
            unsubscribe();
            untrack();
            res.end();
        };
        const send = (payment: ContractPayment) => {
            if (closed || payment.sequence <= lastSent) return;
            lastSent = payment.sequence;
            res.write(`id: ${payment.sequence}\nevent: status\ndata: ${JSON.stringify(payment)}\n\n`);
            if (payment.final) close();
        };
        const unsubscribe = this.service.subscribe(id, send);
        const untrack = this.service.trackStream(close);
        const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
        req.on('close', close);
        // Read again now that we listen: a change between the first read and subscribe is not lost.
        try {
            current = await this.service.shopperPayment(ctx, id);
        } catch {
            close();
            return;
        }
        if (current.sequence <= lastSent) {
            if (current.final) close();
            return;
        }
        send(current);
    }

    /** The notification URL given to ANCV: raw body and headers go to the plugin's `verify_notification`. */
    @Post('notifications')
    @Allow(Permission.Public)
    async notification(@Req() req: Request & { rawBody?: Buffer }, @Res() res: Response) {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) {
            if (typeof value === 'string') headers[name] = value;
            else if (Array.isArray(value)) headers[name] = value.join(', ');
        }
        const raw = req.rawBody ?? Buffer.alloc(0);
        try {
            const outcome = await this.service.handleNotification(headers, raw.toString('utf8'));
            if (outcome.status === 204) res.status(204).end();
            else if (outcome.status >= 400) sendError(res, outcome.body as CvcoErrorBody, outcome.status);
            else res.status(outcome.status).json(outcome.body);
        } catch (e) {
            sendFailure(res, e);
        }
    }
}
