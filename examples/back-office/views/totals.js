// Daily totals since the last closing, printable, and "close the day".

import { api } from '../../shared/api.js';
import { h, clear, announce, busy, showFieldError } from '../../shared/dom.js';
import { t, lang, addStrings } from '../../shared/i18n.js';
import { formatCents, formatDateTime } from '../../shared/money.js';
import { openDialog } from '../../shared/dialog.js';
import { can } from '../../shared/bo-session.js';
import { money, toast, asApiError, isSessionLost, textField } from '../common.js';

addStrings({
  fr: {
    'closings.title': 'Clôtures',
    'closings.hint': 'La journée se clôture seule à l’heure de clôture ; chaque clôture reste imprimable (les réimpressions portent DUPLICATA).',
    'closings.empty': 'Aucune clôture enregistrée.',
    'closings.closedAt': 'Clôturée le',
    'closings.day': 'Journée',
    'closings.kind': 'Clôture',
    'closings.kind.auto': 'Automatique',
    'closings.kind.manual': 'Manuelle',
    'closings.print': 'Imprimer le ticket',
    'closings.printLabel': 'Imprimer le ticket de la clôture du {date} ({at})',
  },
  en: {
    'closings.title': 'Closings',
    'closings.hint': 'The day closes by itself at the closing hour; every closing stays printable (reprints say DUPLICATA).',
    'closings.empty': 'No closing recorded.',
    'closings.closedAt': 'Closed at',
    'closings.day': 'Business day',
    'closings.kind': 'Closing',
    'closings.kind.auto': 'Automatic',
    'closings.kind.manual': 'By hand',
    'closings.print': 'Print the ticket',
    'closings.printLabel': 'Print the ticket of the closing of {date} ({at})',
  },
});

function closingReceipt(closing) {
  return `/cvco/v1/closings/${encodeURIComponent(closing.id)}/receipt`;
}

/** closing_hour is an hour of the day (0–23, Paris); older adapters may send "HH:MM". */
function closingHour(value) {
  if (Number.isInteger(value)) return lang() === 'en' ? `${String(value).padStart(2, '0')}:00` : `${value} h`;
  return value ?? '—';
}

