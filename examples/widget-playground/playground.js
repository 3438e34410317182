// Mounts <cvco-checkout> from the query string and records what the page hears, for people and for
// the browser tests/bench (window.cvcoEvents, window.cvcoViews, window.cvcoViolations).
const q = new URLSearchParams(location.search);
const events = (window.cvcoEvents = []);
const views = (window.cvcoViews = []);
const violations = (window.cvcoViolations = []);
document.addEventListener('securitypolicyviolation', (e) =>
  violations.push({ directive: e.violatedDirective, blocked: e.blockedURI }),
);
const log = document.getElementById('log');

async function json(response) {
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${body.code || ''} ${body.message_en || ''}`);
  return body;
}

async function orderRef() {
  if (q.get('order_ref')) return q.get('order_ref');
  const post = (url, body) =>
    fetch(url, {
      method: 'POST',
      credentials: 'include',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then(json);
  if (q.get('amount')) {
    return (await post('/shop/api/test-orders', { amount_cents: Number(q.get('amount')) })).order_ref;
  }
  let sku = q.get('sku');
  if (!sku) sku = (await fetch('/shop/api/products', { credentials: 'include' }).then(json))[0].sku;
  return (await post('/shop/api/orders', { items: [{ sku, quantity: 1 }] })).order_ref;
}

// Every change of the widget's view, timed, seen from outside like a shopper would.
function watch(widget) {
  const start = () => {
    const root = widget.shadowRoot;
    if (!root) return requestAnimationFrame(start);
    new MutationObserver(() => {
      const body = root.querySelector('.cvco-body');
      const view = body && body.getAttribute('data-view');
      if (view && views[views.length - 1]?.view !== view) {
        views.push({ view, at: Date.now(), t: performance.now() });
      }
    }).observe(root, { subtree: true, childList: true, attributes: true });
  };
  start();
}

async function main() {
  const ref = await orderRef();
  window.cvcoPlayground = { orderRef: ref };
  document.getElementById('order').textContent = `Order ${ref}`;
  const widget = document.createElement('cvco-checkout');
  widget.setAttribute('order-ref', ref);
  for (const name of ['endpoint', 'locale', 'mode']) {
    if (q.get(name)) widget.setAttribute(name, q.get(name));
  }
  if (q.has('chain-remainder')) widget.setAttribute('chain-remainder', '');
  for (const type of [
    'cvco-ready',
    'cvco-change',
    'cvco-pending',
    'cvco-authorized',
    'cvco-partially-authorized',
    'cvco-declined',
    'cvco-expired',
    'cvco-error',
  ]) {
    widget.addEventListener(type, (e) => {
      events.push({ type, detail: e.detail, at: Date.now() });
      const li = document.createElement('li');
      li.textContent = `${type} ${JSON.stringify(e.detail)}`;
      log.append(li);
      if (type === 'cvco-partially-authorized') {
        const card = document.getElementById('card');
        card.hidden = false;
        card.textContent = `Card hand-off: ${e.detail.order_remaining_cents} cents left to pay by card.`;
      }
    });
  }
  watch(widget);
  document.getElementById('slot').append(widget);
}

main().catch((error) => {
  window.cvcoPlayground = { error: String(error) };
  document.getElementById('order').textContent = `Could not prepare an order: ${error}`;
});
