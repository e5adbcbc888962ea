//! `index.json` and the writer that measures each file as it is written
//! (SHA-256 and bytes), so no file is read back.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The index's file name.
pub const INDEX_JSON: &str = "index.json";

/// `index.json`: when the files were made and what each holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub generated_at: Timestamp,
    pub files: Vec<FileEntry>,
}

/// One file of the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    /// Lowercase hex of the file's SHA-256 (of its bytes as stored:
    /// compressed for `.gz`).
    pub sha256: String,
    pub bytes: u64,
    /// Data rows (CSV: without the header; JSONL: lines).
    pub rows: u64,
}

impl Index {
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// A file being written under a temporary name beside its final one,
/// hashed and counted on the way.
pub struct Measured {
    file: io::BufWriter<std::fs::File>,
    hash: Sha256,
    bytes: u64,
    temp: PathBuf,
    path: PathBuf,
}

impl Measured {
    pub fn create(dir: &Path, name: &str) -> io::Result<Measured> {
        let path = dir.join(name);
        let temp = dir.join(format!(".{name}.tmp"));
        let file = crate::files::create_file(&temp)?;
        Ok(Measured {
            file: io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
            temp,
            path,
        })
    }

    /// Flushes and syncs the file and gives it its name (replacing an
    /// older one); its entry with `rows`.
    pub fn finish(mut self, rows: u64) -> io::Result<FileEntry> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        std::fs::rename(&self.temp, &self.path)?;
        Ok(FileEntry {
            name: self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: data_encoding::HEXLOWER.encode(&self.hash.finalize()),
            bytes: self.bytes,
            rows,
        })
    }
}

impl Write for Measured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `index` as `dir/index.json` (through a temporary file and a
/// rename: a reader sees the old index or the new one).
pub fn write_index(dir: &Path, index: &Index) -> io::Result<FileEntry> {
    let mut out = Measured::create(dir, INDEX_JSON)?;
    serde_json::to_writer_pretty(&mut out, index)?;
    out.write_all(b"\n")?;
    out.finish(index.files.len() as u64)
}

/// Reads `dir/index.json`.
pub fn read_index(dir: &Path) -> io::Result<Index> {
    let text = std::fs::read(dir.join(INDEX_JSON))?;
    serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
