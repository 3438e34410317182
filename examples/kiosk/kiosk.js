// The unattended kiosk: pays the kiosk's order (the server's amount) by QR or typed/scanned id,
// then resets by itself after the outcome or after inactivity. No login, nothing else reachable.
import './strings.js';
import { api, ApiError } from '../shared/api.js';
import { $, clear, announce } from '../shared/dom.js';
import { t, lang, applyTranslations, wireLangToggle, onLangChange } from '../shared/i18n.js';
import { formatCents } from '../shared/money.js';

const IDLE_MS = 60_000; // back to the start when nobody touches the screen
const OUTCOME_MS = 15_000; // the outcome stays this long
const orderRef = new URLSearchParams(location.search).get('order_ref') || '';
let order = null;
let watching = null; // payment id being polled
let idleTimer = null;
let resetTimer = null;

const STEPS = ['#step-choose', '#step-id', '#step-wait', '#step-done'];
function show(step) {
  for (const s of STEPS) $(s).hidden = s !== step;
}

function attempt() {
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function armIdle() {
  clearTimeout(idleTimer);
  // Waiting for the app is not inactivity: the payment's own deadline ends it.
  if (watching) return;
  idleTimer = setTimeout(reset, IDLE_MS);
}

async function loadOrder() {
  try {
    order = await api(`/kiosk/api/orders/${encodeURIComponent(orderRef)}`);
  } catch {
    order = null;
  }
  $('#no-order').hidden = Boolean(order);
  if (!order) {
    show(null);
    return;
  }
  $('#merchant').textContent = order.merchant || '';
  $('#amount').textContent = formatCents(order.remaining_cents, lang());
  $('#label').textContent = order.label || '';
}

async function reset() {
  clearTimeout(resetTimer);
  watching = null;
  $('#beneficiary').value = '';
  announce($('#id-error'), '');
  clear($('#qr'));
  $('#step-done').removeAttribute('data-tone');
  await loadOrder();
  if (!order) return;
  if (order.remaining_cents === 0) {
    finish('paid', order.payment?.payment);
    return;
  }
  show('#step-choose');
  $('#choose-qr').focus();
  armIdle();
}

async function pay(mode, beneficiary) {
  const body = { order_ref: orderRef, mode, attempt: attempt(), ...(beneficiary ? { beneficiary } : {}) };
  const answer = await api('/kiosk/api/payments', { method: 'POST', body });
  wait(answer);
}

function wait(view) {
  const p = view.payment;
  watching = p.payment_id;
  clearTimeout(idleTimer);
  show('#step-wait');
  const qr = clear($('#qr'));
  if (view.qr_svg) qr.innerHTML = view.qr_svg; // the server's own SVG, drawn by the plugin
  $('#wait-title').textContent = t(view.qr_svg ? 'kiosk.scanTitle' : 'kiosk.appTitle');
  $('#wait-hint').textContent = t('kiosk.waitHint', { amount: formatCents(p.amount_cents, lang()) });
  $('#give-up').focus();
  poll(p.payment_id);
}

async function poll(id) {
  while (watching === id) {
    try {
      const view = await api(`/kiosk/api/payments/${encodeURIComponent(id)}`);
      if (watching !== id) return;
      if (view.payment.final) {
        finish(view.outcome, view.payment);
        return;
      }
    } catch {
      /* a network blip: keep polling */
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function finish(outcome, payment) {
  watching = null;
  const money = (c) => formatCents(c ?? 0, lang());
  const texts = {
    paid: ['kiosk.paid', 'kiosk.paidText', 'ok'],
    partial: ['kiosk.partial', 'kiosk.partialText', 'error'],
    balance_short: ['kiosk.short', 'kiosk.shortText', 'error'],
    declined: ['kiosk.declined', 'kiosk.declinedText', 'error'],
    expired: ['kiosk.expired', 'kiosk.expiredText', 'error'],
  };
  const [title, text, tone] = texts[outcome] || ['kiosk.cancelled', 'kiosk.cancelledText', 'error'];
  show('#step-done');
  $('#step-done').dataset.tone = tone;
  $('#done-title').textContent = t(title);
  $('#done-text').textContent = t(text, {
    amount: money(payment?.amount_cents),
    paid: money(payment?.authorized_cents),
    rest: money(payment?.order_remaining_cents),
  });
  $('#done-title').focus();
  let left = OUTCOME_MS / 1000;
  const tick = () => {
    $('#reset-hint').textContent = t('kiosk.resetIn', { s: left });
    if (left-- <= 0) reset();
    else resetTimer = setTimeout(tick, 1000);
  };
  clearTimeout(resetTimer);
  tick();
}

function start() {
  applyTranslations();
  wireLangToggle();
  onLangChange(() => {
    if (order) $('#amount').textContent = formatCents(order.remaining_cents, lang());
  });
  for (const ev of ['pointerdown', 'keydown', 'input']) document.addEventListener(ev, armIdle, { passive: true });
  $('#choose-qr').addEventListener('click', () => pay('qr').catch(showError));
  $('#choose-id').addEventListener('click', () => {
    show('#step-id');
    $('#beneficiary').focus(); // a handheld scanner types here
  });
  $('#step-id [data-back]').addEventListener('click', reset);
  $('#id-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('#beneficiary').value.trim();
    announce($('#id-error'), '');
    pay('identifier', value).catch((error) => {
      const e = error instanceof ApiError ? error : new ApiError(0, null);
      announce($('#id-error'), e.localized(lang()), 'error');
      $('#beneficiary').focus();
    });
  });
  $('#give-up').addEventListener('click', async () => {
    const id = watching;
    if (!id) return;
    try {
      const view = await api(`/kiosk/api/payments/${encodeURIComponent(id)}/cancel`, { method: 'POST', body: {} });
      finish(view.outcome, view.payment);
    } catch {
      /* already final: the poll shows the outcome */
    }
  });
  $('#restart').addEventListener('click', reset);
  reset();
}

function showError(error) {
  const e = error instanceof ApiError ? error : new ApiError(0, null);
  show('#step-done');
  $('#step-done').dataset.tone = 'error';
  $('#done-title').textContent = t('kiosk.cancelled');
  $('#done-text').textContent = e.localized(lang());
  resetTimer = setTimeout(reset, OUTCOME_MS);
}

start();
