//! The episode's shape: where its five parts sit ([`Layout`]), its
//! chapters and ID3 tags, and its audio as one [`Source`]: the bumpers and
//! the two calibrated recordings → crossfade mixer → stereo limiter.

use crate::audio::units::{frames_to_secs as secs, secs_to_frames};
use crate::dsp::mixer::{plan_fades, Mix, MixPart};
use crate::encode::id3::{Chapter, Cover, Tag};
use crate::error::Result;
use crate::pipeline::bumpers::Bumper;
use crate::pipeline::calibrate::{limited, Calibrated, Limited};
use crate::report::{Observer, PartSpan};
use crate::settings::Settings;

/// Where the five parts sit in the episode: intro, caller, interstitial,
/// response, outro.
pub(crate) struct Layout {
    /// Each part's length, frames.
    pub(crate) lens: [u64; 5],
    /// The four crossfades, in frames (shortened when a part is short).
    pub(crate) fades: Vec<u64>,
    /// Frame of the episode at which each part starts.
    pub(crate) offsets: [u64; 5],
    /// The episode's length, frames.
    pub(crate) total: u64,
}

/// The parts, in order.
const PART_NAMES: [&str; 5] = ["intro", "caller", "interstitial", "response", "outro"];

/// The layout of the parts: the bumpers and the recordings of
/// `voice_frames` frames (caller, response), logging every crossfade that
/// a short part shortens.
pub(crate) fn layout(
    bumpers: &[Bumper; 3],
    voice_frames: [u64; 2],
    settings: &Settings,
    obs: &dyn Observer,
) -> Layout {
    let rate = settings.sample_rate;
    let lens = [
        bumpers[0].frames(),
        voice_frames[0],
        bumpers[1].frames(),
        voice_frames[1],
        bumpers[2].frames(),
    ];
    let fade = secs_to_frames(settings.crossfade_s, rate);
    let (fades, short) = plan_fades(&lens, fade);
    for s in &short {
        obs.log(&format!(
            "crossfade {} -> {} shortened from {:.3} s to {:.3} s: a part is shorter than the fade",
            PART_NAMES[s.join],
            PART_NAMES[s.join + 1],
            secs(s.requested, rate),
            secs(s.used, rate)
        ));
    }
    let mut offsets = [0u64; 5];
    for k in 1..5 {
        offsets[k] = offsets[k - 1] + lens[k - 1] - fades[k - 1];
    }
    let total = lens.iter().sum::<u64>() - fades.iter().sum::<u64>();
    Layout {
        lens,
        fades,
        offsets,
        total,
    }
}

/// The episode's chapters: one per part, each boundary in the middle of
/// its crossfade, in milliseconds from the first decoded sample.
pub(crate) fn chapters(l: &Layout, titles: &[String; 5], rate: u32) -> Vec<Chapter> {
    let ms = |frames: u64| {
        u32::try_from((frames * 1000 + u64::from(rate) / 2) / u64::from(rate)).unwrap_or(u32::MAX)
    };
    let starts: Vec<u64> = (0..5)
        .map(|k| {
            if k == 0 {
                0
            } else {
                l.offsets[k] + l.fades[k - 1] / 2
            }
        })
        .collect();
    (0..5)
        .map(|k| Chapter {
            title: titles[k].clone(),
            start_ms: ms(starts[k]),
            end_ms: ms(starts.get(k + 1).copied().unwrap_or(l.total)),
        })
        .collect()
}

/// The frames the episode and the segments share: the title (`title`),
/// artist, album and year.
fn common_tag(settings: &Settings, title: Option<String>) -> Tag {
    let t = &settings.tags;
    let mut tag = Tag::new();
    if let Some(v) = title {
        tag.text(b"TIT2", &v);
    }
    if let Some(v) = &t.artist {
        tag.text(b"TPE1", v);
    }
    if let Some(v) = &t.album {
        tag.text(b"TALB", v);
    }
    if let Some(y) = t.year {
        tag.text(b"TDRC", &format!("{y:04}"));
    }
    tag
}

/// The episode's ID3 frames: every tag, the cover and the chapters.
pub(crate) fn episode_tag(settings: &Settings, cover: Option<&Cover>, chapters: &[Chapter]) -> Tag {
    let mut tag = common_tag(settings, settings.tags.title.clone());
    if let Some(c) = &settings.tags.comment {
        tag.comment(c);
    }
    if let Some(c) = cover {
        tag.picture(c);
    }
    tag.chapters(chapters);
    tag
}

/// A segment's ID3 frames: artist, album, year, and the title followed by
/// the title of the segment's chapter (`part` 1: caller, 3: response).
pub(crate) fn segment_tag(settings: &Settings, part: usize) -> Tag {
    let title = settings
        .tags
        .title
        .as_ref()
        .map(|v| format!("{v} ({})", settings.chapter_titles[part]));
    common_tag(settings, title)
}

/// The episode's audio at `ceiling`: the five parts at their gains,
/// crossfaded and limited.
pub(crate) fn episode_source<'a>(
    bumpers: &'a [Bumper; 3],
    gains: [f64; 3],
    [caller, response]: [&'a Calibrated; 2],
    l: &Layout,
    ceiling: f64,
) -> Result<Limited<Mix<'a>>> {
    let part = |name, source: Box<dyn crate::audio::Source + 'a>, k: usize| MixPart {
        name,
        source,
        len: l.lens[k],
        // The bumpers fade; the recordings stay at full level.
        fade_in: k == 2 || k == 4,
        fade_out: k == 0 || k == 2,
    };
    let parts = vec![
        part("intro bumper", Box::new(bumpers[0].source(gains[0])?), 0),
        part(&caller.subject, Box::new(caller.source()?), 1),
        part(
            "interstitial bumper",
            Box::new(bumpers[1].source(gains[1])?),
            2,
        ),
        part(&response.subject, Box::new(response.source()?), 3),
        part("outro bumper", Box::new(bumpers[2].source(gains[2])?), 4),
    ];
    Ok(limited(Mix::new(parts, l.fades.clone(), 2)?, ceiling))
}

/// The report's view of the layout: each part's name, start and end.
pub(crate) fn part_spans(l: &Layout, rate: u32) -> Vec<PartSpan> {
    (0..5)
        .map(|k| PartSpan {
            name: PART_NAMES[k].to_string(),
            start_s: secs(l.offsets[k], rate),
            end_s: secs(l.offsets[k] + l.lens[k], rate),
        })
        .collect()
}
