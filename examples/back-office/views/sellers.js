// Sellers (manager only): list, create with permissions, change permissions, (de)activate.

import { api } from '../../shared/api.js';
import { h, clear, announce, busy, showFieldError, clearFieldErrors } from '../../shared/dom.js';
import { t, lang } from '../../shared/i18n.js';
import { roleLabel } from '../../shared/bo-session.js';
import { textField, localError, toast, asApiError, isSessionLost } from '../common.js';

export const PERMISSIONS = ['moto', 'counter', 'cancel', 'refund', 'close_day', 'manage_sellers'];

function permissionBoxes(prefix, current = {}) {
  return h('div', { class: 'perm-list' }, PERMISSIONS.map((perm) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: `perm_${perm}`, id: `${prefix}-${perm}`, checked: Boolean(current[perm]) }),
    t(`perm.${perm}`))));
}

function readPermissions(form) {
  return Object.fromEntries(PERMISSIONS.map((perm) => [perm, form.elements[`perm_${perm}`].checked]));
}

export function renderSellers(view, ctx) {
  const status = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const tableHost = h('div');

  const createForm = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'seller-create-title' },
    h('h2', { id: 'seller-create-title', class: 'card-title' }, t('sellers.create')),
    h('div', { class: 'form-grid' },
      textField('username', t('login.username'), { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: '64' }),
      textField('password', t('login.password'), { type: 'password', autocomplete: 'new-password', required: true, hint: t('sellers.passwordHint') })),
    h('fieldset', {}, h('legend', {}, t('sellers.permissions')), permissionBoxes('new', { moto: true, counter: true })),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'submit', class: 'btn btn-primary' }, t('sellers.create.submit')));
  createForm.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFieldErrors(createForm);
    const username = createForm.elements.username.value.trim();
    const password = createForm.elements.password.value;
    if (!username) return showFieldError(createForm, localError('username', 'form.required'), lang());
    if (password.length < 8) return showFieldError(createForm, localError('password', 'sellers.passwordHint'), lang());
    return busy(createForm.querySelector('[type=submit]'), async () => {
      try {
        await api('/back-office/api/sellers', { method: 'POST', body: { username, password, permissions: readPermissions(createForm) } });
        toast(t('sellers.created', { username }));
        createForm.reset();
        load();
      } catch (error) {
        if (isSessionLost(error)) return ctx.sessionLost();
        showFieldError(createForm, asApiError(error), lang());
      }
      return undefined;
    });
  });

  async function update(username, change, button) {
    return busy(button, async () => {
      try {
        await api(`/back-office/api/sellers/${encodeURIComponent(username)}`, { method: 'PUT', body: change });
        toast(t('sellers.updated', { username }));
        load();
      } catch (error) {
        if (isSessionLost(error)) return ctx.sessionLost();
        toast(asApiError(error).localized(lang()), 'error');
      }
      return undefined;
    });
  }

  function renderTable(sellers) {
    clear(tableHost);
    if (sellers.length === 0) {
      tableHost.append(h('div', { class: 'table-wrap' }, h('p', { class: 'empty' }, t('sellers.empty'))));
      return;
    }
    const body = h('tbody');
    for (const seller of sellers) {
      const active = seller.active !== false;
      const self = ctx.session?.username === seller.username;
      const form = h('form', { class: 'perm-form', novalidate: true }, permissionBoxes(`s-${seller.username}`, seller.permissions || {}));
      const save = h('button', { type: 'submit', class: 'btn btn-small' }, t('sellers.save'));
      form.append(save);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        update(seller.username, { permissions: readPermissions(form) }, save);
      });
      const toggle = h('button', { type: 'button', class: `btn btn-small ${active ? 'btn-danger' : ''}`, disabled: self }, active ? t('sellers.deactivate') : t('sellers.activate'));
      toggle.addEventListener('click', () => update(seller.username, { active: !active }, toggle));
      body.append(h('tr', {},
        h('td', {}, h('strong', {}, seller.username), h('div', { class: 'muted small' }, roleLabel(seller.role))),
        h('td', {}, form),
        // The badge borrows the status colours (green / grey); its text says what it means here.
        h('td', {}, h('span', { class: 'badge', dataset: { status: active ? 'authorized' : 'cancelled' } }, active ? t('sellers.active') : t('sellers.inactive'))),
        h('td', {}, toggle)));
    }
    tableHost.append(h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, t('sellers.title')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('sellers.col.user')), h('th', { scope: 'col' }, t('sellers.permissions')),
        h('th', { scope: 'col' }, t('col.status')), h('th', { scope: 'col' }, t('col.actions')))),
      body)));
  }

  async function load() {
    announce(status, t('common.loading'), 'info');
    try {
      const data = await api('/back-office/api/sellers');
      const sellers = Array.isArray(data) ? data : (data?.items ?? data?.sellers ?? []);
      announce(status, '');
      renderTable(sellers);
    } catch (error) {
      if (isSessionLost(error)) return ctx.sessionLost();
      announce(status, asApiError(error).localized(lang()), 'error');
    }
    return undefined;
  }

  view.append(h('h1', {}, t('sellers.title')), status, tableHost, h('div', { class: 'spacer' }), createForm);
  load();
  return () => {};
}
