//! cmg-test-support
