// Live status of one payment: SSE on events_url, falling back to polling GET /payments/{id}
// (every 2 s for the first minute, then every 10 s) when the stream cannot be used.

import { api } from './api.js';

/**
 * Calls onUpdate(payment) for every newer payment (by `sequence`) until it is final.
 * Returns a stop() function.
 */
export function watchPayment(payment, onUpdate, { endpoint = '/cvco/v1' } = {}) {
  let stopped = false;
  let lastSequence = -1;
  let source = null;
  let timer = null;
  const startedAt = Date.now();

  const deliver = (next) => {
    if (stopped || !next || typeof next !== 'object') return;
    if (typeof next.sequence === 'number' && next.sequence <= lastSequence) return;
    if (typeof next.sequence === 'number') lastSequence = next.sequence;
    onUpdate(next);
    if (next.final) stop();
  };

  const poll = async () => {
    if (stopped) return;
    try {
      deliver(await api(`${endpoint}/payments/${encodeURIComponent(payment.payment_id)}`));
    } catch {
      /* transient: try again at the next tick */
    }
    if (!stopped) {
      const delay = Date.now() - startedAt < 60_000 ? 2_000 : 10_000;
      timer = setTimeout(poll, delay);
    }
  };

  const stream = () => {
    if (typeof EventSource === 'undefined' || !payment.events_url) {
      poll();
      return;
    }
    source = new EventSource(payment.events_url, { withCredentials: true });
    let failures = 0;
    source.addEventListener('status', (event) => {
      failures = 0;
      try {
        deliver(JSON.parse(event.data));
      } catch {
        /* malformed event: the next one or the poll repairs it */
      }
    });
    source.addEventListener('error', () => {
      if (stopped) return;
      failures += 1;
      // The server closes the stream after a final payment; a closed or repeatedly failing stream
      // hands over to polling, which also picks up a final state we may have missed.
      if (source.readyState === EventSource.CLOSED || failures >= 3) {
        source.close();
        source = null;
        poll();
      }
    });
  };

  function stop() {
    stopped = true;
    if (source) source.close();
    if (timer) clearTimeout(timer);
  }

  deliver(payment);
  if (!stopped) stream();
  return stop;
}

export const FINAL_OK = new Set(['authorized', 'partially_authorized']);
