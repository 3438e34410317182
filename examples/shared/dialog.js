// Modal dialogs on the native <dialog> element (focus trap and Escape come with it).

import { h, clearFieldErrors } from './dom.js';
import { t } from './i18n.js';

/**
 * Opens a dialog with `body` (a Node, usually containing a form's fields). `onConfirm` runs when the
 * confirm button is pressed; if it throws or returns false the dialog stays open (it shows its own
 * error). Resolves to the value onConfirm returned, or null when dismissed. Both buttons say what
 * they do (`cancelLabel`, e.g. "Garder le paiement" against "Annuler le paiement"); a destructive
 * one (btn-danger) without a field to fill starts with focus on the safe choice.
 */
export function openDialog({ title, body, confirmLabel, cancelLabel = t('common.cancel'), confirmClass = 'btn-primary', onConfirm }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
    const confirm = h('button', { type: 'submit', class: `btn ${confirmClass}` }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn', dataset: { role: 'dismiss' } }, cancelLabel);
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { method: 'dialog', novalidate: true },
      h('div', { class: 'dialog-body' }, h('h2', { id: titleId }, title), body, error),
      h('div', { class: 'dialog-actions' }, cancel, confirm));
    const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
    let result = null;
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (confirm.getAttribute('aria-busy') === 'true') return;
      clearFieldErrors(form);
      confirm.setAttribute('aria-busy', 'true');
      confirm.disabled = true;
      try {
        const value = onConfirm ? await onConfirm(form) : true;
        if (value !== false) {
          result = value ?? true;
          dialog.close();
        }
      } finally {
        confirm.removeAttribute('aria-busy');
        confirm.disabled = false;
      }
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector('input, select, textarea');
    const destructive = /\bbtn-danger\b/.test(confirmClass);
    (first || (destructive ? cancel : confirm)).focus();
  });
}
