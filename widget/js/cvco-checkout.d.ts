// Types of the <cvco-checkout> element and of mount().

export interface MountOptions {
  /** Base URL of the merchant API (PROTOCOL.md §1), default "/cvco/v1". */
  endpoint?: string;
  /** The order to pay; the amount is the backend's, never sent by the widget. */
  orderRef: string;
  /** "fr" or "en"; default the page's lang. */
  locale?: 'fr' | 'en' | string;
  /** "identifier" (e-mail / CV Connect id), "qr" (payment QR code for counters and kiosks) or "auto". */
  mode?: 'identifier' | 'qr' | 'auto';
  /** After a partial authorization, offer a new CVCo payment for the remainder (counters). */
  chainRemainder?: boolean;
  /** Staff pages (a counter): the back-office session's CSRF token, sent as X-CSRF-Token. */
  csrfToken?: string;
}

export interface CvcoHandle {
  destroy(): void;
}

export function mount(element: HTMLElement, options: MountOptions): Promise<CvcoHandle>;

export type CvcoStatus =
  | 'pending'
  | 'awaiting_beneficiary'
  | 'authorized'
  | 'partially_authorized'
  | 'declined'
  | 'expired'
  | 'cancelled'
  | 'refunded'
  | 'failed';

export interface CvcoReadyDetail {
  eligible: boolean;
  order_remaining_cents: number;
  min_amount_cents: number;
}

export interface CvcoPaymentDetail {
  payment_id: string;
  status: CvcoStatus;
  amount_cents: number;
  authorized_cents: number;
  /** This payment's amount minus what was authorized. */
  remaining_cents: number;
  /** What the order still needs (to pay by card, or by a chained CVCo payment). */
  order_remaining_cents: number;
  /** Why ANCV refused it, when it said (the widget shows a message for each). */
  abort_reason?: 'declined_by_beneficiary' | 'insufficient_balance' | 'account_locked' | 'technical';
}

export interface CvcoErrorDetail {
  code: string;
  message: string;
}

export interface CvcoEventMap {
  'cvco-ready': CustomEvent<CvcoReadyDetail>;
  'cvco-change': CustomEvent<CvcoPaymentDetail>;
  'cvco-pending': CustomEvent<CvcoPaymentDetail>;
  'cvco-authorized': CustomEvent<CvcoPaymentDetail>;
  'cvco-partially-authorized': CustomEvent<CvcoPaymentDetail>;
  'cvco-declined': CustomEvent<CvcoPaymentDetail>;
  'cvco-expired': CustomEvent<CvcoPaymentDetail>;
  'cvco-error': CustomEvent<CvcoErrorDetail & Partial<CvcoPaymentDetail>>;
  /** The shopper pressed the widget's "Try again" (the page clears its own note of the failure). */
  'cvco-retry': CustomEvent<Record<string, never>>;
}

export declare class CvcoCheckout extends HTMLElement {
  addEventListener<K extends keyof CvcoEventMap>(
    type: K,
    listener: (this: CvcoCheckout, ev: CvcoEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'cvco-checkout': CvcoCheckout;
  }
  interface HTMLElementEventMap extends CvcoEventMap {}
}
