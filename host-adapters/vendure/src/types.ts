/** Options of `CvcoPlugin.init()`. Secrets stay on the server: they only reach the wasm plugin's config. */
export interface CvcoPluginOptions {
    /** Path of `cvco_plugin.wasm`. */
    wasmPath: string;
    /** ANCV acquisition server, e.g. `https://acq.example` (sandbox: `http://127.0.0.1:7070`). */
    apiUrl: string;
    shopId: string;
    clientId: string;
    clientSecret: string;
    notificationSecret: string;
    /** Below this the CVCo option is not offered (default 2000 = 20,00 €). */
    minAmountCents?: number;
    /** Whether the beneficiary may pay less than asked (partial payment); default: the shop's ANCV setting. */
    adjustable?: boolean;
    /** Public base URL of this Vendure server: ANCV posts to `${publicUrl}/cvco/v1/notifications`. Without it, polling only. */
    publicUrl?: string;
    /** Code of the Vendure PaymentMethod that uses `cvcoPaymentHandler` (default `cvco`). */
    paymentMethodCode?: string;
    /** How often non-final payments are re-read from ANCV (default 3000 ms). */
    pollIntervalMs?: number;
    /** Budget of one plugin call (default 10000 ms). */
    requestTimeoutMs?: number;
    /** Shown to the shopper when ANCV gives no deadline (default 180 s). */
    authorizationTimeoutS?: number;
    /** Plugin instances kept ready (default 2). */
    poolSize?: number;
    /** Hosts the plugin may call (default: the host of `apiUrl`). */
    allowedHosts?: string[];
}

export interface NextAction {
    type: 'wait_for_app' | 'show_qr' | 'collect_beneficiary' | 'none';
    deadline?: string;
    payload?: string;
    expires_at?: string;
}

/** `cvco_core::plugin_api::Payment`: an ANCV transaction as the wasm plugin reports it. */
export interface PluginPayment {
    id: string;
    order_ref: string;
    amount_cents: number;
    currency: string;
    status: string;
    final: boolean;
    authorized_cents: number;
    remaining_cents: number;
    captured_cents: number;
    refunded_cents: number;
    ancv_state: string;
    ancv_label_fr: string;
    ancv_label_en: string;
    abort_reason?: string;
    payers: Array<{
        beneficiary: string;
        amount_cents: number;
        authorizations: Array<{ number: string; amount_cents: number; validated_at: string }>;
    }>;
    refunds: Array<{ id: string; amount_cents: number; created_at: string; reason?: string }>;
    created_at: string;
    updated_at: string;
    expires_at?: string;
    next_action: NextAction;
}

/** What the adapter keeps in the Vendure Payment's (admin-only) metadata under `cvco`. */
export interface CvcoMetadata {
    /** The contract's payment_id (the record's); absent on payments made before records: the transaction id. */
    payment_id?: string;
    attempt: string;
    mode: 'identifier';
    beneficiary_masked: string;
    /** Increases with every change recorded here: the SSE event id. */
    sequence: number;
    /** No longer read (notifications are deduplicated in `cvco_notification`); left on rows written before. */
    ancv_sequence?: number;
    events?: string[];
    payment: PluginPayment;
    error: unknown;
}
