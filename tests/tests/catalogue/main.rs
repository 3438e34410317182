//! The whole catalogue, through the real `cvco_plugin.wasm` in an extism host, against a real
//! sandbox acquisition server on 127.0.0.1. One binary so wasmtime is linked once.

mod common;
mod contract;
mod faults;
mod lost_answers;
mod notifications;
mod payments;
mod reporting;
mod requests;
mod robustness;
