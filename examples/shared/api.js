// Thin fetch wrapper: JSON in and out, and the cvco error body turned into an ApiError.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message_en || body?.code || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'internal';
    this.messageFr = body?.message_fr ?? null;
    this.messageEn = body?.message_en ?? null;
    this.retryable = Boolean(body?.retryable);
    this.field = body?.field ?? null;
    this.body = body;
  }

  /** The message in the page's language, with a fallback that never shows a raw stack. */
  localized(lang) {
    const text = lang === 'en' ? (this.messageEn || this.messageFr) : (this.messageFr || this.messageEn);
    if (text) return text;
    if (this.status === 0) {
      return lang === 'en' ? 'The server cannot be reached. Check your connection and try again.'
        : 'Le serveur est injoignable. Vérifiez votre connexion et réessayez.';
    }
    return lang === 'en' ? `Unexpected error (${this.code}).` : `Erreur inattendue (${this.code}).`;
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
let csrfToken = null;

/** The back-office CSRF token lives in memory only (never in storage). */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

export function hasCsrfToken() {
  return csrfToken !== null;
}

/** For the counter's widget, which calls the API itself under the back-office session. */
export function currentCsrfToken() {
  return csrfToken;
}

export async function api(path, { method = 'GET', body, signal, headers = {} } = {}) {
  const init = {
    method,
    credentials: 'include',
    headers: { Accept: 'application/json', ...headers },
    signal,
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (STATE_CHANGING.has(method) && csrfToken) {
    init.headers['X-CSRF-Token'] = csrfToken;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ApiError(0, { code: 'upstream_unavailable', retryable: true });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && typeof data === 'object' ? data : { code: `http_${response.status}` });
  }
  return data;
}

/** A fresh idempotency token per user action (1–64 chars). */
export function newAttempt() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
