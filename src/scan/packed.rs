//! Answers kept compressed: raw deflate pieces that are spliced into a gzip
//! answer as they are, or inflated for a client that takes no gzip.
//!
//! A [`Piece`] is a run of deflate blocks that starts and ends on a byte
//! boundary and is not final (each ends with a sync flush), so pieces and
//! stored blocks can follow each other in one deflate stream. A piece may be
//! compressed after a `window` of text that precedes it in every answer it
//! goes into (the page's shared head): it may refer back into that text,
//! which the client has decoded just before. [`Gzip`] assembles an answer.
//!
//! Text that many answers hold word for word (a page's fixed wording) is
//! [`Shared`]: compressed once, on its own. [`Runs`] keep an answer as the
//! shared texts it holds and its own text between them, each own run
//! compressed after everything before it, so it may refer back into the
//! shared wording as well: only the own runs are kept per answer.

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
    let mut out = Vec::with_capacity(text.len() / 2 + 64);
    with_compressor(|z| {
        follow(z, window, &mut out);
        feed(z, text, &mut out);
    });
    Piece {
        deflated: out.into(),
        len: u32::try_from(text.len()).expect("an answer under 4 GiB"),
    }
}

/// `f` of this thread's compressor, reset: a new one would allocate and
/// clear its tables (a third of a megabyte) for every answer.
fn with_compressor<R>(f: impl FnOnce(&mut Compress) -> R) -> R {
    thread_local! {
        static COMPRESSOR: RefCell<Compress> =
            RefCell::new(Compress::new(Compression::default(), false));
    }
    COMPRESSOR.with(|z| {
        let mut z = z.borrow_mut();
        z.reset();
        f(&mut z)
    })
}

/// Makes the compressor go on as if it had just compressed `text` (and
/// flushed): later text may refer back into it. `text` is put in its window
/// without being compressed; if the compressor refuses that, it is
/// compressed into `out`, and the blocks dropped. Call it only after a
/// flush (or on a compressor just reset).
fn follow(z: &mut Compress, text: &[u8], out: &mut Vec<u8>) {
    if text.is_empty() || z.set_dictionary(text).is_ok() {
        return;
    }
    let at = out.len();
    feed(z, text, out);
    out.truncate(at);
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
        let at = out.len();
        inflate_parts(
            std::iter::once(Ok(Part::Deflated(&self.deflated[..]))),
            window,
            self.len(),
            out,
        )?;
        if out.len() - at == self.len() {
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

/// Texts that many answers hold word for word, each compressed on its own
/// once (no references out of it, so it decodes wherever it is spliced).
pub struct Shared {
    finder: Option<aho_corasick::AhoCorasick>,
    pieces: Vec<Piece>,
    texts: Vec<Box<[u8]>>,
}

/// How many bytes a text must be for [`Shared::learn`] to share it: a
/// shorter one saves less than the run it costs.
pub const SHARED_MIN: usize = 32;

impl Shared {
    /// No shared text: [`deflate_runs`] makes one own run.
    pub const fn none() -> Self {
        Self {
            finder: None,
            pieces: Vec::new(),
            texts: Vec::new(),
        }
    }

    /// The texts that two consecutive `samples` both hold, as `cut` says:
    /// going through each sample, the longest text from there on that the
    /// next one holds, split into units and cut to their edges. Samples
    /// that differ in every value (other merchants, other days) leave the
    /// fixed wording; the cut drops what two values happen to share (the
    /// start of a date, an id, a district).
    pub fn learn(samples: &[Vec<u8>], cut: &Cut) -> Self {
        let mut texts = std::collections::BTreeSet::new();
        let pairs = (0..samples.len()).flat_map(|i| {
            cut.apart
                .iter()
                .filter_map(move |k| Some((&samples[i], samples.get(i + k)?)))
        });
        for (a, b) in pairs {
            let mut at = 0;
            while at < a.len() {
                let n = longest_held(&a[at..], b);
                if n >= cut.min.max(1) {
                    texts.extend(cut.units(&a[at..at + n]).into_iter().map(<[u8]>::to_vec));
                    at += n;
                } else {
                    at += 1;
                }
            }
        }
        Self::of(texts.into_iter().collect())
    }

    /// These texts shared (where two overlap in an answer, the leftmost,
    /// then the longest, is taken).
    pub fn of(texts: Vec<Vec<u8>>) -> Self {
        let texts: Vec<Box<[u8]>> = texts
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(Vec::into_boxed_slice)
            .collect();
        let finder = (!texts.is_empty()).then(|| {
            aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                // A few hundred texts: a DFA is small, and several times
                // faster to search than the default automaton.
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&texts)
                .expect("a finder for a few texts")
        });
        Self {
            finder,
            pieces: texts.iter().map(|t| deflate(&[], t)).collect(),
            texts,
        }
    }

    /// How many texts are shared.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The shared texts.
    pub fn texts(&self) -> impl Iterator<Item = &[u8]> {
        self.texts.iter().map(|t| &t[..])
    }
}

/// How [`Shared::learn`] cuts a text two samples hold into shared units.
pub struct Cut<'a> {
    /// The shortest unit worth sharing.
    pub min: usize,
    /// A unit starts at one of these bytes (a tag's `<`, a JSON string's
    /// quote)...
    pub starts: &'a [u8],
    /// ...and ends with one of these.
    pub ends: &'a [u8],
    /// A new unit begins at each of these texts (a page's sections), so
    /// that wording is shared whichever parts a page has.
    pub before: &'a [&'a [u8]],
    /// Each sample is compared with those this many after it (samples
    /// that differ in every value: 1 for samples of different merchants on
    /// different days by turns; 3 as well finds parts that two neighbours
    /// do not both have).
    pub apart: &'a [usize],
}

