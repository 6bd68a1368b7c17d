//! cmg-connector
