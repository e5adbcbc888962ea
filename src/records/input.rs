//! Reading input files with bounded memory: JSONL or CSV (by extension),
//! line by line with a bounded line length, in chunks that the refresh
//! parses in parallel while the previous chunk is written.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::csv_rows::{csv_ends_in_quotes, CsvHeader, InputFormat, RowParser};

/// Longest accepted input line, in bytes (without the line break).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A line that was not imported: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Reads a JSONL file line by line with bounded memory: a line longer than
/// [`MAX_LINE_BYTES`] is rejected without being held whole, invalid UTF-8 is
/// rejected, blank lines are skipped, a UTF-8 byte-order mark and `\r\n`
/// line ends are accepted. Calls `ok` with each parsed item and its line
/// number and `reject` for each bad line (1-based line numbers). Returns
/// the number of lines read.
pub fn read_jsonl<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, String>,
    ok: impl FnMut(T, u64),
    reject: impl FnMut(Reject),
) -> io::Result<u64> {
    let file = File::open(path)?;
    let name = path.display().to_string();
    read_jsonl_from(
        BufReader::with_capacity(64 * 1024, file),
        &name,
        parse,
        ok,
        reject,
    )
}

/// [`read_jsonl`] over any buffered reader; `file` names it in rejects.
pub fn read_jsonl_from<T>(
    reader: impl BufRead,
    file: &str,
    parse: impl Fn(&str) -> Result<T, String>,
    mut ok: impl FnMut(T, u64),
    mut reject: impl FnMut(Reject),
) -> io::Result<u64> {
    let mut lines = LineReader::new(reader);
    while let Some(line) = lines.next_line()? {
        let (line, result) = match line {
            Line::Bad(n, reason) => (n, Err(reason)),
            Line::Text(_, text) if text.trim().is_empty() => continue,
            Line::Text(n, text) => (n, parse(text)),
        };
        match result {
            Ok(item) => ok(item, line),
            Err(reason) => reject(Reject {
                file: file.to_owned(),
                line,
                reason,
            }),
        }
    }
    Ok(lines.lines())
}

/// One physical line of input: its text, or why it cannot be read.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// Line number and text (without the line end, `\r` or byte-order mark).
    Text(u64, &'a str),
    /// Line number and reason (too long, not UTF-8).
    Bad(u64, String),
}

/// Splits input into lines holding at most [`MAX_LINE_BYTES`] of any line,
/// so memory stays bounded whatever the input.
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    line: u64,
    bytes: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(4096),
            line: 0,
            bytes: 0,
        }
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let Some(too_long) = read_bounded_line(&mut self.reader, &mut self.buf, &mut self.bytes)?
        else {
            return Ok(None);
        };
        self.line += 1;
        if too_long {
            return Ok(Some(Line::Bad(
                self.line,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            )));
        }
        let mut bytes = self.buf.as_slice();
        if self.line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        Ok(Some(match std::str::from_utf8(bytes) {
            Ok(t) => Line::Text(self.line, t),
            Err(e) => Line::Bad(
                self.line,
                format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
            ),
        }))
    }
}

