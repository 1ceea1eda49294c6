//! One file per command; shared reporting: the printer, exit statuses, error classes.

mod check;
mod diff;
mod explain;
mod hydrate;
mod publish;
mod render;
mod schema;
mod status;
mod talos;
mod validate;
mod watch;

use std::io::{IsTerminal, Write};

use kubeprint::diagnostics::{Diagnostics, Severity};
use kubeprint::fleet;
use owo_colors::OwoColorize;

use crate::cli::{ColorChoice, Command, FleetArgs, GlobalArgs};

/// The process exit status; the same meanings for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; nothing differs.
    Success = 0,
    /// Differences (or drift) found.
    Differences = 1,
    /// Bad input: usage, specs, blueprints, templates.
    BadInput = 2,
    /// The environment failed: I/O, git, kube. Worth a retry.
    Environment = 3,
}

/// A failure, classified once, with what to do about it.
#[derive(Debug)]
pub struct CommandError {
    pub status: ExitStatus,
    pub error: anyhow::Error,
    pub hint: Option<String>,
    /// Diagnostics to print before the error line.
    pub diagnostics: Option<Diagnostics>,
}

impl CommandError {
    pub fn bad_input(error: impl Into<anyhow::Error>, hint: Option<String>) -> Self {
        CommandError {
            status: ExitStatus::BadInput,
            error: error.into(),
            hint,
            diagnostics: None,
        }
    }

    pub fn environment(error: impl Into<anyhow::Error>) -> Self {
        CommandError {
            status: ExitStatus::Environment,
            error: error.into(),
            hint: Some("this may pass on a retry; check permissions, disk space and paths".into()),
            diagnostics: None,
        }
    }

    pub fn status(&self) -> ExitStatus {
        self.status
    }
}

impl From<fleet::Error> for CommandError {
    fn from(err: fleet::Error) -> Self {
        match err {
            fleet::Error::Invalid(diags) => CommandError {
                status: ExitStatus::BadInput,
                error: anyhow::anyhow!(
                    "the fleet has {} error(s); nothing was written",
                    diags.errors().count()
                ),
                hint: Some("fix the errors above, then run `kubeprint validate`".into()),
                diagnostics: Some(diags),
            },
            fleet::Error::UnknownCluster(name, hint) => CommandError::bad_input(
                anyhow::anyhow!("cluster `{name}` is not in the fleet"),
                hint,
            ),
            other => CommandError::bad_input(
                other,
                Some("fix the blueprint or template named above; nothing was written".into()),
            ),
        }
    }
}

impl From<kubeprint::load::Error> for CommandError {
    fn from(err: kubeprint::load::Error) -> Self {
        if err.is_user_error() {
            let hint = err.hint();
            CommandError::bad_input(err, hint)
        } else {
            CommandError::environment(err)
        }
    }
}

impl From<kubeprint::write::Error> for CommandError {
    fn from(err: kubeprint::write::Error) -> Self {
        CommandError::environment(err)
    }
}

pub type Result<T = ExitStatus, E = CommandError> = std::result::Result<T, E>;

/// Where and how things are printed: data to stdout, everything else to stderr.
pub struct Printer {
    pub color: bool,
    pub quiet: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && std::io::stderr().is_terminal(),
        };
        Printer {
            color,
            quiet: global.quiet,
        }
    }

    /// A line of data on stdout.
    pub fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }

    /// A status line on stderr (suppressed by `-q`).
    pub fn status(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn paint(&self, word: &str, severity: Severity) -> String {
        match (self.color, severity) {
            (false, _) => word.to_string(),
            (true, Severity::Error) => word.red().bold().to_string(),
            (true, Severity::Warning) => word.yellow().bold().to_string(),
        }
    }

    /// Prints diagnostics on stderr, then a count.
    pub fn diagnostics(&self, diags: &Diagnostics) {
        for d in &diags.items {
            if self.quiet && d.severity == Severity::Warning {
                continue;
            }
            let word = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            eprintln!(
                "{}: {}: {}",
                self.paint(word, d.severity),
                d.location,
                d.message
            );
            if let Some(hint) = &d.hint {
                eprintln!("  hint: {hint}");
            }
        }
    }

    /// Prints a failure: `error:`, each cause, then the hint.
    pub fn report(&self, err: &CommandError) {
        if let Some(diags) = &err.diagnostics {
            self.diagnostics(diags);
        }
        eprintln!("{}: {}", self.paint("error", Severity::Error), err.error);
        for cause in err.error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        if let Some(hint) = &err.hint {
            eprintln!("\nhint: {hint}");
        }
    }
}

/// Runs one command.
pub fn run(command: Command, printer: &Printer) -> Result {
    match command {
        Command::Validate(args) => validate::run(args, printer),
        Command::Render(args) => render::run(args, printer),
        Command::Explain(args) => explain::run(args, printer),
        Command::Schema(args) => schema::run(args, printer),
        Command::Talos(args) => talos::run(args, printer),
        Command::Check(args) => check::run(args, printer),
        Command::Status(args) => status::run(args, printer),
        Command::Watch(args) => watch::run(args, printer),
        Command::Publish(args) => publish::run(args, printer),
        Command::Diff(args) => diff::run(args, printer),
        Command::Hydrate(args) => hydrate::run(args, printer),
    }
}

/// The date the support window is computed at: `--today`, or the system's date.
pub fn today(args: &FleetArgs) -> jiff::civil::Date {
    args.today
        .unwrap_or_else(|| jiff::ZonedDateTime::now().date())
}

/// Loads, validates and compiles the fleet of `args`, printing warnings.
pub fn load_checked(args: &FleetArgs, printer: &Printer) -> Result<fleet::Checked> {
    let sources = kubeprint::load::load_dir(&args.fleet)?;
    let checked = fleet::check(&sources, today(args))?;
    printer.diagnostics(&checked.warnings);
    Ok(checked)
}
