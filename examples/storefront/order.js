import '../storefront/strings.js';
import './order-strings.js';
import { api, ApiError } from '../shared/api.js';
import { h, $, $$, clear, announce, busy, showFieldError, clearFieldErrors } from '../shared/dom.js';
import { t, lang, applyTranslations, wireLangToggle, onLangChange } from '../shared/i18n.js';
import { formatCents, formatDateTime } from '../shared/money.js';
import { clearCart } from './cart.js';
import { loadWidget, paymentOf } from '../shared/widget-loader.js';

let order = null;
let widgetState = 'loading'; // loading | ready | unavailable
let widget = null;
let outcomeKey = null; // the failed payment's note, re-said in the new language on a switch

function orderRefFromUrl() {
  const query = new URLSearchParams(window.location.search).get('ref');
  if (query) return query;
  const match = /\/orders\/([^/]+)\/?$/.exec(window.location.pathname);
  return match ? decodeURIComponent(match[1]) : null;
}

function selectedMethod() {
  return $('input[name="method"]:checked')?.value ?? 'cvco';
}

function selectMethod(method, { focus = false } = {}) {
  const input = $(`#method-${method}`);
  if (input && !input.disabled) input.checked = true;
  showPanel();
  if (focus) {
    if (selectedMethod() === 'card') $('#card-number').focus();
    else $('#method-cvco').focus();
  }
}

function showPanel() {
  const method = selectedMethod();
  $('#panel-cvco').hidden = method !== 'cvco';
  $('#panel-card').hidden = method !== 'card';
  if (method === 'cvco' && widgetState === 'ready' && !widget) mountWidget();
}

function mountWidget() {
  const host = $('#cvco-host');
  clear(host);
  widget = document.createElement('cvco-checkout');
  widget.setAttribute('endpoint', '/cvco/v1');
  widget.setAttribute('order-ref', order.order_ref);
  widget.setAttribute('locale', lang());
  widget.setAttribute('mode', 'auto');
  for (const name of ['cvco-authorized', 'cvco-partially-authorized', 'cvco-declined', 'cvco-expired', 'cvco-error']) {
    widget.addEventListener(name, (event) => onWidgetEvent(name, event.detail));
  }
  // A new attempt (the widget's own "Try again" button, or a payment under way): the note about
  // the failed payment and the card offer go.
  widget.addEventListener('cvco-pending', clearOutcome);
  widget.addEventListener('cvco-retry', clearOutcome);
  host.append(widget);
}

function clearOutcome() {
  outcomeKey = null;
  $('#cvco-actions').hidden = true;
  announce($('#cvco-outcome'), '');
}

/** A payment failed: say so and offer the card (the widget itself offers to try again). */
function showOutcome(key) {
  outcomeKey = key;
  announce($('#cvco-outcome'), t(key), 'warn');
  $('#cvco-actions').hidden = false;
}

async function onWidgetEvent(name, detail) {
  const payment = paymentOf(detail);
  const outcome = $('#cvco-outcome');
  const actions = $('#cvco-actions');
  if (name === 'cvco-authorized') {
    announce(outcome, t('pay.authorized'), 'ok');
    actions.hidden = true;
    await refreshOrder();
    return;
  }
  if (name === 'cvco-partially-authorized') {
    await refreshOrder();
    const paid = payment.authorized_cents;
    const rest = Number.isInteger(payment.order_remaining_cents) ? payment.order_remaining_cents : order?.remaining_cents;
    const message = t('pay.partial.card', { paid: formatCents(paid, lang()), rest: formatCents(rest, lang()) });
    announce($('#pay-notice'), message, 'warn');
    actions.hidden = true;
    selectMethod('card', { focus: true });
    return;
  }
  if (name === 'cvco-declined' || name === 'cvco-expired') {
    showOutcome(name === 'cvco-declined' ? 'pay.declined' : 'pay.expired');
    await refreshOrder();
    return;
  }
  if (detail?.code === 'widget_load_failed') {
    markWidgetUnavailable();
    return;
  }
  // A payment that failed (it carries its payment_id): the widget says why, we offer the card.
  // Anything else (a field error, the network) is the widget's to show: no card offer for a typo.
  if (detail?.payment_id) showOutcome('pay.orCard');
}

