//! The `podstitch` command as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podstitch"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("podstitch-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn stitch_prints_one_json_line_with_the_file_sizes() {
    let out = scratch("ok");
    let o = bin()
        .args(["stitch", "--call"])
        .arg(fixture("caller.webm"))
        .arg("--response")
        .arg(fixture("response.mp3"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for (key, file) in [
        ("episodeAudioSize", "episode.mp3"),
        ("callerSegmentAudioSize", "caller-segment.mp3"),
        ("responseSegmentAudioSize", "response-segment.mp3"),
    ] {
        let size = std::fs::metadata(out.join(file)).unwrap().len();
        assert!(size > 0);
        assert_eq!(v[key].as_u64(), Some(size), "{key}");
    }
    for k in ["episode", "callerSegment", "responseSegment"] {
        assert!(v[k]["durationS"].as_f64().unwrap() > 1.0);
        assert!(v[k]["integratedLufs"].as_f64().is_some());
        assert!(v[k]["truePeakDbtp"].as_f64().unwrap() <= 0.0);
    }
    // Only the three outputs are left in the directory: no partial files.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);

    // analyze reads the outputs back.
    let a = bin()
        .args(["analyze", "--json"])
        .arg(out.join("episode.mp3"))
        .output()
        .unwrap();
    assert!(a.status.success());
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["channels"].as_u64(), Some(2));
    assert_eq!(v["sampleRate"].as_u64(), Some(44100));
    let t = bin()
        .arg("analyze")
        .arg(out.join("caller-segment.mp3"))
        .output()
        .unwrap();
    let text = String::from_utf8(t.stdout).unwrap();
    assert!(text.contains("loudness") && text.contains("LUFS"), "{text}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_exit_1() {
    let out = scratch("bad");
    let o = bin()
        .args(["stitch", "--call"])
        .arg(fixture("video-only.webm"))
        .arg("--response")
        .arg(fixture("response.ogg"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("video-only.webm") && last.contains("no audio track"),
        "{err}"
    );
    assert!(!out.join("episode.mp3").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn missing_bumper_in_assets_is_named() {
    let assets = scratch("assets");
    std::fs::create_dir_all(&assets).unwrap();
    let o = bin()
        .args(["stitch", "--call"])
        .arg(fixture("caller.webm"))
        .arg("--response")
        .arg(fixture("response.ogg"))
        .arg("--assets")
        .arg(&assets)
        .arg("--out")
        .arg(assets.join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("intro.mp3") && err.contains("Missing required file"),
        "{err}"
    );
    std::fs::remove_dir_all(&assets).unwrap();
}
