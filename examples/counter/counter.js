import './strings.js';
import { api, ApiError, currentCsrfToken, newAttempt } from '../shared/api.js';
import { h, $, $$, clear, announce, busy, showFieldError, clearFieldErrors } from '../shared/dom.js';
import { t, lang, applyTranslations, wireLangToggle, onLangChange, statusLabel } from '../shared/i18n.js';
import { formatCents, formatDateTime, parseEurosToCents, sanitizeAmountInput as sanitizeAmount } from '../shared/money.js';
import { loadSession, logout, renderLoginForm, currentSession, can, roleLabel } from '../shared/bo-session.js';
import { loadWidget, paymentOf } from '../shared/widget-loader.js';
import { watchPayment } from '../shared/payment-watch.js';

let sale = null; // { order_ref, mode, capture, attempt, total_cents, paid_cents, remaining_cents, payments: Map }
let widget = null;
let stopFollow = null; // the watch of a pre-reservation, while one is followed

// ---- amount entry -------------------------------------------------------------------------------

function amountCents() {
  const cents = parseEurosToCents($('#amount').value);
  return cents !== null && cents > 0 ? cents : null;
}

function renderPreview() {
  $('#amount-preview').textContent = formatCents(amountCents() ?? 0, lang());
}

function pressKey(key) {
  const input = $('#amount');
  if (key === 'clear') input.value = '';
  else if (key === 'back') input.value = input.value.slice(0, -1);
  else input.value = sanitizeAmount(input.value + key);
  clearFieldErrors($('#amount-form'));
  renderPreview();
}

// ---- sale -----------------------------------------------------------------------------------------

async function startSale(mode, button) {
  const form = $('#amount-form');
  clearFieldErrors(form);
  announce($('#mode-error'), '');
  const cents = amountCents();
  if (cents === null) {
    showFieldError(form, { field: 'amount', localized: () => t('counter.badAmount') }, lang());
    return;
  }
  await busy(button, async () => {
    const label = $('#label').value.trim();
    const capture = $('input[name=capture]:checked')?.value === 'deferred' ? 'deferred' : 'immediate';
    try {
      const order = await api('/counter/api/orders', { method: 'POST', body: { amount_cents: cents, ...(label ? { label } : {}) } });
      sale = {
        order_ref: order.order_ref,
        mode,
        capture,
        attempt: null,
        total_cents: order.total_cents ?? cents,
        paid_cents: 0,
        remaining_cents: order.remaining_cents ?? cents,
        payments: new Map(),
      };
      await showPayStep();
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(0, null);
      if (apiError.status === 401) {
        await showLogin(t('counter.signInNote'));
        return;
      }
      // amount_cents errors belong to the amount field
      if (apiError.field === 'amount_cents') apiError.field = 'amount';
      if (!showFieldError(form, apiError, lang())) announce($('#mode-error'), apiError.localized(lang()), 'error');
    }
  });
}

async function showPayStep() {
  $('#step-amount').hidden = true;
  $('#step-pay').hidden = false;
  $('#pay-ref').textContent = sale.order_ref;
  $('#retry').hidden = true;
  $('#retry').textContent = t('counter.retry');
  $('#to-requests').hidden = true;
  $('#reserve-form').hidden = true;
  announce($('#outcome'), '');
  clear($('#receipts'));
  renderSale();
  const loaded = await loadWidget();
  $('#widget-unavailable').hidden = loaded;
  $('#main').focus();
  if (loaded) await beginCvco();
}

/** A CVCo transaction for what the sale still needs: at once through the widget, or reserved. */
async function beginCvco() {
  stopFollow?.();
  stopFollow = null;
  if (widget) widget.remove();
  widget = null;
  clear($('#widget-host'));
  if (sale.capture !== 'deferred') {
    mountWidget();
    return;
  }
  if (sale.mode === 'qr') {
    await reserve(null);
    return;
  }
  const form = $('#reserve-form');
  clearFieldErrors(form);
  $('#reserve-beneficiary').value = '';
  form.hidden = false;
  $('#reserve-beneficiary').focus(); // a handheld scanner types here
}

/**
 * A pre-reservation (000 §4.3.2) through the back-office endpoint (the widget only pays at once),
 * then the widget follows it: the order's current payment (QR shown, or waiting for the app).
 */
