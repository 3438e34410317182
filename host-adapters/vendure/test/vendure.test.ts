import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import gql from 'graphql-tag';

import { NOTIFICATION_SECRET, ORDER_QUERY, orderInArrangingPayment, Sandbox, SHOP_ID, signedNotification, startVendure, until } from './harness';

const sandbox = new Sandbox();
let env: Awaited<ReturnType<typeof startVendure>>;

async function rest(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await env.shopClient.fetch(`${env.baseUrl}/cvco/v1${route}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function adminOrder(id: string) {
    return (await env.adminClient.query(ORDER_QUERY, { id })).order;
}

async function finalPayment(paymentId: string) {
    return until(`payment ${paymentId} final`, async () => {
        const r = await rest('GET', `/payments/${paymentId}`);
        return r.status === 200 && r.body.final ? r.body : undefined;
    });
}

let attempts = 0;
const attempt = () => `att-${Date.now()}-${++attempts}`;

describe('CVCo on Vendure, against the sandbox', { concurrency: 1 }, () => {
    before(async () => {
        await sandbox.start();
        env = await startVendure(sandbox.url);
    });
    after(async () => {
        await env?.server.destroy();
        await sandbox.stop();
    });

    it('full payment: the order total, never the browser amount; SSE to the end; order PaymentSettled', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 50);
        const checkout = await rest('GET', `/checkout?order_ref=${order.code}`);
        assert.equal(checkout.status, 200);
        assert.equal(checkout.body.order_total_cents, 5000);
        assert.equal(checkout.body.eligible, true);
        assert.equal(checkout.body.current_payment, null);

        const a = attempt();
        const created = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'alice.approve@sandbox.cvco.test', attempt: a, amount_cents: 100,
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.equal(created.body.amount_cents, 5000);
        assert.equal(created.body.final, false);
        assert.equal(created.body.next_action.type, 'wait_for_app');
        assert.match(created.body.beneficiary_masked, /\*/);
        const id = created.body.payment_id as string;

        // Same attempt: the same payment. Another attempt while it runs: 409.
        const again = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: 'alice.approve@sandbox.cvco.test', attempt: a });
        assert.equal(again.status, 200);
        assert.equal(again.body.payment_id, id);
        const other = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: 'alice.approve@sandbox.cvco.test', attempt: attempt() });
        assert.equal(other.status, 409);
        assert.equal(other.body.code, 'payment_in_progress');

        // The SSE stream: a status event at once, then changes, closed after the final one.
        const res = await env.shopClient.fetch(`${env.baseUrl}/cvco/v1/payments/${id}/events`, { headers: { accept: 'text/event-stream' } });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
        const text = await res.text(); // ends when the server closes after the final payment
        const events = text.split('\n\n').filter(b => b.includes('event: status')).map(b => JSON.parse(b.split('\ndata: ')[1]));
        assert.ok(events.length >= 1);
        const last = events[events.length - 1];
        assert.equal(last.final, true);
        assert.equal(last.status, 'authorized');
        assert.equal(last.authorized_cents, 5000);
        assert.equal(last.authorizations.length, 1);
        assert.match(last.authorizations[0].number, /^\d{6}$/);
        const seqs = events.map(e => e.sequence);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));

        const vendure = await until('order settled', async () => {
            const o = await adminOrder(order.id);
            return o.state === 'PaymentSettled' ? o : undefined;
        });
        assert.equal(vendure.payments.length, 1);
        assert.equal(vendure.payments[0].state, 'Settled');
        assert.equal(vendure.payments[0].amount, 5000);
        assert.equal(vendure.payments[0].transactionId, id);
        const done = await rest('GET', `/payments/${id}`);
        assert.equal(done.body.order_remaining_cents, 0);

        // Refund through Vendure's admin API: the handler refunds at ANCV.
        const { refundOrder } = await env.adminClient.query(
            gql`mutation ($input: RefundOrderInput!) { refundOrder(input: $input) {
                ... on Refund { id state total transactionId } ... on ErrorResult { errorCode message } } }`,
            { input: { paymentId: vendure.payments[0].id, amount: 2000, shipping: 0, adjustment: 0, lines: [], reason: 'une nuit annulée' } },
        );
        assert.equal(refundOrder.state, 'Settled', JSON.stringify(refundOrder));
        assert.equal(refundOrder.total, 2000);
        assert.ok(refundOrder.transactionId);
        const refunded = await until('refund recorded', async () => {
            const r = await rest('GET', `/payments/${id}`);
            return r.body.refunded_cents === 2000 ? r.body : undefined;
        });
        assert.equal(refunded.authorized_cents, 5000);
        // And at ANCV (the sandbox) itself, through the beneficiary's restored balance history.
        const tx = await sandbox.json('GET', '/admin/notifications?shop_id=SHOP-DEMO-01&limit=200');
        assert.ok(JSON.stringify(tx).includes(id));
    });

    it('partial payment leaves ArrangingPayment with the rest; another method completes it', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 120);
        const created = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: '10000000002', attempt: attempt(),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.equal(created.body.amount_cents, 12000);
        const p = await finalPayment(created.body.payment_id);
        assert.equal(p.status, 'partially_authorized');
        assert.equal(p.authorized_cents, 3500);
        assert.equal(p.remaining_cents, 8500);
        const o = await until('partial payment settled', async () => {
            const x = await adminOrder(order.id);
            return x.payments[0]?.state === 'Settled' ? x : undefined;
        });
        assert.equal(o.state, 'ArrangingPayment');
        assert.equal(o.payments[0].amount, 3500);
        const checkout = await rest('GET', `/checkout?order_ref=${order.code}`);
        assert.equal(checkout.body.order_remaining_cents, 8500);
        assert.equal(checkout.body.eligible, true);

        const { addPaymentToOrder } = await env.shopClient.query(gql`mutation { addPaymentToOrder(input: { method: "card", metadata: {} }) {
            ... on Order { state payments { method amount state } } ... on ErrorResult { errorCode message } } }`);
        assert.equal(addPaymentToOrder.state, 'PaymentSettled', JSON.stringify(addPaymentToOrder));
        const card = addPaymentToOrder.payments.find((x: any) => x.method === 'card');
        assert.equal(card.amount, 8500);
    });

    it("Vendure's own addPaymentToOrder with method cvco, without the widget", async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const ADD = gql`mutation ($input: PaymentInput!) { addPaymentToOrder(input: $input) {
            ... on Order { state payments { method amount state transactionId } }
            ... on PaymentFailedError { errorCode paymentErrorMessage } ... on ErrorResult { errorCode message } } }`;
        const unknown = (await env.shopClient.query(ADD, { input: { method: 'cvco', metadata: { beneficiary: 'nobody.known@sandbox.cvco.test' } } })).addPaymentToOrder;
        assert.equal(unknown.errorCode, 'PAYMENT_FAILED_ERROR');
        assert.equal(JSON.parse(unknown.paymentErrorMessage).code, 'beneficiary_unknown');

        const added = (await env.shopClient.query(ADD, { input: { method: 'cvco', metadata: { beneficiary: '10000000001' } } })).addPaymentToOrder;
        assert.equal(added.state, 'ArrangingPayment', JSON.stringify(added));
        const mine = added.payments.find((x: any) => x.state === 'CvcoAwaitingBeneficiary');
        assert.equal(mine.amount, 3000);
        const settled = await until('order settled', async () => {
            const x = await adminOrder(order.id);
            return x.state === 'PaymentSettled' ? x : undefined;
        });
        assert.equal(settled.payments.find((x: any) => x.transactionId === mine.transactionId).state, 'Settled');
    });

    it('declined: the Vendure payment is Declined, the order can be paid again', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 40);
        const created = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'chloe.decline@sandbox.cvco.test', attempt: attempt(),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const p = await finalPayment(created.body.payment_id);
        assert.equal(p.status, 'declined');
        assert.equal(p.authorized_cents, 0);
        const o = await until('payment declined', async () => {
            const x = await adminOrder(order.id);
            return x.payments[0]?.state === 'Declined' ? x : undefined;
        });
        assert.equal(o.state, 'ArrangingPayment');
        const checkout = await rest('GET', `/checkout?order_ref=${order.code}`);
        assert.equal(checkout.body.eligible, true);
        assert.equal(checkout.body.order_remaining_cents, 4000);

        // Another beneficiary, played by hand through the sandbox app: jeanne confirms with her code.
        const second = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'jeanne.manual@sandbox.cvco.test', attempt: attempt(),
        });
        assert.equal(second.status, 201, JSON.stringify(second.body));
        const tx = second.body.payment_id;
        await until('jeanne sees the request', async () => {
            const pending = await sandbox.json('GET', '/app/api/beneficiaries/10000000006/pending');
            return JSON.stringify(pending).includes(tx);
        });
        await sandbox.json('POST', `/app/api/transactions/${tx}/confirm`, { beneficiary: '10000000006', pin: '1234' });
        const paid = await finalPayment(tx);
        assert.equal(paid.status, 'authorized');
        await until('order settled', async () => (await adminOrder(order.id)).state === 'PaymentSettled');
    });

    it('shopper cancels while waiting; an unknown order or another session gets 404', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const created = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'jeanne.manual@sandbox.cvco.test', attempt: attempt(),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const cancelled = await rest('POST', `/payments/${created.body.payment_id}/cancel`);
        assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
        assert.equal(cancelled.body.status, 'cancelled');
        assert.equal((await rest('POST', `/payments/${created.body.payment_id}/cancel`)).body.code, 'illegal_transition');
        await until('payment cancelled', async () => (await adminOrder(order.id)).payments[0]?.state === 'Cancelled');

        assert.equal((await rest('GET', '/checkout?order_ref=NOPE')).body.code, 'order_not_found');
        const bad = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: 'not an id', attempt: attempt() });
        assert.equal(bad.status, 422);
        assert.equal(bad.body.code, 'invalid_beneficiary');
        await env.shopClient.asAnonymousUser(); // another shopper
        assert.equal((await rest('GET', `/checkout?order_ref=${order.code}`)).status, 404);
        assert.equal((await rest('GET', `/payments/${created.body.payment_id}`)).status, 404);
    });

    it('notifications: forged ones are refused, replays acknowledged once', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 20);
        const created = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'jeanne.manual@sandbox.cvco.test', attempt: attempt(),
        });
        assert.equal(created.status, 201);
        const tx = created.body.payment_id;
        const before = await until('notification recorded', async () => {
            const r = await rest('GET', `/payments/${tx}`);
            return r.body.sequence >= 1 ? r.body : undefined;
        });
        const event = {
            id: `evt_test_${Date.now()}`, type: 'transaction.updated', created_at: new Date().toISOString(), shop_id: SHOP_ID,
            merchant_order_id: order.code, transaction_id: tx, state: 'VALIDATED', sequence: 1000,
        };
        const post = (n: { headers: Record<string, string>; body: string }) =>
            fetch(`${env.baseUrl}/cvco/v1/notifications`, { method: 'POST', headers: n.headers, body: n.body });

        const forged = signedNotification('whsec_not_the_secret', event);
        const r1 = await post(forged);
        assert.equal(r1.status, 400);
        assert.equal((await r1.json()).code, 'notification_bad_signature');
        const unsigned = await post({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
        assert.equal(unsigned.status, 400);
        const genuine = signedNotification(NOTIFICATION_SECRET, event);
        const tampered = { ...genuine, body: genuine.body.replace('VALIDATED', 'VALIDATEd') };
        assert.equal((await post(tampered)).status, 400);

        // A genuine one is a hint: the adapter reads the truth (still waiting), not the body's "VALIDATED".
        const first = await post(genuine);
        assert.equal(first.status, 204);
        const replay = await post(signedNotification(NOTIFICATION_SECRET, event));
        assert.equal(replay.status, 200);
        assert.deepEqual(await replay.json(), { duplicate: true });
        const now = await rest('GET', `/payments/${tx}`);
        assert.equal(now.body.status, before.status);
        assert.equal(now.body.final, false);
        assert.equal((await adminOrder(order.id)).payments[0].state, 'CvcoAwaitingBeneficiary');

        // The sandbox's own deliveries to the notification URL were acknowledged.
        const log = await sandbox.json('GET', `/admin/notifications?shop_id=${SHOP_ID}&limit=500`);
        const mine = (Array.isArray(log) ? log : log.items ?? []).filter((n: any) => JSON.stringify(n).includes(tx));
        assert.ok(mine.length >= 1, JSON.stringify(log).slice(0, 500));
        await rest('POST', `/payments/${tx}/cancel`);
    });

    it('a lost answer and duplicated notifications: one ANCV payment, settled once', async () => {
        await sandbox.json('PUT', '/admin/faults', { shop_id: SHOP_ID, lose_next_responses: 1, duplicate_notifications: true });
        try {
            const order = await orderInArrangingPayment(env.shopClient, env.variantId, 70);
            // ANCV creates the transaction but its answer is lost: the retry with the same
            // idempotency key gets that very transaction back.
            const created = await rest('POST', '/payments', {
                order_ref: order.code, mode: 'identifier', beneficiary: 'alice.approve@sandbox.cvco.test', attempt: attempt(),
            });
            assert.equal(created.status, 201, JSON.stringify(created.body));
            const p = await finalPayment(created.body.payment_id);
            assert.equal(p.status, 'authorized');
            const o = await until('order settled', async () => {
                const x = await adminOrder(order.id);
                return x.state === 'PaymentSettled' ? x : undefined;
            });
            assert.equal(o.payments.length, 1);
            assert.equal(o.payments[0].amount, 7000);
            const log = await sandbox.json('GET', `/admin/notifications?shop_id=${SHOP_ID}&limit=500`);
            const entries = (Array.isArray(log) ? log : (log.items ?? [])).filter((n: any) => JSON.stringify(n).includes(order.code));
            const transactions = new Set(entries.map((n: any) => JSON.stringify(n).match(/"transaction_id":"([^"]+)"/)?.[1]).filter(Boolean));
            assert.deepEqual([...transactions], [created.body.payment_id], JSON.stringify(entries).slice(0, 800));
        } finally {
            await fetch(`${sandbox.url}/admin/faults?shop_id=${SHOP_ID}`, { method: 'DELETE' });
        }
    });

    it('expired: a silent beneficiary past the authorization timeout', async () => {
        await sandbox.json('PUT', `/admin/shops/${SHOP_ID}/settings`, { authorization_timeout_s: 2 });
        try {
            const order = await orderInArrangingPayment(env.shopClient, env.variantId, 60);
            const created = await rest('POST', '/payments', {
                order_ref: order.code, mode: 'identifier', beneficiary: 'david.silent@sandbox.cvco.test', attempt: attempt(),
            });
            assert.equal(created.status, 201, JSON.stringify(created.body));
            const p = await finalPayment(created.body.payment_id);
            assert.equal(p.status, 'expired');
            const o = await until('payment declined', async () => {
                const x = await adminOrder(order.id);
                return x.payments[0]?.state === 'Declined' ? x : undefined;
            });
            assert.equal(o.state, 'ArrangingPayment');
            assert.match(o.payments[0].errorMessage, /expired/);
        } finally {
            await sandbox.json('PUT', `/admin/shops/${SHOP_ID}/settings`, { authorization_timeout_s: 180 });
        }
    });
});
