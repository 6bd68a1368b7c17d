//! cmg-gateway