/// Reads one line (without its `\n`) into `buf`, holding at most
/// [`MAX_LINE_BYTES`] of it, and adds the bytes consumed to `consumed`.
/// Returns `None` at end of input, `Some(true)` if the line was too long
/// (and `buf` is then empty), `Some(false)` otherwise.
fn read_bounded_line(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    consumed: &mut u64,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let (used, done) = {
            let avail = match r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (chunk, used, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !too_long {
                if buf.len() + chunk.len() > MAX_LINE_BYTES {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            (used, done)
        };
        r.consume(used);
        *consumed += used as u64;
        if done {
            return Ok(Some(too_long));
        }
    }
}

/// A batch of entries (JSONL lines or CSV rows) of one file, not parsed
/// yet, so that a batch can be parsed in parallel; plus the lines that could
/// not be read at all.
#[derive(Debug, Default)]
pub struct Chunk {
    text: String,
    spans: Vec<(u64, usize, usize)>,
    /// Lines too long, not UTF-8, or an unterminated CSV quote.
    pub rejects: Vec<Reject>,
    /// Bytes of the file consumed up to the end of this chunk.
    pub bytes_read: u64,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Entry `i`: its (first) line number and text.
    pub fn get(&self, i: usize) -> (u64, &str) {
        let (line, a, b) = self.spans[i];
        (line, &self.text[a..b])
    }

    pub fn entries(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// An input file opened for reading in chunks (or any buffered reader of
/// one, e.g. a file uploaded to the workbench).
pub struct Input<R = BufReader<File>> {
    name: String,
    format: InputFormat,
    lines: LineReader<R>,
    parser: RowParser,
    /// A CSV record that goes on over several lines: first line, text.
    partial: Option<(u64, String)>,
    pending: Vec<Reject>,
    done: bool,
}

impl Input {
    /// Opens `path` (format by extension); a CSV file's header row is read
    /// here. A file whose header row is unusable yields one reject (line of
    /// the header) and nothing else.
    pub fn open(path: &Path) -> io::Result<Input> {
        let file = File::open(path)?;
        Input::from_reader(
            BufReader::with_capacity(256 * 1024, file),
            &path.display().to_string(),
        )
    }
}

impl<R: BufRead> Input<R> {
    /// Reads a file named `name` (its format by extension, and a CSV
    /// file's record kind by its name as in [`Input::open`]) from `reader`.
    pub fn from_reader(reader: R, name: &str) -> io::Result<Input<R>> {
        let path = Path::new(name);
        let format = InputFormat::of(path);
        let mut input = Input {
            name: name.to_owned(),
            format,
            lines: LineReader::new(reader),
            parser: RowParser::Json,
            partial: None,
            pending: Vec::new(),
            done: false,
        };
        if format == InputFormat::Csv {
            input.read_header(path)?;
        }
        Ok(input)
    }

    fn read_header(&mut self, path: &Path) -> io::Result<()> {
        let mut chunk = Chunk::default();
        while chunk.is_empty() && chunk.rejects.is_empty() {
            if !self.next_csv_record(&mut chunk)? {
                break;
            }
        }
        let failure = if let Some(r) = chunk.rejects.pop() {
            Some((r.line, r.reason))
        } else if chunk.is_empty() {
            None // an empty file
        } else {
            let (line, row) = chunk.get(0);
            match CsvHeader::parse(row, path) {
                Ok(h) => {
                    self.parser = RowParser::Csv(std::sync::Arc::new(h));
                    None
                }
                Err(e) => Some((line, e)),
            }
        };
        if let Some((line, reason)) = failure {
            self.pending.push(self.reject(
                line,
                format!("header row: {reason}; the file was not imported"),
            ));
            self.done = true;
        }
        Ok(())
    }

    /// The file's name as given, as written in rejects.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// How to parse this file's entries.
    pub fn parser(&self) -> RowParser {
        self.parser.clone()
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.lines.lines()
    }

    fn reject(&self, line: u64, reason: String) -> Reject {
        Reject {
            file: self.name.clone(),
            line,
            reason,
        }
    }

    /// Up to `max_entries` entries or about `max_bytes` of text; `None` at
    /// the end of the file.
    pub fn next_chunk(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
    ) -> io::Result<Option<Chunk>> {
        let mut chunk = Chunk {
            rejects: std::mem::take(&mut self.pending),
            ..Chunk::default()
        };
        while !self.done && chunk.len() < max_entries && chunk.text.len() < max_bytes {
            let more = match self.format {
                InputFormat::Jsonl => self.next_json_line(&mut chunk)?,
                InputFormat::Csv => self.next_csv_record(&mut chunk)?,
            };
            if !more {
                self.done = true;
            }
        }
        chunk.bytes_read = self.lines.bytes();
        if chunk.is_empty() && chunk.rejects.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(chunk))
    }

    /// Reads one line into `chunk`; false at the end of the file.
    fn next_json_line(&mut self, chunk: &mut Chunk) -> io::Result<bool> {
        let bad = match self.lines.next_line()? {
            None => return Ok(false),
            Some(Line::Text(_, t)) if t.trim().is_empty() => None,
            Some(Line::Text(n, t)) => {
                let a = chunk.text.len();
                chunk.text.push_str(t);
                chunk.spans.push((n, a, chunk.text.len()));
                None
            }
            Some(Line::Bad(n, reason)) => Some((n, reason)),
        };
        if let Some((n, reason)) = bad {
            chunk.rejects.push(self.reject(n, reason));
        }
        Ok(true)
    }

    /// Reads one line of CSV into `chunk` (completing a record, or going on
    /// with one that spans lines); false at the end of the file.
    fn next_csv_record(&mut self, chunk: &mut Chunk) -> io::Result<bool> {
        let line = match self.lines.next_line()? {
            None => {
                if let Some((start, _)) = self.partial.take() {
                    let r = self.reject(
                        start,
                        "unterminated quoted field: a `\"` opened on this line is never closed"
                            .into(),
                    );
                    chunk.rejects.push(r);
                }
                return Ok(false);
            }
            Some(Line::Bad(n, reason)) => Err((n, reason)),
            Some(Line::Text(n, t)) => Ok((n, t.to_owned())),
        };
        let (n, text) = match line {
            Ok(x) => x,
            Err((n, reason)) => {
                // A bad line inside a multi-line record spoils the record.
                let (start, reason) = match self.partial.take() {
                    Some((start, _)) => (start, format!("line {n}: {reason}")),
                    None => (n, reason),
                };
                chunk.rejects.push(self.reject(start, reason));
                return Ok(true);
            }
        };
        let (start, record) = match self.partial.take() {
            Some((start, mut so_far)) => {
                so_far.push('\n');
                so_far.push_str(&text);
                (start, so_far)
            }
            None if text.trim().is_empty() => return Ok(true),
            None => (n, text),
        };
        if record.len() > MAX_LINE_BYTES {
            let r = self.reject(
                start,
                format!("record longer than {MAX_LINE_BYTES} bytes (an unclosed `\"`?)"),
            );
            chunk.rejects.push(r);
            return Ok(true);
        }
        // Re-scan the whole record: cheap, records are short.
        if csv_ends_in_quotes(&record, false) {
            self.partial = Some((start, record));
        } else {
            let a = chunk.text.len();
            chunk.text.push_str(&record);
            chunk.spans.push((start, a, chunk.text.len()));
        }
        Ok(true)
    }
}
