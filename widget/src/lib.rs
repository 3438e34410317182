//! The `<cvco-checkout>` widget: Chèque-Vacances Connect at any checkout.
//!
//! `logic` is the pure part (texts, amounts, countdown, views), built and tested natively;
//! `web` is the browser part (DOM, fetch, EventSource), built for wasm32 only. The custom element
//! class itself lives in `cvco-checkout.js`: custom elements need a JS class.

pub mod logic;

#[cfg(target_arch = "wasm32")]
mod web;

// Single-threaded wasm (no atomics target feature): the assumption lol_alloc asks to state.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
