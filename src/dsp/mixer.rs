//! The episode mixer: parts joined end to end with crossfades.
//!
//! Part `k+1` starts `fade_k` frames before part `k` ends, so the episode is
//! `Σ len − Σ fade` frames long, to the frame. In an overlap of `n` frames,
//! output frame `i` is `a[len_a − n + i]·g_a(i) + b[i]·g_b(i)`, where a part
//! that fades uses the reference's linear ramps (`i / n` rising,
//! `(n − 1 − i) / n` falling) and a part that does not keeps gain 1. The
//! bumpers fade; the recordings stay at full level, as in the reference graph.
//!
//! The mixer streams: it holds only the overlap being built (one fade long).
//! Mono parts are placed in the centre of a stereo episode at −3 dB per
//! channel, which keeps their loudness.

use crate::audio::{Block, Source};
use crate::error::{Error, Result, Stage};

/// One part of the episode.
pub struct MixPart<'a> {
    /// Name used in errors and logs.
    pub name: &'a str,
    /// The part's audio (1 channel, or as many as the episode).
    pub source: &'a mut dyn Source,
    /// Exact length in frames.
    pub len: u64,
    /// True if the part's head ramps up where it overlaps the previous part.
    pub fade_in: bool,
    /// True if the part's tail ramps down where it overlaps the next part.
    pub fade_out: bool,
}

/// A shortened crossfade, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortFade {
    /// Index of the join (0 = between parts 0 and 1).
    pub join: usize,
    /// Frames requested.
    pub requested: u64,
    /// Frames used.
    pub used: u64,
}

/// Overlap lengths for joining parts of the given lengths with `fade` frames:
/// each fade is shortened to fit the shorter neighbour, and a middle part
/// shorter than two fades is shared between them (its head takes at most
/// half), so its two fades never overlap each other.
pub fn plan_fades(lens: &[u64], fade: u64) -> (Vec<u64>, Vec<ShortFade>) {
    let mut fades = Vec::with_capacity(lens.len().saturating_sub(1));
    let mut short = Vec::new();
    for j in 0..lens.len().saturating_sub(1) {
        let used_by_prev_head = if j > 0 { fades[j - 1] } else { 0 };
        let room_a = lens[j] - used_by_prev_head;
        // A middle part shares itself between its two fades: its head may
        // take at most half of it, so the next join still gets a fade.
        let room_b = if j + 2 < lens.len() {
            lens[j + 1] / 2
        } else {
            lens[j + 1]
        };
        let n = fade.min(room_a).min(room_b);
        if n < fade {
            short.push(ShortFade {
                join: j,
                requested: fade,
                used: n,
            });
        }
        fades.push(n);
    }
    (fades, short)
}

