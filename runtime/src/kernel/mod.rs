//! Kernel adapter (placeholder, being written).
