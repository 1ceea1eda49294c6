//! The `kubeprint` binary: parse the command line, set up logging, run, map to an exit code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: rendering allocates many small strings and maps; glibc's malloc and free
/// took about a sixth of a large render's CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let printer = commands::Printer::new(&cli.global);
    let json_logs =
        matches!(&cli.command, cli::Command::Watch(a) if a.log_format == cli::LogFormat::Json);
    init_logging(&cli.global, json_logs);
    let status = match commands::run(cli.command, &printer) {
        Ok(status) => status,
        Err(err) => {
            printer.report(&err);
            err.status()
        }
    };
    ExitCode::from(status as u8)
}

fn init_logging(global: &cli::GlobalArgs, json: bool) {
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
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if json { fmt.json().init() } else { fmt.init() }
}
