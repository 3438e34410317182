/** The cvco error body (`cvco_core::CvcoError`): what every endpoint answers on failure. */
export interface CvcoErrorBody {
    code: string;
    message_fr: string;
    message_en: string;
    retryable: boolean;
    field?: string;
    /** On `payment_in_progress`: the order's payment still in progress (the widget resumes it). */
    payment_id?: string;
}

/** Messages of the codes this adapter raises itself (the plugin brings its own for the rest). */
const MESSAGES: Record<string, [string, string]> = {
    invalid_request: ['Requête invalide.', 'Invalid request.'],
    invalid_beneficiary: [
        "Saisissez l'adresse e-mail de votre compte Chèque-Vacances Connect ou votre identifiant à 11 chiffres.",
        'Enter the e-mail address of your Chèque-Vacances Connect account or your 11-digit id.',
    ],
    amount_below_minimum: [
        'Montant inférieur au minimum accepté en Chèque-Vacances Connect.',
        'Amount below the minimum accepted for Chèque-Vacances Connect.',
    ],
    currency_not_supported: ["Seul l'euro est accepté.", 'Only euros are accepted.'],
    illegal_transition: [
        "Opération impossible dans l'état actuel de la transaction.",
        "Operation not allowed in the transaction's current state.",
    ],
    order_not_found: ['Commande introuvable.', 'Order not found.'],
    payment_not_found: ['Paiement introuvable.', 'Payment not found.'],
    payment_in_progress: [
        'Un paiement Chèque-Vacances Connect est déjà en cours pour cette commande.',
        'A Chèque-Vacances Connect payment is already in progress for this order.',
    ],
    upstream_unavailable: [
        "Le serveur d'acquisition ANCV est indisponible. Réessayez.",
        'The ANCV acquisition server is unavailable. Try again.',
    ],
    upstream_timeout: [
        "Le serveur d'acquisition ANCV n'a pas répondu à temps. Réessayez.",
        'The ANCV acquisition server did not answer in time. Try again.',
    ],
    config_invalid: ['Paramètre de configuration invalide.', 'Invalid configuration value.'],
    internal: ['Erreur interne.', 'Internal error.'],
};

/** As `ErrorCode::retryable` in cvco-core. */
const RETRYABLE = new Set(['upstream_unavailable', 'upstream_timeout', 'internal', 'payment_in_progress']);

/**
 * As `ErrorCode::outcome_unknown` in cvco-core: a create that failed with one of these may still
 * have had its effect at ANCV, so its record is kept and reconciled, never dropped.
 */
export function outcomeUnknown(error: CvcoErrorBody): boolean {
    return error.retryable || error.code === 'upstream_protocol' || error.code === 'idempotency_conflict';
}

export function cvcoError(code: string, field?: string): CvcoErrorBody {
    const [fr, en] = MESSAGES[code] ?? MESSAGES.internal;
    const body: CvcoErrorBody = { code, message_fr: fr, message_en: en, retryable: RETRYABLE.has(code) };
    if (field) body.field = field;
    return body;
}

/** HTTP status of a code, as `ErrorCode::http_status` in cvco-core. */
export function httpStatus(code: string): number {
    switch (code) {
        case 'unauthorized':
            return 401;
        case 'card_declined':
            return 402;
        case 'too_many_attempts':
            return 429;
        case 'forbidden':
        case 'shop_not_affiliated':
            return 403;
        case 'transaction_not_found':
        case 'pre_transaction_not_found':
        case 'order_not_found':
        case 'payment_not_found':
        case 'not_found':
            return 404;
        case 'illegal_transition':
        case 'idempotency_conflict':
        case 'account_locked':
        case 'payment_in_progress':
            return 409;
        case 'upstream_unavailable':
        case 'upstream_protocol':
            return 502;
        case 'upstream_timeout':
            return 504;
        case 'internal':
            return 500;
        default:
            return 422;
    }
}

/** Thrown inside the adapter; controllers turn it into the error body and its status. */
export class CvcoFailure extends Error {
    constructor(readonly body: CvcoErrorBody) {
        super(`${body.code}: ${body.message_en}`);
    }
    get status(): number {
        return httpStatus(this.body.code);
    }
}

export function isCvcoErrorBody(value: unknown): value is CvcoErrorBody {
    const v = value as CvcoErrorBody | null;
    return !!v && typeof v.code === 'string' && typeof v.message_en === 'string' && typeof v.retryable === 'boolean';
}
