//! cmg-client
