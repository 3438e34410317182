// New payment: direct MOTO (live status) or payment request sent by e-mail.

import { api, newAttempt } from '../../shared/api.js';
import { h, clear, showFieldError, clearFieldErrors, busy } from '../../shared/dom.js';
import { t, lang, statusLabel } from '../../shared/i18n.js';
import { formatCents, formatDateTime } from '../../shared/money.js';
import { watchPayment } from '../../shared/payment-watch.js';
import {
  amountField, textField, selectField, readCents, localError, receiptLinks, statusBadge, money, toast, asApiError, isSessionLost, errorBodyText,
  countdown,
} from '../common.js';

const BENEFICIARY_RE = /^(\d{11}|[^\s@]+@[^\s@]+\.[^\s@]+)$/;

/** A fresh reference per form: date and time for the seller, plus a random suffix so two sales
 * started in the same second never share an order (the second would attach to the first one). */
function defaultOrderRef(prefix) {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => (b % 36).toString(36)).join('').toUpperCase();
  return `${prefix}-${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}-${suffix}`;
}

/** An idempotency token per user action: kept across retries of the same input, renewed on edit. */
function attemptKeeper(form) {
  let attempt = null;
  form.addEventListener('input', () => {
    attempt = null;
  });
  return {
    get: () => {
      attempt ??= newAttempt();
      return attempt;
    },
    reset: () => {
      attempt = null;
    },
  };
}

