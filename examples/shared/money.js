// Amounts are integer cents from the server; floats appear only when formatting for display.

const formatters = new Map();

function formatter(lang) {
  const locale = lang === 'en' ? 'en-GB' : 'fr-FR';
  if (!formatters.has(locale)) {
    formatters.set(locale, new Intl.NumberFormat(locale, { style: 'currency', currency: 'EUR' }));
  }
  return formatters.get(locale);
}

/** Display-only formatting of integer cents. */
export function formatCents(cents, lang = 'fr') {
  if (!Number.isInteger(cents)) return '—';
  return formatter(lang).format(cents / 100);
}

/**
 * Parses what a person types ("45", "45,5", "45,50", "1 234,56", "45.50") into integer cents
 * without floats: split on the decimal separator, parse the two parts as integers.
 * Returns null when the text is not an amount.
 */
export function parseEurosToCents(text) {
  if (typeof text !== 'string') return null;
  const cleaned = text.replace(/[\s\u00a0\u202f€]/g, '');
  if (cleaned === '') return null;
  const match = /^(\d{1,7})(?:[,.](\d{0,2}))?$/.exec(cleaned);
  if (!match) return null;
  const euros = Number.parseInt(match[1], 10);
  const fraction = (match[2] ?? '').padEnd(2, '0');
  const cents = euros * 100 + Number.parseInt(fraction, 10);
  return Number.isSafeInteger(cents) ? cents : null;
}

/**
 * Keeps only what an amount being typed can be: digits, one decimal comma (a dot becomes a comma),
 * at most two decimals and six integer digits. Used on every keystroke of the counter keypad.
 */
export function sanitizeAmountInput(text) {
  let value = String(text).replace(/\./g, ',').replace(/[^\d,]/g, '');
  const comma = value.indexOf(',');
  if (comma !== -1) value = value.slice(0, comma + 1) + value.slice(comma + 1).replace(/,/g, '').slice(0, 2);
  const [integer, fraction] = value.split(',');
  const trimmed = integer.replace(/^0+(?=\d)/, '').slice(0, 6);
  return fraction === undefined ? trimmed : `${trimmed || '0'},${fraction}`;
}

/** The inverse of parseEurosToCents, for pre-filling an input ("45,50"). */
export function centsToInput(cents) {
  if (!Number.isInteger(cents) || cents < 0) return '';
  const euros = Math.trunc(cents / 100);
  const rest = String(cents % 100).padStart(2, '0');
  return `${euros},${rest}`;
}

/** Paris time (the shop's), with seconds unless `short` (tables). */
export function formatDateTime(iso, lang = 'fr', { short = false } = {}) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'fr-FR', {
    dateStyle: 'short',
    timeStyle: short ? 'short' : 'medium',
    timeZone: 'Europe/Paris',
  }).format(date);
}

/** Today's date in Paris as YYYY-MM-DD (the business day of the back-office). */
export function parisToday() {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit',
  }).format(new Date());
  return parts;
}