impl Cut<'_> {
    /// The units of `held`, in order.
    fn units<'t>(&'t self, held: &'t [u8]) -> Vec<&'t [u8]> {
        let mut starts = vec![0];
        for at in 1..held.len() {
            if self.before.iter().any(|b| held[at..].starts_with(b)) {
                starts.push(at);
            }
        }
        starts.push(held.len());
        let min = self.min.max(1);
        starts
            .windows(2)
            .filter_map(move |w| {
                let part = &held[w[0]..w[1]];
                let start = part.iter().position(|c| self.starts.contains(c))?;
                let end = part.iter().rposition(|c| self.ends.contains(c))?;
                (end + 1 >= start + min).then(|| &part[start..=end])
            })
            .collect()
    }
}

/// The length of the longest start of `a` that `b` holds somewhere.
fn longest_held(a: &[u8], b: &[u8]) -> usize {
    let held = |n: usize| memchr::memmem::find(b, &a[..n]).is_some();
    if a.is_empty() || !held(1) {
        return 0;
    }
    // Held lengths are a prefix of 1..=a.len(): find the last by doubling,
    // then halving.
    let (mut lo, mut hi) = (1, 2);
    while hi <= a.len() && held(hi) {
        lo = hi;
        hi *= 2;
    }
    let mut hi = hi.min(a.len() + 1);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if held(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Text kept as runs: the [`Shared`] texts it holds, by number, and its own
/// text between them, compressed after all the text before it (a window,
/// then the earlier runs). Only the own runs' blocks are kept, with a table
/// of the runs before them, in one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runs {
    /// The byte length of the table (LEB128), the table, then the own
    /// runs' deflate blocks one after another. The table holds a LEB128
    /// number a run: `index << 1 | 1` for a shared text, `length << 1` for
    /// own blocks. An empty table: one own run, all the blocks.
    bytes: Box<[u8]>,
    len: u32,
}

/// One run of [`Runs`].
enum Run<'a> {
    Shared(usize),
    Own(&'a [u8]),
}

/// Appends `n` as LEB128.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The LEB128 number at `*at` in `bytes`, moving `at` past it.
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// The runs of [`Runs`] in order; an `Err` where the table does not match
/// the blocks (never for runs made by [`deflate_runs`]), then nothing.
struct RunIter<'a> {
    bytes: &'a [u8],
    /// Where the next table entry is, and where the table ends.
    entry: usize,
    table_end: usize,
    /// Where the next own blocks start.
    own: usize,
    /// An empty table: the one own run is still to come.
    single: bool,
}

impl<'a> RunIter<'a> {
    /// `None` for bytes that do not start with a table.
    fn new(bytes: &'a [u8]) -> Option<Self> {
        let mut at = 0;
        let n = usize::try_from(varint(bytes, &mut at)?).ok()?;
        let table_end = at.checked_add(n).filter(|&end| end <= bytes.len())?;
        Some(Self {
            bytes,
            entry: at,
            table_end,
            own: table_end,
            single: n == 0,
        })
    }

