//! Reference merchant backend.