async function reserve(beneficiary) {
  const current = sale;
  const form = $('#reserve-form');
  clearFieldErrors(form);
  current.attempt ??= newAttempt(); // kept until it succeeds: a retried click is the same request
  try {
    // amount_cents omitted: what the order still needs (its total, or the rest of a partial).
    const payment = await api('/cvco/v1/back-office/payments', {
      method: 'POST',
      body: {
        order_ref: current.order_ref, channel: 'proximity', mode: current.mode,
        ...(beneficiary ? { beneficiary } : {}), capture: 'deferred', attempt: current.attempt,
      },
    });
    if (sale !== current) return;
    current.attempt = null;
    current.payments.set(payment.payment_id, payment);
    form.hidden = true;
    mountWidget();
    followReservation(payment);
  } catch (error) {
    if (sale !== current) return;
    const apiError = error instanceof ApiError ? error : new ApiError(0, null);
    if (apiError.status === 401) {
      await showLogin(t('counter.signInNote'));
      return;
    }
    if (!form.hidden && showFieldError(form, apiError, lang())) return;
    announce($('#outcome'), apiError.localized(lang()), 'error');
    $('#retry').hidden = false;
  }
}

/**
 * The page follows a reservation itself (stream, else polling): the widget only shows it, and a
 * widget that loads after the beneficiary answered finds no payment left to follow.
 */
function followReservation(payment) {
  const current = sale;
  stopFollow = watchPayment(payment, (next) => {
    if (sale !== current) return;
    current.payments.set(next.payment_id, { ...(current.payments.get(next.payment_id) || {}), ...next });
    if (next.final) onReservationFinal(next);
    else renderSale();
  });
}

async function onReservationFinal(payment) {
  const current = sale;
  if (widget) widget.remove();
  widget = null;
  const tone = payment.authorized_cents > 0 ? 'ok' : 'error';
  clear($('#widget-host')).append(h('p', { class: 'notice', dataset: { tone } },
    `${statusLabel(payment.status)} · ${formatCents(payment.authorized_cents ?? 0, lang())}`));
  await refreshSale();
  if (sale !== current) return;
  const outcome = $('#outcome');
  if (payment.authorized_cents > 0) {
    if (sale.remaining_cents === 0) {
      await announceReserved(payment);
      return;
    }
    if (await nextForRemainder()) return;
    announce(outcome, t('counter.partial', { paid: formatCents(sale.paid_cents, lang()), rest: formatCents(sale.remaining_cents, lang()) }), 'warn');
    return;
  }
  const key = payment.status === 'expired' ? 'counter.expired'
    : payment.status === 'cancelled' ? 'counter.reserveCancelled' : 'counter.declined';
  announce(outcome, t(key), 'error');
  $('#retry').hidden = false;
}

/** An authorized pre-reservation: nothing is collected yet; say until when it can be. */
async function announceReserved(payment) {
  const current = sale;
  let full = payment;
  try {
    full = await api(`/cvco/v1/payments/${encodeURIComponent(payment.payment_id)}`);
  } catch {
    /* the event's copy, without the deadline maybe */
  }
  if (sale !== current) return;
  const amount = formatCents(full.authorized_cents ?? 0, lang());
  announce($('#outcome'), full.deadline
    ? t('counter.reserved', { amount, at: formatDateTime(full.deadline, lang()) })
    : t('counter.reservedNoDeadline', { amount }), 'ok');
  $('#retry').hidden = true;
  $('#to-requests').hidden = false;
  $('#new-sale').focus();
}

function mountWidget() {
  const host = clear($('#widget-host'));
  widget = document.createElement('cvco-checkout');
  widget.setAttribute('endpoint', '/cvco/v1');
  widget.setAttribute('order-ref', sale.order_ref);
  widget.setAttribute('locale', lang());
  widget.setAttribute('mode', sale.mode);
  // The remainder is the page's (the merchant's settings decide, through the server): no chain button.
  // The counter session's payments and cancels need the CSRF token, like every staff call.
  if (currentCsrfToken()) widget.setAttribute('csrf-token', currentCsrfToken());
  for (const name of ['cvco-authorized', 'cvco-partially-authorized', 'cvco-declined', 'cvco-expired', 'cvco-error', 'cvco-change']) {
    widget.addEventListener(name, (event) => onWidgetEvent(name, event.detail));
  }
  widget.addEventListener('cvco-ready', (event) => onWidgetReady(event.detail));
  widget.addEventListener('cvco-pending', () => {
    $('#retry').hidden = true;
    announce($('#outcome'), '');
  });
  host.append(widget);
}

