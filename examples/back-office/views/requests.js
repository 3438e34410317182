// Payment requests and pre-reservations: list with status filter, kept up to date while shown,
// follow, finalise (before the capture deadline), cancel.

import { api } from '../../shared/api.js';
import { h, clear, showFieldError, announce } from '../../shared/dom.js';
import { t, lang } from '../../shared/i18n.js';
import { formatCents, formatDateTime, centsToInput } from '../../shared/money.js';
import { openDialog } from '../../shared/dialog.js';
import { can } from '../../shared/bo-session.js';
import {
  amountField, selectField, readCents, localError, receiptLinks, statusBadge, money, toast, asApiError, isSessionLost,
} from '../common.js';

const STATUSES = ['', 'awaiting_beneficiary', 'authorized', 'partially_authorized', 'declined', 'expired', 'cancelled', 'refunded', 'failed', 'unknown'];
const AUTHORIZED = new Set(['authorized', 'partially_authorized']);

/**
 * `final` says nothing more comes from the beneficiary; an authorized pre-reservation is then still
 * open until the merchant finalises it. cvco-host says so in `finalised`; without it, `final` decides.
 */
function notFinalised(request) {
  return typeof request.finalised === 'boolean' ? !request.finalised : !request.final;
}

function isOpenPreReservation(request) {
  return request.capture === 'deferred' && AUTHORIZED.has(request.status) && notFinalised(request);
}

function canFinalise(request) {
  return can('moto') && isOpenPreReservation(request);
}

function canCancel(request) {
  const unpaid = request.status === 'awaiting_beneficiary' || request.status === 'pending';
  return can('cancel') && (unpaid || isOpenPreReservation(request));
}

/** How often the shown list is read again (a payment authorized, expired or cancelled meanwhile). */
const LIVE_MS = 4000;

