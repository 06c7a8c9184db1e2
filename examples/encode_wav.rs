//! Encodes a 16-bit WAV to a CBR MP3 with the LAME that podstitch links
//! (`podstitch::stages::Mp3Writer`, one encoder, as the single-encoder path
//! uses it), for `benches/compare.sh`'s check that the `lame` command of the
//! LAME floor and the LAME inside podstitch cost the same CPU time on the
//! same input.
//!
//! Run with
//! `cargo run --release --example encode_wav -- IN.wav OUT.mp3 KBPS [QUALITY]`
//! (quality 0 to 9, default 3; mono or stereo as the WAV is).

use std::fs::File;
use std::io::{BufWriter, Read};
use std::process::ExitCode;

use podstitch::stages::{Block, BlockSink, Mp3Format, Mp3Writer};
use podstitch::Mp3Options;

/// Frames per block handed to the encoder.
const BLOCK_FRAMES: usize = 4096;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("encode_wav: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, kbps, rest @ ..] = args.as_slice() else {
        return Err("usage: encode_wav IN.wav OUT.mp3 KBPS [QUALITY]".into());
    };
    let quality = rest.first().map_or(Ok(3), |q| q.parse::<u8>())?;
    let wav = hound::WavReader::open(input).map_err(|e| format!("{input}: {e}"))?;
    let spec = wav.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format!("{input}: not a 16-bit PCM WAV").into());
    }
    let channels = usize::from(spec.channels);
    let format = Mp3Format {
        options: Mp3Options {
            bitrate_kbps: kbps.parse()?,
            quality,
        },
        channels: u8::try_from(channels)?,
        sample_rate: spec.sample_rate,
    };
    let out = BufWriter::new(File::create(output).map_err(|e| format!("{output}: {e}"))?);
    let mut mp3 = Mp3Writer::new(output, out, &format)?;
    // The PCM data straight from the file, a block at a time (hound's
    // sample-by-sample iterator would cost a fifth of LAME's time and skew
    // the comparison this example exists for).
    let mut left = u64::from(wav.len()) * 2;
    let mut data = wav.into_inner();
    let mut bytes = vec![0u8; BLOCK_FRAMES * channels * 2];
    let mut block = Block::new(channels, BLOCK_FRAMES);
    while left > 0 {
        let n = bytes.len().min(usize::try_from(left)?);
        data.read_exact(&mut bytes[..n])
            .map_err(|e| format!("{input}: {e}"))?;
        left -= n as u64;
        block.clear();
        for frame in bytes[..n].chunks_exact(2 * channels) {
            for (c, s) in frame.chunks_exact(2).enumerate() {
                let s = i16::from_le_bytes([s[0], s[1]]);
                block.channel_mut(c).push(f32::from(s) / 32768.0);
            }
        }
        BlockSink::write(&mut mp3, &block)?;
    }
    BlockSink::finish(mp3)?;
    Ok(())
}
