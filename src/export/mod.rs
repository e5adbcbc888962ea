//! Open data (CONTRACT §8): `merchants.jsonl.gz` (each merchant's public
//! projection), `merchants.csv` (the same, one row each), `sampling.csv`
//! (every sampling result) and `index.json` (when, and each file's SHA-256,
//! bytes and rows), written by `yisaozhi export --out DIR` and served by
//! `web::open_data`.
//!
//! Streamed: the store is read a page of [`PAGE`] merchants at a time while
//! writer threads serialise, compress and hash the pages before; at most
//! two pages wait between a reader and its writer, so memory does not grow
//! with the data (see [`export`]). Each file is written under a temporary
//! name and renamed when complete, `index.json` last.
//!
//! Published (`published`): each export in a directory of its own, served
//! once complete through the symlink `current`, switched in one step.

mod index;
mod published;
mod rows;
mod write;

pub use self::index::{read_index, FileEntry, Index, INDEX_JSON};
pub use self::published::{current, lock_exclusive, ExportLock, Published, CURRENT};
pub use self::rows::{MERCHANT_COLUMNS, SAMPLING_COLUMNS};
pub use self::write::{
    export, path_of, FILES, MERCHANTS_CSV, MERCHANTS_JSONL_GZ, PAGE, SAMPLING_CSV,
};
