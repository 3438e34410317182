"""Per-adapter drivers of the contract suite: see tests/contract/README.md."""
