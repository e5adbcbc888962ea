//! Answers kept compressed: raw deflate pieces that are spliced into a gzip
//! answer as they are, or inflated for a client that takes no gzip.
//!
//! A [`Piece`] is a run of deflate blocks that starts and ends on a byte
//! boundary and is not final (each ends with a sync flush), so pieces and
//! stored blocks can follow each other in one deflate stream. A piece may be
//! compressed after a `window` of text that precedes it in every answer it
//! goes into (the page's shared head): it may refer back into that text,
//! which the client has decoded just before. [`Gzip`] assembles an answer.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Compressed text: non-final deflate blocks ending on a byte boundary, and
/// the length of the text they hold. Kept per cached merchant: no spare
/// capacity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Piece {
    deflated: Box<[u8]>,
    len: u32,
}

/// Compresses `text` as a piece that follows `window` (empty, or the text
/// just before it in every answer the piece goes into).
pub fn deflate(window: &[u8], text: &[u8]) -> Piece {
    let mut z = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(window.len() / 2 + text.len() / 2 + 64);
    feed(&mut z, window, &mut out);
    let start = out.len();
    feed(&mut z, text, &mut out);
    Piece {
        deflated: out[start..].into(),
        len: u32::try_from(text.len()).expect("an answer under 4 GiB"),
    }
}

/// Compresses all of `input`, then a sync flush: the output ends on a byte
/// boundary and everything fed so far can be decoded.
fn feed(z: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) {
    loop {
        out.reserve(input.len() / 2 + 64);
        let before = z.total_in();
        let status = z
            .compress_vec(input, out, FlushCompress::Sync)
            .expect("deflate into memory");
        input = &input[(z.total_in() - before) as usize..];
        // Done once the input is in and the flush fitted (room left over);
        // a flush right after another has nothing to add (`BufError`).
        if input.is_empty()
            && out.len() < out.capacity()
            && matches!(status, Status::Ok | Status::BufError)
        {
            return;
        }
    }
}

impl Piece {
    /// The length of the text it holds.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its compressed bytes (deflate blocks).
    pub fn deflated(&self) -> &[u8] {
        &self.deflated
    }

    /// Appends the text it holds to `out`, which must end with the `window`
    /// it was compressed after.
    pub fn inflate_into(&self, window: usize, out: &mut Vec<u8>) -> Result<(), Corrupt> {
        thread_local! {
            // Reset per piece: its tables and window are allocated once.
            static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
        }
        let at = out.len();
        let window = window.min(at);
        // No room past the text is needed: the empty block that ends the
        // piece is read without any (a test holds it to that).
        out.reserve(self.len());
        let done = INFLATER.with(|d| {
            let mut d = d.borrow_mut();
            d.reset(false);
            // References may reach back into the window.
            if window > 0 && d.set_dictionary(&out[at - window..]).is_err() {
                return false;
            }
            let status = d.decompress_vec(&self.deflated, out, FlushDecompress::Sync);
            // The piece is not final: its input ends in a sync flush.
            matches!(status, Ok(Status::Ok | Status::BufError))
                && d.total_in() == self.deflated.len() as u64
                && out.len() - at == self.len()
        });
        if done {
            Ok(())
        } else {
            out.truncate(at);
            Err(Corrupt)
        }
    }

    /// The bytes kept for it (for measuring memory).
    pub fn heap_bytes(&self) -> usize {
        self.deflated.len()
    }
}

/// A piece that does not inflate to its length: never made by [`deflate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// A gzip member assembled from stored text and pieces, with the CRC-32
/// and length of the whole text it holds (known beforehand).
pub struct Gzip {
    out: Vec<u8>,
}

/// The gzip header: deflate, no name, no time, unknown OS (as flate2
/// writes it, byte for byte).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The largest stored block.
const STORED_MAX: usize = 0xffff;

impl Gzip {
    /// Starts an answer of about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + HEADER.len() + 32);
        out.extend_from_slice(&HEADER);
        Self { out }
    }

    /// Appends `text` uncompressed (stored blocks, not final).
    pub fn stored(mut self, text: &[u8]) -> Self {
        for chunk in text.chunks(STORED_MAX) {
            self.stored_block(chunk, false);
        }
        self
    }

    fn stored_block(&mut self, chunk: &[u8], last: bool) {
        let len = chunk.len() as u16;
        self.out.push(u8::from(last));
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&(!len).to_le_bytes());
        self.out.extend_from_slice(chunk);
    }

    /// Appends deflate blocks as they are (a piece, or shared blocks).
    pub fn deflated(mut self, blocks: &[u8]) -> Self {
        self.out.extend_from_slice(blocks);
        self
    }

    /// Ends the deflate stream and the member: the text it holds has
    /// `crc` and `len`.
    pub fn finish(mut self, crc: u32, len: usize) -> Vec<u8> {
        self.stored_block(&[], true);
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out.extend_from_slice(&(len as u32).to_le_bytes());
        self.out
    }
}

/// The CRC-32 of the concatenated `parts` (gzip's).
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    fn text(seed: u32, len: usize) -> Vec<u8> {
        let words = [
            "<section>",
            "评定理由",
            "\"grade\":",
            "green",
            "暂无",
            "12315",
            " ",
        ];
        let mut x = seed;
        let mut out = Vec::new();
        while out.len() < len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
            out.extend_from_slice((x % 1000).to_string().as_bytes());
        }
        out
    }

    #[test]
    fn pieces_spliced_with_stored_text_make_a_gzip_member_of_the_whole() {
        for (seed, len) in [(1, 0), (2, 10), (3, 1000), (4, 70_000)] {
            let head = text(seed, 1300);
            let middle = text(seed + 10, len);
            let tail = text(seed + 20, len / 3);
            let shared = deflate(&[], &head);
            let piece = deflate(&head, &middle);
            assert!(piece.len() == middle.len());
            let whole = [&head[..], &middle, &tail].concat();
            let gz = Gzip::with_capacity(0)
                .deflated(shared.deflated())
                .deflated(piece.deflated())
                .stored(&tail)
                .finish(crc32(&[&head, &middle, &tail]), whole.len());
            assert_eq!(gunzip(&gz), whole);
            // The piece refers back into the head: decoded after it, it is
            // the middle again.
            let mut out = head.clone();
            piece.inflate_into(head.len(), &mut out).unwrap();
            assert_eq!(out, [&head[..], &middle].concat());
            // Into a buffer with room for the text and not a byte more.
            let mut exact = Vec::with_capacity(head.len() + middle.len());
            exact.extend_from_slice(&head);
            piece.inflate_into(head.len(), &mut exact).unwrap();
            assert_eq!(exact, out);
            // A piece without a window decodes alone.
            let alone = deflate(&[], &middle);
            let mut out = b"prefix".to_vec();
            alone.inflate_into(0, &mut out).unwrap();
            assert_eq!(out, [&b"prefix"[..], &middle].concat());
        }
    }

    #[test]
    fn a_piece_decoded_without_its_window_is_refused_not_garbled() {
        let head = text(7, 2000);
        let piece = deflate(&head, &head);
        let mut out = Vec::new();
        assert_eq!(piece.inflate_into(0, &mut out), Err(Corrupt));
        assert!(out.is_empty());
    }
}
