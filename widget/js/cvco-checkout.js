// <cvco-checkout>: the custom element class (custom elements need a JS class); everything else is
// the wasm module. No inline styles, no eval: works under a strict CSP (see README.md).
import init, { mount as mountWasm } from './cvco_widget.js';

// The bench measures from here to performance.mark('cvco-interactive') (set by the wasm).
performance.mark('cvco-script-start');

const here = import.meta.url;
let loading;
const load = () => (loading ??= init({ module_or_path: new URL('./cvco_widget_bg.wasm', here) }));

// Camera scanning only where the browser decodes barcodes itself; the camera code loads on demand.
const scanner =
  typeof globalThis.BarcodeDetector === 'function'
    ? (body, stopLabel) => import('./cvco-scan-lazy.js').then((m) => m.scan(body, stopLabel))
    : null;

/**
 * Mounts the widget in `element` (its shadow root). Options: endpoint, orderRef, locale ('fr'|'en',
 * default the page's lang), mode ('identifier'|'qr'|'auto'), chainRemainder (boolean), csrfToken
 * (staff pages: the session's CSRF token, sent as X-CSRF-Token).
 * Resolves to a handle with destroy().
 */
export async function mount(element, options = {}) {
  const root = element.shadowRoot || element.attachShadow({ mode: 'open' });
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = new URL('./cvco-checkout.css', here).href;
  const box = document.createElement('div');
  box.className = 'cvco';
  // Sent as X-CSRF-Token on calls that change state (a back-office session requires it).
  if (options.csrfToken) box.dataset.csrfToken = String(options.csrfToken);
  root.replaceChildren(link, box);
  await load();
  const lang = options.locale || document.documentElement.lang || 'fr';
  const emit = (name, detail) =>
    element.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  const handle = mountWasm(
    box,
    String(options.endpoint || '/cvco/v1'),
    String(options.orderRef || ''),
    String(lang),
    String(options.mode || 'auto'),
    Boolean(options.chainRemainder),
    emit,
    scanner,
  );
  let live = true;
  return {
    // Removes only this copy's nodes: a newer copy mounted in the same root stays untouched.
    destroy() {
      if (!live) return;
      live = false;
      handle.destroy();
      link.remove();
      box.remove();
      handle.free();
    },
  };
}

const ATTRS = ['endpoint', 'order-ref', 'locale', 'mode', 'chain-remainder'];

export class CvcoCheckout extends HTMLElement {
  static get observedAttributes() {
    return ATTRS;
  }
  #mounted = null;
  #queued = false;
  // Bumped by every (re)mount and disconnect: a mount still waiting for its predecessor's
  // teardown gives way to a newer one.
  #gen = 0;

  connectedCallback() {
    this.#schedule();
  }
  attributeChangedCallback() {
    if (this.isConnected) this.#schedule();
  }
  disconnectedCallback() {
    this.#gen++;
    this.#unmount();
  }
  // Several attributes set in a row mount once.
  #schedule() {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      if (!this.isConnected || !this.getAttribute('order-ref')) return;
      // The old copy is gone (timers, stream, nodes) before the new one mounts: never two
      // copies following one payment, never the old one's cleanup wiping the new one.
      const gen = ++this.#gen;
      const previous = this.#unmount();
      const options = () => ({
        endpoint: this.getAttribute('endpoint') || '/cvco/v1',
        orderRef: this.getAttribute('order-ref'),
        locale: this.getAttribute('locale') || this.closest('[lang]')?.lang || undefined,
        mode: this.getAttribute('mode') || 'auto',
        chainRemainder: this.hasAttribute('chain-remainder'),
        csrfToken: this.getAttribute('csrf-token') || undefined,
      });
      this.#mounted = previous
        .then(() => (gen === this.#gen && this.isConnected ? mount(this, options()) : null))
        .catch((error) => {
          this.dispatchEvent(
            new CustomEvent('cvco-error', {
              detail: { code: 'widget_load_failed', message: String(error) },
              bubbles: true,
              composed: true,
            }),
          );
          return null;
        });
    });
  }
  #unmount() {
    const mounted = this.#mounted;
    this.#mounted = null;
    return mounted ? mounted.then((h) => h && h.destroy()) : Promise.resolve();
  }
}

if (!customElements.get('cvco-checkout')) customElements.define('cvco-checkout', CvcoCheckout);
