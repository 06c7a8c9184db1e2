//! Issue 13: the episode as a listener hears it.
//!
//! Bumpers mastered at other loudnesses than the voices (−11, −11.5/−11.5/
//! −14 as in production, −24, and the embedded −16 ones) are made here from
//! the embedded bumpers' decoded audio, gained with a loudness measured by
//! ebur128 (not podstitch's meter) and encoded with podstitch's own MP3
//! writer. For each set the decoded outputs are measured with ebur128:
//! every output within ±0.2 LU of −16 LUFS and at most 0.0 dBTP; each
//! bumper's stretch of the episode outside the crossfades within 1 LU of
//! the target; each voice's stretch of the episode within 0.2 LU of the
//! same stretch of its delivered segment. Stretch positions come from the
//! decoded lengths of the bumpers and the delivered segments minus the
//! 1 s fades, never from the pipeline's own numbers; the chapters are read
//! back with symphonia's ID3v2 reader and checked against the same
//! positions to the millisecond.

mod common;

use std::io::Cursor;

use ebur128::{EbuR128, Mode};
use podstitch::stages::{Mp3Format, Mp3Writer};
use podstitch::Mp3Options;
use podstitch::{stitch, Bumpers, Input, Outputs, Quiet, Report, Settings};
use podstitch::{BumperLoudness, Tags};
use symphonia::core::common::Limit;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{
    ChapterGroupItem, MetadataOptions, MetadataReader, MetadataSideData, StandardTag,
};
use symphonia_metadata::id3v2::Id3v2Reader;

use common::{decode_bytes, fixture};

const TARGET: f64 = -16.0;
const RATE: u32 = 44_100;
/// The crossfade, 1 s: every part of these episodes is longer than two.
const FADE: u64 = 44_100;

fn asset(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(name),
    )
    .expect("asset")
}

/// Integrated loudness and true peak (max over channels) by ebur128.
fn ebu(planes: &[&[f32]]) -> (f64, f64) {
    let mut m =
        EbuR128::new(planes.len() as u32, RATE, Mode::I | Mode::TRUE_PEAK).expect("ebur128");
    m.add_frames_planar_f32(planes).expect("ebur128");
    let tp = (0..planes.len() as u32)
        .map(|c| m.true_peak(c).expect("tp"))
        .fold(0.0, f64::max);
    (m.loudness_global().expect("I"), 20.0 * tp.log10())
}

fn stretch<'a>(planes: &[&'a [f32]], from: u64, to: u64) -> Vec<&'a [f32]> {
    planes
        .iter()
        .map(|p| &p[from as usize..to as usize])
        .collect()
}

/// The embedded bumper `name` gained to `lufs` (measured by ebur128) and
/// encoded with podstitch's MP3 writer (stereo 192 kb/s).
fn bumper_at(name: &str, lufs: f64) -> Vec<u8> {
    let (rate, b) = decode_bytes(name, asset(name));
    assert_eq!(rate, RATE);
    let (now, _) = ebu(&b.planes());
    let g = 10f64.powf((lufs - now) / 20.0) as f32;
    let planes: Vec<Vec<f32>> = b
        .planes()
        .iter()
        .map(|p| p.iter().map(|x| x * g).collect())
        .collect();
    let s = Mp3Format {
        options: Mp3Options {
            bitrate_kbps: 192,
            quality: 3,
        },
        channels: 2,
        sample_rate: RATE,
    };
    let mut w = Mp3Writer::new(name, Cursor::new(Vec::new()), &s).expect("writer");
    w.write(&[&planes[0], &planes[1]]).expect("encode");
    w.finish().expect("finish").0.into_inner()
}

