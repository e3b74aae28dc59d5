//! Body of the `h2_frames` fuzz target (`fuzz/fuzz_targets/h2_frames.rs`), public so
//! that the corpus replay test (`tests/fuzz_corpus.rs`) runs it under `cargo test`.

use super::{decode, encode, Frame, FrameError, Settings, Status, MAX_FRAME_SIZE_LIMIT};

/// Decodes frames from `data[1..]` until the input runs out or a connection error,
/// with a maximum frame size picked by `data[0]`. Each frame is re-encoded with
/// [`encode::frame`] and must decode to itself; header blocks also go through
/// [`encode::headers`] and must come back whole. Panics on any disagreement.
pub fn frames(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let max = match pick % 4 {
        0 => super::DEFAULT_MAX_FRAME_SIZE,
        1 => MAX_FRAME_SIZE_LIMIT,
        // Small limits reach FRAME_SIZE_ERROR with small inputs.
        _ => u32::from(pick),
    };
    let mut settings = Settings::default();
    loop {
        match decode(rest, max) {
            Ok(Status::Complete((frame, n))) => {
                assert!(n <= rest.len() && n >= super::HEAD_LEN);
                // One byte short asks for exactly the frame.
                assert_eq!(decode(&rest[..n - 1], max), Ok(Status::Partial(partial(n))));
                check(&frame, &mut settings);
                rest = &rest[n..];
            }
            Ok(Status::Partial(need)) => {
                assert!(need > rest.len());
                assert!(need <= super::HEAD_LEN + max as usize);
                return;
            }
            Err(e) => {
                assert_eq!(e.stream_id().is_none(), e.is_connection_error());
                let _ = e.to_string();
                if e.is_connection_error() {
                    return;
                }
                let n = e.frame_len();
                assert!(n <= rest.len(), "a stream error comes with its whole frame");
                rest = &rest[n..];
            }
        }
    }
}

/// What a buffer one byte short of a frame of `n` bytes must ask for.
fn partial(n: usize) -> usize {
    if n - 1 < super::HEAD_LEN {
        super::HEAD_LEN
    } else {
        n
    }
}

fn check(frame: &Frame<'_>, settings: &mut Settings) {
    let mut out = Vec::new();
    encode::frame(&mut out, frame);
    let again = decode(&out, MAX_FRAME_SIZE_LIMIT);
    assert_eq!(again, Ok(Status::Complete((*frame, out.len()))), "{out:?}");
    let _: Option<FrameError> = frame.stream_error();
    match *frame {
        Frame::Settings { params, .. } => settings.apply(params),
        Frame::Headers {
            stream_id,
            end_stream,
            fragment,
            ..
        } => {
            let mut out = Vec::new();
            encode::headers(
                &mut out,
                stream_id,
                end_stream,
                fragment,
                settings.max_frame_size,
            );
            let mut joined = Vec::new();
            let mut at = 0;
            while let Ok(Status::Complete((f, n))) = decode(&out[at..], settings.max_frame_size) {
                match f {
                    Frame::Headers { fragment, .. } | Frame::Continuation { fragment, .. } => {
                        joined.extend_from_slice(fragment)
                    }
                    f => panic!("{f:?} in a header block"),
                }
                at += n;
            }
            assert_eq!(at, out.len());
            assert_eq!(joined, fragment);
        }
        _ => {}
    }
}
