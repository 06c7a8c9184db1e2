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
    pub source: Box<dyn Source + 'a>,
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

/// The episode: `parts` joined with the overlaps `fades` (from
/// [`plan_fades`]), read as one `channels`-channel [`Source`]. Each part must
/// yield exactly its `len` frames: more or fewer is an error naming it.
pub struct Mix<'a> {
    parts: Vec<MixPart<'a>>,
    fades: Vec<u64>,
    channels: usize,
    rate: u32,
    /// The part being read, and how many of its frames were read.
    part: usize,
    done: u64,
    /// The tail of the part before (to be added into by this part's head),
    /// and the tail of this one, being gathered.
    prev_tail: Block,
    next_tail: Block,
    input: Block,
}

impl<'a> Mix<'a> {
    /// Mixes `parts` (at least one, all at one rate; each with 1 channel or
    /// `channels`) with `fades[k]` frames of overlap between part `k` and
    /// `k + 1`.
    pub fn new(parts: Vec<MixPart<'a>>, fades: Vec<u64>, channels: usize) -> Result<Self> {
        let rate = parts.first().map_or(0, |p| p.source.sample_rate());
        if parts.is_empty() || fades.len() + 1 != parts.len() {
            return Err(Error::stage(
                "episode",
                Stage::Mix,
                format!(
                    "internal error: {} parts need {} crossfades, got {}",
                    parts.len(),
                    parts.len().saturating_sub(1),
                    fades.len()
                ),
            ));
        }
        for p in &parts {
            let ch = p.source.channels();
            if ch != 1 && ch != channels {
                return Err(Error::stage(
                    p.name,
                    Stage::Mix,
                    format!("has {ch} channels; the episode has {channels}"),
                ));
            }
        }
        let max_fade = fades.iter().copied().max().unwrap_or(0) as usize;
        Ok(Mix {
            parts,
            fades,
            channels,
            rate,
            part: 0,
            done: 0,
            prev_tail: Block::new(channels, max_fade),
            next_tail: Block::new(channels, max_fade),
            input: Block::default(),
        })
    }

    /// The next part, once this one has given all its frames.
    fn next_part(&mut self) -> Result<()> {
        let p = &self.parts[self.part];
        if self.done != p.len {
            return Err(Error::stage(
                p.name,
                Stage::Mix,
                format!(
                    "yielded {} frames, the first pass measured {}",
                    self.done, p.len
                ),
            ));
        }
        std::mem::swap(&mut self.prev_tail, &mut self.next_tail);
        self.next_tail.clear();
        self.part += 1;
        self.done = 0;
        Ok(())
    }

    /// Mixes `self.input`, the next frames of the current part, appending
    /// what is complete to `out`.
    fn add_input(&mut self, out: &mut Block) -> Result<()> {
        let k = self.part;
        let part = &self.parts[k];
        let channels = self.channels;
        let head = if k > 0 { self.fades[k - 1] } else { 0 };
        let tail = self.fades.get(k).copied().unwrap_or(0);
        let body_end = part.len - tail;
        let mono = self.input.channels() == 1;
        // Mono parts sit in the centre of a stereo episode, at -3 dB.
        let up = if mono && channels > 1 {
            std::f32::consts::FRAC_1_SQRT_2
        } else {
            1.0
        };
        let n = self.input.frames() as u64;
        let (t0, t1) = (self.done, self.done + n);
        if t1 > part.len {
            return Err(Error::stage(
                part.name,
                Stage::Mix,
                format!(
                    "yielded more than the {} frames measured in the first pass",
                    part.len
                ),
            ));
        }
        let src = |c: usize, a: usize, b: usize| {
            let c = if mono { 0 } else { c };
            &self.input.channel(c)[a..b]
        };
        // Head: added into the previous part's tail, which is complete
        // once the head is.
        if t0 < head {
            let (a, b) = (t0 as usize, t1.min(head) as usize);
            let inv = 1.0 / head as f32;
            for c in 0..channels {
                let dst = &mut self.prev_tail.channel_mut(c)[a..b];
                let src = src(c, 0, b - a);
                if part.fade_in {
                    for (i, (d, &x)) in dst.iter_mut().zip(src).enumerate() {
                        *d += x * up * ((a + i) as f32 * inv);
                    }
                } else {
                    for (d, &x) in dst.iter_mut().zip(src) {
                        *d += x * up;
                    }
                }
            }
            if t1 >= head {
                for c in 0..channels {
                    out.channel_mut(c)
                        .extend_from_slice(self.prev_tail.channel(c));
                }
            }
        }
        // Body: straight through.
        let (b0, b1) = (t0.max(head), t1.min(body_end));
        if b0 < b1 {
            let (a, b) = ((b0 - t0) as usize, (b1 - t0) as usize);
            for c in 0..channels {
                let src = src(c, a, b);
                let dst = out.channel_mut(c);
                if up == 1.0 {
                    dst.extend_from_slice(src);
                } else {
                    dst.extend(src.iter().map(|&x| x * up));
                }
            }
        }
        // Tail: held for the next part, ramped down if this part fades out.
        let c0 = t0.max(body_end);
        if c0 < t1 {
            let (a, b) = ((c0 - t0) as usize, (t1 - t0) as usize);
            let first = (c0 - body_end) as usize;
            let inv = 1.0 / tail as f32;
            for c in 0..channels {
                let src = src(c, a, b);
                let dst = self.next_tail.channel_mut(c);
                if part.fade_out {
                    dst.extend(
                        src.iter().enumerate().map(|(i, &x)| {
                            x * up * ((tail as usize - 1 - (first + i)) as f32 * inv)
                        }),
                    );
                } else {
                    dst.extend(src.iter().map(|&x| x * up));
                }
            }
        }
        self.done = t1;
        Ok(())
    }
}

