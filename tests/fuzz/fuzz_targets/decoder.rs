//! The NDJSON decoder, fed arbitrary bytes: the first byte sets the frame limit and where
//! the input is cut into reads. It must never panic, must give the same frames and errors
//! however the bytes arrive, and every frame it gives must encode to one line that decodes
//! back to the same frame.
#![no_main]

use chat_shared::codec::{DecodeError, Decoder, WireFrame, decode_line, encode_into};
use chat_shared::{ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    // Small limits reach the too-long paths; 0 would refuse everything.
    let max_frame = 16 + usize::from(seed) * 8;
    check::<ClientFrame>(bytes, max_frame, seed);
    check::<ServerFrame>(bytes, max_frame, seed);
});

fn check<T: WireFrame + std::fmt::Debug + PartialEq>(bytes: &[u8], max_frame: usize, seed: u8) {
    let whole = decode_all::<T>(bytes, max_frame, &[bytes.len()]);
    // Reads of 1 to 8 bytes, in a pattern set by the seed.
    let sizes: Vec<usize> = (0..8)
        .map(|i| 1 + usize::from(seed.rotate_left(i) % 8))
        .collect();
    let pieces = decode_all::<T>(bytes, max_frame, &sizes);
    assert_eq!(
        whole, pieces,
        "the same bytes in other reads decoded otherwise"
    );
    for frame in whole.iter().flatten() {
        let mut line = Vec::new();
        encode_into(frame, &mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        let body = &line[..line.len() - 1];
        assert!(!body.contains(&b'\n'), "an encoded frame spans lines");
        let again: T = decode_line(body).expect("what we encode decodes");
        let mut line_again = Vec::new();
        encode_into(&again, &mut line_again);
        assert_eq!(
            line, line_again,
            "a frame changed on its way through the wire"
        );
    }
}

/// Every result the decoder gives for `bytes` read in pieces of `sizes` (repeated).
fn decode_all<T: WireFrame>(
    bytes: &[u8],
    max_frame: usize,
    sizes: &[usize],
) -> Vec<Result<T, DecodeError>> {
    let mut decoder = Decoder::<T>::new(max_frame);
    let mut out = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (mut read, after) = rest.split_at((*size).min(rest.len()));
        rest = after;
        while let Some(result) = decoder.next_frame(&mut read) {
            out.push(result);
        }
        assert!(
            decoder.pending_len() < max_frame,
            "the decoder held a whole frame's limit"
        );
    }
    out
}