function stat(label, value, cls = '') {
  return h('div', { class: `stat ${cls}` }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
}

export function renderTotals(view, ctx) {
  const status = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const content = h('div', { 'aria-live': 'polite' });
  const closingsBox = h('section', { class: 'closings', 'aria-labelledby': 'closings-title' });
  const date = ctx.params.get('date') || '';
  const dateForm = h('form', { class: 'filters', novalidate: true },
    textField('date', t('totals.date'), { type: 'date', value: date }),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn' }, t('totals.show'))));
  dateForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = dateForm.elements.date.value;
    ctx.navigate(value ? `#/totals?date=${encodeURIComponent(value)}` : '#/totals');
  });

  const printLink = h('a', { class: 'btn', target: '_blank', rel: 'noopener', href: `/cvco/v1/receipts/totals${date ? `?date=${encodeURIComponent(date)}` : ''}` }, t('totals.print'));
  const closeButton = can('close_day') ? h('button', { type: 'button', class: 'btn btn-danger' }, t('totals.close')) : null;

  function renderTotalsBody(totals, heading) {
    clear(content);
    if (heading) content.append(h('div', { class: 'notice', dataset: { tone: 'ok' } }, heading));
    content.append(
      h('p', { class: 'muted' }, t('totals.since', {
        since: formatDateTime(totals.since, lang()), hour: closingHour(totals.closing_hour), date: totals.date ?? '—',
      })),
      h('div', { class: 'stat-grid' },
        stat(t('totals.count'), String(totals.count ?? 0)),
        stat(t('totals.gross'), formatCents(totals.gross_cents, lang())),
        stat(t('totals.refunded'), formatCents(totals.refunded_cents, lang())),
        stat(t('totals.net'), formatCents(totals.net_cents, lang()), 'net'),
        stat(t('totals.cancelled'), String(totals.cancelled_count ?? 0)),
        stat(t('totals.declined'), String(totals.declined_count ?? 0)),
        stat(t('totals.expired'), String(totals.expired_count ?? 0))));
    const lines = totals.lines || [];
    if (lines.length === 0) {
      content.append(h('div', { class: 'table-wrap' }, h('p', { class: 'empty' }, t('totals.empty'))));
      return;
    }
    content.append(h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', {}, t('totals.lines')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('col.when')), h('th', { scope: 'col' }, t('col.transaction')), h('th', { scope: 'col' }, t('col.order')),
        h('th', { scope: 'col', class: 'num' }, t('col.authorized')), h('th', { scope: 'col', class: 'num' }, t('col.refunded')))),
      h('tbody', {}, lines.map((line) => h('tr', {},
        h('td', {}, formatDateTime(line.at, lang())),
        h('td', { class: 'mono' }, line.transaction_id),
        h('td', { class: 'mono' }, line.order_ref),
        h('td', { class: 'num' }, money(line.authorized_cents)),
        h('td', { class: 'num' }, line.refunded_cents > 0 ? money(line.refunded_cents) : '—')))))));
  }

  async function load() {
    announce(status, t('common.loading'), 'info');
    try {
      const totals = await api(`/cvco/v1/totals${date ? `?date=${encodeURIComponent(date)}` : ''}`);
      announce(status, '');
      renderTotalsBody(totals);
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      announce(status, asApiError(error).localized(lang()), 'error');
    }
    return undefined;
  }

  if (closeButton) {
    closeButton.addEventListener('click', async () => {
      const closed = await openDialog({
        title: t('totals.close.title'),
        body: h('p', {}, t('totals.close.confirm')),
        confirmLabel: t('totals.close'),
        cancelLabel: t('totals.close.keep'),
        confirmClass: 'btn-danger',
        onConfirm: async (form) => {
          try {
            return await api('/cvco/v1/closing', { method: 'POST', body: {} });
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
      if (closed && typeof closed === 'object') {
        toast(t('totals.closed'));
        renderTotalsBody(closed, t('totals.closedAt', { at: formatDateTime(closed.closed_at, lang()) }));
        const printClosed = h('a', { class: 'btn btn-small', target: '_blank', rel: 'noopener', href: closingReceipt(closed) }, t('closings.print'));
        content.firstChild.append(' ', printClosed);
        loadClosings();
      }
    });
  }

  const refresh = h('button', { type: 'button', class: 'btn' }, t('tx.refresh'));
  refresh.addEventListener('click', () => busy(refresh, load));
  view.append(
    h('div', { class: 'row-between' }, h('h1', {}, t('totals.title')), h('div', { class: 'row no-print' }, refresh, printLink, closeButton)),
    dateForm, status, content);
  async function loadClosings() {
    let items;
    try {
      items = (await api('/cvco/v1/closings?limit=30')).items || [];
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      return undefined;
    }
    clear(closingsBox);
    closingsBox.append(h('h2', { id: 'closings-title' }, t('closings.title')), h('p', { class: 'muted' }, t('closings.hint')));
    if (items.length === 0) {
      closingsBox.append(h('p', { class: 'empty' }, t('closings.empty')));
      return undefined;
    }
    closingsBox.append(h('div', { class: 'table-wrap' }, h('table', { id: 'closings' },
      h('caption', {}, t('closings.title')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('closings.closedAt')), h('th', { scope: 'col' }, t('closings.day')),
        h('th', { scope: 'col' }, t('closings.kind')), h('th', { scope: 'col', class: 'num' }, t('totals.count')),
        h('th', { scope: 'col', class: 'num' }, t('totals.net')), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, t('closings.print'))))),
      h('tbody', {}, items.map((c) => {
        const at = formatDateTime(c.closed_at, lang(), { short: true });
        return h('tr', { dataset: { closing: String(c.id), kind: c.kind } },
          h('td', {}, at),
          h('td', {}, c.date ?? '—'),
          h('td', {}, t(`closings.kind.${c.kind === 'auto' ? 'auto' : 'manual'}`)),
          h('td', { class: 'num' }, String(c.count ?? 0)),
          h('td', { class: 'num' }, money(c.net_cents ?? 0)),
          h('td', {}, h('a', {
            class: 'btn btn-small', target: '_blank', rel: 'noopener', href: closingReceipt(c),
            'aria-label': t('closings.printLabel', { date: c.date ?? '', at }),
          }, t('closings.print'))));
      })))));
    return undefined;
  }

  view.append(closingsBox);
  load();
  loadClosings();
  return () => {};
}
