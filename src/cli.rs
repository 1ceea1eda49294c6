//! The command line: one `*Args` struct per command (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  done; nothing differs (in sync)
  1  differences found (render --check, check)
  2  bad input: usage, invalid specs, blueprints or templates
  3  the environment failed (I/O, git, kube); CI may retry";

/// Render one Git repository per client cluster from shared blueprints, and watch the fleet.
#[derive(Debug, Parser)]
#[command(name = "kubeprint", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v: info, -vv: debug); `KUBEPRINT_LOG` sets a filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to colour the output; `NO_COLOR` turns it off under `auto`.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Where the blueprint repository is, and the date the support window is computed at.
#[derive(Debug, Args, Clone)]
pub struct FleetArgs {
    /// The blueprint repository (a directory with `fleet.yaml`).
    #[arg(long, default_value = ".", env = "KUBEPRINT_FLEET")]
    pub fleet: PathBuf,
    /// The date versions are checked against (YYYY-MM-DD); default today.
    #[arg(long, value_name = "DATE")]
    pub today: Option<jiff::civil::Date>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every cluster spec, tier, blueprint and the catalog against the offering.
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),
    /// Render each cluster's repository tree (into ./rendered/ by default).
    #[command(after_help = EXIT_CODES)]
    Render(RenderArgs),
    /// Show a merged value of a cluster and the file and line it came from.
    #[command(after_help = EXIT_CODES)]
    Explain(ExplainArgs),
    /// Print the JSON schema of the cluster spec (for editors: yaml-language-server).
    Schema(SchemaArgs),
    /// Check a rendered tree against the upstream schemas (CRDs, chart values, core objects).
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Compare every cluster (Argo CD applications, nodes, versions) with what was rendered, once.
    #[command(after_help = STATUS_EXIT_CODES)]
    Status(StatusArgs),
    /// Watch every cluster and serve drift as Prometheus metrics and JSON.
    Watch(WatchArgs),
}

/// `kubeprint check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A rendered cluster tree, or a directory of them (default: `rendered`).
    #[arg(default_value = "rendered")]
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

const STATUS_EXIT_CODES: &str = "\
Exit codes:
  0  every cluster is in sync
  1  drift found; a cluster that could not be observed (unknown) counts as drift
  2  bad input: usage, invalid specs, unknown cluster, unreadable rendered tree
  3  the command could not run: no readable kubeconfig, no runtime";

/// Which clusters to observe, how to reach them, and what they should run.
#[derive(Debug, Args, Clone)]
pub struct ObserveArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Observe only these clusters (repeatable); default every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// Read the desired trees from DIR/<cluster>/ instead of rendering in memory; a git
    /// work tree there also gives the last published commit and hand edits.
    #[arg(long, value_name = "DIR")]
    pub rendered: Option<PathBuf>,
    /// The kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The context to use instead of the spec's `kubeContext` (one `--cluster` only).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Observations older than this many seconds make a cluster unknown.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub stale_after: u64,
}

/// How `status` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StatusFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

/// `kubeprint status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub observe: ObserveArgs,
    /// How long to wait for one cluster, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// How many clusters to read at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: StatusFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `kubeprint watch`
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub observe: ObserveArgs,
    /// Where `/metrics`, `/status` and `/healthz` are served.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: std::net::SocketAddr,
    /// Seconds between liveness probes of each cluster's API.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub probe_interval: u64,
    /// `timeoutSeconds` of each watch request.
    #[arg(long, value_name = "SECONDS", default_value_t = 290)]
    pub watch_timeout: u32,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

/// `kubeprint validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `kubeprint render`
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// The directory the cluster trees are written to (one sub-directory per cluster).
    #[arg(long, default_value = "rendered")]
    pub out: PathBuf,
    /// Render only these clusters (repeatable); default every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// Write nothing: compare with what is on disk, exit 1 and name the files that differ.
    #[arg(long)]
    pub check: bool,
    /// Threads to render with (default: one per core).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `kubeprint explain`
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The cluster.
    pub cluster: String,
    /// A dotted path: `values.<component>.<key>...` or `settings.<key>...`.
    pub path: String,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `kubeprint schema`
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema: the cluster spec (default), a tier, a blueprint, the catalog or fleet.yaml.
    #[arg(value_enum, default_value_t = SchemaKind::Cluster)]
    pub kind: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Cluster,
    Tier,
    Blueprint,
    Catalog,
    Fleet,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
