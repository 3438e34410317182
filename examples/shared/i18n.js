// French first; English on demand. The choice is remembered per browser.

const STORAGE_KEY = 'lespins.lang';
const listeners = new Set();
let dictionaries = { fr: {}, en: {} };
let current = readInitialLang();

function readInitialLang() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored === 'fr' || stored === 'en') return stored;
  } catch {
    /* storage disabled: French */
  }
  return 'fr';
}

/** Merges page strings over the shared ones. */
export function addStrings(strings) {
  for (const lang of ['fr', 'en']) {
    dictionaries[lang] = { ...dictionaries[lang], ...(strings[lang] || {}) };
  }
}

export function lang() {
  return current;
}

/** t('cart.items', {n: 3}) → the string with {n} replaced. Missing keys show the key (visible in review). */
export function t(key, vars = {}) {
  const template = dictionaries[current][key] ?? dictionaries.fr[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fills [data-i18n] (text), [data-i18n-placeholder], [data-i18n-aria-label], [data-i18n-title]. */
export function applyTranslations(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  if (dictionaries[current]['page.title']) document.title = t('page.title');
}

export function setLang(next) {
  if (next !== 'fr' && next !== 'en') return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    /* ignore */
  }
  applyTranslations();
  for (const listener of listeners) listener(next);
}

export function onLangChange(listener) {
  listeners.add(listener);
}

/** Wires every [data-lang-toggle] button: it shows the other language and switches to it. */
export function wireLangToggle(root = document) {
  for (const button of root.querySelectorAll('[data-lang-toggle]')) {
    const render = () => {
      const other = current === 'fr' ? 'en' : 'fr';
      button.textContent = other === 'en' ? 'English' : 'Français';
      button.lang = other;
      button.setAttribute('aria-label', other === 'en' ? 'Switch to English' : 'Passer en français');
    };
    render();
    button.addEventListener('click', () => setLang(current === 'fr' ? 'en' : 'fr'));
    onLangChange(render);
  }
}

addStrings({
  fr: {
    'brand.tagline': 'campings & locations',
    'common.loading': 'Chargement…',
    'common.close': 'Fermer',
    'common.cancel': 'Annuler',
    'common.retry': 'Réessayer',
    'common.oneMinuteLeft': 'Plus qu’une minute avant l’expiration du paiement.',
    'status.pending': 'En attente',
    'status.awaiting_beneficiary': 'En attente du bénéficiaire',
    'status.unknown': "Vérification en cours auprès de l'ANCV",
    'status.authorized': 'Autorisé',
    'status.partially_authorized': 'Partiellement autorisé',
    'status.declined': 'Refusé',
    'status.expired': 'Expiré',
    'status.cancelled': 'Annulé',
    'status.refunded': 'Remboursé',
    'status.failed': 'Échec',
    'status.paid': 'Payée',
    'status.awaiting_payment': 'En attente de paiement',
    'status.finalised': 'Finalisée',
  },
  en: {
    'brand.tagline': 'campsites & rentals',
    'common.loading': 'Loading…',
    'common.close': 'Close',
    'common.cancel': 'Cancel',
    'common.retry': 'Try again',
    'common.oneMinuteLeft': 'One minute left before the payment expires.',
    'status.pending': 'Pending',
    'status.awaiting_beneficiary': 'Waiting for the beneficiary',
    'status.unknown': 'Being checked with ANCV',
    'status.authorized': 'Authorized',
    'status.partially_authorized': 'Partially authorized',
    'status.declined': 'Declined',
    'status.expired': 'Expired',
    'status.cancelled': 'Cancelled',
    'status.refunded': 'Refunded',
    'status.failed': 'Failed',
    'status.paid': 'Paid',
    'status.awaiting_payment': 'Awaiting payment',
    'status.finalised': 'Finalised',
  },
});

/** Status label, falling back to the raw code for states this page does not know. */
export function statusLabel(status) {
  const key = `status.${status}`;
  const text = t(key);
  return text === key ? String(status) : text;
}