/// The embedded bumper `name` made dynamic: its music 20 dB down with a
/// drum-like hit (a decaying noise burst peaking near 0 dBFS) every 0.5 s,
/// then gained to `lufs`. Raised to −16 LUFS its hits go far over the
/// ceiling, so the limiter takes loudness that the gain must give back.
fn dynamic_bumper_at(name: &str, lufs: f64) -> Vec<u8> {
    let (_, b) = decode_bytes(name, asset(name));
    let n = b.frames();
    let mut planes: Vec<Vec<f32>> = b
        .planes()
        .iter()
        .map(|p| p.iter().map(|x| x * 0.3).collect())
        .collect();
    let mut seed = 7u32;
    let mut lp = 0.0f32;
    for start in (0..n).step_by(RATE as usize / 2) {
        for i in 0..(RATE as usize / 10).min(n - start) {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let white = (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
            // A one-pole low-pass (about 2 kHz): a drum, not a hiss.
            lp += 0.25 * (white - lp);
            let x = 2.5 * lp * (-(i as f32) / 1500.0).exp();
            for p in planes.iter_mut() {
                p[start + i] += x;
            }
        }
    }
    let refs: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
    let (now, _) = ebu(&refs);
    let g = 10f64.powf((lufs - now) / 20.0) as f32;
    let planes: Vec<Vec<f32>> = planes
        .iter()
        .map(|p| p.iter().map(|x| x * g).collect())
        .collect();
    encode_stereo(name, &planes)
}

fn encode_stereo(name: &str, planes: &[Vec<f32>]) -> Vec<u8> {
    let s = Mp3Format {
        options: Mp3Options {
            bitrate_kbps: 192,
            quality: 3,
        },
        channels: 2,
        sample_rate: RATE,
    };
    let mut w = Mp3Writer::new(name, Cursor::new(Vec::new()), &s).expect("writer");
    w.write(&[&planes[0], &planes[1]]).expect("encode");
    w.finish().expect("finish").0.into_inner()
}

/// Bumper bytes (intro, interstitial, outro) mastered at `levels`, or the
/// embedded ones.
fn bumper_set(levels: Option<[f64; 3]>) -> [Vec<u8>; 3] {
    let names = ["intro.mp3", "interstitial.mp3", "outro.mp3"];
    match levels {
        Some(l) => [0, 1, 2].map(|k| bumper_at(names[k], l[k])),
        None => names.map(asset),
    }
}

fn run(bumpers: &[Vec<u8>; 3], settings: &Settings) -> (Outputs<Cursor<Vec<u8>>>, Report) {
    let mut out = Outputs::in_memory();
    let b = Bumpers {
        intro: Input::Bytes(bumpers[0].clone()),
        interstitial: Input::Bytes(bumpers[1].clone()),
        outro: Input::Bytes(bumpers[2].clone()),
    };
    let report = stitch(
        Input::Path(fixture("caller.webm")),
        Input::Path(fixture("response.ogg")),
        b,
        &mut out,
        settings,
        &Quiet,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    common::keep_outputs(&out);
    (out, report)
}

/// Chapters read back with symphonia's ID3v2 reader: (title, start ms, end ms).
fn read_chapters(mp3: &[u8]) -> Vec<(String, u64, u64)> {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(mp3.to_vec())), Default::default());
    let opts = MetadataOptions::default()
        .limit_tag_bytes(Limit::None)
        .limit_visual_bytes(Limit::None);
    let mut r = Id3v2Reader::try_new(mss, opts).expect("id3v2 reader");
    let buf = r.read_all().expect("read the ID3v2 tag");
    let group = buf
        .side_data
        .into_iter()
        .find_map(|d| match d {
            MetadataSideData::Chapters(g) => Some(g),
            _ => None,
        })
        .expect("the tag has chapters");
    let mut out = Vec::new();
    let mut items = group.items;
    // A single top-level CTOC: its chapters may come nested one level down.
    if let [ChapterGroupItem::Group(g)] = items.as_slice() {
        items = g.items.clone();
    }
    for item in items {
        let ChapterGroupItem::Chapter(c) = item else {
            panic!("nested chapter group")
        };
        let title = c
            .tags
            .iter()
            .find_map(|t| match &t.std {
                Some(StandardTag::ChapterTitle(s)) => Some(s.to_string()),
                _ => None,
            })
            .expect("chapter title");
        let ms = |t: symphonia::core::units::Time| u64::try_from(t.as_millis()).expect("ms");
        out.push((title, ms(c.start_time), ms(c.end_time.expect("end"))));
    }
    out
}

/// Frames → ms, rounded.
fn ms(frames: u64) -> u64 {
    (frames * 1000 + u64::from(RATE) / 2) / u64::from(RATE)
}

/// Checks one bumper set; returns the figures for the log.
fn check_set(label: &str, levels: Option<[f64; 3]>) {
    check_bumpers(label, bumper_set(levels), levels);
}