/** One click for the QR (the mode button was it), and the id field focused for a handheld scanner. */
function onWidgetReady(detail) {
  if (!sale || !widget || !detail?.eligible) return;
  const root = widget.shadowRoot;
  const act = () => {
    if (!widget || !root) return;
    if (sale.mode === 'qr') root.querySelector('[data-action=qr]')?.click();
    else root.querySelector('input')?.focus();
  };
  requestAnimationFrame(act);
}

/** After a partial payment: chain, ask, or hand over to another tender, as cvco-core says. */
async function nextForRemainder() {
  const current = sale;
  let view;
  try {
    view = await api(`/counter/api/orders/${encodeURIComponent(current.order_ref)}`);
  } catch {
    return false;
  }
  if (sale !== current) return true;
  const step = view.remainder || {};
  const paid = formatCents(sale.paid_cents, lang());
  const rest = formatCents(step.amount ?? sale.remaining_cents, lang());
  if (step.step === 'chain' && step.automatic) {
    announce($('#outcome'), t('counter.chainAuto', { paid, rest }), 'warn');
    await beginCvco();
    return true;
  }
  if (step.step === 'chain') {
    announce($('#outcome'), t('counter.partial', { paid, rest }), 'warn');
    $('#retry').textContent = t('counter.chainAsk');
    $('#retry').hidden = false;
    $('#retry').focus();
    return true;
  }
  if (step.step === 'other_tender') {
    announce($('#outcome'), t('counter.otherTender', { paid, rest, min: formatCents(step.minimum, lang()) }), 'warn');
    $('#retry').hidden = true;
    $('#new-sale').focus();
    return true;
  }
  return false;
}

function renderSale() {
  $('#sale-total').textContent = formatCents(sale.total_cents, lang());
  $('#sale-paid').textContent = formatCents(sale.paid_cents, lang());
  $('#due-amount').textContent = formatCents(sale.remaining_cents, lang());
  const due = $('#due');
  due.dataset.state = sale.remaining_cents === 0 ? 'paid' : sale.paid_cents > 0 ? 'due' : 'open';
  const list = clear($('#receipts'));
  for (const payment of sale.payments.values()) {
    if (!(payment.authorized_cents > 0)) continue;
    const base = `/cvco/v1/receipts/${encodeURIComponent(payment.payment_id)}`;
    list.append(h('li', {},
      h('span', {}, t('counter.receiptLine', { amount: formatCents(payment.authorized_cents, lang()), ref: payment.transaction_id || payment.payment_id })),
      h('span', { class: 'row' },
        h('a', { class: 'btn btn-small', href: base, target: '_blank', rel: 'noopener' }, t('counter.receipt')),
        h('a', { class: 'btn btn-small', href: `${base}?duplicate=true`, target: '_blank', rel: 'noopener' }, t('counter.duplicate')))));
  }
}

/** Re-reads the order's CVCo state from the backend (the event is a hint; the backend is the truth). */
async function refreshSale() {
  // The cashier may start a new sale while this reads: it then updates nothing.
  const current = sale;
  if (!current) return;
  try {
    const checkout = await api(`/cvco/v1/checkout?order_ref=${encodeURIComponent(current.order_ref)}`);
    current.total_cents = checkout.order_total_cents ?? current.total_cents;
    current.remaining_cents = checkout.order_remaining_cents ?? current.remaining_cents;
    current.paid_cents = Math.max(0, current.total_cents - current.remaining_cents);
  } catch {
    /* keep what the event said */
  }
  // Widget events carry amounts only; the receipt lines want the transaction reference.
  await Promise.all([...current.payments.values()]
    .filter((payment) => payment.authorized_cents > 0 && !payment.transaction_id)
    .map(async (payment) => {
      try {
        const full = await api(`/cvco/v1/payments/${encodeURIComponent(payment.payment_id)}`);
        current.payments.set(payment.payment_id, { ...payment, ...full });
      } catch {
        /* the receipt link still works with the payment id */
      }
    }));
  if (sale === current) renderSale();
}