/** The widget cannot run here: say so, and leave the card as the way to pay. */
function markWidgetUnavailable() {
  widgetState = 'unavailable';
  if (widget) widget.remove();
  widget = null;
  $('#cvco-unavailable').hidden = false;
  $('#method-cvco').disabled = true;
  $('#method-cvco-label').setAttribute('aria-disabled', 'true');
  selectMethod('card');
}

function renderSummary() {
  const lines = $('#summary-lines');
  clear(lines);
  for (const line of order.lines || []) {
    lines.append(h('li', { class: 'cart-line' },
      h('div', { class: 'cart-line-head' },
        h('span', {}, `${line.quantity} × ${line.name}`),
        h('span', { class: 'amount' }, formatCents(line.total_cents, lang())))));
  }
  const totals = clear($('#summary-totals'));
  const row = (label, cents, cls = '') => [h('dt', { class: cls }, label), h('dd', { class: `amount ${cls}` }, formatCents(cents, lang()))];
  totals.append(...row(t('summary.total'), order.total_cents));
  if (order.paid_cvco_cents > 0) totals.append(...row(t('summary.paidCvco'), -order.paid_cvco_cents));
  if (order.paid_card_cents > 0) totals.append(...row(t('summary.paidCard'), -order.paid_card_cents));
  totals.append(...row(t('summary.remaining'), order.remaining_cents, 'total'));
  $('#card-amount').textContent = formatCents(order.remaining_cents, lang());
  $('#card-submit').textContent = t('card.submitAmount', { amount: formatCents(order.remaining_cents, lang()) });
}

function renderConfirmation() {
  $('#confirm-ref').textContent = order.order_ref;
  const total = order.total_cents || 0;
  const [cvcoBar, cardBar] = $$('#split-bar span');
  const cvcoShare = total > 0 ? (order.paid_cvco_cents / total) * 100 : 0;
  cvcoBar.style.width = `${cvcoShare}%`;
  cardBar.style.width = `${total > 0 ? (order.paid_card_cents / total) * 100 : 0}%`;
  const totals = clear($('#confirm-totals'));
  totals.append(
    h('dt', {}, h('span', { class: 'legend-dot cvco', 'aria-hidden': 'true' }), t('summary.paidCvco')),
    h('dd', { class: 'amount' }, formatCents(order.paid_cvco_cents, lang())),
    h('dt', {}, h('span', { class: 'legend-dot cardpart', 'aria-hidden': 'true' }), t('summary.paidCard')),
    h('dd', { class: 'amount' }, formatCents(order.paid_card_cents, lang())),
    h('dt', { class: 'total' }, t('confirm.total')),
    h('dd', { class: 'amount total' }, formatCents(order.total_cents, lang())));
  const body = clear($('#confirm-payments tbody'));
  for (const payment of order.payments || []) {
    if (!(payment.authorized_cents > 0)) continue;
    const auths = (payment.authorizations || []).map((a) => t('confirm.cvcoAuth', { number: a.number })).join(', ');
    body.append(h('tr', {},
      h('td', {}, t('confirm.cvco'), h('br'), h('span', { class: 'badge', dataset: { status: payment.status } }, statusText(payment.status))),
      h('td', { class: 'mono' }, payment.transaction_id || payment.payment_id, auths ? h('div', { class: 'muted small' }, auths) : null,
        h('a', { class: 'small no-print', href: `/cvco/v1/receipts/${encodeURIComponent(payment.payment_id)}`, target: '_blank', rel: 'noopener' }, t('confirm.receipt'))),
      h('td', {}, formatDateTime(payment.updated_at, lang())),
      h('td', { class: 'num amount' }, formatCents(payment.authorized_cents, lang()))));
  }
  for (const card of order.card_payments || []) {
    body.append(h('tr', {},
      h('td', {}, t('confirm.card', { last4: card.last4 })),
      h('td', { class: 'mono' }, '—'),
      h('td', {}, formatDateTime(card.at, lang())),
      h('td', { class: 'num amount' }, formatCents(card.amount_cents, lang()))));
  }
}

function statusText(status) {
  return t(`status.${status}`);
}

