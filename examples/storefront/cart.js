// The cart lives in sessionStorage as {sku: quantity}; prices always come from the server.

const KEY = 'lespins.cart';
export const MAX_QUANTITY = 30;

export function readCart() {
  try {
    const raw = JSON.parse(sessionStorage.getItem(KEY) || '{}');
    const cart = {};
    for (const [sku, quantity] of Object.entries(raw)) {
      if (Number.isInteger(quantity) && quantity > 0) cart[sku] = Math.min(quantity, MAX_QUANTITY);
    }
    return cart;
  } catch {
    return {};
  }
}

export function writeCart(cart) {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(cart));
  } catch {
    /* private mode: the cart lives for this page only */
  }
}

export function clearCart() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* ignore */
  }
}
