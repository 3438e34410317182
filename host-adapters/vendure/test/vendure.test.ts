import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { TransactionalConnection } from '@vendure/core';
import gql from 'graphql-tag';

import { CvcoService } from '../src';
import { CvcoNotificationEvent, CvcoPaymentRecord } from '../src/entities';
import { CvcoFailure } from '../src/errors';
import { Exports } from '../src/exports';
import { WasmPool } from '../src/wasm';

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

const ALICE = 'alice.approve@sandbox.cvco.test';
/** The test server's budget of one plugin call (requestTimeoutMs). */
const CALL_BUDGET_MS = 3000;
/** Faults aimed at the creation only, so the poller's reads neither suffer nor use them up. */
const CREATE_ROUTE = 'POST /api/v1/transactions';

async function faults(f: Record<string, unknown>) {
    await sandbox.json('PUT', '/admin/faults', { shop_id: SHOP_ID, ...f });
}
async function clearFaults() {
    await fetch(`${sandbox.url}/admin/faults?shop_id=${SHOP_ID}`, { method: 'DELETE' });
}

/** ANCV's own list of the order's transactions (the merchant API, as the shop). */
async function ancvTransactions(orderCode: string): Promise<any[]> {
    const token = await sandbox.json('POST', '/oauth/token', { grant_type: 'client_credentials', client_id: 'demo-client', client_secret: 'demo-secret' });
    const res = await fetch(`${sandbox.url}/api/v1/transactions?merchant_order_id=${encodeURIComponent(orderCode)}`, {
        headers: { authorization: `Bearer ${token.access_token}` },
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    return Array.isArray(body) ? body : (body.items ?? body.transactions);
}

async function assertOneTransaction(orderCode: string, transactionId: string, amountCents: number) {
    const listed = await ancvTransactions(orderCode);
    assert.deepEqual(listed.map((t: any) => t.id), [transactionId], JSON.stringify(listed));
    assert.equal(listed[0].amount_cents ?? listed[0].amount, amountCents, JSON.stringify(listed[0]));
}

/** The create whose outcome is unknown: the retryable error naming the kept payment. */
function assertKeptUnknown(created: { status: number; body: any }): string {
    assert.ok(created.status >= 500, JSON.stringify(created.body));
    assert.equal(created.body.retryable, true, JSON.stringify(created.body));
    assert.match(created.body.code, /^upstream_|^internal$/);
    assert.match(created.body.payment_id, /^pay_/);
    return created.body.payment_id;
}

function assertUnknown(p: any, amountCents: number) {
    assert.equal(p.status, 'unknown', JSON.stringify(p));
    assert.equal(p.final, false);
    assert.equal(p.transaction_id, null);
    assert.deepEqual(p.next_action, { type: 'wait_for_app', deadline: null });
    assert.equal(p.error, null);
    assert.equal(p.amount_cents, amountCents);
    assert.match(p.payment_id, /^pay_/);
}

/** The Nest application inside the test server (its services, its database connection). */
const app = () => (env.server as unknown as { app: { get<T>(type: new (...args: any[]) => T): T } }).app;

let attempts = 0;
const attempt = () => `att-${Date.now()}-${++attempts}`;

describe('CVCo on Vendure, against the sandbox', { concurrency: 1 }, () => {
    before(async () => {
        await sandbox.start();
        env = await startVendure(sandbox.url, { requestTimeoutMs: CALL_BUDGET_MS });
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
        const transaction = created.body.transaction_id as string;
        assert.match(transaction, /./);

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
        assert.equal(vendure.payments[0].transactionId, transaction);
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
        assert.ok(JSON.stringify(tx).includes(transaction));
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
        const tx = second.body.transaction_id;
        await until('jeanne sees the request', async () => {
            const pending = await sandbox.json('GET', '/app/api/beneficiaries/10000000006/pending');
            return JSON.stringify(pending).includes(tx);
        });
        await sandbox.json('POST', `/app/api/transactions/${tx}/confirm`, { beneficiary: '10000000006', pin: '1234' });
        const paid = await finalPayment(second.body.payment_id);
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
        // The retry of a lost answer: the cancelled payment, unchanged.
        const again = await rest('POST', `/payments/${created.body.payment_id}/cancel`);
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.equal(again.body.status, 'cancelled');
        assert.equal(again.body.sequence, cancelled.body.sequence);
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
        const id = created.body.payment_id;
        const tx = created.body.transaction_id;
        const before = await until('notification recorded', async () => {
            const r = await rest('GET', `/payments/${id}`);
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
        // Another event id about the same transaction, not newer (its object_key's sequence): older news.
        const older = await post(signedNotification(NOTIFICATION_SECRET, { ...event, id: `${event.id}_older`, sequence: 999 }));
        assert.deepEqual([older.status, await older.json()], [200, { duplicate: true }]);
        const now = await rest('GET', `/payments/${id}`);
        assert.equal(now.body.status, before.status);
        assert.equal(now.body.final, false);
        assert.equal((await adminOrder(order.id)).payments[0].state, 'CvcoAwaitingBeneficiary');

        // The sandbox's own deliveries to the notification URL were acknowledged.
        const log = await sandbox.json('GET', `/admin/notifications?shop_id=${SHOP_ID}&limit=500`);
        const mine = (Array.isArray(log) ? log : log.items ?? []).filter((n: any) => JSON.stringify(n).includes(tx));
        assert.ok(mine.length >= 1, JSON.stringify(log).slice(0, 500));
        await rest('POST', `/payments/${id}/cancel`);
    });

    it('create answer lost: the payment is kept as unknown, reconciled to the one ANCV transaction; same attempt same payment, new attempt 409 with its payment_id', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 70);
        const a = attempt();
        // ANCV creates the transaction, then its answer is lost (503 after processing).
        await faults({ lose_next_responses: 1, only: CREATE_ROUTE, duplicate_notifications: true });
        const created = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: a });
        await clearFaults();
        assertKeptUnknown(created);
        const id = created.body.payment_id;

        // A reload (new attempt) reconciles first, then answers 409 with the payment to resume.
        const other = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: attempt() });
        assert.equal(other.status, 409, JSON.stringify(other.body));
        assert.equal(other.body.code, 'payment_in_progress');
        assert.equal(other.body.retryable, true);
        assert.equal(other.body.payment_id, id);
        const same = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: a });
        assert.equal(same.status, 200, JSON.stringify(same.body));
        assert.equal(same.body.payment_id, id);

        const paid = await finalPayment(id);
        assert.equal(paid.status, 'authorized');
        assert.equal(paid.authorized_cents, 7000);
        await assertOneTransaction(order.code, paid.transaction_id, 7000);
        const o = await until('order settled', async () => {
            const x = await adminOrder(order.id);
            return x.state === 'PaymentSettled' ? x : undefined;
        });
        const cvco = o.payments.filter((x: any) => x.method === 'cvco');
        assert.equal(cvco.length, 1, JSON.stringify(o.payments));
        assert.equal(cvco[0].transactionId, paid.transaction_id);
        assert.equal(cvco[0].amount, 7000);
    });

    it('5xx before ANCV acted: unknown while ANCV fails, reconciled once it answers, never a second transaction', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 40);
        const a = attempt();
        await faults({ error_rate: 1, only: CREATE_ROUTE });
        try {
            const created = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: a });
            assertKeptUnknown(created);
            assertUnknown((await rest('GET', `/payments/${created.body.payment_id}`)).body, 4000);
            // Still failing: every new attempt gets the retryable 409 and the same payment to resume.
            for (let i = 0; i < 2; i++) {
                const other = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: attempt() });
                assert.equal(other.status, 409, JSON.stringify(other.body));
                assert.equal(other.body.payment_id, created.body.payment_id);
                assert.equal(other.body.retryable, true);
            }
            const checkout = await rest('GET', `/checkout?order_ref=${order.code}`);
            assert.equal(checkout.body.current_payment.payment_id, created.body.payment_id);
            assert.equal(checkout.body.current_payment.status, 'unknown');
            assert.deepEqual(await ancvTransactions(order.code), []);
        } finally {
            await clearFaults();
        }
        const paid = await finalPayment((await rest('GET', `/checkout?order_ref=${order.code}`)).body.current_payment?.payment_id ?? '');
        assert.equal(paid.status, 'authorized');
        await assertOneTransaction(order.code, paid.transaction_id, 4000);
        await until('order settled', async () => (await adminOrder(order.id)).state === 'PaymentSettled');
    });

    it('latency over the call budget: unknown, then the one transaction ANCV made once it answers', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const a = attempt();
        // ANCV processes the create at once but answers after the adapter stopped waiting.
        await faults({ latency_after_ms: CALL_BUDGET_MS + 1500, only: CREATE_ROUTE });
        let id: string;
        try {
            const started = Date.now();
            const created = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: a });
            assert.ok(Date.now() - started < CALL_BUDGET_MS + 1500, 'the adapter waited past its budget');
            assertKeptUnknown(created);
            assertUnknown((await rest('GET', `/payments/${created.body.payment_id}`)).body, 3000);
            id = created.body.payment_id;
            const listed = await ancvTransactions(order.code);
            assert.equal(listed.length, 1, JSON.stringify(listed));
        } finally {
            await clearFaults();
        }
        const paid = await finalPayment(id);
        assert.equal(paid.status, 'authorized');
        await assertOneTransaction(order.code, paid.transaction_id, 3000);
    });

    it('a notification for a transaction of an unknown payment reconciles it, then is applied', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 20);
        await faults({ lose_next_responses: 1, only: CREATE_ROUTE, drop_notifications: true });
        try {
            const created = await rest('POST', '/payments', {
                order_ref: order.code, mode: 'identifier', beneficiary: 'jeanne.manual@sandbox.cvco.test', attempt: attempt(),
            });
            assertKeptUnknown(created);
            const before = (await rest('GET', `/payments/${created.body.payment_id}`)).body;
            assertUnknown(before, 2000);
            const id = created.body.payment_id;
            // Keep the poller off this record: only the notification may reconcile it.
            const records = app().get(TransactionalConnection).rawConnection.getRepository(CvcoPaymentRecord);
            await records.update({ paymentId: id }, { nextReconcileAt: new Date(Date.now() + 3_600_000) });
            const [tx] = await ancvTransactions(order.code);
            assert.ok(tx, 'ANCV made the transaction');
            assert.equal((await rest('GET', `/payments/${id}`)).body.status, 'unknown');

            const event = {
                id: `evt_unknown_${Date.now()}`, type: 'transaction.updated', created_at: new Date().toISOString(), shop_id: SHOP_ID,
                merchant_order_id: order.code, transaction_id: tx.id, state: tx.state, sequence: 1,
            };
            const n = signedNotification(NOTIFICATION_SECRET, event);
            const res = await fetch(`${env.baseUrl}/cvco/v1/notifications`, { method: 'POST', headers: n.headers, body: n.body });
            assert.equal(res.status, 204, await res.text());
            const now = (await rest('GET', `/payments/${id}`)).body;
            assert.equal(now.transaction_id, tx.id);
            assert.equal(now.status, 'awaiting_beneficiary');
            assert.ok(now.sequence > before.sequence);
            const o = await adminOrder(order.id);
            assert.deepEqual(o.payments.map((x: any) => [x.transactionId, x.state]), [[tx.id, 'CvcoAwaitingBeneficiary']]);

            // The beneficiary confirms; the next notification (sent by hand: ANCV's are dropped) settles it.
            await sandbox.json('POST', `/app/api/transactions/${tx.id}/confirm`, { beneficiary: '10000000006', pin: '1234' });
            const done = signedNotification(NOTIFICATION_SECRET, { ...event, id: `${event.id}_2`, state: 'VALIDATED', sequence: 2 });
            const res2 = await fetch(`${env.baseUrl}/cvco/v1/notifications`, { method: 'POST', headers: done.headers, body: done.body });
            assert.equal(res2.status, 204, await res2.text());
            assert.equal((await rest('GET', `/payments/${id}`)).body.status, 'authorized');
            await assertOneTransaction(order.code, tx.id, 2000);
        } finally {
            await clearFaults();
        }
    });

    it('a refused creation leaves nothing: no payment kept, a new attempt may pay', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const refused = await rest('POST', '/payments', {
            order_ref: order.code, mode: 'identifier', beneficiary: 'nobody.known@sandbox.cvco.test', attempt: attempt(),
        });
        assert.equal(refused.status, 422, JSON.stringify(refused.body));
        assert.equal(refused.body.code, 'beneficiary_unknown');
        assert.equal((await rest('GET', `/checkout?order_ref=${order.code}`)).body.current_payment, null);
        const live = (await ancvTransactions(order.code)).filter((t: any) => !['ABORTED', 'CANCELLED', 'EXPIRED'].includes(t.state));
        assert.deepEqual(live, []);
        const next = await rest('POST', '/payments', { order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: attempt() });
        assert.equal(next.status, 201, JSON.stringify(next.body));
        assert.equal((await finalPayment(next.body.payment_id)).status, 'authorized');
    });

    it('a host missing from allowedHosts is a configuration error, not a retryable transport failure', async () => {
        const pool = new WasmPool({
            wasmPath: process.env.CVCO_PLUGIN_WASM!, apiUrl: sandbox.url, shopId: SHOP_ID, clientId: 'demo-client',
            clientSecret: 'demo-secret', notificationSecret: NOTIFICATION_SECRET, allowedHosts: ['ancv.example'], poolSize: 1,
        });
        try {
            await assert.rejects(pool.call(Exports.checkConnection, {}), (e: unknown) => {
                assert.ok(e instanceof CvcoFailure, String(e));
                assert.equal(e.body.code, 'config_invalid');
                assert.equal(e.body.field, 'allowed_hosts');
                assert.equal(e.body.retryable, false);
                assert.match(e.body.message_en, /allowedHosts/);
                return true;
            });
        } finally {
            await pool.close();
        }
        // The test server's own start-up check went through.
        const service = app().get(CvcoService);
        await service.started;
        const check = service.connectionCheck as { ok: boolean; shop_id: string; api_base_url: string };
        assert.equal(check.ok, true, JSON.stringify(check));
        assert.equal(check.shop_id, SHOP_ID);
        assert.equal(new URL(check.api_base_url).origin, sandbox.url);
    });

    it("a bad request gets the plugin's own error (malformed JSON included), compact JSON in the contract's key order; 413, 415 and unknown routes a cvco body too", async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        const pool = app().get(CvcoService).pool;
        const cases: Array<[Record<string, unknown>, string, string]> = [
            [{ order_ref: order.code, mode: 'identifier', beneficiary: ALICE, attempt: 'é' }, 'invalid_request', 'attempt'],
            [{ order_ref: order.code, mode: 'identifier', beneficiary: 'not an identifier', attempt: attempt() }, 'invalid_beneficiary', 'beneficiary'],
            [{ mode: 'identifier', beneficiary: ALICE, attempt: attempt() }, 'invalid_request', 'order_ref'],
        ];
        for (const [body, code, field] of cases) {
            const text = JSON.stringify(body);
            const res = await env.shopClient.fetch(`${env.baseUrl}/cvco/v1/payments`, { method: 'POST', body: text });
            const answered = await res.text();
            const plugin = await pool.call(Exports.parseRequest, { operation: 'create_payment', body: text }).then(
                ok => assert.fail(`parse_request accepted ${text}: ${JSON.stringify(ok)}`),
                (e: unknown) => (e as CvcoFailure).body,
            );
            assert.equal(plugin.code, code, JSON.stringify(plugin));
            assert.equal(plugin.field, field, JSON.stringify(plugin));
            assert.equal(answered, JSON.stringify(plugin));
            assert.deepEqual(Object.keys(JSON.parse(answered)), ['code', 'message_fr', 'message_en', 'retryable', 'field']);
            assert.equal(res.status, 422, answered);
        }
        // Malformed JSON reaches the plugin's parser as text (the framework's JSON parser never answers).
        const malformed = await env.shopClient.fetch(`${env.baseUrl}/cvco/v1/payments`, { method: 'POST', body: '{"order_ref": ' });
        const parsed = await pool.call(Exports.parseRequest, { operation: 'create_payment', body: '{"order_ref": ' }).then(
            ok => assert.fail(JSON.stringify(ok)),
            (e: unknown) => (e as CvcoFailure).body,
        );
        assert.deepEqual([malformed.status, await malformed.text()], [422, JSON.stringify(parsed)]);
        // Not JSON, too large, or a route that does not exist: still the cvco error body.
        const post = (body: string, headers: Record<string, string>) =>
            fetch(`${env.baseUrl}/cvco/v1/payments`, { method: 'POST', body, headers });
        const form = await post('order_ref=x', { 'content-type': 'application/x-www-form-urlencoded' });
        assert.equal(form.status, 415);
        assert.match((await form.json()).message_en, /JSON body expected/);
        const large = await post(JSON.stringify({ beneficiary: 'a'.repeat(70_000) }), { 'content-type': 'application/json' });
        assert.equal(large.status, 413);
        assert.match((await large.json()).message_en, /too large/);
        const nowhere = await fetch(`${env.baseUrl}/cvco/v1/nowhere`);
        assert.equal(nowhere.status, 404);
        assert.equal((await nowhere.json()).code, 'not_found');
        // Nothing was asked of ANCV for this order.
        assert.deepEqual(await ancvTransactions(order.code), []);
    });

    it('merchant settings reach the checkout through the plugin configuration only', async () => {
        const order = await orderInArrangingPayment(env.shopClient, env.variantId, 30);
        // The test server keeps the plugin's defaults.
        const checkout = (await rest('GET', `/checkout?order_ref=${order.code}`)).body;
        assert.deepEqual(
            [checkout.eligible, checkout.min_amount_cents, checkout.adjustable, checkout.authorization_timeout_s, checkout.modes],
            [true, 2000, true, 180, ['identifier']],
        );
        const pool = new WasmPool({
            wasmPath: process.env.CVCO_PLUGIN_WASM!, apiUrl: sandbox.url, shopId: SHOP_ID, clientId: 'demo-client',
            clientSecret: 'demo-secret', notificationSecret: NOTIFICATION_SECRET, poolSize: 1,
            minAmountCents: 3000, adjustable: false, authorizationTimeoutS: 90,
        });
        try {
            const other = await pool.call<any>(Exports.checkout, {
                order_ref: order.code, order_total_cents: 2500, order_remaining_cents: 2500, currency: 'EUR', payable: true, modes: ['identifier'],
            });
            assert.deepEqual([other.min_amount_cents, other.adjustable, other.authorization_timeout_s], [3000, false, 90]);
            assert.equal(other.eligible, false);
            assert.equal(other.ineligible_reason.code, 'amount_below_minimum');
        } finally {
            await pool.close();
        }
    });

    it('a verified notification for a transaction nobody knows: 204 and nothing recorded, its replay too (never a duplicate), no payment made', async () => {
        const event = {
            id: `evt_nobody_${Date.now()}`, type: 'transaction.updated', created_at: new Date().toISOString(), shop_id: SHOP_ID,
            merchant_order_id: 'NO-SUCH-ORDER', transaction_id: 'tx_nobody_knows', state: 'VALIDATED', sequence: 5,
        };
        const post = (e: object) => {
            const n = signedNotification(NOTIFICATION_SECRET, e);
            return fetch(`${env.baseUrl}/cvco/v1/notifications`, { method: 'POST', headers: n.headers, body: n.body });
        };
        const first = await post(event);
        assert.equal(first.status, 204, await first.text());
        // PROTOCOL.md §3: not ours, so not even its event id is kept.
        const replay = await post(event);
        assert.equal(replay.status, 204, await replay.text());
        const events = app().get(TransactionalConnection).rawConnection.getRepository(CvcoNotificationEvent);
        assert.equal(await events.count({ where: { eventId: event.id } }), 0);
        const records = app().get(TransactionalConnection).rawConnection.getRepository(CvcoPaymentRecord);
        assert.equal(await records.count({ where: { orderCode: 'NO-SUCH-ORDER' } }), 0);
        const payments = await env.adminClient.query(gql`{ payments: orders(options: { filter: { code: { eq: "NO-SUCH-ORDER" } } }) { totalItems } }`);
        assert.equal(payments.payments.totalItems, 0);
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
