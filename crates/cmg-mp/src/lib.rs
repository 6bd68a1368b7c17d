//! cmg-mp
