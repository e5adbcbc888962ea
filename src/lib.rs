//! yisaozhi (一扫知): merchants' credit grades, computed by a batch job from
//! regulators' records, served to consumers who scan a signed QR code.
//!
//! See `ARCHITECTURE.md` for the map of modules and the data flow.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod dashboard;
pub mod demo;
pub mod demo_data;
pub mod export;
pub mod feed;
pub mod files;
pub mod gen;
pub mod grading;
pub mod grid;
pub mod issuing;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod progress;
pub mod records;
pub mod redact;
pub mod refresh;
pub mod render;
pub mod roster;
pub mod scan;
pub mod settings;
pub mod shop;
pub mod startup;
pub mod status_list;
pub mod store;
pub mod tips;
pub mod web;
