//! MP3 encoding (being written).
