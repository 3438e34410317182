import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import gql from 'graphql-tag';

import { CvcoPaymentRequests } from '../src/payment-requests';
import { ORDER_QUERY, orderInArrangingPayment, Sandbox, startVendure, until } from './harness';

/**
 * The back-office on Vendure (issue 11 §4): payment requests from the Admin API and PROTOCOL.md §2
 * over HTTP, paid by the sandbox's beneficiary in her app; deferred capture through Vendure's
 * settlePayment; refunds through Vendure's refundOrder (the handler's createRefund).
 */
const sandbox = new Sandbox();
let env: Awaited<ReturnType<typeof startVendure>>;

const JEANNE = 'jeanne.manual@sandbox.cvco.test';
let attempts = 0;
const attempt = () => `bo-${Date.now()}-${++attempts}`;

/** The admin session's CSRF token, read once (GET /cvco/v1/staff/session). */
let csrf: string | undefined;

/** An HTTP call to /cvco/v1 with a client's session (admin: with its CSRF token unless `csrf` is false; or shop), or none. */
async function http(who: 'admin' | 'shop' | 'none', method: string, route: string, body?: unknown, withCsrf = true) {
    const url = `${env.baseUrl}/cvco/v1${route}`;
    const init = { method, body: body === undefined ? undefined : JSON.stringify(body), headers: {} as Record<string, string> };
    if (who === 'admin' && withCsrf) {
        csrf ??= (await (await env.adminClient.fetch(`${env.baseUrl}/cvco/v1/staff/session`)).json()).csrf_token as string;
        init.headers['x-csrf-token'] = csrf;
    }
    const res =
        who === 'none'
            ? await fetch(url, { ...init, headers: { 'content-type': 'application/json' } })
            : await (who === 'admin' ? env.adminClient : env.shopClient).fetch(url, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
}
const staff = (method: string, route: string, body?: unknown) => http('admin', method, route, body);

async function app(route: string, body: unknown) {
    const res = await fetch(`${sandbox.url}/app/api/${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
}

/** Jeanne pays the request in her app and confirms with her code. */
async function jeannePays(requestId: string, amount?: number): Promise<string> {
    const paid = await app('pay', { beneficiary: JEANNE, pre_transaction_id: requestId });
    assert.equal(paid.status, 201, JSON.stringify(paid.body));
    const confirm = await app(`transactions/${paid.body.id}/confirm`, { beneficiary: JEANNE, pin: '1234', ...(amount ? { amount_cents: amount } : {}) });
    assert.equal(confirm.status, 200, JSON.stringify(confirm.body));
    return paid.body.id;
}

async function ancvTransaction(id: string): Promise<any> {
    const token = await sandbox.json('POST', '/oauth/token', { grant_type: 'client_credentials', client_id: 'demo-client', client_secret: 'demo-secret' });
    const res = await fetch(`${sandbox.url}/api/v1/transactions/${id}`, { headers: { authorization: `Bearer ${token.access_token}` } });
    assert.equal(res.status, 200);
    return res.json();
}

async function adminOrder(id: string) {
    return (await env.adminClient.query(ORDER_QUERY, { id })).order;
}

const REQUEST_FIELDS = 'requestId paymentId orderCode amount delivery emailMasked capture status final finalised expiresAt transactionId payment';
const CREATE = gql`mutation ($input: CreateCvcoPaymentRequestInput!) { createCvcoPaymentRequest(input: $input) { ${REQUEST_FIELDS} } }`;
const GET = gql`query ($id: String!) { cvcoPaymentRequest(requestId: $id) { ${REQUEST_FIELDS} } }`;
const LIST = gql`query ($id: ID!) { cvcoPaymentRequests(orderId: $id) { ${REQUEST_FIELDS} } }`;
const CANCEL = gql`mutation ($id: String!) { cancelCvcoPaymentRequest(requestId: $id) { ${REQUEST_FIELDS} } }`;
const REFUND = gql`mutation ($input: RefundOrderInput!) { refundOrder(input: $input) {
    ... on Refund { id state total transactionId } ... on ErrorResult { errorCode message } } }`;

async function requestWithStatus(requestId: string, status: string) {
    return until(`request ${requestId} ${status}`, async () => {
        const { cvcoPaymentRequest } = await env.adminClient.query(GET, { id: requestId });
        return cvcoPaymentRequest?.status === status ? cvcoPaymentRequest : undefined;
    });
}

describe('CVCo back-office on Vendure, against the sandbox', { concurrency: 1 }, () => {
    before(async () => {
        await sandbox.start();
        env = await startVendure(sandbox.url, { requestTimeoutMs: 3000 });
    });
    after(async () => {
        await env?.server.destroy();
        await sandbox.stop();
    });

    it('Admin API: an e-mailed payment request paid by the beneficiary settles the order; refunds partial then full go through refundOrder', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 80);
        const a = attempt();
        const { createCvcoPaymentRequest: made } = await env.adminClient.query(CREATE, { input: { orderId: order.id, email: JEANNE, attempt: a } });
        assert.match(made.requestId, /./);
        assert.match(made.paymentId, /^pay_/);
        assert.ok(['awaiting_beneficiary', 'pending'].includes(made.status), made.status);
        assert.equal(made.final, false);
        assert.equal(made.amount, 8000, 'defaults to what the order still needs');
        assert.equal(made.capture, 'immediate');
        assert.notEqual(made.emailMasked, JEANNE);
        assert.match(made.emailMasked, /\*/);
        // The same attempt: the same request, never a second e-mail.
        const { createCvcoPaymentRequest: again } = await env.adminClient.query(CREATE, { input: { orderId: order.id, email: JEANNE, attempt: a } });
        assert.equal(again.requestId, made.requestId);
        const outbox: any[] = await sandbox.json('GET', '/outbox.json');
        assert.equal(outbox.filter(m => m.pre_transaction_id === made.requestId).length, 1);
        const listed = (await env.adminClient.query(LIST, { id: order.id })).cvcoPaymentRequests;
        assert.deepEqual(listed.map((r: any) => r.requestId), [made.requestId]);

        const tx = await jeannePays(made.requestId);
        const paid = await requestWithStatus(made.requestId, 'authorized');
        assert.equal(paid.final, true);
        assert.equal(paid.transactionId, tx);
        assert.equal(paid.payment.authorized_cents, 8000);
        const settled = await until('order settled', async () => {
            const o = await adminOrder(order.id);
            return o.state === 'PaymentSettled' ? o : undefined;
        });
        assert.equal(settled.payments.length, 1);
        assert.deepEqual([settled.payments[0].state, settled.payments[0].amount, settled.payments[0].transactionId], ['Settled', 8000, tx]);
        const http = await staff('GET', `/payment-requests/${made.requestId}`);
        assert.equal(http.status, 200);
        assert.equal(http.body.status, 'authorized');
        assert.equal(http.body.payment.transaction_id, tx);

        // Refunds through Vendure's own flow: the handler's createRefund refunds at ANCV.
        const part = (await env.adminClient.query(REFUND, {
            input: { paymentId: settled.payments[0].id, amount: 3000, shipping: 0, adjustment: 0, lines: [], reason: 'une nuit annulée' },
        })).refundOrder;
        assert.equal(part.state, 'Settled', JSON.stringify(part));
        assert.equal(part.total, 3000);
        assert.equal((await ancvTransaction(tx)).refunded_cents, 3000);
        const over = (await env.adminClient.query(REFUND, {
            input: { paymentId: settled.payments[0].id, amount: 5001, shipping: 0, adjustment: 0, lines: [] },
        })).refundOrder;
        assert.equal(over.errorCode, 'REFUND_AMOUNT_ERROR', JSON.stringify(over));
        const rest = (await env.adminClient.query(REFUND, {
            input: { paymentId: settled.payments[0].id, amount: 5000, shipping: 0, adjustment: 0, lines: [] },
        })).refundOrder;
        assert.equal(rest.state, 'Settled', JSON.stringify(rest));
        assert.notEqual(rest.transactionId, part.transactionId);
        const atAncv = await ancvTransaction(tx);
        assert.equal(atAncv.refunded_cents, 8000);
        const refunded = await until('request refunded', async () => {
            const r = await staff('GET', `/payment-requests/${made.requestId}`);
            return r.body.payment?.refunded_cents === 8000 ? r.body : undefined;
        });
        assert.equal(refunded.status, 'refunded');
    });

    it('cancel: an unpaid request is cancelled at ANCV, a second cancel answers it unchanged, the beneficiary can no longer pay it', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 40);
        const { createCvcoPaymentRequest: made } = await env.adminClient.query(CREATE, {
            input: { orderId: order.id, email: JEANNE, amount: 2500, attempt: attempt() },
        });
        assert.equal(made.amount, 2500);
        const { cancelCvcoPaymentRequest: cancelled } = await env.adminClient.query(CANCEL, { id: made.requestId });
        assert.equal(cancelled.status, 'cancelled');
        assert.equal(cancelled.final, true);
        const again = await staff('POST', `/payment-requests/${made.requestId}/cancel`, {});
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.equal(again.body.status, 'cancelled');
        const late = await app('pay', { beneficiary: JEANNE, pre_transaction_id: made.requestId });
        assert.equal(late.status, 409, JSON.stringify(late.body));
        const o = await adminOrder(order.id);
        assert.equal(o.state, 'ArrangingPayment');
        assert.equal(o.payments.length, 0);
        // Unknown request: the GraphQL query answers null, HTTP the cvco error body.
        assert.equal((await env.adminClient.query(GET, { id: 'pt_nope' })).cvcoPaymentRequest, null);
        const missing = await staff('GET', '/payment-requests/pt_nope');
        assert.equal(missing.status, 404);
        assert.equal(missing.body.code, 'pre_transaction_not_found');
    });

    it("deferred: the paid pre-reservation leaves the order PaymentAuthorized; Vendure's settlePayment captures it at ANCV", async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 60);
        const created = await staff('POST', '/payment-requests', {
            order_ref: order.code, amount_cents: 6000, delivery: 'email', email: JEANNE, capture: 'deferred', attempt: attempt(),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.equal(created.body.capture, 'deferred');
        const id = created.body.request_id as string;
        // Before anyone pays: the request's payment, rendered by the plugin from the request.
        const waiting = await staff('GET', `/payments/${created.body.payment_id}`);
        assert.equal(waiting.status, 200, JSON.stringify(waiting.body));
        assert.deepEqual(
            [waiting.body.status, waiting.body.final, waiting.body.request_id, waiting.body.next_action.type, waiting.body.next_action.deadline],
            ['awaiting_beneficiary', false, id, 'wait_for_app', created.body.expires_at],
        );
        const early = await staff('POST', `/payment-requests/${id}/finalise`, {});
        assert.equal(early.status, 409);
        assert.equal(early.body.code, 'illegal_transition');

        const tx = await jeannePays(id);
        await requestWithStatus(id, 'authorized');
        const authorized = await until('order authorized', async () => {
            const o = await adminOrder(order.id);
            return o.state === 'PaymentAuthorized' ? o : undefined;
        });
        assert.deepEqual([authorized.payments[0].state, authorized.payments[0].amount], ['Authorized', 6000]);
        const held = await ancvTransaction(tx);
        assert.deepEqual([held.state, held.captured_cents], ['AUTHORIZED', 0]);

        const { settlePayment } = await env.adminClient.query(
            gql`mutation ($id: ID!) { settlePayment(id: $id) { ... on Payment { id state } ... on ErrorResult { errorCode message } } }`,
            { id: authorized.payments[0].id },
        );
        assert.equal(settlePayment.state, 'Settled', JSON.stringify(settlePayment));
        const captured = await ancvTransaction(tx);
        assert.equal(captured.captured_cents, 6000);
        assert.notEqual(captured.state, 'AUTHORIZED');
        const o = await adminOrder(order.id);
        assert.equal(o.state, 'PaymentSettled');
        const after = await until('request finalised', async () => {
            const r = await staff('GET', `/payment-requests/${id}`);
            return r.body.finalised && r.body.payment ? r.body : undefined;
        });
        assert.equal(after.status, 'authorized');
        const twice = await staff('POST', `/payment-requests/${id}/finalise`, {});
        assert.equal(twice.status, 409);
    });

    it('HTTP finalise captures part of a pre-reservation; the rest of the order stays to pay', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 50);
        const created = await staff('POST', '/payment-requests', {
            order_ref: order.code, amount_cents: 5000, delivery: 'email', email: JEANNE, capture: 'deferred', attempt: attempt(),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const id = created.body.request_id as string;
        const tx = await jeannePays(id);
        await requestWithStatus(id, 'authorized');
        await until('order authorized', async () => (await adminOrder(order.id)).state === 'PaymentAuthorized');
        const tooMuch = await staff('POST', `/payment-requests/${id}/finalise`, { amount_cents: 5001 });
        assert.equal(tooMuch.status, 422, JSON.stringify(tooMuch.body));
        assert.equal(tooMuch.body.field, 'amount_cents');
        const fin = await staff('POST', `/payment-requests/${id}/finalise`, { amount_cents: 3000 });
        assert.equal(fin.status, 200, JSON.stringify(fin.body));
        assert.equal(fin.body.finalised, true);
        assert.equal((await ancvTransaction(tx)).captured_cents, 3000);
        const o = await adminOrder(order.id);
        assert.equal(o.state, 'ArrangingAdditionalPayment');
        assert.deepEqual([o.payments[0].state, o.payments[0].amount], ['Settled', 3000]);
        // The rest by another method.
        const { addManualPaymentToOrder } = await env.adminClient.query(
            gql`mutation ($input: ManualPaymentInput!) { addManualPaymentToOrder(input: $input) { ... on Order { state } ... on ErrorResult { errorCode message } } }`,
            { input: { orderId: order.id, method: 'card', transactionId: 'card-1', metadata: {} } },
        );
        assert.equal(addManualPaymentToOrder.errorCode, undefined, JSON.stringify(addManualPaymentToOrder));
        const { transitionOrderToState: done } = await env.adminClient.query(
            gql`mutation ($id: ID!) { transitionOrderToState(id: $id, state: "PaymentSettled") { ... on Order { state } ... on ErrorResult { errorCode message } } }`,
            { id: order.id },
        );
        assert.equal(done.state, 'PaymentSettled', JSON.stringify(done));
    });

    it('an authorized pre-reservation whose expiry notification is lost is still followed and ends expired', async () => {
        // ANCV's capture window is 3 s here and no notification reaches Vendure: only its poller can tell.
        await sandbox.json('PUT', '/admin/shops/SHOP-DEMO-01/settings', { deferred_capture_window_s: 3 });
        await sandbox.json('PUT', '/admin/faults', { shop_id: 'SHOP-DEMO-01', drop_notifications: true });
        try {
            const order = await orderInArrangingPayment(env.shopClient, env.variantId, 40);
            const created = await staff('POST', '/payment-requests', {
                order_ref: order.code, amount_cents: 4000, delivery: 'email', email: JEANNE, capture: 'deferred', attempt: attempt(),
            });
            assert.equal(created.status, 201, JSON.stringify(created.body));
            const id = created.body.request_id as string;
            const tx = await jeannePays(id);
            await until('order authorized', async () => (await adminOrder(order.id)).state === 'PaymentAuthorized');
            const expired = await until('request expired', async () => {
                const r = await staff('GET', `/payment-requests/${id}`);
                return r.body.status === 'expired' ? r.body : undefined;
            });
            assert.equal(expired.final, true);
            assert.equal((await ancvTransaction(tx)).state, 'EXPIRED');
            const o = await until('payment cancelled', async () => {
                const got = await adminOrder(order.id);
                return got.payments[0]?.state === 'Cancelled' ? got : undefined;
            });
            // As after a cancel through Vendure: the payment no longer holds money; the order's own state is the merchant's.
            assert.equal(o.payments[0].errorMessage, 'expired');
        } finally {
            await fetch(`${sandbox.url}/admin/faults?shop_id=SHOP-DEMO-01`, { method: 'DELETE' });
            await sandbox.json('PUT', '/admin/shops/SHOP-DEMO-01/settings', { deferred_capture_window_s: 6 * 24 * 3600 });
        }
    });

    it('a shopper payment and a payment request are never both open on one order, whichever comes first or both at once', async () => {
        const shopperPays = (code: string) => http('shop', 'POST', '/payments', { order_ref: code, mode: 'identifier', beneficiary: JEANNE, attempt: attempt() });
        const staffRequests = (code: string) => staff('POST', '/payment-requests', { order_ref: code, amount_cents: 3000, delivery: 'email', email: JEANNE, attempt: attempt() });
        // The shopper's payment first: the request is refused and names it.
        const first = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const paying = await shopperPays(first.code);
        assert.equal(paying.status, 201, JSON.stringify(paying.body));
        const refused = await staffRequests(first.code);
        assert.deepEqual([refused.status, refused.body.code, refused.body.payment_id], [409, 'payment_in_progress', paying.body.payment_id]);
        // The request first: the shopper's payment is refused and names it.
        const second = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const requested = await staffRequests(second.code);
        assert.equal(requested.status, 201, JSON.stringify(requested.body));
        const refusedToo = await shopperPays(second.code);
        assert.deepEqual([refusedToo.status, refusedToo.body.code, refusedToo.body.payment_id], [409, 'payment_in_progress', requested.body.payment_id]);
        // Both at once: the order's lock lets exactly one through.
        const third = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const both = await Promise.all([shopperPays(third.code), staffRequests(third.code)]);
        assert.deepEqual(both.map(r => r.status).sort(), [201, 409], JSON.stringify(both.map(r => r.body)));
    });

    it('a request whose answer is lost is kept, reconciled by the poller to the one ANCV request, and paid into the order; another attempt meanwhile is 409', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        await sandbox.json('PUT', '/admin/faults', { shop_id: 'SHOP-DEMO-01', only: 'POST /api/v1/pre-transactions', drop_next_responses: 1 });
        const body = { order_ref: order.code, amount_cents: 3000, delivery: 'email', email: JEANNE, attempt: attempt() };
        const lost = await staff('POST', '/payment-requests', body);
        await fetch(`${sandbox.url}/admin/faults?shop_id=SHOP-DEMO-01`, { method: 'DELETE' });
        assert.ok(lost.status >= 500, JSON.stringify(lost.body));
        assert.equal(lost.body.retryable, true);
        assert.match(lost.body.payment_id, /^pay_/, 'the unknown creation names the payment it may become');
        const unknown = await staff('GET', `/payments/${lost.body.payment_id}`);
        assert.equal(unknown.status, 200, JSON.stringify(unknown.body));
        assert.equal(unknown.body.payment_id, lost.body.payment_id);
        const other = await staff('POST', '/payment-requests', { ...body, attempt: attempt() });
        assert.deepEqual([other.status, other.body.code, other.body.payment_id], [409, 'payment_in_progress', lost.body.payment_id]);
        const known = await until('request reconciled', async () => {
            const r = await staff('GET', `/payment-requests?order_ref=${order.code}`);
            return r.body.items.length === 1 && r.body.items[0].request_id ? r.body.items[0] : undefined;
        });
        const outbox: any[] = await sandbox.json('GET', '/outbox.json');
        assert.equal(outbox.filter(m => m.pre_transaction_id === known.request_id).length, 1);
        const tx = await jeannePays(known.request_id);
        const settled = await until('order settled', async () => {
            const o = await adminOrder(order.id);
            return o.state === 'PaymentSettled' ? o : undefined;
        });
        assert.deepEqual([settled.payments.length, settled.payments[0].transactionId], [1, tx]);
        // The id named from the start is the paid payment's.
        const paid = await staff('GET', `/payments/${lost.body.payment_id}`);
        assert.deepEqual([paid.body.status, paid.body.transaction_id, paid.body.authorized_cents], ['authorized', tx, 3000]);
    });

    it("a notification about a paid request's transaction gives the order its payment at once, not at the next poll", async () => {
        // The requests' poller held (as if its next round were far away): only the notification can do it.
        const requests = (env.server as unknown as { app: { get<T>(t: new (...a: any[]) => T): T } }).app.get(CvcoPaymentRequests);
        const poller = requests as unknown as { polling: boolean };
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 20);
        const created = await staff('POST', '/payment-requests', {
            order_ref: order.code, amount_cents: 2000, delivery: 'email', email: JEANNE, attempt: attempt(),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        await until('no poll in progress', async () => !poller.polling);
        poller.polling = true;
        try {
            const tx = await jeannePays(created.body.request_id);
            const settled = await until('order settled by the notification', async () => {
                const o = await adminOrder(order.id);
                return o.state === 'PaymentSettled' ? o : undefined;
            }, 8000);
            assert.deepEqual([settled.payments[0].transactionId, settled.payments[0].amount], [tx, 2000]);
            const paid = await staff('GET', `/payments/${created.body.payment_id}`);
            assert.deepEqual([paid.body.payment_id, paid.body.status, paid.body.transaction_id], [created.body.payment_id, 'authorized', tx]);
        } finally {
            poller.polling = false;
        }
    });

    it('HTTP §2: sessions and permissions as cvco errors; a refund attempt refunds once; the transactions list', async () => {
        const none = await http('none', 'GET', '/transactions');
        assert.equal(none.status, 401);
        assert.deepEqual(Object.keys(none.body).slice(0, 4), ['code', 'message_fr', 'message_en', 'retryable']);
        assert.equal(none.body.code, 'unauthorized');
        await env.shopClient.asAnonymousUser();
        const shopper = await http('shop', 'POST', '/payment-requests', { order_ref: 'X', amount_cents: 2000, delivery: 'email', email: JEANNE, attempt: 'a' });
        assert.equal(shopper.status, 401);
        // A state change without the session's CSRF token: 403, nothing done.
        const noToken = await http('admin', 'POST', '/payment-requests', { order_ref: 'X', amount_cents: 2000, delivery: 'qr', attempt: 'a' }, false);
        assert.deepEqual([noToken.status, noToken.body.code], [403, 'forbidden']);
        const session = await http('admin', 'GET', '/staff/session');
        assert.equal(typeof session.body.csrf_token, 'string');
        const bad = await staff('POST', '/payment-requests', { order_ref: 'X', amount_cents: 2000, delivery: 'pigeon', attempt: 'a' });
        assert.deepEqual([bad.status, bad.body.code, bad.body.field], [422, 'invalid_request', 'delivery']);
        const noOrder = await staff('POST', '/payment-requests', { order_ref: 'NOPE', amount_cents: 2000, delivery: 'email', email: JEANNE, attempt: 'a' });
        assert.deepEqual([noOrder.status, noOrder.body.code], [404, 'order_not_found']);

        // A shopper's payment (the widget's flow), refunded from the back-office by attempt.
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 50);
        const pay = await http('shop', 'POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'alice.approve@sandbox.cvco.test', attempt: attempt(),
        });
        assert.equal(pay.status, 201, JSON.stringify(pay.body));
        const id = pay.body.payment_id as string;
        await until('order settled', async () => (await adminOrder(order.id)).state === 'PaymentSettled');
        const body = { amount_cents: 2000, reason: 'geste', attempt: 'rf-1' };
        const first = await staff('POST', `/payments/${id}/refund`, body);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.equal(first.body.refunded_cents, 2000);
        const same = await staff('POST', `/payments/${id}/refund`, body);
        assert.equal(same.status, 200);
        assert.equal(same.body.refunded_cents, 2000, 'the same attempt never refunds twice');
        assert.equal((await ancvTransaction(pay.body.transaction_id)).refunded_cents, 2000);
        const over = await staff('POST', `/payments/${id}/refund`, { amount_cents: 3001, attempt: 'rf-2' });
        assert.deepEqual([over.status, over.body.code], [422, 'refund_exceeds_captured']);
        const full = await staff('POST', `/payments/${id}/refund`, { attempt: 'rf-3' });
        assert.equal(full.status, 200, JSON.stringify(full.body));
        assert.equal(full.body.refunded_cents, 5000);
        assert.equal(full.body.status, 'refunded');
        const o = await adminOrder(order.id);
        assert.deepEqual(o.payments[0].refunds.map((r: any) => [r.state, r.total]), [['Settled', 2000], ['Settled', 3000]]);

        const read = await staff('GET', `/payments/${id}`);
        assert.deepEqual([read.status, read.body.payment_id, read.body.status], [200, id, 'refunded'], 'staff read any payment of the shop');
        const list = await staff('GET', `/transactions?order_ref=${order.code}`);
        assert.equal(list.status, 200);
        assert.deepEqual(list.body.items.map((p: any) => p.payment_id), [id]);
        assert.equal(list.body.total, 1);
        const refundedOnly = await staff('GET', '/transactions?status=refunded');
        assert.ok(refundedOnly.body.items.every((p: any) => p.status === 'refunded'));
        assert.ok(refundedOnly.body.items.some((p: any) => p.payment_id === id));
        // An unreadable query parameter: 400 naming it (PROTOCOL.md Conventions); an unknown one is ignored.
        const badDate = await staff('GET', '/transactions?from=yesterday');
        assert.deepEqual([badDate.status, badDate.body.code, badDate.body.field], [400, 'invalid_request', 'from']);
        const badAmount = await staff('GET', '/transactions?min_amount_cents=lots');
        assert.deepEqual([badAmount.status, badAmount.body.code, badAmount.body.field], [400, 'invalid_request', 'min_amount_cents']);
        const badDay = await staff('GET', '/payment-requests?to=2026-02-30');
        assert.deepEqual([badDay.status, badDay.body.field], [400, 'to']);
        assert.equal((await staff('GET', `/transactions?order_ref=${order.code}&cache=1`)).body.total, 1);
        const requests = await staff('GET', '/payment-requests?status=cancelled');
        assert.equal(requests.status, 200);
        assert.ok(requests.body.items.length >= 1 && requests.body.items.every((r: any) => r.status === 'cancelled'));
    });
});