export function renderRequests(view, ctx) {
  let followTimer = null;
  let liveTimer = null;
  let shown = null;
  let stopped = false;
  const status = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const tableHost = h('div');
  const filter = h('form', { class: 'filters', role: 'search', 'aria-label': t('requests.filter') },
    selectField('status', t('requests.status'), STATUSES.map((s) => [s, s ? t(`status.${s}`) : t('requests.all')]), ctx.params.get('status') || ''),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, t('requests.apply')),
      h('a', { class: 'btn', href: '#/payment?tab=email' }, t('requests.new'))));
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = filter.elements.status.value;
    ctx.navigate(value ? `#/requests?status=${encodeURIComponent(value)}` : '#/requests');
  });
  filter.elements.status.addEventListener('change', () => filter.requestSubmit());

  /** `quiet`: a live refresh, redrawn only when something changed (focus and reading stay put). */
  async function load(quiet = false) {
    clearTimeout(liveTimer);
    // Not behind an open dialog: its opener row would be redrawn under the seller.
    if (quiet && document.querySelector('dialog[open]')) {
      liveTimer = setTimeout(() => load(true), LIVE_MS);
      return undefined;
    }
    if (!quiet) announce(status, t('common.loading'), 'info');
    const query = new URLSearchParams();
    if (ctx.params.get('status')) query.set('status', ctx.params.get('status'));
    try {
      const data = await api(`/cvco/v1/payment-requests${query.size ? `?${query}` : ''}`);
      const items = Array.isArray(data) ? data : (data?.items ?? []);
      if (!quiet) announce(status, '');
      const signature = JSON.stringify(items);
      if (signature !== shown && !stopped) {
        shown = signature;
        renderTable(items);
      }
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      if (!quiet) announce(status, asApiError(error).localized(lang()), 'error');
    }
    if (!stopped) liveTimer = setTimeout(() => load(true), LIVE_MS);
    return undefined;
  }

  function renderTable(items) {
    clear(tableHost);
    if (items.length === 0) {
      tableHost.append(h('div', { class: 'table-wrap' }, h('p', { class: 'empty' }, t('requests.empty'))));
      return;
    }
    const body = h('tbody');
    for (const request of items) {
      const actions = h('div', { class: 'actions-cell' });
      // A request whose creation answer was lost has no ANCV id until it is reconciled.
      if (request.request_id) {
        const followBtn = h('button', { type: 'button', class: 'btn btn-small' }, t('requests.follow'));
        followBtn.addEventListener('click', () => follow(request));
        actions.append(followBtn);
      }
      if (canFinalise(request)) {
        const finalise = h('button', { type: 'button', class: 'btn btn-small btn-primary' }, t('requests.finalise'));
        finalise.addEventListener('click', () => finaliseDialog(request));
        actions.append(finalise);
      }
      if (canCancel(request)) {
        const cancel = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, t('requests.cancel'));
        cancel.addEventListener('click', () => cancelDialog(request));
        actions.append(cancel);
      }
      body.append(h('tr', {},
        h('td', { class: 'nowrap' }, formatDateTime(request.created_at, lang(), { short: true })),
        h('td', {}, h('span', { class: 'mono' }, request.order_ref),
          h('span', { class: 'sub' }, request.email_masked || (request.delivery === 'qr' ? 'QR' : '—'))),
        h('td', {}, t(`requests.capture.${request.capture}`)),
        h('td', { class: 'num' }, money(request.amount_cents),
          request.payment ? h('span', { class: 'sub' }, t('requests.authorizedSub', { amount: formatCents(request.payment.authorized_cents, lang()) })) : null,
          request.finalised && Number.isInteger(request.payment?.captured_cents)
            ? h('span', { class: 'sub' }, t('requests.capturedSub', { amount: formatCents(request.payment.captured_cents, lang()) })) : null),
        h('td', {}, statusBadge(request.finalised === true ? 'finalised' : request.status),
          request.capture_deadline ? h('span', { class: 'sub' }, t('requests.captureBy', { at: formatDateTime(request.capture_deadline, lang(), { short: true }) })) : null),
        // An authorized pre-reservation expires at its capture deadline, not the request's.
        h('td', { class: 'nowrap' }, formatDateTime(request.capture_deadline || request.expires_at, lang(), { short: true })),
        h('td', {}, actions)));
    }
    tableHost.append(h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, t('requests.title')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('col.created')), h('th', { scope: 'col' }, t('col.orderCustomer')),
        h('th', { scope: 'col' }, t('col.capture')), h('th', { scope: 'col', class: 'num' }, t('col.amount')),
        h('th', { scope: 'col' }, t('col.status')),
        h('th', { scope: 'col' }, t('col.expires')), h('th', { scope: 'col' }, t('col.actions')))),
      body)));
  }

  function detailNode(request) {
    const rows = [
      [t('col.order'), h('span', { class: 'mono' }, request.order_ref)],
      [t('col.status'), statusBadge(request.status)],
      [t('col.amount'), money(request.amount_cents)],
      [t('col.capture'), t(`requests.capture.${request.capture}`)],
      [t('col.expires'), formatDateTime(request.expires_at, lang())],
    ];
    if (request.capture_deadline) rows.push([t('col.captureDeadline'), formatDateTime(request.capture_deadline, lang())]);
    if (request.payment) {
      rows.push([t('col.authorized'), money(request.payment.authorized_cents)]);
      if (request.payment.transaction_id) rows.push([t('col.transaction'), h('span', { class: 'mono' }, request.payment.transaction_id)]);
    }
    const node = h('div', { 'aria-live': 'polite' }, h('dl', { class: 'summary' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
    if (request.qr_svg) {
      // qr_svg is produced by our own backend (plugin), shown as an image so it cannot run anything.
      const img = h('img', { alt: t('requests.qr'), src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(request.qr_svg)}` });
      node.append(h('div', { class: 'qr-box' }, img));
    }
    if (request.payment?.authorized_cents > 0) node.append(h('p', { class: 'row' }, ...receiptLinks(request.payment.payment_id)));
    return node;
  }

  async function follow(request) {
    const holder = h('div', {}, detailNode(request));
    const tick = async () => {
      try {
        const fresh = await api(`/cvco/v1/payment-requests/${encodeURIComponent(request.request_id)}`);
        clear(holder).append(detailNode(fresh));
        if (fresh.final) return;
      } catch {
        /* keep the last state shown */
      }
      followTimer = setTimeout(tick, 3000);
    };
    tick();
    await openDialog({ title: t('requests.followTitle', { ref: request.order_ref }), body: holder, confirmLabel: t('common.close') });
    clearTimeout(followTimer);
    load();
  }

  async function finaliseDialog(request) {
    const authorized = request.payment?.authorized_cents ?? request.amount_cents;
    const body = h('div', {},
      h('p', {}, t('requests.finalise.intro', { amount: formatCents(authorized, lang()) })),
      amountField('amount_cents', t('requests.finalise.amount'), { value: centsToInput(authorized), hint: t('requests.finalise.hint') }));
    const done = await openDialog({
      title: t('requests.finalise.title', { ref: request.order_ref }),
      body,
      confirmLabel: t('requests.finalise'),
      onConfirm: async (form) => {
        const amount = readCents(form, 'amount_cents');
        if (amount.error) return showFieldError(form, amount.error, lang()) && false;
        if (amount.cents > authorized) return showFieldError(form, localError('amount_cents', 'requests.finalise.tooMuch'), lang()) && false;
        try {
          return await api(`/cvco/v1/payment-requests/${encodeURIComponent(request.request_id)}/finalise`, {
            method: 'POST', body: amount.cents === authorized ? {} : { amount_cents: amount.cents },
          });
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
      toast(t('requests.finalised', { ref: request.order_ref }));
      load();
    }
  }

  async function cancelDialog(request) {
    const done = await openDialog({
      title: t('requests.cancel.title', { ref: request.order_ref }),
      body: h('p', {}, t('requests.cancel.confirm', { amount: formatCents(request.amount_cents, lang()) })),
      confirmLabel: t('requests.cancel.do'),
      cancelLabel: t('requests.cancel.keep'),
      confirmClass: 'btn-danger',
      onConfirm: async (form) => {
        try {
          return await api(`/cvco/v1/payment-requests/${encodeURIComponent(request.request_id)}/cancel`, { method: 'POST', body: {} });
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
      toast(t('requests.cancelled', { ref: request.order_ref }));
      load();
    }
  }

  view.append(h('h1', {}, t('requests.title')), h('p', { class: 'muted' }, t('requests.intro')), filter, status, tableHost);
  load();
  return () => {
    stopped = true;
    clearTimeout(followTimer);
    clearTimeout(liveTimer);
  };
}
