//! The shop's side (CONTRACT §6): a merchant's own access with one-time
//! activation codes (`access`), what it submits for review (`submissions`,
//! `reviews`) and the quality commitment it signs (`commitment`). No HTTP
//! here: `web::shop*` calls in. Everything is kept in `store::documents`
//! collections and, once accepted, as records graded by the usual import.

pub mod access;
pub mod commitment;
pub mod review_queue;
pub mod reviews;
pub mod submissions;
