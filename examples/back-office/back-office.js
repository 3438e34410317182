import './strings.js';
import { h, $, $$, clear } from '../shared/dom.js';
import { t, applyTranslations, wireLangToggle, onLangChange } from '../shared/i18n.js';
import { loadSession, logout, renderLoginForm, currentSession, can, roleLabel } from '../shared/bo-session.js';
import { asApiError } from './common.js';
import { lang } from '../shared/i18n.js';
import { renderPayment } from './views/payment.js';
import { renderRequests } from './views/requests.js';
import { renderTransactions } from './views/transactions.js';
import { renderTotals } from './views/totals.js';
import { renderSellers } from './views/sellers.js';
import { renderReconciliation } from './views/reconciliation.js';
import { renderSettings } from './views/settings.js';

const ROUTES = {
  payment: { render: renderPayment, permission: 'moto', title: 'nav.payment' },
  requests: { render: renderRequests, permission: 'moto', title: 'nav.requests' },
  transactions: { render: renderTransactions, permission: null, title: 'nav.transactions' },
  totals: { render: renderTotals, permission: null, title: 'nav.totals' },
  reconciliation: { render: renderReconciliation, permission: 'close_day', title: 'nav.reconciliation' },
  sellers: { render: renderSellers, permission: 'manage_sellers', title: 'nav.sellers' },
  // The manager's only (the server refuses sellers too).
  settings: { render: renderSettings, permission: null, role: 'manager', title: 'nav.settings' },
};
const ORDER = ['payment', 'requests', 'transactions', 'totals', 'reconciliation', 'sellers', 'settings'];

let cleanup = null;
let sessionNotice = null;

function allowed(name) {
  const route = ROUTES[name];
  return Boolean(route) && (!route.permission || can(route.permission))
    && (!route.role || currentSession()?.role === route.role);
}

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { name: path, params: new URLSearchParams(query) };
}

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function renderChrome() {
  const session = currentSession();
  const signedIn = Boolean(session);
  $('#nav').hidden = !signedIn;
  $('#logout').hidden = !signedIn;
  $('#who').hidden = !signedIn;
  $('#to-counter').hidden = !(signedIn && can('counter'));
  if (signedIn) $('#who').textContent = `${session.username} · ${roleLabel(session.role)}`;
  for (const item of $$('#nav li')) {
    item.hidden = (Boolean(item.dataset.perm) && !can(item.dataset.perm))
      || (Boolean(item.dataset.role) && session?.role !== item.dataset.role);
  }
}

function showLogin() {
  if (cleanup) cleanup();
  cleanup = null;
  renderChrome();
  const view = $('#view');
  renderLoginForm(view, () => {
    sessionNotice = null;
    renderChrome();
    route();
  }, { note: sessionNotice });
}

function sessionLost() {
  sessionNotice = t('bo.sessionLost');
  loadSession().catch(() => null).finally(showLogin);
}

function route() {
  if (!currentSession()) {
    showLogin();
    return;
  }
  const { name, params } = parseHash();
  if (!allowed(name)) {
    const first = ORDER.find(allowed);
    if (first && name !== first) {
      window.location.replace(`#/${first}`);
      return;
    }
  }
  if (cleanup) cleanup();
  const view = clear($('#view'));
  for (const link of $$('#nav a')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const current = ROUTES[name];
  document.title = `${t(current.title)} — ${t('page.title')}`;
  cleanup = current.render(view, { params, navigate, sessionLost, session: currentSession() }) || null;
  view.focus({ preventScroll: true });
}

async function start() {
  applyTranslations();
  wireLangToggle();
  $('#logout').addEventListener('click', async () => {
    try {
      await logout();
    } catch {
      /* signed out locally either way */
    }
    window.location.hash = '#/';
    showLogin();
  });
  window.addEventListener('hashchange', route);
  onLangChange(() => {
    renderChrome();
    if (currentSession()) route();
    else showLogin();
  });
  try {
    await loadSession();
  } catch (error) {
    const view = clear($('#view'));
    view.append(h('p', { class: 'notice', dataset: { tone: 'error' }, role: 'alert' }, asApiError(error).localized(lang())));
    return;
  }
  renderChrome();
  route();
}

start();