fn check_bumpers(label: &str, bumpers: [Vec<u8>; 3], levels: Option<[f64; 3]>) {
    let (bad, _) = measure_set(label, bumpers, levels, &Settings::default());
    assert!(bad.is_empty(), "{label}:\n  {}", bad.join("\n  "));
}

/// Renders with `bumpers` (made at `levels`, when known), measures every
/// part of the episode, prints the figures and returns what missed the
/// targets, with the report. Length and chapters are asserted at once.
fn measure_set(
    label: &str,
    bumpers: [Vec<u8>; 3],
    levels: Option<[f64; 3]>,
    settings: &Settings,
) -> (Vec<String>, Report) {
    let (out, report) = run(&bumpers, settings);
    // Independent lengths: the decoded bumpers and delivered segments.
    let decoded: Vec<_> = bumpers
        .iter()
        .map(|b| decode_bytes("bumper", b.clone()).1)
        .collect();
    let blen: Vec<u64> = decoded.iter().map(|b| b.frames() as u64).collect();
    // As mastered: ebur128 on the decoded bumper files.
    let mastered: Vec<(f64, f64)> = decoded.iter().map(|b| ebu(&b.planes())).collect();
    let (_, caller) = decode_bytes("caller segment", out.caller_segment.get_ref().clone());
    let (_, response) = decode_bytes("response segment", out.response_segment.get_ref().clone());
    let (_, episode) = decode_bytes("episode", out.episode.get_ref().clone());
    let lens = [
        blen[0],
        caller.frames() as u64,
        blen[1],
        response.frames() as u64,
        blen[2],
    ];
    let mut starts = [0u64; 5];
    for k in 1..5 {
        starts[k] = starts[k - 1] + lens[k - 1] - FADE;
    }
    let total = lens.iter().sum::<u64>() - 4 * FADE;
    assert_eq!(episode.frames() as u64, total, "{label}: episode length");
    let ep = episode.planes();

    let mut lines = vec![format!("{label}:")];
    let mut bad: Vec<String> = Vec::new();
    let (ei, etp) = ebu(&ep);
    lines.push(format!(
        "  episode {ei:.3} LUFS, {etp:.2} dBTP (report: measured {:.3}, predicted {:.3}, bumper trim {:+.3} dB)",
        report.episode.integrated_lufs.unwrap_or(f64::NAN),
        report.episode_predicted_lufs,
        report.bumper_trim_db
    ));
    check(
        &mut bad,
        (ei - TARGET).abs() <= 0.2,
        format!("{label}: episode at {ei:.3} LUFS"),
    );
    check(
        &mut bad,
        etp <= 0.0,
        format!("{label}: episode true peak {etp:.2} dBTP"),
    );
    for (name, seg) in [("caller", &caller), ("response", &response)] {
        let (i, tp) = ebu(&seg.planes());
        lines.push(format!("  {name} segment {i:.3} LUFS, {tp:.2} dBTP"));
        check(
            &mut bad,
            (i - TARGET).abs() <= 0.2,
            format!("{label}: {name} segment at {i:.3}"),
        );
        check(
            &mut bad,
            tp <= 0.0,
            format!("{label}: {name} segment true peak {tp:.2}"),
        );
    }
    // Bumper stretches outside the crossfades.
    let bumper_stretches = [
        ("intro", 0, lens[0] - FADE),
        ("interstitial", starts[2] + FADE, starts[2] + lens[2] - FADE),
        ("outro", starts[4] + FADE, total),
    ];
    for (k, (name, a, b)) in bumper_stretches.into_iter().enumerate() {
        let (i, _) = ebu(&stretch(&ep, a, b));
        let r = &report.bumpers[k];
        lines.push(format!(
            "  {name}: mastered {:.2} LUFS, {:.2} dBTP (report {:.2}), gain {:+.2} dB, in the episode {i:.3} LUFS",
            mastered[k].0,
            mastered[k].1,
            r.integrated_lufs,
            r.gain_db
        ));
        check(
            &mut bad,
            (i - TARGET).abs() <= 1.0,
            format!("{label}: {name} plays at {i:.3} LUFS"),
        );
        check(
            &mut bad,
            (r.integrated_lufs - mastered[k].0).abs() < 0.1,
            format!(
                "{label}: {name} measured {} by podstitch, {} by ebur128",
                r.integrated_lufs, mastered[k].0
            ),
        );
        if let Some(l) = levels {
            check(
                &mut bad,
                (mastered[k].0 - l[k]).abs() < 0.3,
                format!(
                    "{label}: {name} was made at {}, not {}",
                    mastered[k].0, l[k]
                ),
            );
        }
    }
    // Voice stretches outside the crossfades against the same stretch of
    // the delivered segment.
    for (name, k, seg) in [("caller", 1, &caller), ("response", 3, &response)] {
        let (in_episode, _) = ebu(&stretch(&ep, starts[k] + FADE, starts[k] + lens[k] - FADE));
        let (in_segment, _) = ebu(&stretch(&seg.planes(), FADE, lens[k] - FADE));
        lines.push(format!(
            "  {name} stretch: {in_episode:.3} LUFS in the episode, {in_segment:.3} in its segment"
        ));
        check(
            &mut bad,
            (in_episode - in_segment).abs() <= 0.2,
            format!("{label}: {name} moved by {:.3} LU", in_episode - in_segment),
        );
    }
    // Chapters: boundaries in the middle of each crossfade.
    let want_titles = ["Intro", "Question", "Interlude", "Answer", "Outro"];
    let mut want = Vec::new();
    for k in 0..5 {
        let start = if k == 0 { 0 } else { starts[k] + FADE / 2 };
        let end = if k == 4 {
            total
        } else {
            starts[k + 1] + FADE / 2
        };
        want.push((want_titles[k].to_string(), ms(start), ms(end)));
    }
    let got = read_chapters(out.episode.get_ref());
    lines.push(format!("  chapters {got:?}"));
    assert_eq!(got, want, "{label}: chapters");
    let reported: Vec<(String, u64, u64)> = report
        .chapters
        .iter()
        .map(|c| (c.title.clone(), u64::from(c.start_ms), u64::from(c.end_ms)))
        .collect();
    assert_eq!(reported, want, "{label}: the report's chapters");
    println!("{}", lines.join("\n"));
    (bad, report)
}

