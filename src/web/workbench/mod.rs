//! The regulator's workbench in the browser (`/admin/…`): server-rendered
//! pages (maud, Chinese, no script, no external asset, usable at 390 px)
//! behind staff sessions opened with a regulator token. Every action is a
//! form carrying the session's `csrf` and runs the JSON API's code
//! (`web::actions`): the same scope checks and audit entries.
//!
//! For other pages behind a session: take `staff::Staff` as an
//! extractor (no session: 303 to the login page), render with
//! `layout::page`, put `layout::csrf_field` in every form that changes
//! anything and read it with `forms::read_form`, and answer failures as
//! [`PageError`].

pub mod access;
pub mod act;
pub mod audit;
mod charts;
pub mod cookies;
pub mod dashboard;
pub mod dashboard_data;
pub mod errors;
pub mod forms;
pub mod import;
pub mod layout;
pub mod ledger;
pub mod login;
pub mod merchant;
pub mod patrols;
pub mod plans;
pub mod reviews;
pub mod search;
pub mod session;
pub mod staff;
mod timeline;
pub mod tips;

pub use errors::PageError;
