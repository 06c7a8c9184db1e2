//! True-peak limiter (being written).
