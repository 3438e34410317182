// Helpers shared by the back-office views.

import { ApiError } from '../shared/api.js';
import { h, announce } from '../shared/dom.js';
import { t, lang, statusLabel } from '../shared/i18n.js';
import { formatCents, parseEurosToCents } from '../shared/money.js';

let toastTimer = null;

export function toast(text, tone = 'info') {
  const box = document.getElementById('toast');
  announce(box, text, tone);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => announce(box, ''), 6000);
}

export function asApiError(error) {
  return error instanceof ApiError ? error : new ApiError(0, null);
}

/** Called by views on any failed call: a lost session sends the user back to the login form. */
export function isSessionLost(error) {
  return error instanceof ApiError && error.status === 401;
}

export function statusBadge(status) {
  return h('span', { class: 'badge', dataset: { status: String(status) } }, statusLabel(status));
}

export function money(cents) {
  return h('span', { class: 'amount' }, formatCents(cents, lang()));
}

export function receiptLinks(paymentId) {
  const base = `/cvco/v1/receipts/${encodeURIComponent(paymentId)}`;
  return [
    h('a', { class: 'btn btn-small', href: base, target: '_blank', rel: 'noopener' }, t('receipt.print')),
    h('a', { class: 'btn btn-small', href: `${base}?duplicate=true`, target: '_blank', rel: 'noopener' }, t('receipt.duplicate')),
  ];
}

/** A labelled euro input; read it back with readCents(form, name). */
export function amountField(name, label, { value = '', required = true, hint } = {}) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 7)}`;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name, inputmode: 'decimal', autocomplete: 'off', value, required, placeholder: '0,00' }),
    hint ? h('p', { class: 'hint' }, hint) : null);
}

export function textField(name, label, attrs = {}) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 7)}`;
  const { hint, ...rest } = attrs;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name, ...rest }),
    hint ? h('p', { class: 'hint' }, hint) : null);
}

export function selectField(name, label, options, value = '') {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 7)}`;
  const select = h('select', { id, name });
  for (const [optionValue, optionLabel] of options) {
    select.append(h('option', { value: optionValue, selected: optionValue === value }, optionLabel));
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), select);
}

/** Reads an amount field as integer cents; a local error (same shape as the server's) when invalid. */
export function readCents(form, name, { optional = false } = {}) {
  const raw = form.elements[name].value.trim();
  if (raw === '' && optional) return { cents: undefined };
  const cents = parseEurosToCents(raw);
  if (cents === null || cents <= 0) {
    return { error: { field: name, localized: () => t('form.badAmount') } };
  }
  return { cents };
}

export function localError(field, key, vars) {
  return { field, localized: () => t(key, vars) };
}

export function pageHeader(titleKey, ...extra) {
  return h('div', { class: 'row-between page-head' }, h('h1', {}, t(titleKey)), ...extra);
}

/** The message of a cvco error body embedded in another object (Payment.error). */
export function errorBodyText(body) {
  if (!body) return '';
  return (lang() === 'en' ? body.message_en || body.message_fr : body.message_fr || body.message_en) || body.code || '';
}

/**
 * A time limit screen readers can use: role="timer" (not spoken every second, even inside the
 * polite live card) and one polite announcement when 60 s are left. Returns the element and stop().
 */
export function countdown(deadline) {
  const clock = h('span', { class: 'countdown', role: 'timer', 'aria-live': 'off', 'aria-atomic': 'true' });
  const notice = h('span', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  let announced = false;
  const tick = () => {
    const left = Math.max(0, Math.round((Date.parse(deadline) - Date.now()) / 1000));
    clock.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    if (!announced && left > 0 && left <= 60) {
      announced = true;
      notice.textContent = t('common.oneMinuteLeft');
    }
  };
  tick();
  const timer = setInterval(tick, 1000);
  return { node: h('span', {}, clock, notice), stop: () => clearInterval(timer) };
}
