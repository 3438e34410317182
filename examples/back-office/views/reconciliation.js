// Reimbursement statements (ANCV guide §4.3.4): each remittance with its lines matched to our
// orders by merchant reference, ANCV's fee beside the one our setting expects, the net amount,
// unmatched lines flagged in words (never by colour alone), and the CSV export.

import { api } from '../../shared/api.js';
import { h, clear, announce, busy } from '../../shared/dom.js';
import { t, lang, addStrings } from '../../shared/i18n.js';
import { formatCents, formatDateTime, parisToday } from '../../shared/money.js';
import { money, asApiError, isSessionLost, textField } from '../common.js';

addStrings({
  fr: {
    'nav.reconciliation': 'Remboursements',
    'rec.title': 'Relevés de remboursement',
    'rec.intro': 'Les remises ANCV (Chèque-Vacances Connect), ligne à ligne, rapprochées de vos commandes par la référence commerçant.',
    'rec.from': 'Du',
    'rec.to': 'Au',
    'rec.show': 'Afficher',
    'rec.csv': 'Exporter en CSV',
    'rec.csvHint': 'CSV pour Excel : séparateur « ; », montants en euros avec virgule.',
    'rec.lines': 'Lignes remises',
    'rec.flagged': 'À vérifier',
    'rec.gross': 'Brut',
    'rec.fee': 'Commission ANCV',
    'rec.expectedFee': 'Commission attendue ({rate} %)',
    'rec.net': 'Net remboursé',
    'rec.remittance': 'Remise du {date} — commission ANCV {rate} %',
    'rec.noRemittance': 'Aucune remise sur la période.',
    'rec.emptyRemittance': 'Aucune transaction dans cette remise.',
    'col.reference': 'Référence commerçant',
    'col.ourOrder': 'Notre commande',
    'col.gross': 'Brut',
    'col.fee': 'Commission',
    'col.net': 'Net',
    'col.check': 'Rapprochement',
    'rec.ok': 'Rapprochée',
    'rec.flag.unknown_order': 'Référence inconnue de nos commandes',
    'rec.flag.unknown_transaction': 'Transaction absente de nos paiements',
    'rec.flag.reference_mismatch': 'Référence différente de la commande',
    'rec.flag.amount_mismatch': 'Montant différent du nôtre',
    'rec.flag.fee_mismatch': 'Commission différente de la nôtre ({fee})',
    'rec.flag.not_remitted': 'Payée, jamais remise après {days} jours',
    'rec.pending': 'Pas encore remise',
    'rec.notRemitted': 'Paiements encaissés absents des remises',
    'rec.notRemittedEmpty': 'Tous les paiements encaissés de la période figurent dans une remise.',
    'rec.paidAt': 'Payé le',
  },
  en: {
    'nav.reconciliation': 'Reimbursements',
    'rec.title': 'Reimbursement statements',
    'rec.intro': "ANCV's remittances (Chèque-Vacances Connect), line by line, matched with your orders by merchant reference.",
    'rec.from': 'From',
    'rec.to': 'To',
    'rec.show': 'Show',
    'rec.csv': 'Export CSV',
    'rec.csvHint': 'CSV for French Excel: ";" separator, euro amounts with a decimal comma.',
    'rec.lines': 'Remitted lines',
    'rec.flagged': 'To check',
    'rec.gross': 'Gross',
    'rec.fee': 'ANCV fee',
    'rec.expectedFee': 'Expected fee ({rate} %)',
    'rec.net': 'Net reimbursed',
    'rec.remittance': 'Remittance of {date} — ANCV fee {rate} %',
    'rec.noRemittance': 'No remittance in this period.',
    'rec.emptyRemittance': 'No transaction in this remittance.',
    'col.reference': 'Merchant reference',
    'col.ourOrder': 'Our order',
    'col.gross': 'Gross',
    'col.fee': 'Fee',
    'col.net': 'Net',
    'col.check': 'Reconciliation',
    'rec.ok': 'Matched',
    'rec.flag.unknown_order': 'Reference not one of our orders',
    'rec.flag.unknown_transaction': 'Transaction not in our payments',
    'rec.flag.reference_mismatch': "Reference differs from the order's",
    'rec.flag.amount_mismatch': 'Amount differs from ours',
    'rec.flag.fee_mismatch': 'Fee differs from ours ({fee})',
    'rec.flag.not_remitted': 'Paid, not remitted after {days} days',
    'rec.pending': 'Not remitted yet',
    'rec.notRemitted': 'Collected payments missing from the remittances',
    'rec.notRemittedEmpty': 'Every collected payment of the period is in a remittance.',
    'rec.paidAt': 'Paid at',
  },
});

