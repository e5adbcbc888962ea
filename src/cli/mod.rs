//! The command line: one binary, one subcommand per job (CONTRACT §1).
//!
//! The arguments (clap) are in `args`; this file holds `run`, which hands
//! each subcommand to a small function over the library in the module of
//! its concern; none of them holds logic the service would need.

mod args;
mod batch;
mod codes;
mod export;
mod fetch;
mod grid;
mod keys;
mod service;
mod shop;
mod tokens;
mod verify;

pub use args::{
    Cli, CodesAction, Command, CommonArgs, Format, GenArgs, GenFormatArg, GridAction,
    InspectorsAction, KeysAction, MerchantsAction, PlanArgs, RefreshArgs, TokensAction,
};

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo { listen, data_dir } => service::demo(&listen, &data_dir).await,
        Command::Serve {
            common,
            listen,
            public_base_url,
            print_config,
        } => service::serve(common, listen, public_base_url, print_config).await,
        Command::Refresh(args) => batch::refresh(args).await,
        Command::Gen(args) => batch::gen(args),
        Command::Keys { action, common } => keys::run(action, &common.settings()?),
        Command::Codes { action } => codes::run(action).await,
        Command::Tokens { action } => tokens::run(action).await,
        Command::Merchants { action } => shop::run(action).await,
        Command::Inspectors { action } => grid::inspectors(action).await,
        Command::Grid { action } => grid::grid(action).await,
        Command::Plan(args) => grid::plan(args).await,
        Command::Export(args) => export::export(args).await,
    }
}
