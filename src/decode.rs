//! Decoding (being written).
