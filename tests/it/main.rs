//! Integration tests: the real server on a free port, over HTTP, and the real
//! binary where the command line is the contract.

mod admin;
mod admin_input;
mod auth_limits;
mod browser;
mod cli;
mod demo;
mod deploy;
mod files;
mod graceful;
mod helpers;
mod hostile;
mod http;
mod ledger;
mod ops;
mod privacy;
mod raw;
mod redis_faults;
mod redis_helpers;
mod refresh;
mod regulator;
mod scan;
mod scope;
mod shard;
mod status_list;
mod store;
