// Merchant settings (manager only): what every flow applies — minimum, adjustment, partial
// authorizations, tickets, remainder, fee, closing hour — and the cancellation password
// ("0000" removes it, as on the TETRA terminal; never shown back). GET/PUT /cvco/v1/settings.

import { api } from '../../shared/api.js';
import { h, announce, busy, showFieldError, clearFieldErrors } from '../../shared/dom.js';
import { t, lang, addStrings } from '../../shared/i18n.js';
import { centsToInput } from '../../shared/money.js';
import { amountField, textField, selectField, readCents, localError, toast, asApiError, isSessionLost } from '../common.js';

addStrings({
  fr: {
    'nav.settings': 'Paramètres',
    'settings.title': 'Paramètres du commerce',
    'settings.amounts': 'Montants',
    'settings.min': 'Montant minimum d’un paiement (€)',
    'settings.remainderMin': 'Minimum d’un reste dû (€, vide : le même)',
    'settings.remainderMinHint': 'Plus bas que le minimum seulement si votre contrat ANCV le permet.',
    'settings.fee': 'Commission ANCV (%)',
    'settings.flows': 'Paiement',
    'settings.adjustable': 'Le bénéficiaire peut ajuster le montant dans l’application',
    'settings.refusePartial': 'Refuser les autorisations partielles (borne sans autre moyen de paiement)',
    'settings.autoRemainder': 'Au comptoir, enchaîner automatiquement un paiement pour le reste dû',
    'settings.tickets': 'Tickets imprimés par transaction',
    'settings.ticketQr': 'Imprimer le QR code de la transaction sur le ticket',
    'settings.closing': 'Heure de clôture de la journée (heure de Paris)',
    'settings.password': 'Mot de passe d’annulation',
    'settings.passwordSet': 'Un mot de passe est défini.',
    'settings.passwordNone': 'Aucun mot de passe : toute annulation est possible sans.',
    'settings.passwordNew': 'Nouveau mot de passe (vide : inchangé ; 0000 : le supprimer)',
    'settings.save': 'Enregistrer les paramètres',
    'settings.saved': 'Paramètres enregistrés.',
    'settings.badPercent': 'Pourcentage invalide : par exemple 2,5.',
  },
  en: {
    'nav.settings': 'Settings',
    'settings.title': 'Shop settings',
    'settings.amounts': 'Amounts',
    'settings.min': 'Minimum amount of a payment (€)',
    'settings.remainderMin': 'Minimum of a remainder (€, empty: the same)',
    'settings.remainderMinHint': 'Lower than the minimum only where your ANCV contract allows it.',
    'settings.fee': 'ANCV fee (%)',
    'settings.flows': 'Payment',
    'settings.adjustable': 'The beneficiary may adjust the amount in the app',
    'settings.refusePartial': 'Refuse partial authorizations (kiosk with no other tender)',
    'settings.autoRemainder': 'At the counter, chain a payment for the remainder automatically',
    'settings.tickets': 'Tickets printed per transaction',
    'settings.ticketQr': 'Print the transaction’s QR code on the ticket',
    'settings.closing': 'Closing hour of the day (Paris time)',
    'settings.password': 'Cancellation password',
    'settings.passwordSet': 'A password is set.',
    'settings.passwordNone': 'No password: any cancellation is possible without one.',
    'settings.passwordNew': 'New password (empty: unchanged; 0000: remove it)',
    'settings.save': 'Save the settings',
    'settings.saved': 'Settings saved.',
    'settings.badPercent': 'Invalid percentage: for example 2.5.',
  },
});

function check(name, label, checked) {
  return h('label', { class: 'check' }, h('input', { type: 'checkbox', name, checked: Boolean(checked) }), label);
}

function percentToBps(text) {
  const value = Number(String(text).trim().replace(',', '.'));
  if (!Number.isFinite(value) || value < 0 || value > 100) return null;
  return Math.round(value * 100);
}

function bpsToPercent(bps) {
  return String(bps / 100).replace('.', lang() === 'fr' ? ',' : '.');
}