export function renderPayment(view, ctx) {
  let stopWatch = null;
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': t('payment.title') });
  const panels = {};
  const tabButtons = {};
  for (const [key, label] of [['direct', t('payment.tab.direct')], ['email', t('payment.tab.email')]]) {
    const button = h('button', { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': `panel-${key}`, 'aria-selected': 'false', tabindex: '-1' }, label);
    button.addEventListener('click', () => select(key));
    button.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
        const next = key === 'direct' ? 'email' : 'direct';
        select(next);
        tabButtons[next].focus();
      }
    });
    tabButtons[key] = button;
    tabs.append(button);
    panels[key] = h('div', { role: 'tabpanel', id: `panel-${key}`, 'aria-labelledby': `tab-${key}`, hidden: true });
  }
  function select(key) {
    for (const name of Object.keys(panels)) {
      panels[name].hidden = name !== key;
      tabButtons[name].setAttribute('aria-selected', String(name === key));
      tabButtons[name].tabIndex = name === key ? 0 : -1;
    }
  }

  // Direct payment
  const live = h('section', { class: 'card live', 'aria-live': 'polite', hidden: true, 'aria-labelledby': 'live-title' });
  const directForm = h('form', { class: 'card', novalidate: true },
    h('h2', { class: 'card-title' }, t('payment.direct.title')),
    h('p', { class: 'muted small' }, t('payment.direct.intro')),
    textField('beneficiary', t('payment.beneficiary'), { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true, hint: t('payment.beneficiary.hint') }),
    amountField('amount_cents', t('payment.amount')),
    textField('order_ref', t('payment.orderRef'), { value: defaultOrderRef('VAD'), required: true, maxlength: '64' }),
    // Direct payments can be pre-reservations too (000 §4.3.2): authorized now, finalised later.
    h('fieldset', {},
      h('legend', {}, t('payment.email.capture')),
      h('label', { class: 'check' }, h('input', { type: 'radio', name: 'capture', value: 'immediate', checked: true }), t('payment.email.capture.immediate')),
      h('label', { class: 'check' }, h('input', { type: 'radio', name: 'capture', value: 'deferred' }), t('payment.email.capture.deferred'))),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, t('payment.direct.submit')));
  const directAttempt = attemptKeeper(directForm);

  directForm.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFieldErrors(directForm);
    const beneficiary = directForm.elements.beneficiary.value.trim();
    const orderRef = directForm.elements.order_ref.value.trim();
    if (!BENEFICIARY_RE.test(beneficiary)) return showFieldError(directForm, localError('beneficiary', 'payment.beneficiary.bad'), lang());
    const amount = readCents(directForm, 'amount_cents');
    if (amount.error) return showFieldError(directForm, amount.error, lang());
    if (!orderRef) return showFieldError(directForm, localError('order_ref', 'form.required'), lang());
    return busy(directForm.querySelector('[type=submit]'), async () => {
      try {
        const payment = await api('/cvco/v1/back-office/payments', {
          method: 'POST',
          body: {
            order_ref: orderRef, amount_cents: amount.cents, channel: 'moto', mode: 'identifier', beneficiary,
            capture: directForm.elements.capture.value, attempt: directAttempt.get(),
          },
        });
        directAttempt.reset();
        follow(payment);
      } catch (error) {
        if (isSessionLost(error)) return ctx.sessionLost();
        showFieldError(directForm, asApiError(error), lang());
      }
      return undefined;
    });
  });

  function follow(payment) {
    if (stopWatch) stopWatch();
    live.hidden = false;
    stopWatch = watchPayment(payment, (next) => renderLive(next));
    live.scrollIntoView({ block: 'nearest' });
  }

  let countdownTimer = null;
  function renderLive(payment) {
    countdownTimer?.stop();
    countdownTimer = null;
    live.dataset.status = payment.status;
    const label = lang() === 'en' ? payment.ancv_label_en : payment.ancv_label_fr;
    // role="timer", one announcement at 60 s left: the polite live card no longer reads every second.
    if (!payment.final && payment.deadline) countdownTimer = countdown(payment.deadline);
    const rows = [
      [t('payment.live.order'), h('span', { class: 'mono' }, payment.order_ref)],
      [t('payment.live.beneficiary'), payment.beneficiary_masked || '—'],
      [t('payment.live.amount'), money(payment.amount_cents)],
      [t('payment.live.authorized'), money(payment.authorized_cents)],
    ];
    if (payment.transaction_id) rows.push([t('payment.live.transaction'), h('span', { class: 'mono' }, payment.transaction_id)]);
    for (const auth of payment.authorizations || []) {
      rows.push([t('payment.live.authorization'), h('span', { class: 'mono' }, `${auth.number} · ${formatCents(auth.amount_cents, lang())}`)]);
    }
    if (countdownTimer) rows.push([t('payment.live.deadline'), countdownTimer.node]);
    const actions = h('div', { class: 'row' });
    if (!payment.final) {
      const cancel = h('button', { type: 'button', class: 'btn btn-danger' }, t('payment.live.cancel'));
      cancel.addEventListener('click', () => busy(cancel, async () => {
        try {
          renderLive(await api(`/cvco/v1/payments/${encodeURIComponent(payment.payment_id)}/cancel`, { method: 'POST' }));
        } catch (error) {
          if (isSessionLost(error)) return ctx.sessionLost();
          toast(asApiError(error).localized(lang()), 'error');
        }
        return undefined;
      }));
      actions.append(cancel);
    }
    if (payment.authorized_cents > 0) actions.append(...receiptLinks(payment.payment_id));
    // An authorized pre-reservation: its capture deadline, and where to finalise it.
    const reserved = payment.capture === 'deferred' && payment.ancv_state === 'AUTHORIZED';
    if (reserved && payment.deadline) rows.push([t('col.captureDeadline'), formatDateTime(payment.deadline, lang())]);
    if (reserved) actions.append(h('a', { class: 'btn btn-primary', href: '#/requests' }, t('payment.direct.toRequests')));
    const remaining = payment.final && payment.status === 'partially_authorized' && payment.order_remaining_cents > 0;
    if (remaining) {
      const chain = h('button', { type: 'button', class: 'btn btn-accent' }, t('payment.live.chain', { amount: formatCents(payment.order_remaining_cents, lang()) }));
      const chainAttempt = newAttempt();
      chain.addEventListener('click', () => busy(chain, async () => {
        const beneficiary = directForm.elements.beneficiary.value.trim();
        try {
          // amount_cents omitted: the backend takes the order's remaining amount.
          follow(await api('/cvco/v1/back-office/payments', {
            method: 'POST',
            body: { order_ref: payment.order_ref, channel: 'moto', mode: 'identifier', beneficiary, attempt: chainAttempt },
          }));
        } catch (error) {
          if (isSessionLost(error)) return ctx.sessionLost();
          toast(asApiError(error).localized(lang()), 'error');
        }
        return undefined;
      }));
      actions.append(chain);
    }
    if (payment.final) {
      const again = h('button', { type: 'button', class: 'btn' }, t('payment.live.new'));
      again.addEventListener('click', () => {
        live.hidden = true;
        directForm.reset();
        directForm.elements.order_ref.value = defaultOrderRef('VAD');
        directForm.elements.beneficiary.focus();
      });
      actions.append(again);
    }
    // Element.append would print "null" for the optional parts: filter them out.
    clear(live).append(...[
      h('div', { class: 'live-head' },
        h('div', {},
          h('h2', { id: 'live-title', class: 'card-title' }, t('payment.live.title')),
          statusBadge(payment.status),
          label ? h('p', { class: 'muted small' }, `ANCV : ${label}`) : null),
        h('div', { class: 'big-amount' }, formatCents(payment.amount_cents, lang()))),
      payment.next_action?.type === 'wait_for_app' && !payment.final ? h('p', { class: 'notice', dataset: { tone: 'info' } }, t('payment.live.waitApp')) : null,
      payment.error ? h('p', { class: 'notice', dataset: { tone: 'error' } }, errorBodyText(payment.error)) : null,
      reserved && payment.deadline ? h('p', { class: 'notice', dataset: { tone: 'info' } }, t('payment.direct.reserved', { at: formatDateTime(payment.deadline, lang()) })) : null,
      h('dl', { class: 'summary' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      remaining ? h('p', { class: 'remaining-due' }, t('payment.live.remaining', { amount: formatCents(payment.order_remaining_cents, lang()) })) : null,
      actions,
    ].filter(Boolean));
    if (payment.final) toast(`${statusLabel(payment.status)} — ${payment.order_ref}`, payment.authorized_cents > 0 ? 'info' : 'error');
  }

  // Payment request by e-mail
  const requestResult = h('div', { 'aria-live': 'polite' });
  const captureId = `capture-${Math.random().toString(36).slice(2, 7)}`;
  const emailForm = h('form', { class: 'card', novalidate: true },
    h('h2', { class: 'card-title' }, t('payment.email.title')),
    h('p', { class: 'muted small' }, t('payment.email.intro')),
    textField('email', t('payment.email.email'), { type: 'email', autocomplete: 'off', required: true }),
    amountField('amount_cents', t('payment.amount')),
    textField('order_ref', t('payment.orderRef'), { value: defaultOrderRef('DOS'), required: true, maxlength: '64' }),
    selectField('expires_in_s', t('payment.email.expiry'), [
      ['3600', t('payment.email.expiry.1h')], ['86400', t('payment.email.expiry.24h')],
      ['259200', t('payment.email.expiry.3d')], ['604800', t('payment.email.expiry.7d')],
    ], '86400'),
    h('fieldset', {},
      h('legend', { id: captureId }, t('payment.email.capture')),
      h('label', { class: 'check' }, h('input', { type: 'radio', name: 'capture', value: 'immediate', checked: true }), t('payment.email.capture.immediate')),
      h('label', { class: 'check' }, h('input', { type: 'radio', name: 'capture', value: 'deferred' }), t('payment.email.capture.deferred'))),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, t('payment.email.submit')));
  const emailAttempt = attemptKeeper(emailForm);
  emailForm.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFieldErrors(emailForm);
    const email = emailForm.elements.email.value.trim();
    const orderRef = emailForm.elements.order_ref.value.trim();
    // Only an empty field is caught here: the server says what is wrong with an address (no "@", no domain...).
    if (!email) return showFieldError(emailForm, localError('email', 'form.required'), lang());
    const amount = readCents(emailForm, 'amount_cents');
    if (amount.error) return showFieldError(emailForm, amount.error, lang());
    if (!orderRef) return showFieldError(emailForm, localError('order_ref', 'form.required'), lang());
    return busy(emailForm.querySelector('[type=submit]'), async () => {
      try {
        const request = await api('/cvco/v1/payment-requests', {
          method: 'POST',
          body: {
            order_ref: orderRef, amount_cents: amount.cents, delivery: 'email', email,
            expires_in_s: Number.parseInt(emailForm.elements.expires_in_s.value, 10),
            capture: emailForm.elements.capture.value, attempt: emailAttempt.get(),
          },
        });
        emailAttempt.reset();
        clear(requestResult).append(h('div', { class: 'notice', dataset: { tone: 'ok' } },
          h('p', {}, t('payment.email.sent', { email: request.email_masked || email, amount: formatCents(request.amount_cents, lang()) })),
          h('p', { class: 'small' }, t('payment.email.expires', { at: formatDateTime(request.expires_at, lang()) }), ' · ', statusBadge(request.status)),
          h('a', { href: '#/requests' }, t('payment.email.follow'))));
        emailForm.reset();
        emailForm.elements.order_ref.value = defaultOrderRef('DOS');
      } catch (error) {
        if (isSessionLost(error)) return ctx.sessionLost();
        showFieldError(emailForm, asApiError(error), lang());
      }
      return undefined;
    });
  });

  panels.direct.append(h('div', { class: 'panel-grid' }, directForm, live));
  panels.email.append(h('div', { class: 'panel-grid' }, emailForm, requestResult));
  view.append(h('h1', {}, t('payment.title')), tabs, panels.direct, panels.email);
  select(ctx.params.get('tab') === 'email' ? 'email' : 'direct');
  return () => {
    if (stopWatch) stopWatch();
    countdownTimer?.stop();
  };
}