async function onWidgetEvent(name, detail) {
  if (!sale) return;
  const payment = paymentOf(detail);
  if (payment.payment_id) sale.payments.set(payment.payment_id, { ...(sale.payments.get(payment.payment_id) || {}), ...payment });
  if (Number.isInteger(payment.order_remaining_cents)) {
    sale.remaining_cents = payment.order_remaining_cents;
    sale.paid_cents = Math.max(0, sale.total_cents - sale.remaining_cents);
  }
  renderSale();
  if (name === 'cvco-change') return;
  // A reservation's outcome is read by its own watch (followReservation), not from the widget.
  if (sale.capture === 'deferred' && detail?.code !== 'widget_load_failed') return;
  const outcome = $('#outcome');
  if (name === 'cvco-authorized') {
    const current = sale;
    await refreshSale();
    if (sale !== current) return;
    if (sale.remaining_cents > 0 && await nextForRemainder()) return;
    announce(outcome, sale.remaining_cents === 0 ? t('counter.authorized')
      : t('counter.partial', { paid: formatCents(sale.paid_cents, lang()), rest: formatCents(sale.remaining_cents, lang()) }),
    sale.remaining_cents === 0 ? 'ok' : 'warn');
    $('#retry').hidden = sale.remaining_cents === 0;
    $('#new-sale').focus();
    return;
  }
  if (name === 'cvco-partially-authorized') {
    const current = sale;
    await refreshSale();
    if (sale !== current) return;
    if (await nextForRemainder()) return;
    announce(outcome, t('counter.partial', { paid: formatCents(sale.paid_cents, lang()), rest: formatCents(sale.remaining_cents, lang()) }), 'warn');
    return;
  }
  if (name === 'cvco-declined' || name === 'cvco-expired') {
    const current = sale;
    await refreshSale();
    if (sale !== current) return;
    announce(outcome, t(name === 'cvco-declined' ? 'counter.declined' : 'counter.expired'), 'error');
    $('#retry').hidden = false;
    return;
  }
  if (detail?.code === 'widget_load_failed') {
    $('#widget-unavailable').hidden = false;
    return;
  }
  // Other cvco-error: the widget shows the message itself, next to what caused it.
}

function newSale() {
  stopFollow?.();
  stopFollow = null;
  if (widget) widget.remove();
  widget = null;
  sale = null;
  clear($('#widget-host'));
  $('#amount').value = '';
  $('#label').value = '';
  // Each sale starts as a normal payment: a pre-reservation is chosen for that sale only.
  $('input[name=capture][value=immediate]').checked = true;
  $('#reserve-form').hidden = true;
  $('#to-requests').hidden = true;
  renderPreview();
  $('#step-pay').hidden = true;
  $('#step-cancel').hidden = true;
  $('#step-amount').hidden = false;
  $('#amount').focus();
}

// ---- cancellation by reference (the reference first, then confirm) -------------------------------

function showCancel() {
  $('#step-amount').hidden = true;
  $('#step-cancel').hidden = false;
  resetCancel();
}

function resetCancel() {
  clearFieldErrors($('#cancel-form'));
  $('#cancel-confirm').hidden = true;
  $('#cancel-confirm-btn').hidden = true;
  $('#cancel-next').hidden = false;
  $('#transaction_id').readOnly = false;
  $('#password').value = '';
  $('#cancel-result').hidden = true;
  $('#transaction_id').focus(); // a scanner types the ticket's reference here
}

function cancelAsk() {
  const form = $('#cancel-form');
  clearFieldErrors(form);
  $('#cancel-result').hidden = true;
  const ref = $('#transaction_id').value.trim();
  if (!ref) {
    showFieldError(form, { field: 'transaction_id', localized: () => t('counter.cancelNeedRef') }, lang());
    return;
  }
  $('#transaction_id').value = ref;
  $('#transaction_id').readOnly = true;
  $('#cancel-question').textContent = t('counter.cancelQuestion', { ref });
  $('#cancel-confirm').hidden = false;
  $('#cancel-next').hidden = true;
  $('#cancel-confirm-btn').hidden = false;
  $('#password').focus();
}