function stat(label, value, cls = '') {
  return h('div', { class: `stat ${cls}` }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
}

function rate(bps) {
  return (Number(bps || 0) / 100).toLocaleString(lang() === 'en' ? 'en-GB' : 'fr-FR', { maximumFractionDigits: 2 });
}

/** Where the flags are, words the manager can act on. */
function checkCell(flags, line, overdueDays) {
  if (!flags || flags.length === 0) return h('span', { class: 'badge', dataset: { status: 'authorized' } }, t('rec.ok'));
  return h('ul', { class: 'flags' }, flags.map((f) => h('li', {},
    h('span', { class: 'badge', dataset: { status: 'declined' } },
      t(`rec.flag.${f}`, { fee: formatCents(line.expected_fee_cents, lang()), days: overdueDays })))));
}

function daysAgo(n) {
  const d = new Date(`${parisToday()}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - n);
  return d.toISOString().slice(0, 10);
}

export function renderReconciliation(view, ctx) {
  const from = ctx.params.get('from') || daysAgo(6);
  const to = ctx.params.get('to') || parisToday();
  const status = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const content = h('div', { id: 'reconciliation' });
  const form = h('form', { class: 'filters', novalidate: true },
    textField('from', t('rec.from'), { type: 'date', value: from, required: true }),
    textField('to', t('rec.to'), { type: 'date', value: to, required: true }),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn' }, t('rec.show'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams({ from: form.elements.from.value, to: form.elements.to.value });
    ctx.navigate(`#/reconciliation?${q}`);
  });
  const query = new URLSearchParams({ from, to }).toString();
  const csv = h('a', { class: 'btn', id: 'reconciliation-csv', href: `/cvco/v1/reconciliation.csv?${query}`, download: '' }, t('rec.csv'));

  function render(r) {
    clear(content);
    const tot = r.totals || {};
    content.append(h('div', { class: 'stat-grid' },
      stat(t('rec.lines'), String(tot.lines ?? 0)),
      stat(t('rec.flagged'), String(tot.flagged ?? 0), tot.flagged ? 'flagged' : ''),
      stat(t('rec.gross'), formatCents(tot.gross_cents, lang())),
      stat(t('rec.fee'), formatCents(tot.fee_cents, lang())),
      stat(t('rec.expectedFee', { rate: rate(r.fee_rate_bps) }), formatCents(tot.expected_fee_cents, lang())),
      stat(t('rec.net'), formatCents(tot.net_cents, lang()), 'net')));
    const remittances = (r.remittances || []).filter((s) => (s.lines || []).length > 0);
    if (remittances.length === 0) content.append(h('p', { class: 'empty' }, t('rec.noRemittance')));
    for (const s of remittances) {
      content.append(h('div', { class: 'table-wrap' }, h('table', { class: 'remittance' },
        h('caption', {}, t('rec.remittance', { date: s.date, rate: rate(s.fee_bps) })),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, t('col.transaction')),
          h('th', { scope: 'col' }, t('col.reference')),
          h('th', { scope: 'col' }, t('col.ourOrder')),
          h('th', { scope: 'col', class: 'num' }, t('col.gross')),
          h('th', { scope: 'col', class: 'num' }, t('col.refunded')),
          h('th', { scope: 'col', class: 'num' }, t('col.fee')),
          h('th', { scope: 'col', class: 'num' }, t('col.net')),
          h('th', { scope: 'col' }, t('col.check')))),
        h('tbody', {}, s.lines.map((l) => h('tr', { class: l.matched ? '' : 'flagged', dataset: { tx: l.transaction_id } },
          h('td', { class: 'mono' }, l.transaction_id),
          h('td', { class: 'mono' }, l.merchant_order_id),
          h('td', { class: 'mono' }, l.order_ref || '—'),
          h('td', { class: 'num' }, money(l.gross_cents)),
          h('td', { class: 'num' }, l.refunded_cents > 0 ? money(l.refunded_cents) : '—'),
          h('td', { class: 'num' }, money(l.fee_cents)),
          h('td', { class: 'num' }, money(l.net_cents)),
          h('td', {}, checkCell(l.flags, l, r.overdue_days))))))));
    }
    const missing = r.not_remitted || [];
    content.append(h('h2', {}, t('rec.notRemitted')));
    if (missing.length === 0) {
      content.append(h('p', { class: 'empty' }, t('rec.notRemittedEmpty')));
      return;
    }
    content.append(h('div', { class: 'table-wrap' }, h('table', { class: 'not-remitted' },
      h('caption', {}, t('rec.notRemitted')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('rec.paidAt')),
        h('th', { scope: 'col' }, t('col.transaction')),
        h('th', { scope: 'col' }, t('col.order')),
        h('th', { scope: 'col', class: 'num' }, t('col.authorized')),
        h('th', { scope: 'col' }, t('col.check')))),
      h('tbody', {}, missing.map((p) => h('tr', { class: p.overdue ? 'flagged' : '' },
        h('td', {}, formatDateTime(p.authorized_at, lang(), { short: true })),
        h('td', { class: 'mono' }, p.transaction_id),
        h('td', { class: 'mono' }, p.order_ref),
        h('td', { class: 'num' }, money(p.authorized_cents)),
        h('td', {}, p.overdue ? checkCell(p.flags, p, r.overdue_days)
          : h('span', { class: 'badge', dataset: { status: 'pending' } }, t('rec.pending')))))))));
  }

  async function load() {
    announce(status, t('common.loading'), 'info');
    try {
      const r = await api(`/cvco/v1/reconciliation?${query}`);
      announce(status, '');
      render(r);
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      announce(status, asApiError(error).localized(lang()), 'error');
    }
    return undefined;
  }

  const refresh = h('button', { type: 'button', class: 'btn' }, t('tx.refresh'));
  refresh.addEventListener('click', () => busy(refresh, load));
  view.append(
    h('div', { class: 'row-between' }, h('h1', {}, t('rec.title')), h('div', { class: 'row no-print' }, refresh, csv)),
    h('p', { class: 'muted' }, t('rec.intro')),
    form, h('p', { class: 'hint' }, t('rec.csvHint')), status, content);
  load();
  return () => {};
}
