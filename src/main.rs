//! The `kubeprint` binary: parse the command line, set up logging, run, map to an exit code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let printer = commands::Printer::new(&cli.global);
    init_logging(&cli.global);
    let status = match commands::run(cli.command, &printer) {
        Ok(status) => status,
        Err(err) => {
            printer.report(&err);
            err.status()
        }
    };
    ExitCode::from(status as u8)
}

fn init_logging(global: &cli::GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,kubeprint=info",
        _ => "warn,kubeprint=debug",
    };
    let filter = std::env::var("KUBEPRINT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
