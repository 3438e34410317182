//! Extism plugin.
