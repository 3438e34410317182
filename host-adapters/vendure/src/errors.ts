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

/** One code of the plugin's `error_catalogue` export (the single table of every adapter). */
export interface CatalogueEntry {
    code: string;
    http_status: number;
    retryable: boolean;
    outcome_unknown: boolean;
    message_fr: string;
    message_en: string;
}

let catalogue: Map<string, CatalogueEntry> | undefined;

/** Installs the plugin's catalogue (loaded once, by the first `WasmPool.call`). */
export function installCatalogue(entries: CatalogueEntry[]) {
    catalogue = new Map(entries.map(e => [e.code, e]));
}

export function catalogueLoaded(): boolean {
    return catalogue !== undefined;
}

function entry(code: string): CatalogueEntry {
    const found = catalogue?.get(code) ?? catalogue?.get('internal');
    // Only before the catalogue could be read (the plugin itself failed to load).
    return found ?? { code, http_status: 500, retryable: true, outcome_unknown: true, message_fr: code, message_en: code };
}

/**
 * The body in the contract's key order (`code, message_fr, message_en, retryable, field?,
 * payment_id?`), so its JSON is byte-identical to every other adapter's.
 */
export function errorBody(b: CvcoErrorBody): CvcoErrorBody {
    const body: CvcoErrorBody = { code: b.code, message_fr: b.message_fr, message_en: b.message_en, retryable: b.retryable };
    if (b.field) body.field = b.field;
    if (b.payment_id) body.payment_id = b.payment_id;
    return body;
}

/** An error of the catalogue; a detail is appended to both messages after one space. */
export function cvcoError(
    code: string,
    extra: string | { field?: string; payment_id?: string; detail?: [fr: string, en: string] } = {},
): CvcoErrorBody {
    if (typeof extra === 'string') extra = { field: extra };
    const e = entry(code);
    const [fr, en] = extra.detail ? [`${e.message_fr} ${extra.detail[0]}`, `${e.message_en} ${extra.detail[1]}`] : [e.message_fr, e.message_en];
    return errorBody({ code, message_fr: fr, message_en: en, retryable: e.retryable, field: extra.field, payment_id: extra.payment_id });
}

/**
 * Whether a create that failed with this error may still have had its effect at ANCV: its record
 * is kept and reconciled, never dropped. A body marked retryable by the plugin counts too (a 5xx
 * from ANCV after a mutating call), as in cvco-host.
 */
export function outcomeUnknown(error: CvcoErrorBody): boolean {
    return error.retryable || entry(error.code).outcome_unknown;
}

/** HTTP status of a code, from the catalogue. */
export function httpStatus(code: string): number {
    return entry(code).http_status;
}

/** Thrown inside the adapter; controllers turn it into the error body and its status. */
export class CvcoFailure extends Error {
    /** `status`: only where the contract answers another status than the catalogue's (a query parameter: 400). */
    constructor(
        readonly body: CvcoErrorBody,
        private readonly statusOverride?: number,
    ) {
        super(`${body.code}: ${body.message_en}`);
    }
    get status(): number {
        return this.statusOverride ?? httpStatus(this.body.code);
    }
}

export function isCvcoErrorBody(value: unknown): value is CvcoErrorBody {
    const v = value as CvcoErrorBody | null;
    return !!v && typeof v.code === 'string' && typeof v.message_en === 'string' && typeof v.retryable === 'boolean';
}