/// Records `what` when `ok` is false (the figures are printed first).
fn check(bad: &mut Vec<String>, ok: bool, what: String) {
    if !ok {
        bad.push(what);
    }
}

#[test]
fn loud_production_like_bumpers_are_matched_and_the_episode_is_on_target() {
    check_set(
        "bumpers at -11.5/-11.5/-14 LUFS",
        Some([-11.5, -11.5, -14.0]),
    );
    check_set("bumpers at -11 LUFS", Some([-11.0; 3]));
}

#[test]
fn quiet_bumpers_are_raised_and_the_episode_is_on_target() {
    check_set("bumpers at -24 LUFS", Some([-24.0; 3]));
}

#[test]
fn quiet_dynamic_bumpers_are_limited_and_still_matched() {
    let names = ["intro.mp3", "interstitial.mp3", "outro.mp3"];
    let bumpers = names.map(|n| dynamic_bumper_at(n, -24.0));
    check_bumpers(
        "dynamic bumpers at -24 LUFS (hits near 0 dBFS)",
        bumpers,
        Some([-24.0; 3]),
    );
}

#[test]
fn embedded_bumpers_keep_the_episode_on_target() {
    check_set("embedded bumpers (-16 LUFS)", None);
}

#[test]
fn keep_plays_the_bumpers_as_mastered() {
    let settings = Settings {
        bumper_loudness: BumperLoudness::Keep,
        ..Settings::default()
    };
    let levels = [-11.5, -11.5, -14.0];
    let label = "keep, bumpers at -11.5/-11.5/-14 LUFS";
    let (bad, report) = measure_set(label, bumper_set(Some(levels)), Some(levels), &settings);
    assert!(report.bumpers.iter().all(|b| b.gain_db == 0.0));
    assert_eq!(report.bumper_trim_db, 0.0);
    // As the old graph did: the episode and the bumpers louder than the
    // target, the voices and segments still on it.
    assert!(bad.iter().any(|b| b.contains("episode at")), "{bad:?}");
    assert!(bad.iter().any(|b| b.contains("intro plays at")), "{bad:?}");
    assert!(
        !bad.iter()
            .any(|b| b.contains("segment") || b.contains("moved")),
        "{bad:?}"
    );
}