function render() {
  const paid = order.status === 'paid' || order.remaining_cents === 0;
  $('#page-status').hidden = true;
  $('#pay-view').hidden = paid;
  const confirm = $('#confirm-view');
  const wasHidden = confirm.hidden;
  confirm.hidden = !paid;
  if (paid) {
    clearCart();
    if (widget) {
      widget.remove();
      widget = null;
    }
    renderConfirmation();
    if (wasHidden) confirm.focus();
    return;
  }
  $('#pay-ref').textContent = order.order_ref;
  renderSummary();
  if (order.paid_cvco_cents > 0 && $('#pay-notice').hidden) {
    announce($('#pay-notice'), t('pay.partial', {
      paid: formatCents(order.paid_cvco_cents, lang()), rest: formatCents(order.remaining_cents, lang()),
    }), 'warn');
  }
}

async function refreshOrder() {
  try {
    order = await api(`/shop/api/orders/${encodeURIComponent(order.order_ref)}`);
    render();
  } catch {
    /* keep what is shown; the next event or reload repairs it */
  }
}

function wireCardForm() {
  const form = $('#card-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const number = form.elements.card_number.value.trim();
    const expiry = form.elements.expiry.value.trim();
    const cvc = form.elements.cvc.value.trim();
    const missing = !number ? 'card_number' : !expiry ? 'expiry' : !cvc ? 'cvc' : null;
    if (missing) {
      showFieldError(form, { localized: () => t('card.missing'), field: missing }, lang());
      return;
    }
    if (!/^(0[1-9]|1[0-2])\/\d{2}$/.test(expiry)) {
      showFieldError(form, { localized: () => t('card.badExpiry'), field: 'expiry' }, lang());
      return;
    }
    busy($('#card-submit'), async () => {
      try {
        order = await api(`/shop/api/orders/${encodeURIComponent(order.order_ref)}/card`, {
          method: 'POST', body: { card_number: number, expiry, cvc },
        });
        form.reset();
        render();
      } catch (error) {
        const apiError = error instanceof ApiError ? error : new ApiError(0, null);
        // card_declined has no field: point at the number, which is what the shopper changes.
        if (!apiError.field && apiError.code === 'card_declined') apiError.field = 'card_number';
        showFieldError(form, apiError, lang());
      }
    }).then(() => {
      if (!$('#pay-view').hidden) $('#card-submit').textContent = t('card.submitAmount', { amount: formatCents(order.remaining_cents, lang()) });
    });
  });
  form.elements.card_number.addEventListener('input', (event) => {
    const digits = event.target.value.replace(/\D/g, '').slice(0, 19);
    event.target.value = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  });
  form.elements.expiry.addEventListener('input', (event) => {
    const digits = event.target.value.replace(/\D/g, '').slice(0, 4);
    event.target.value = digits.length > 2 ? `${digits.slice(0, 2)}/${digits.slice(2)}` : digits;
  });
}

async function start() {
  applyTranslations();
  wireLangToggle();
  wireCardForm();
  for (const input of $$('input[name="method"]')) input.addEventListener('change', showPanel);
  $('#cvco-to-card').addEventListener('click', () => selectMethod('card', { focus: true }));
  onLangChange((next) => {
    if (widget) widget.setAttribute('locale', next);
    if (outcomeKey) announce($('#cvco-outcome'), t(outcomeKey), 'warn');
    if (order) render();
  });

  const status = $('#page-status');
  const ref = orderRefFromUrl();
  if (!ref) {
    announce(status, t('order.noRef'), 'error');
    return;
  }
  const widgetLoad = loadWidget();
  try {
    order = await api(`/shop/api/orders/${encodeURIComponent(ref)}`);
  } catch (error) {
    const apiError = error instanceof ApiError ? error : new ApiError(0, null);
    announce(status, apiError.status === 404 || apiError.status === 403 ? t('order.notFound') : apiError.localized(lang()), 'error');
    return;
  }
  render();
  if (order.paid_cvco_cents > 0 && order.remaining_cents > 0) selectMethod('card');
  showPanel();
  const loaded = await widgetLoad;
  widgetState = loaded ? 'ready' : 'unavailable';
  if (!loaded) {
    markWidgetUnavailable();
  } else if (order.status !== 'paid') {
    showPanel();
  }
}

start();