    /// Whether every own block was gone through.
    fn all_own_read(&self) -> bool {
        self.own == self.bytes.len()
    }
}

impl<'a> Iterator for RunIter<'a> {
    type Item = Result<Run<'a>, Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if std::mem::take(&mut self.single) {
            let own = &self.bytes[self.own..];
            self.own = self.bytes.len();
            return Some(Ok(Run::Own(own)));
        }
        if self.entry >= self.table_end {
            return None;
        }
        let run = varint(&self.bytes[..self.table_end], &mut self.entry).and_then(|v| {
            let n = usize::try_from(v >> 1).ok()?;
            if v & 1 == 1 {
                return Some(Run::Shared(n));
            }
            let own = self.bytes.get(self.own..self.own.checked_add(n)?)?;
            self.own += n;
            Some(Run::Own(own))
        });
        if run.is_none() {
            self.entry = self.table_end;
        }
        Some(run.ok_or(Corrupt))
    }
}

/// Compresses `text`, which follows `window` in every answer it goes into,
/// as runs of `shared` texts and its own text.
pub fn deflate_runs(window: &[u8], text: &[u8], shared: &Shared) -> Runs {
    let len = u32::try_from(text.len()).expect("an answer under 4 GiB");
    let mut out = Vec::with_capacity(text.len() / 2 + 64);
    let mut own = Vec::with_capacity(text.len() / 4 + 64);
    let mut table = Vec::with_capacity(32);
    let mut shared_runs = 0;
    with_compressor(|z| {
        follow(z, window, &mut out);
        let mut own_run =
            |z: &mut Compress, part: &[u8], out: &mut Vec<u8>, table: &mut Vec<u8>| {
                feed(z, part, out);
                put_varint(table, (out.len() as u64) << 1);
                own.extend_from_slice(out);
                out.clear();
            };
        let mut last = 0;
        for m in shared.finder.iter().flat_map(|f| f.find_iter(text)) {
            if m.start() > last {
                own_run(z, &text[last..m.start()], &mut out, &mut table);
            }
            // The client decodes the shared text's own piece here; the
            // compressor's window holds it from now on.
            follow(z, &text[m.range()], &mut out);
            put_varint(&mut table, u64::from(m.pattern().as_u32()) << 1 | 1);
            shared_runs += 1;
            last = m.end();
        }
        if last < text.len() || shared_runs == 0 {
            own_run(z, &text[last..], &mut out, &mut table);
        }
    });
    if shared_runs == 0 {
        // One own run: no table.
        table.clear();
    }
    let mut bytes = Vec::with_capacity(table.len() + own.len() + 4);
    put_varint(&mut bytes, table.len() as u64);
    bytes.extend_from_slice(&table);
    bytes.extend_from_slice(&own);
    Runs {
        bytes: bytes.into(),
        len,
    }
}

impl Runs {
    /// The length of the text they hold.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many runs they are.
    pub fn count(&self) -> usize {
        RunIter::new(&self.bytes).map_or(0, Iterator::count)
    }

