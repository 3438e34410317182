// Product illustrations drawn as inline SVG (presentation attributes only, CSP-safe), picked by keyword.

const ART = {
  mobilhome: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#e2f0f9"/><circle cx="130" cy="22" r="11" fill="#e9a23b"/><rect y="74" width="160" height="22" fill="#cfe3c5"/><rect x="26" y="40" width="96" height="36" rx="4" fill="#fff" stroke="#1f5f4a" stroke-width="3"/><rect x="22" y="34" width="104" height="8" rx="3" fill="#1f5f4a"/><rect x="36" y="50" width="18" height="12" fill="#9fd0ea"/><rect x="62" y="50" width="18" height="12" fill="#9fd0ea"/><rect x="92" y="48" width="16" height="28" fill="#e9a23b"/><path d="M14 76 4 60h6L2 48h6L0 38h20l-8 10h6l-8 12h6z" fill="#1f5f4a"/></svg>`,
  chalet: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#e3efe9"/><rect y="76" width="160" height="20" fill="#b9d6a6"/><path d="M40 48 80 18l40 30z" fill="#8a5a2b"/><rect x="48" y="46" width="64" height="32" fill="#c98b4e"/><rect x="56" y="54" width="14" height="12" fill="#fdf1dc"/><rect x="88" y="54" width="14" height="24" fill="#6b4a2b"/><path d="M140 78 126 56h8l-10-16h8l-8-14 20 0-8 14h8l-10 16h8z" fill="#1f5f4a"/><path d="M22 78 10 60h6L8 46h6L8 34h18l-6 12h6l-8 14h6z" fill="#2a7459"/></svg>`,
  pitch: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#fdf1dc"/><circle cx="28" cy="22" r="10" fill="#e9a23b"/><rect y="70" width="160" height="26" fill="#b9d6a6"/><path d="M50 72 80 30l30 42z" fill="#e9a23b"/><path d="M80 30 80 72 70 72z" fill="#c9861f"/><path d="M80 30l-6 42h12z" fill="#2b1b00" opacity=".35"/><path d="M132 74 118 52h8l-10-16h8l-8-14 20 0-8 14h8l-10 16h8z" fill="#1f5f4a"/></svg>`,
  kayak: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#e2f0f9"/><rect y="56" width="160" height="40" fill="#5fa8d3"/><path d="M0 62q20-6 40 0t40 0 40 0 40 0" fill="none" stroke="#e2f0f9" stroke-width="2"/><path d="M30 66q50-12 100 0-50 10-100 0z" fill="#e9a23b"/><circle cx="80" cy="52" r="6" fill="#1f5f4a"/><path d="M80 58v6" stroke="#1f5f4a" stroke-width="6"/><path d="M52 40 108 72" stroke="#6b4a2b" stroke-width="3"/><path d="M130 20h20" stroke="#fff" stroke-width="0"/><circle cx="134" cy="20" r="9" fill="#e9a23b"/></svg>`,
  park: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#fdf1dc"/><rect y="76" width="160" height="20" fill="#b9d6a6"/><path d="M20 76c10-50 30-50 40 0" fill="none" stroke="#1d6fa3" stroke-width="5"/><path d="M40 76V30" stroke="#6b4a2b" stroke-width="0"/><circle cx="112" cy="46" r="26" fill="none" stroke="#b3261e" stroke-width="4"/><path d="M112 20v52M86 46h52M94 28l36 36M130 28 94 64" stroke="#b3261e" stroke-width="2"/><path d="M112 46 100 78h24z" fill="#6b4a2b"/></svg>`,
  bike: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#e3efe9"/><rect y="76" width="160" height="20" fill="#d8c9ad"/><circle cx="52" cy="62" r="16" fill="none" stroke="#1f5f4a" stroke-width="4"/><circle cx="108" cy="62" r="16" fill="none" stroke="#1f5f4a" stroke-width="4"/><path d="M52 62 72 38h28l8 24M72 38l10 24h26M66 32h14M100 38l-4-10h10" fill="none" stroke="#e9a23b" stroke-width="4" stroke-linejoin="round"/></svg>`,
  default: `<svg viewBox="0 0 160 96" aria-hidden="true" focusable="false"><rect width="160" height="96" fill="#f4efe6"/><rect y="72" width="160" height="24" fill="#cfe3c5"/><path d="M80 14 58 44h10L52 64h14L52 80h56L94 64h14L92 44h10z" fill="#1f5f4a"/><circle cx="124" cy="22" r="9" fill="#e9a23b"/></svg>`,
};

const KEYWORDS = [
  [/mobil|mobile/i, 'mobilhome'],
  [/chalet|cabane|lodge|cottage/i, 'chalet'],
  [/emplacement|pitch|tente|tent|camping/i, 'pitch'],
  [/kayak|cano|paddle|surf/i, 'kayak'],
  [/parc|park|billet|ticket|entr[ée]e/i, 'park'],
  [/v[ée]lo|bike|cycl/i, 'bike'],
];

export function artFor(product) {
  const text = `${product.sku ?? ''} ${product.name ?? ''}`;
  for (const [pattern, key] of KEYWORDS) if (pattern.test(text)) return ART[key];
  return ART.default;
}
