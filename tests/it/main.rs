//! Integration tests: the real server on a free port, over HTTP, and the real
//! binary where the command line is the contract.

mod admin;
mod cli;
mod demo;
mod helpers;
mod regulator;
mod scan;
