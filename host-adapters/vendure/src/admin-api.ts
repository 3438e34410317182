import { Args, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, ID, Permission, RequestContext } from '@vendure/core';
import { GraphQLError } from 'graphql';
import gql from 'graphql-tag';

import { CvcoFailure } from './errors';
import { ContractPaymentRequest, CvcoPaymentRequests } from './payment-requests';

/**
 * Admin API: CVCo payment requests of an order (MOTO with delay by e-mail, pre-reservations),
 * their live status and cancellation. Settlement of a deferred one is Vendure's own
 * `settlePayment`, refunds Vendure's `refundOrder` (the payment handler's hooks call ANCV).
 * A refusal is a GraphQL error whose `extensions.cvco` is the cvco error body.
 */
export const adminApiSchema = gql`
    type CvcoPaymentRequest {
        requestId: String
        "The contract payment id (PROTOCOL.md): GET /cvco/v1/payments/{paymentId}, kept by the Vendure payment once paid"
        paymentId: String!
        orderCode: String!
        amount: Int!
        delivery: String!
        emailMasked: String
        capture: String!
        status: String!
        final: Boolean!
        finalised: Boolean!
        expiresAt: DateTime
        qrPayload: String
        "ANCV's transaction once a beneficiary paid"
        transactionId: String
        "The contract Payment (PROTOCOL.md) once the order has it"
        payment: JSON
        createdAt: DateTime!
        updatedAt: DateTime!
    }

    input CreateCvcoPaymentRequestInput {
        orderId: ID!
        "Default: what the order still needs"
        amount: Int
        email: String!
        expiresInS: Int
        "immediate (default) or deferred (a pre-reservation, captured by settlePayment)"
        capture: String
        "The same attempt again answers the same request, never a second e-mail"
        attempt: String!
    }

    extend type Query {
        cvcoPaymentRequest(requestId: String!): CvcoPaymentRequest
        cvcoPaymentRequests(orderId: ID!): [CvcoPaymentRequest!]!
    }

    extend type Mutation {
        createCvcoPaymentRequest(input: CreateCvcoPaymentRequestInput!): CvcoPaymentRequest!
        cancelCvcoPaymentRequest(requestId: String!): CvcoPaymentRequest!
    }
`;

function toGraphQl(r: ContractPaymentRequest) {
    return {
        requestId: r.request_id,
        paymentId: r.payment_id,
        orderCode: r.order_ref,
        amount: r.amount_cents,
        delivery: r.delivery,
        emailMasked: r.email_masked,
        capture: r.capture,
        status: r.status,
        final: r.final,
        finalised: r.finalised,
        expiresAt: r.expires_at,
        qrPayload: r.qr_payload,
        transactionId: r.payment?.transaction_id ?? null,
        payment: r.payment,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
    };
}

async function graphQl<T>(work: () => Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (e) {
        if (e instanceof CvcoFailure) {
            throw new GraphQLError(e.body.message_en, { extensions: { code: e.body.code, cvco: e.body } });
        }
        throw e;
    }
}

@Resolver()
export class CvcoAdminResolver {
    constructor(private requests: CvcoPaymentRequests) {}

    @Query()
    @Allow(Permission.ReadOrder)
    cvcoPaymentRequest(@Ctx() ctx: RequestContext, @Args() args: { requestId: string }) {
        return graphQl(async () => {
            try {
                return toGraphQl(await this.requests.get(ctx, args.requestId));
            } catch (e) {
                if (e instanceof CvcoFailure && e.body.code === 'pre_transaction_not_found') return null;
                throw e;
            }
        });
    }

    @Query()
    @Allow(Permission.ReadOrder)
    cvcoPaymentRequests(@Ctx() ctx: RequestContext, @Args() args: { orderId: ID }) {
        return graphQl(async () => {
            await this.requests.orderById(ctx, args.orderId);
            return (await this.requests.list(ctx, {}, args.orderId)).items.map(toGraphQl);
        });
    }

    @Mutation()
    @Allow(Permission.UpdateOrder)
    createCvcoPaymentRequest(
        @Ctx() ctx: RequestContext,
        @Args() args: { input: { orderId: ID; amount?: number; email: string; expiresInS?: number; capture?: string; attempt: string } },
    ) {
        return graphQl(async () => {
            const { orderId, amount, email, expiresInS, capture, attempt } = args.input;
            const order = await this.requests.orderById(ctx, orderId);
            const body: Record<string, unknown> = { order_ref: order.code, delivery: 'email', email, attempt };
            if (amount != null) body.amount_cents = amount;
            if (expiresInS != null) body.expires_in_s = expiresInS;
            if (capture != null) body.capture = capture;
            return toGraphQl((await this.requests.create(ctx, JSON.stringify(body))).request);
        });
    }

    @Mutation()
    @Allow(Permission.UpdateOrder)
    cancelCvcoPaymentRequest(@Ctx() ctx: RequestContext, @Args() args: { requestId: string }) {
        return graphQl(async () => toGraphQl(await this.requests.cancel(ctx, args.requestId)));
    }
}
