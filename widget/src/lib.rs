//! The `<cvco-checkout>` widget: Chèque-Vacances Connect at any checkout.
//!
//! `logic` is the pure part (texts, amounts, countdown, views), built and tested natively;
//! `web` is the browser part (DOM, fetch, EventSource), built for wasm32 only. The custom element
//! class itself lives in `cvco-checkout.js`: custom elements need a JS class.

pub mod logic;

#[cfg(target_arch = "wasm32")]
mod web;
