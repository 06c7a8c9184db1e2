//! The crate's one place for unit conversions: decibels and linear gain,
//! frames and seconds. Each has exactly one definition, so two stages can
//! never disagree about what −200 dB or 0.1 s is.

/// What [`gain_to_db`] reads for a zero (or negative) amplitude: a finite
/// level far below anything audible, so reports and charts of silence stay
/// numbers (JSON has no −∞).
pub(crate) const SILENCE_DB: f64 = -200.0;

/// Decibels to a linear amplitude factor.
pub(crate) fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// A linear amplitude factor to decibels; zero reads as [`SILENCE_DB`].
pub(crate) fn gain_to_db(gain: f64) -> f64 {
    if gain > 0.0 {
        20.0 * gain.log10()
    } else {
        SILENCE_DB
    }
}

/// `frames` at `rate` Hz, in seconds.
pub(crate) fn frames_to_secs(frames: u64, rate: u32) -> f64 {
    frames as f64 / f64::from(rate)
}

/// `secs` seconds at `rate` Hz, in whole frames (rounded to the nearest).
pub(crate) fn secs_to_frames(secs: f64, rate: u32) -> u64 {
    (secs * f64::from(rate)).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_and_silence_is_finite() {
        assert!((gain_to_db(db_to_gain(-16.0)) + 16.0).abs() < 1e-12);
        assert_eq!(gain_to_db(0.0), SILENCE_DB);
        assert_eq!(gain_to_db(1.0), 0.0);
        assert_eq!(secs_to_frames(0.1, 44_100), 4410);
        assert_eq!(frames_to_secs(44_100, 44_100), 1.0);
    }
}