impl Source for Mix<'_> {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        block.reset(self.channels);
        while block.is_empty() && self.part < self.parts.len() {
            let part = &mut self.parts[self.part];
            if part.source.read(&mut self.input)? {
                self.add_input(block)?;
            } else {
                self.next_part()?;
            }
        }
        Ok(!block.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    fn ones(n: usize, v: f32) -> MemorySource {
        MemorySource::new(1000, Block::from_channels(&[&vec![v; n]]), 7)
    }

    fn run(lens: &[usize], fade: u64, fades_flags: &[(bool, bool)]) -> Vec<f32> {
        let (fades, _) = plan_fades(&lens.iter().map(|&n| n as u64).collect::<Vec<_>>(), fade);
        let parts: Vec<MixPart> = lens
            .iter()
            .zip(fades_flags)
            .enumerate()
            .map(|(k, (&n, &(fade_in, fade_out)))| MixPart {
                name: "part",
                source: Box::new(ones(n, (k + 1) as f32)),
                len: n as u64,
                fade_in,
                fade_out,
            })
            .collect();
        collect(Mix::new(parts, fades, 1).unwrap())
            .unwrap()
            .remove(0)
    }

    /// Every channel of `src`, read to its end.
    fn collect(mut src: Mix) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![Vec::new(); src.channels()];
        let mut block = Block::default();
        while src.read(&mut block)? {
            for (o, c) in out.iter_mut().zip(block.planes()) {
                o.extend_from_slice(c);
            }
        }
        Ok(out)
    }

    fn one(len: u64) -> Vec<MixPart<'static>> {
        vec![MixPart {
            name: "a",
            source: Box::new(ones(10, 1.0)),
            len,
            fade_in: false,
            fade_out: false,
        }]
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
        let got = collect(Mix::new(one(10), vec![], 2).unwrap()).unwrap();
        assert_eq!(got[0].len(), 10);
        assert!((got[0][0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        assert_eq!(got[0], got[1]);
    }

    #[test]
    fn wrong_length_is_an_error() {
        let err = collect(Mix::new(one(11), vec![], 1).unwrap()).unwrap_err();
        assert!(err.to_string().contains("first pass measured 11"), "{err}");
        let err = collect(Mix::new(one(9), vec![], 1).unwrap()).unwrap_err();
        assert!(err.to_string().contains("more than the 9 frames"), "{err}");
        let mut stereo = one(10);
        stereo[0].source = Box::new(MemorySource::new(
            1000,
            Block::from_channels(&[&[0.0; 10], &[0.0; 10]]),
            7,
        ));
        let err = Mix::new(stereo, vec![], 3).err().unwrap();
        assert!(err.to_string().contains("has 2 channels"), "{err}");
    }
}