export function renderSettings(view, ctx) {
  const status = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const host = h('div');

  function renderForm(s) {
    host.replaceChildren();
    const hours = Array.from({ length: 24 }, (_, i) => [String(i), `${String(i).padStart(2, '0')}:00`]);
    const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'settings-title', id: 'settings-form' },
      h('h2', { id: 'settings-title', class: 'card-title' }, t('settings.title')),
      h('fieldset', {}, h('legend', {}, t('settings.amounts')),
        h('div', { class: 'form-grid' },
          amountField('min_amount_cents', t('settings.min'), { value: centsToInput(s.min_amount_cents) }),
          amountField('remainder_min_cents', t('settings.remainderMin'), {
            value: s.remainder_min_cents == null ? '' : centsToInput(s.remainder_min_cents),
            required: false,
            hint: t('settings.remainderMinHint'),
          }),
          textField('fee_rate_bps', t('settings.fee'), { inputmode: 'decimal', value: bpsToPercent(s.fee_rate_bps), autocomplete: 'off' }),
          selectField('closing_hour', t('settings.closing'), hours, String(s.closing_hour)),
          selectField('tickets', t('settings.tickets'), [['1', '1'], ['2', '2']], String(s.tickets)))),
      h('fieldset', {}, h('legend', {}, t('settings.flows')),
        h('div', { class: 'perm-list' },
          check('adjustable', t('settings.adjustable'), s.adjustable),
          check('refuse_partial', t('settings.refusePartial'), s.refuse_partial),
          check('auto_remainder', t('settings.autoRemainder'), s.auto_remainder),
          check('ticket_qr', t('settings.ticketQr'), s.ticket_qr))),
      h('fieldset', {}, h('legend', {}, t('settings.password')),
        h('p', { class: 'muted small', id: 'settings-password-state' }, s.has_cancel_password ? t('settings.passwordSet') : t('settings.passwordNone')),
        textField('cancel_password', t('settings.passwordNew'), { type: 'password', autocomplete: 'new-password', inputmode: 'numeric', maxlength: '32' })),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      h('button', { type: 'submit', class: 'btn btn-primary' }, t('settings.save')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      const min = readCents(form, 'min_amount_cents');
      if (min.error) return showFieldError(form, min.error, lang());
      const remainder = readCents(form, 'remainder_min_cents', { optional: true });
      if (remainder.error) return showFieldError(form, remainder.error, lang());
      const fee = percentToBps(form.elements.fee_rate_bps.value);
      if (fee === null) return showFieldError(form, localError('fee_rate_bps', 'settings.badPercent'), lang());
      const body = {
        min_amount_cents: min.cents,
        remainder_min_cents: remainder.cents ?? null,
        fee_rate_bps: fee,
        closing_hour: Number(form.elements.closing_hour.value),
        tickets: Number(form.elements.tickets.value),
        adjustable: form.elements.adjustable.checked,
        refuse_partial: form.elements.refuse_partial.checked,
        auto_remainder: form.elements.auto_remainder.checked,
        ticket_qr: form.elements.ticket_qr.checked,
      };
      const password = form.elements.cancel_password.value;
      if (password !== '') body.cancel_password = password;
      return busy(form.querySelector('[type=submit]'), async () => {
        try {
          const saved = await api('/cvco/v1/settings', { method: 'PUT', body });
          toast(t('settings.saved'));
          renderForm(saved);
        } catch (error) {
          if (isSessionLost(error)) return ctx.sessionLost();
          showFieldError(form, asApiError(error), lang());
        }
        return undefined;
      });
    });
    host.append(form);
  }

  async function load() {
    announce(status, t('common.loading'), 'info');
    try {
      const s = await api('/cvco/v1/settings');
      announce(status, '');
      renderForm(s);
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      announce(status, asApiError(error).localized(lang()), 'error');
    }
    return undefined;
  }

  view.append(h('h1', {}, t('settings.title')), status, host);
  load();
  return () => {};
}
