//! Checkout widget.