/// Mixes `parts` with the overlaps `fades` (from [`plan_fades`]) into a
/// `channels`-channel stream handed block by block to `sink`. Returns the
/// number of frames produced.
pub fn mix(
    parts: &mut [MixPart<'_>],
    fades: &[u64],
    channels: usize,
    sink: &mut dyn FnMut(&Block) -> Result<()>,
) -> Result<u64> {
    let max_fade = fades.iter().copied().max().unwrap_or(0) as usize;
    let mut prev_tail = Block::new(channels, max_fade);
    let mut next_tail = Block::new(channels, max_fade);
    let mut input = Block::default();
    let mut frame = Block::new(channels, 4096);
    let mut out = Block::new(channels, 4096);
    let mut total = 0u64;
    let last = parts.len().saturating_sub(1);
    for (k, part) in parts.iter_mut().enumerate() {
        let head = if k > 0 { fades[k - 1] } else { 0 };
        let tail = if k < last { fades[k] } else { 0 };
        let len = part.len;
        let body_end = len - tail;
        let src_ch = part.source.channels();
        if src_ch != 1 && src_ch != channels {
            return Err(Error::stage(
                part.name,
                Stage::Mix,
                format!("has {src_ch} channels; the episode has {channels}"),
            ));
        }
        let up = if src_ch == 1 && channels > 1 {
            std::f32::consts::FRAC_1_SQRT_2
        } else {
            1.0
        };
        next_tail.clear();
        let mut t = 0u64;
        while part.source.read(&mut input)? {
            let n = input.frames() as u64;
            if t + n > len {
                return Err(Error::stage(
                    part.name,
                    Stage::Mix,
                    format!("yielded more than the {len} frames measured in the first pass"),
                ));
            }
            // Spread to the episode's channels.
            frame.reset(channels);
            for c in 0..channels {
                let s = input.channel(if src_ch == 1 { 0 } else { c });
                let d = frame.channel_mut(c);
                d.extend_from_slice(s);
                if up != 1.0 {
                    for x in d.iter_mut() {
                        *x *= up;
                    }
                }
            }
            let (t0, t1) = (t, t + n);
            // Head: add into the previous part's tail.
            if t0 < head {
                let a = t0 as usize;
                let b = t1.min(head) as usize;
                let inv = 1.0 / head as f32;
                for c in 0..channels {
                    let dst = &mut prev_tail.channel_mut(c)[a..b];
                    let src = &frame.channel(c)[..b - a];
                    if part.fade_in {
                        for (i, (d, &x)) in dst.iter_mut().zip(src).enumerate() {
                            *d += x * ((a + i) as f32 * inv);
                        }
                    } else {
                        for (d, &x) in dst.iter_mut().zip(src) {
                            *d += x;
                        }
                    }
                }
                if t1 >= head {
                    sink(&prev_tail)?;
                    total += head;
                }
            }
            // Body: straight through.
            let b0 = t0.max(head);
            let b1 = t1.min(body_end);
            if b0 < b1 {
                out.reset(channels);
                let (a, b) = ((b0 - t0) as usize, (b1 - t0) as usize);
                for c in 0..channels {
                    out.channel_mut(c)
                        .extend_from_slice(&frame.channel(c)[a..b]);
                }
                sink(&out)?;
                total += b1 - b0;
            }
            // Tail: hold, ramped down if this part fades out.
            let c0 = t0.max(body_end);
            if c0 < t1 {
                let (a, b) = ((c0 - t0) as usize, (t1 - t0) as usize);
                let first = (c0 - body_end) as usize;
                let inv = 1.0 / tail as f32;
                for c in 0..channels {
                    let src = &frame.channel(c)[a..b];
                    let dst = next_tail.channel_mut(c);
                    if part.fade_out {
                        for (i, &x) in src.iter().enumerate() {
                            let g = (tail as usize - 1 - (first + i)) as f32 * inv;
                            dst.push(x * g);
                        }
                    } else {
                        dst.extend_from_slice(src);
                    }
                }
            }
            t = t1;
        }
        if t != len {
            return Err(Error::stage(
                part.name,
                Stage::Mix,
                format!("yielded {t} frames, the first pass measured {len}"),
            ));
        }
        std::mem::swap(&mut prev_tail, &mut next_tail);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    fn ones(n: usize, v: f32) -> MemorySource {
        MemorySource::new(1000, Block::from_channels(&[&vec![v; n]]), 7)
    }

    fn run(lens: &[usize], fade: u64, fades_flags: &[(bool, bool)]) -> Vec<f32> {
        let mut srcs: Vec<MemorySource> = lens
            .iter()
            .enumerate()
            .map(|(k, &n)| ones(n, (k + 1) as f32))
            .collect();
        let (fades, _) = plan_fades(&lens.iter().map(|&n| n as u64).collect::<Vec<_>>(), fade);
        let mut parts: Vec<MixPart> = srcs
            .iter_mut()
            .zip(fades_flags)
            .zip(lens)
            .map(|((s, &(fi, fo)), &n)| MixPart {
                name: "part",
                source: s,
                len: n as u64,
                fade_in: fi,
                fade_out: fo,
            })
            .collect();
        let mut out = Vec::new();
        let total = mix(&mut parts, &fades, 1, &mut |b: &Block| {
            out.extend_from_slice(b.channel(0));
            Ok(())
        })
        .unwrap();
        assert_eq!(total as usize, out.len());
        out
    }

    const REFERENCE: [(bool, bool); 5] = [
        (false, true),
        (false, false),
        (true, true),
        (false, false),
        (true, false),
    ];

    #[test]
    fn length_is_parts_minus_fades() {
        let out = run(&[300, 500, 200, 700, 400], 100, &REFERENCE);
        assert_eq!(out.len(), 300 + 500 + 200 + 700 + 400 - 4 * 100);
    }

    #[test]
    fn crossfade_gains_match_the_reference_curves() {
        // Part values are 1, 2, 3, 4, 5 so each overlap's gains can be read off.
        let out = run(&[300, 500, 200, 700, 400], 100, &REFERENCE);
        // Intro (1.0) fades out over frames 200..300 while the caller (2.0) is at full level.
        for i in 0..100 {
            let expect = 1.0 * (99 - i) as f32 / 100.0 + 2.0;
            assert!((out[200 + i] - expect).abs() < 1e-6, "i={i}");
        }
        assert_eq!(out[199], 1.0);
        assert_eq!(out[300], 2.0);
        // Caller (2.0, full) into interstitial (3.0 rising) at 600..700.
        for i in 0..100 {
            let expect = 2.0 + 3.0 * i as f32 / 100.0;
            assert!((out[600 + i] - expect).abs() < 1e-6, "i={i}");
        }
        assert_eq!(out[599], 2.0);
        // The interstitial is exactly two fades long: it never plays alone.
        // Interstitial (falling) into the response (4.0 full) at 700..800.
        for i in 0..100 {
            let expect = 3.0 * (99 - i) as f32 / 100.0 + 4.0;
            assert!((out[700 + i] - expect).abs() < 1e-6, "i={i}");
        }
    }

    #[test]
    fn short_parts_shorten_their_fades() {
        let lens = [300u64, 50, 30, 700, 400];
        let (fades, short) = plan_fades(&lens, 100);
        assert_eq!(fades, vec![25, 15, 15, 100]);
        assert_eq!(short.len(), 3);
        let out = run(&[300, 50, 30, 700, 400], 100, &REFERENCE);
        assert_eq!(
            out.len() as u64,
            lens.iter().sum::<u64>() - fades.iter().sum::<u64>()
        );
    }

    #[test]
    fn mono_is_centred_at_minus_3_db() {
        let mut a = ones(10, 1.0);
        let mut parts = [MixPart {
            name: "a",
            source: &mut a,
            len: 10,
            fade_in: false,
            fade_out: false,
        }];
        let mut got = Vec::new();
        mix(&mut parts, &[], 2, &mut |b: &Block| {
            got.push((b.channel(0)[0], b.channel(1)[0]));
            Ok(())
        })
        .unwrap();
        assert!((got[0].0 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        assert_eq!(got[0].0, got[0].1);
    }

    #[test]
    fn wrong_length_is_an_error() {
        let mut a = ones(10, 1.0);
        let mut parts = [MixPart {
            name: "a",
            source: &mut a,
            len: 11,
            fade_in: false,
            fade_out: false,
        }];
        let err = mix(&mut parts, &[], 1, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("first pass measured 11"), "{err}");
    }
}
