//! cmg-pki