#[test]
fn tags_and_cover_are_written_and_read_back() {
    let dir = std::env::temp_dir().join(format!("podstitch-tags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cover_path = dir.join("cover.png");
    // A PNG signature and 3 MB of filler: only the signature is checked,
    // and the size is what matters to the readers.
    let mut cover = b"\x89PNG\r\n\x1a\n".to_vec();
    cover.extend((0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(&cover_path, &cover).expect("cover");
    let settings = Settings {
        tags: Tags {
            title: Some("Episode 7: tags".into()),
            artist: Some("Kent".into()),
            album: Some("Call Kent".into()),
            year: Some(2026),
            comment: Some("made by the test".into()),
            cover: Some(cover_path.clone()),
        },
        ..Settings::default()
    };
    let result = std::panic::catch_unwind(|| run(&bumper_set(None), &settings));
    std::fs::remove_dir_all(&dir).expect("clean up");
    let (out, report) = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(report.episode.integrated_lufs.is_some(), "verified");

    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(out.episode.get_ref().clone())),
        Default::default(),
    );
    let opts = MetadataOptions::default()
        .limit_tag_bytes(Limit::None)
        .limit_visual_bytes(Limit::None);
    let buf = Id3v2Reader::try_new(mss, opts)
        .expect("reader")
        .read_all()
        .expect("tag");
    let tags = &buf.revision.media.tags;
    let has = |want: &str| tags.iter().any(|t| t.raw.value.to_string() == want);
    for v in ["Episode 7: tags", "Kent", "Call Kent", "made by the test"] {
        assert!(has(v), "{v} missing from {tags:?}");
    }
    assert!(
        tags.iter()
            .any(|t| t.raw.value.to_string().starts_with("2026")),
        "year"
    );
    assert!(
        tags.iter()
            .any(|t| t.raw.value.to_string().starts_with("podstitch ")),
        "the encoder tag is kept"
    );
    let visual = buf.revision.media.visuals.first().expect("cover");
    assert_eq!(visual.media_type.as_deref(), Some("image/png"));
    assert_eq!(&visual.data[..], &cover[..]);
    // Segments: the title with their part's, no cover.
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(out.response_segment.get_ref().clone())),
        Default::default(),
    );
    let seg = Id3v2Reader::try_new(mss, MetadataOptions::default())
        .expect("reader")
        .read_all()
        .expect("tag");
    assert!(seg
        .revision
        .media
        .tags
        .iter()
        .any(|t| t.raw.value.to_string() == "Episode 7: tags (Answer)"));
    assert!(seg.revision.media.visuals.is_empty());
}

#[test]
fn a_bad_cover_is_refused_before_any_work() {
    let dir = std::env::temp_dir().join(format!("podstitch-badcover-{}", std::process::id()));
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&dir).expect("dir");
    let gif = dir.join("cover.gif");
    std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00").expect("gif");
    let big = dir.join("big.jpg");
    let mut data = vec![0xff, 0xd8, 0xff, 0xe0];
    data.resize((10 << 20) + 1, 0);
    std::fs::write(&big, &data).expect("big");
    let cases = [
        (
            gif.clone(),
            "not a JPEG or PNG image (it starts with bytes 47 49 46 38); convert it to JPEG or PNG",
        ),
        (
            big.clone(),
            "10485761 bytes, more than the 10485760-byte limit",
        ),
        (dir.join("missing.png"), "cannot read it"),
    ];
    let mut errors = Vec::new();
    for (cover, want) in &cases {
        let settings = Settings {
            tags: Tags {
                cover: Some(cover.clone()),
                ..Tags::default()
            },
            ..Settings::default()
        };
        let r = podstitch::stitch_to_dir(
            &fixture("caller.webm"),
            &fixture("response.ogg"),
            Bumpers::embedded(),
            &out_dir,
            &settings,
            &Quiet,
        );
        let written = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
        errors.push((
            r.err().map(|e| e.to_string()),
            want.to_string(),
            written,
            cover.clone(),
        ));
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
    for (err, want, written, cover) in errors {
        let err = err.expect("a bad cover is an error");
        assert!(
            err.contains(&format!("cover image ({})", cover.display())),
            "{err}"
        );
        assert!(err.contains(&want), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert_eq!(written, 0, "nothing written for {}", cover.display());
    }
    let bad_year = Settings {
        tags: Tags {
            year: Some(99),
            ..Tags::default()
        },
        ..Settings::default()
    };
    let err = bad_year.validate().unwrap_err().to_string();
    assert!(err.contains("year 99 must be a four-digit year"), "{err}");
}