    /// Their deflate blocks in order, the shared ones from `shared` (which
    /// must be the one they were made with; nothing for runs that are not).
    pub fn blocks<'a>(&'a self, shared: &'a Shared) -> impl Iterator<Item = &'a [u8]> + 'a {
        let runs = RunIter::new(&self.bytes).into_iter().flatten();
        runs.map(move |run| match run {
            Ok(Run::Own(blocks)) => blocks,
            Ok(Run::Shared(i)) => shared.pieces.get(i).map_or(&[][..], |p| &p.deflated[..]),
            Err(Corrupt) => &[][..],
        })
    }

    /// Appends the text they hold to `out`, which must end with the
    /// `window` they were compressed after; `shared` must be the one they
    /// were made with.
    pub fn inflate_into(
        &self,
        shared: &Shared,
        window: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Corrupt> {
        // One stream, as a client decodes the gzip answer, except that a
        // shared text is copied as it is rather than decoded from its
        // blocks (decoding them, Huffman tables and all, was two thirds of
        // the time: `identity-inflate` in BENCHMARKS.md).
        let at = out.len();
        let mut runs = RunIter::new(&self.bytes).ok_or(Corrupt)?;
        let parts = runs.by_ref().map(|run| match run? {
            Run::Own(blocks) => Ok(Part::Deflated(blocks)),
            Run::Shared(i) => shared.texts.get(i).map(|t| Part::Plain(t)).ok_or(Corrupt),
        });
        inflate_parts(parts, window, self.len(), out)?;
        if out.len() - at == self.len() && runs.all_own_read() {
            Ok(())
        } else {
            out.truncate(at);
            Err(Corrupt)
        }
    }

    /// The bytes kept for them (for measuring memory).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// A part of one deflate stream, for [`inflate_parts`].
enum Part<'a> {
    /// Non-final deflate blocks ending in a sync flush.
    Deflated(&'a [u8]),
    /// Text that blocks of the stream would hold here: copied, and put in
    /// the decoder's window for the blocks after it to refer back into.
    Plain(&'a [u8]),
}

/// Appends the text that `parts` (of one stream) hold, at most `len` bytes,
/// to `out`, whose last `window` bytes they may refer back into. Nothing is
/// appended if they do not decode whole.
fn inflate_parts<'a>(
    parts: impl Iterator<Item = Result<Part<'a>, Corrupt>>,
    window: usize,
    len: usize,
    out: &mut Vec<u8>,
) -> Result<(), Corrupt> {
    thread_local! {
        // Reset per answer: its tables and window are allocated once.
        static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
    }
    let at = out.len();
    // A deflate window is 32 KiB: references reach no further back.
    let window = window.min(at).min(32 * 1024);
    // No room past the text is needed: the empty block that ends a part
    // is read without any (a test holds it to that).
    out.reserve(len);
    let done = INFLATER.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        // References may reach back into the window.
        if window > 0 && d.set_dictionary(&out[at - window..]).is_err() {
            return Err(Corrupt);
        }
        for part in parts {
            let part = match part? {
                Part::Deflated(blocks) => blocks,
                Part::Plain(text) => {
                    // A raw stream's dictionary may be set between blocks:
                    // it is appended to the window.
                    if out.len() - at + text.len() > len || d.set_dictionary(text).is_err() {
                        return Err(Corrupt);
                    }
                    out.extend_from_slice(text);
                    continue;
                }
            };
            let before = d.total_in();
            let status = d.decompress_vec(part, out, FlushDecompress::Sync);
            // Each part ends in a sync flush: it is read whole.
            let whole = matches!(status, Ok(Status::Ok | Status::BufError))
                && d.total_in() - before == part.len() as u64;
            if !whole || out.len() - at > len {
                return Err(Corrupt);
            }
        }
        Ok(())
    });
    done.inspect_err(|_| out.truncate(at))
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