async function cancelConfirm(button) {
  const form = $('#cancel-form');
  await busy(button, async () => {
    const transaction_id = $('#transaction_id').value.trim();
    const password = $('#password').value;
    try {
      const p = await api('/cvco/v1/cancellations', { method: 'POST', body: { transaction_id, ...(password ? { password } : {}) } });
      resetCancel();
      $('#transaction_id').value = '';
      announce($('#cancel-result'), t('counter.cancelled', { ref: transaction_id, amount: formatCents(p.amount_cents, lang()) }), 'ok');
      $('#cancel-result').hidden = false;
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(0, null);
      if (apiError.status === 401) {
        await showLogin(t('counter.signInNote'));
        return;
      }
      if (apiError.field === 'transaction_id') resetCancel();
      if (!showFieldError(form, apiError, lang())) announce($('#cancel-result'), apiError.localized(lang()), 'error');
      $('#cancel-result').hidden = $('#cancel-result').textContent === '';
      if (apiError.field === 'password') $('#password').focus();
    }
  });
}

// ---- session ----------------------------------------------------------------------------------------

function renderChrome() {
  const session = currentSession();
  $('#who').hidden = !session;
  $('#logout').hidden = !session;
  $('#to-bo').hidden = !session;
  if (session) $('#who').textContent = `${session.username} · ${roleLabel(session.role)}`;
}

async function showLogin(note) {
  renderChrome();
  $('#step-amount').hidden = true;
  $('#step-pay').hidden = true;
  $('#no-permission').hidden = true;
  renderLoginForm($('#login-host'), () => {
    clear($('#login-host'));
    enter();
  }, { note: note ?? t('counter.signInNote') });
}

function enter() {
  renderChrome();
  if (!can('counter')) {
    $('#no-permission').hidden = false;
    return;
  }
  $('#no-permission').hidden = true;
  if (sale) return;
  $('#step-amount').hidden = false;
  $('#amount').focus();
  loadWidget(); // warm the widget while the seller types
}

async function start() {
  applyTranslations();
  wireLangToggle();
  onLangChange((next) => {
    if (widget) widget.setAttribute('locale', next);
    renderPreview();
    if (sale) renderSale();
    renderChrome();
    if (!currentSession()) showLogin();
  });
  for (const key of $$('.key')) key.addEventListener('click', () => pressKey(key.dataset.key));
  $('#amount').addEventListener('input', (event) => {
    const clean = sanitizeAmount(event.target.value);
    if (clean !== event.target.value) event.target.value = clean;
    renderPreview();
  });
  $('#amount-form').addEventListener('submit', (event) => event.preventDefault());
  for (const button of $$('.mode-btn')) button.addEventListener('click', () => startSale(button.dataset.mode, button));
  $('#new-sale').addEventListener('click', newSale);
  $('#to-cancel').addEventListener('click', showCancel);
  $('#cancel-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if ($('#cancel-confirm').hidden) cancelAsk();
  });
  $('#cancel-confirm-btn').addEventListener('click', (event) => cancelConfirm(event.currentTarget));
  $('#cancel-back').addEventListener('click', () => {
    $('#step-cancel').hidden = true;
    newSale();
  });
  $('#retry').addEventListener('click', () => {
    $('#retry').hidden = true;
    announce($('#outcome'), '');
    if (sale) beginCvco();
  });
  $('#reserve-form').addEventListener('input', () => {
    if (sale) sale.attempt = null; // another id: another request
  });
  $('#reserve-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const beneficiary = $('#reserve-beneficiary').value.trim();
    if (!beneficiary) {
      showFieldError(form, { field: 'beneficiary', localized: () => t('counter.reserveNeedId') }, lang());
      return;
    }
    busy(form.querySelector('[type=submit]'), () => reserve(beneficiary));
  });
  $('#logout').addEventListener('click', async () => {
    try {
      await logout();
    } catch {
      /* signed out locally either way */
    }
    newSale();
    showLogin();
  });
  renderPreview();
  try {
    const session = await loadSession();
    if (session) enter();
    else showLogin();
  } catch (error) {
    const apiError = error instanceof ApiError ? error : new ApiError(0, null);
    $('#login-host').append(h('p', { class: 'notice', dataset: { tone: 'error' }, role: 'alert' }, apiError.localized(lang())));
  }
}

start();
