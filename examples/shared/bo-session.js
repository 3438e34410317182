// Back-office session shared by /back-office and /counter. The session cookie is HttpOnly; the CSRF
// token is kept in memory only and re-read from GET /back-office/api/session after a reload.

import { api, ApiError, setCsrfToken } from './api.js';
import { h, clearFieldErrors, showFieldError, busy } from './dom.js';
import { t, lang, addStrings } from './i18n.js';

addStrings({
  fr: {
    'login.title': 'Connexion vendeur',
    'login.username': 'Identifiant',
    'login.password': 'Mot de passe',
    'login.submit': 'Se connecter',
    'login.missing': 'Saisissez votre identifiant et votre mot de passe.',
    'login.logout': 'Se déconnecter',
    'login.role.manager': 'Responsable',
    'login.role.seller': 'Vendeur',
  },
  en: {
    'login.title': 'Seller sign-in',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.missing': 'Enter your username and password.',
    'login.logout': 'Sign out',
    'login.role.manager': 'Manager',
    'login.role.seller': 'Seller',
  },
});

let session = null;

export function currentSession() {
  return session;
}

export function can(permission) {
  return Boolean(session?.permissions?.[permission]);
}

function adopt(body) {
  session = body;
  setCsrfToken(body?.csrf_token ?? null);
  return body;
}

/** The current session, or null when signed out (401). Other errors propagate. */
export async function loadSession() {
  try {
    return adopt(await api('/back-office/api/session'));
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      adopt(null);
      return null;
    }
    throw error;
  }
}

export async function login(username, password) {
  return adopt(await api('/back-office/api/login', { method: 'POST', body: { username, password } }));
}

export async function logout() {
  try {
    await api('/back-office/api/logout', { method: 'POST' });
  } finally {
    adopt(null);
  }
}

/** Renders the sign-in form into `container`; calls onSignedIn(session) once signed in. */
export function renderLoginForm(container, onSignedIn, { note } = {}) {
  const userId = 'login-username';
  const passId = 'login-password';
  const form = h('form', { class: 'card login-card', novalidate: true, 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', class: 'card-title' }, t('login.title')),
    note ? h('p', { class: 'muted' }, note) : null,
    h('div', { class: 'field' },
      h('label', { for: userId }, t('login.username')),
      h('input', { id: userId, name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' })),
    h('div', { class: 'field' },
      h('label', { for: passId }, t('login.password')),
      h('input', { id: passId, name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { class: 'btn btn-primary btn-block', type: 'submit' }, t('login.submit')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      showFieldError(form, { localized: () => t('login.missing'), field: username ? 'password' : 'username' }, lang());
      return;
    }
    busy(form.querySelector('button[type=submit]'), async () => {
      try {
        const body = await login(username, password);
        form.elements.password.value = '';
        onSignedIn(body);
      } catch (error) {
        form.elements.password.value = '';
        showFieldError(form, error instanceof ApiError ? error : new ApiError(0, null), lang());
        form.elements.password.focus();
      }
    });
  });
  container.replaceChildren(form);
  form.elements.username.focus();
  return form;
}

export function roleLabel(role) {
  return role === 'manager' ? t('login.role.manager') : t('login.role.seller');
}
