//! Multi-role end-to-end tests live in `tests/`.
