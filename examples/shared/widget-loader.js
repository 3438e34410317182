// Loads <cvco-checkout> through a module <script> so that a failed load is noticed (error event or
// timeout) and the page can offer another way to pay.

const WIDGET_SRC = '/widget/cvco-checkout.js';
let loading = null;

export function loadWidget({ timeoutMs = 10_000 } = {}) {
  if (loading) return loading;
  loading = new Promise((resolve) => {
    if (customElements.get('cvco-checkout')) {
      resolve(true);
      return;
    }
    const script = document.createElement('script');
    script.type = 'module';
    script.src = WIDGET_SRC;
    const timer = setTimeout(() => resolve(false), timeoutMs);
    script.addEventListener('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    customElements.whenDefined('cvco-checkout').then(() => {
      clearTimeout(timer);
      resolve(true);
    });
    document.head.append(script);
  });
  return loading;
}

/** The Payment carried by a widget event (detail is the Payment, or wraps it in `payment`). */
export function paymentOf(detail) {
  if (!detail || typeof detail !== 'object') return {};
  return detail.payment && typeof detail.payment === 'object' ? { ...detail.payment, ...detail } : detail;
}

export const WIDGET_EVENTS = ['cvco-ready', 'cvco-change', 'cvco-pending', 'cvco-authorized', 'cvco-partially-authorized', 'cvco-declined', 'cvco-expired', 'cvco-error'];
