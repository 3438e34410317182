// Transactions: filters, refund, cancellation by transaction reference, receipts.

import { api, newAttempt } from '../../shared/api.js';
import { h, clear, showFieldError, announce, busy } from '../../shared/dom.js';
import { t, lang } from '../../shared/i18n.js';
import { formatCents, formatDateTime, centsToInput, parseEurosToCents } from '../../shared/money.js';
import { openDialog } from '../../shared/dialog.js';
import { can } from '../../shared/bo-session.js';
import {
  amountField, textField, selectField, readCents, localError, receiptLinks, statusBadge, money, toast, asApiError, isSessionLost,
} from '../common.js';

const STATUSES = ['', 'pending', 'awaiting_beneficiary', 'authorized', 'partially_authorized', 'declined', 'expired', 'cancelled', 'refunded', 'failed'];
const REFUNDABLE = new Set(['authorized', 'partially_authorized', 'refunded']);
const FILTER_KEYS = ['from', 'to', 'status', 'min_amount_cents', 'max_amount_cents', 'order_ref'];

function refundableCents(payment) {
  return Math.max(0, (payment.authorized_cents || 0) - (payment.refunded_cents || 0));
}

export function renderTransactions(view, ctx) {
  const params = ctx.params;
  const status = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const tableHost = h('div');
  const dateField = (name, label) => textField(name, label, { type: 'date', value: params.get(name) || '' });
  const centsParam = (name) => (params.get(name) ? centsToInput(Number.parseInt(params.get(name), 10)) : '');
  const filter = h('form', { class: 'filters', role: 'search', 'aria-label': t('tx.filter'), novalidate: true },
    dateField('from', t('tx.from')),
    dateField('to', t('tx.to')),
    amountField('min_amount_cents', t('tx.min'), { value: centsParam('min_amount_cents'), required: false }),
    amountField('max_amount_cents', t('tx.max'), { value: centsParam('max_amount_cents'), required: false }),
    selectField('status', t('tx.status'), STATUSES.map((s) => [s, s ? t(`status.${s}`) : t('requests.all')]), params.get('status') || ''),
    textField('order_ref', t('tx.orderRef'), { value: params.get('order_ref') || '', autocomplete: 'off' }),
    h('div', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary' }, t('tx.search')),
      h('a', { class: 'btn btn-ghost', href: '#/transactions' }, t('tx.reset'))),
    h('p', { class: 'form-error', role: 'alert', hidden: true }));

  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const name of ['from', 'to', 'status', 'order_ref']) {
      const value = filter.elements[name].value.trim();
      if (value) query.set(name, value);
    }
    for (const name of ['min_amount_cents', 'max_amount_cents']) {
      const raw = filter.elements[name].value.trim();
      if (!raw) continue;
      const cents = parseEurosToCents(raw);
      if (cents === null) {
        showFieldError(filter, localError(name, 'form.badAmount'), lang());
        return;
      }
      query.set(name, String(cents));
    }
    ctx.navigate(query.size ? `#/transactions?${query}` : '#/transactions');
  });

  async function load() {
    announce(status, t('common.loading'), 'info');
    const query = new URLSearchParams();
    for (const key of FILTER_KEYS) if (params.get(key)) query.set(key, params.get(key));
    try {
      const data = await api(`/cvco/v1/transactions${query.size ? `?${query}` : ''}`);
      const items = data?.items ?? [];
      const total = `${data?.total ?? items.length}${data?.total_capped ? '+' : ''}`;
      announce(status, t('tx.count', { shown: items.length, total }), 'info');
      renderTable(items);
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      announce(status, asApiError(error).localized(lang()), 'error');
      if (error.field) showFieldError(filter, asApiError(error), lang());
    }
    return undefined;
  }

  function renderTable(items) {
    clear(tableHost);
    if (items.length === 0) {
      tableHost.append(h('div', { class: 'table-wrap' }, h('p', { class: 'empty' }, t('tx.empty'))));
      return;
    }
    const body = h('tbody');
    for (const payment of items) {
      const actions = h('div', { class: 'actions-cell' });
      if (payment.authorized_cents > 0) actions.append(...receiptLinks(payment.payment_id));
      if (can('refund') && REFUNDABLE.has(payment.status) && refundableCents(payment) > 0) {
        const refund = h('button', { type: 'button', class: 'btn btn-small' }, t('tx.refund'));
        refund.addEventListener('click', () => refundDialog(payment));
        actions.append(refund);
      }
      if (can('cancel') && payment.transaction_id && !['cancelled', 'declined', 'expired', 'failed', 'refunded'].includes(payment.status)) {
        const cancel = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, t('tx.cancel'));
        cancel.addEventListener('click', () => cancelDialog(payment));
        actions.append(cancel);
      }
      body.append(h('tr', {},
        h('td', { class: 'nowrap' }, formatDateTime(payment.created_at, lang(), { short: true })),
        h('td', {}, h('span', { class: 'mono' }, payment.order_ref),
          h('span', { class: 'sub mono' }, payment.transaction_id || '—'),
          h('span', { class: 'sub' }, payment.beneficiary_masked || (payment.mode === 'qr' ? 'QR' : '—'))),
        h('td', { class: 'num' }, money(payment.authorized_cents),
          payment.authorized_cents !== payment.amount_cents ? h('span', { class: 'sub' }, t('tx.of', { amount: formatCents(payment.amount_cents, lang()) })) : null),
        h('td', { class: 'num' }, payment.refunded_cents > 0 ? money(payment.refunded_cents) : '—'),
        h('td', {}, statusBadge(payment.status)),
        h('td', {}, actions)));
    }
    tableHost.append(h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, t('tx.title')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('col.created')), h('th', { scope: 'col' }, t('col.orderTx')),
        h('th', { scope: 'col', class: 'num' }, t('col.authorized')), h('th', { scope: 'col', class: 'num' }, t('col.refunded')),
        h('th', { scope: 'col' }, t('col.status')), h('th', { scope: 'col' }, t('col.actions')))),
      body)));
  }

  async function refundDialog(payment) {
    const max = refundableCents(payment);
    const attempt = newAttempt();
    const body = h('div', {},
      h('p', {}, t('tx.refund.intro', { ref: payment.transaction_id || payment.payment_id, amount: formatCents(max, lang()) })),
      amountField('amount_cents', t('tx.refund.amount'), { value: centsToInput(max), hint: t('tx.refund.hint') }),
      textField('reason', t('tx.refund.reason'), { maxlength: '200', autocomplete: 'off' }));
    const done = await openDialog({
      title: t('tx.refund.title', { ref: payment.order_ref }),
      body,
      confirmLabel: t('tx.refund'),
      onConfirm: async (form) => {
        const amount = readCents(form, 'amount_cents');
        if (amount.error) return showFieldError(form, amount.error, lang()) && false;
        if (amount.cents > max) return showFieldError(form, localError('amount_cents', 'tx.refund.tooMuch', { amount: formatCents(max, lang()) }), lang()) && false;
        const request = { attempt };
        if (amount.cents !== max || payment.refunded_cents > 0) request.amount_cents = amount.cents;
        const reason = form.elements.reason.value.trim();
        if (reason) request.reason = reason;
        try {
          return await api(`/cvco/v1/payments/${encodeURIComponent(payment.payment_id)}/refund`, { method: 'POST', body: request });
        } catch (error) {
          if (isSessionLost(error)) {
            ctx.sessionLost();
            return null;
          }
          showFieldError(form, asApiError(error), lang());
          return false;
        }
      },
    });
    if (done) {
      toast(t('tx.refunded', { amount: formatCents(done.refunded_cents, lang()), ref: payment.order_ref }));
      load();
    }
  }

  async function cancelDialog(payment) {
    const body = h('div', {},
      h('p', {}, t('tx.cancel.intro')),
      textField('transaction_id', t('tx.cancel.reference'), { autocomplete: 'off', spellcheck: 'false', required: true, hint: t('tx.cancel.referenceHint', { ref: payment.transaction_id }) }),
      textField('password', t('tx.cancel.password'), { type: 'password', autocomplete: 'off', hint: t('tx.cancel.passwordHint') }));
    const done = await openDialog({
      title: t('tx.cancel.title', { ref: payment.order_ref }),
      body,
      confirmLabel: t('tx.cancel.do'),
      cancelLabel: t('tx.cancel.keep'),
      confirmClass: 'btn-danger',
      onConfirm: async (form) => {
        const reference = form.elements.transaction_id.value.trim();
        if (!reference) return showFieldError(form, localError('transaction_id', 'form.required'), lang()) && false;
        if (reference !== payment.transaction_id) return showFieldError(form, localError('transaction_id', 'tx.cancel.mismatch'), lang()) && false;
        const request = { transaction_id: reference };
        const password = form.elements.password.value;
        if (password) request.password = password;
        try {
          return await api(`/cvco/v1/payments/${encodeURIComponent(payment.payment_id)}/cancel-by-reference`, { method: 'POST', body: request });
        } catch (error) {
          if (isSessionLost(error)) {
            ctx.sessionLost();
            return null;
          }
          form.elements.password.value = '';
          showFieldError(form, asApiError(error), lang());
          return false;
        }
      },
    });
    if (done) {
      toast(t('tx.cancelled', { ref: payment.transaction_id }));
      load();
    }
  }

  const refresh = h('button', { type: 'button', class: 'btn btn-small' }, t('tx.refresh'));
  refresh.addEventListener('click', () => busy(refresh, load));
  view.append(h('div', { class: 'row-between' }, h('h1', {}, t('tx.title')), refresh), filter, status, tableHost);
  load();
  return () => {};
}