/// The CRC-32 of `head` followed by a text of `len` bytes whose CRC-32 is
/// `crc`.
pub fn crc32_after(head: &[u8], crc: u32, len: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.combine(&crc32fast::Hasher::new_with_initial_len(crc, len as u64));
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

    const TAGS: Cut = Cut {
        min: SHARED_MIN,
        starts: b"<",
        ends: b">",
        before: &[],
        apart: &[1],
    };

    #[test]
    fn a_crc_after_a_head_is_the_crc_of_both() {
        for (head, rest) in [
            (&b""[..], &b"abc"[..]),
            (b"{\"code\":1,", b""),
            (b"12345", b"67890xyz"),
        ] {
            let both = [head, rest].concat();
            assert_eq!(
                crc32_after(head, crc32(&[rest]), rest.len()),
                crc32(&[&both])
            );
        }
    }

    /// Pages of one template: fixed wording around each sample's values.
    fn templated(seed: u32) -> Vec<u8> {
        let values = text(seed, 120);
        let (a, b) = values.split_at(40);
        [
            "<section><h1>".as_bytes(),
            a,
            "</h1><p class=\"check\">请核对：此码应张贴在上面这个名称和地址的经营场所。</p></section>".as_bytes(),
            b,
            "<section><a class=\"call\" href=\"tel:12315\">投诉举报 拨打 12315</a></section></main>".as_bytes(),
        ]
        .concat()
    }

    #[test]
    fn runs_keep_only_their_own_text_and_splice_the_shared_wording_back() {
        let samples: Vec<_> = (1..5).map(templated).collect();
        let shared = Shared::learn(&samples, &TAGS);
        assert!(!shared.is_empty());
        // What is learnt is wording every sample has, no sample's values.
        for t in &shared.texts {
            assert!(samples.iter().all(|s| memchr::memmem::find(s, t).is_some()));
        }
        let head = text(99, 1300);
        let head_piece = deflate(&[], &head);
        let page = templated(42);
        let runs = deflate_runs(&head, &page, &shared);
        let alone = deflate(&head, &page);
        assert!(
            runs.heap_bytes() < alone.heap_bytes(),
            "{} bytes as runs against {} whole",
            runs.heap_bytes(),
            alone.heap_bytes()
        );
        assert!(runs.count() > 1);
        let whole = [&head[..], &page].concat();
        let mut gz = Gzip::with_capacity(0).deflated(head_piece.deflated());
        for blocks in runs.blocks(&shared) {
            gz = gz.deflated(blocks);
        }
        let gz = gz.finish(crc32(&[&whole]), whole.len());
        assert_eq!(gunzip(&gz), whole);
        let mut out = head.clone();
        runs.inflate_into(&shared, head.len(), &mut out).unwrap();
        assert_eq!(out, whole);
        // Text with none of the shared wording is one own run.
        let plain = text(7, 500);
        let one = deflate_runs(&head, &plain, &shared);
        assert_eq!(one.count(), 1);
        let mut out = head.clone();
        one.inflate_into(&shared, head.len(), &mut out).unwrap();
        assert_eq!(out, [&head[..], &plain].concat());
        assert_eq!(deflate_runs(&head, &plain, &Shared::none()), one);
    }

    #[test]
    fn runs_read_with_other_shared_texts_are_refused_not_garbled() {
        let samples: Vec<_> = (1..5).map(templated).collect();
        let shared = Shared::learn(&samples, &TAGS);
        let runs = deflate_runs(&[], &templated(9), &shared);
        let mut out = b"kept".to_vec();
        assert_eq!(
            runs.inflate_into(&Shared::none(), 0, &mut out),
            Err(Corrupt)
        );
        assert_eq!(out, b"kept");
        // Bytes that are not runs (cut short, or any bytes) are refused,
        // never read past.
        assert!(!runs.bytes.is_empty());
        for cut in 0..runs.bytes.len() {
            let short = Runs {
                bytes: runs.bytes[..cut].into(),
                len: runs.len,
            };
            let _ = short.blocks(&shared).count();
            assert_eq!(short.inflate_into(&shared, 0, &mut out), Err(Corrupt));
            assert_eq!(out, b"kept");
        }
        for seed in 0..200 {
            let noise = Runs {
                bytes: text(seed, 40).into(),
                len: 30,
            };
            let _ = noise.blocks(&shared).count();
            if noise.inflate_into(&shared, 0, &mut out).is_err() {
                assert_eq!(out, b"kept");
            }
            out.truncate(4);
        }
    }

    #[test]
    fn only_texts_as_long_as_the_minimum_are_learnt() {
        let samples = [b"xx0123456789yy".to_vec(), b"zz0123456789ww".to_vec()];
        let digits = |min| Cut {
            min,
            starts: b"0123456789",
            ends: b"0123456789",
            before: &[],
            apart: &[1],
        };
        assert_eq!(Shared::learn(&samples, &digits(11)).len(), 0);
        let ten = Shared::learn(&samples, &digits(10));
        assert_eq!(ten.texts, vec![b"0123456789".to_vec().into_boxed_slice()]);
        // Cut to its edges: what two values share on either side is not.
        let samples = [b"a-x<b>1</b>-yz".to_vec(), b"a-x<b>2</b>-yw".to_vec()];
        let cut = Cut { min: 3, ..TAGS };
        let tags = Shared::learn(&samples, &cut);
        let texts: Vec<&[u8]> = tags.texts().collect();
        assert_eq!(texts, [&b"</b>"[..], b"<b>"]);
        // Split into units before each `<p>`: the two paragraphs are shared
        // one by one, each wherever it comes.
        let samples = [
            b"1<p>one</p><p>two</p>2".to_vec(),
            b"3<p>one</p><p>two</p>4".to_vec(),
        ];
        let cut = Cut {
            min: 3,
            before: &[b"<p>"],
            ..TAGS
        };
        let units = Shared::learn(&samples, &cut);
        let texts: Vec<&[u8]> = units.texts().collect();
        assert_eq!(texts, [&b"<p>one</p>"[..], b"<p>two</p>"]);
        assert_eq!(longest_held(b"0123", b"xx012"), 3);
        assert_eq!(longest_held(b"9", b"xx012"), 0);
        assert_eq!(longest_held(b"", b"xx012"), 0);
    }
}
