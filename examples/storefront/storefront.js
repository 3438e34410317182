import './strings.js';
import { api, ApiError } from '../shared/api.js';
import { h, $, clear, announce, busy } from '../shared/dom.js';
import { t, lang, applyTranslations, wireLangToggle, onLangChange } from '../shared/i18n.js';
import { formatCents } from '../shared/money.js';
import { artFor } from './art.js';
import { readCart, writeCart, MAX_QUANTITY } from './cart.js';

let products = [];
let cart = readCart();
const liveRegion = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });

function productBySku(sku) {
  return products.find((p) => p.sku === sku);
}

function setQuantity(sku, quantity) {
  const next = Math.max(0, Math.min(MAX_QUANTITY, quantity));
  if (next === 0) delete cart[sku];
  else cart[sku] = next;
  writeCart(cart);
  renderCart();
}

function renderProducts() {
  const list = $('#products');
  clear(list);
  for (const product of products) {
    const art = h('div', { class: 'product-art' });
    art.innerHTML = artFor(product); // static, trusted SVG from art.js
    const titleId = `product-${product.sku}`;
    const add = h('button', { type: 'button', class: 'btn btn-primary', 'aria-describedby': titleId }, t('product.add'));
    add.addEventListener('click', () => {
      setQuantity(product.sku, (cart[product.sku] || 0) + 1);
      liveRegion.textContent = t('product.added', { name: product.name, n: cart[product.sku] });
    });
    list.append(h('li', { class: 'product card' },
      art,
      h('div', { class: 'product-body' },
        h('h3', { id: titleId }, product.name),
        h('p', { class: 'muted small' }, product.description || ''),
        h('div', { class: 'row-between product-foot' },
          h('p', { class: 'price' },
            h('span', { class: 'amount' }, formatCents(product.price_cents, lang())),
            product.unit ? h('span', { class: 'muted small' }, ` ${t('product.per', { unit: product.unit })}`) : null),
          add))));
  }
}

function renderCart() {
  const lines = $('#cart-lines');
  clear(lines);
  let count = 0;
  let total = 0;
  for (const [sku, quantity] of Object.entries(cart)) {
    const product = productBySku(sku);
    if (!product) continue; // unknown sku (catalogue changed): ignored, the server decides anyway
    count += quantity;
    total += product.price_cents * quantity;
    const qtyId = `qty-${sku}`;
    const qty = h('input', {
      id: qtyId, type: 'number', min: '1', max: String(MAX_QUANTITY), inputmode: 'numeric',
      value: String(quantity), class: 'qty-input', 'aria-label': t('cart.quantity', { name: product.name }),
    });
    qty.addEventListener('change', () => {
      const value = Number.parseInt(qty.value, 10);
      setQuantity(sku, Number.isInteger(value) ? value : 1);
    });
    const less = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': t('cart.less', { name: product.name }) }, '−');
    less.addEventListener('click', () => setQuantity(sku, quantity - 1));
    const more = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': t('cart.more', { name: product.name }) }, '+');
    more.addEventListener('click', () => setQuantity(sku, quantity + 1));
    const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-small link-danger', 'aria-label': t('cart.remove', { name: product.name }) }, '✕');
    remove.addEventListener('click', () => {
      setQuantity(sku, 0);
      liveRegion.textContent = t('cart.removed', { name: product.name });
      $('#cart').focus();
    });
    lines.append(h('li', { class: 'cart-line' },
      h('div', { class: 'cart-line-head' },
        h('span', { class: 'cart-line-name' }, product.name),
        h('span', { class: 'amount' }, formatCents(product.price_cents * quantity, lang()))),
      h('div', { class: 'row cart-line-controls' }, less, qty, more, remove)));
  }
  $('#cart-count').textContent = String(count);
  $('#cart-empty').hidden = count > 0;
  $('#cart-summary').hidden = count === 0;
  $('#cart-total').textContent = formatCents(total, lang());
  $('#checkout').disabled = count === 0;
}

async function checkout(button) {
  const errorBox = $('#cart-error');
  announce(errorBox, '');
  const items = Object.entries(cart)
    .filter(([sku]) => productBySku(sku))
    .map(([sku, quantity]) => ({ sku, quantity }));
  if (items.length === 0) return;
  await busy(button, async () => {
    try {
      const order = await api('/shop/api/orders', { method: 'POST', body: { items } });
      // The cart stays until the order is paid, so "back" from the payment page still has it.
      sessionStorage.setItem('lespins.lastOrder', order.order_ref);
      window.location.assign(`/orders/${encodeURIComponent(order.order_ref)}`);
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(0, null);
      announce(errorBox, apiError.localized(lang()), 'error');
    }
  });
}

async function loadProducts() {
  const status = $('#catalogue-status');
  try {
    products = await api('/shop/api/products');
    if (!Array.isArray(products)) products = [];
    if (products.length === 0) announce(status, t('catalogue.empty'), 'info');
    else status.hidden = true;
    renderProducts();
    renderCart();
  } catch (error) {
    const message = error instanceof ApiError && (error.messageFr || error.messageEn) ? error.localized(lang()) : t('catalogue.error');
    announce(status, message, 'error');
  }
}

function start() {
  document.body.append(liveRegion);
  applyTranslations();
  wireLangToggle();
  onLangChange(() => {
    renderProducts();
    renderCart();
  });
  $('#checkout').addEventListener('click', (event) => checkout(event.currentTarget));
  $('#cart-link').addEventListener('click', (event) => {
    event.preventDefault();
    $('#cart').scrollIntoView({ behavior: 'smooth', block: 'start' });
    $('#cart').focus({ preventScroll: true });
  });
  renderCart();
  loadProducts();
}

start();
