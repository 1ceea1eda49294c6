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
    /// Talos: the encrypted secrets bundle of a cluster, and a node's complete machine config.
    #[command(after_help = EXIT_CODES)]
    Talos(TalosArgs),
    /// Check a rendered tree against the upstream schemas (CRDs, chart values, core objects).
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Compare every cluster (Argo CD applications, nodes, versions) with what was rendered, once.
    #[command(after_help = STATUS_EXIT_CODES)]
    Status(StatusArgs),
    /// Watch every cluster and serve drift as Prometheus metrics and JSON.
    Watch(WatchArgs),
    /// Commit each cluster's rendered tree to its Git repository and push (only what changed).
    #[command(after_help = PUBLISH_EXIT_CODES)]
    Publish(PublishArgs),
    /// Show what a blueprint change does to every cluster: render two revisions and compare.
    #[command(after_help = EXIT_CODES)]
    Diff(DiffArgs),
    /// Render every Application through its real Helm chart (offline, cached) and write
    /// each cluster's objects, one file per object.
    #[command(after_help = HYDRATE_EXIT_CODES)]
    Hydrate(HydrateArgs),
}

const HYDRATE_EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  check --hydrate: findings
  2  bad input: specs, a chart archive whose digest is not the pinned one, a bad archive,
     a chart that fails to template, a values file or ref that does not resolve; nothing written
  3  the environment failed: no helm, a chart repository unreachable, I/O; CI may retry";

/// How charts are hydrated: the helm binary, the cache, the parallelism.
#[derive(Debug, Args, Clone)]
pub struct HydrationArgs {
    /// The helm binary (default: `helm` on PATH).
    #[arg(long, value_name = "PATH", env = "KUBEPRINT_HELM")]
    pub helm: Option<PathBuf>,
    /// The cache of chart archives (by digest) and hydrated output (by the content of the
    /// inputs); default `$XDG_CACHE_HOME/kubeprint` or `~/.cache/kubeprint`.
    #[arg(long, value_name = "DIR", env = "KUBEPRINT_CHART_CACHE")]
    pub chart_cache: Option<PathBuf>,
    /// helm processes at a time (default: one per core).
    #[arg(long = "helm-jobs", short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

/// `kubeprint hydrate`
#[derive(Debug, Args)]
pub struct HydrateArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Hydrate only these clusters (repeatable); default every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// Where each cluster's objects are written: `DIR/<cluster>/<app>/<kind>-<namespace>-<name>.yaml`,
    /// and the Secrets the stack expects in `DIR/expected-secrets.yaml`.
    #[arg(long, default_value = "hydrated")]
    pub out: PathBuf,
    #[command(flatten)]
    pub hydration: HydrationArgs,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
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
    /// Render the fleet (`--fleet`) in memory, hydrate every Application with the real helm
    /// and check what a real apply and sync would check (instead of reading DIR).
    #[arg(long, conflicts_with = "dir")]
    pub hydrate: bool,
    /// With `--hydrate`: the blueprint repository and date.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// With `--hydrate`: check only these clusters (repeatable).
    #[arg(long = "cluster", value_name = "NAME", requires = "hydrate")]
    pub clusters: Vec<String>,
    #[command(flatten)]
    pub hydration: HydrationArgs,
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
    /// How many clusters to read at once (1 to 1,024: each is a connection and its TLS
    /// session).
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CONCURRENCY))]
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
    /// Series per application and per node on `/metrics`: `drift` (for clusters in drift
    /// only), `apps` and/or `nodes` (for every cluster), or `none`. The cluster-level
    /// series and counts are always there.
    #[arg(long, value_name = "LIST", default_value = "drift", value_parser = parse_metrics_detail)]
    pub metrics_detail: kubeprint::metrics::Detail,
    /// Split the fleet into N shards by a stable hash of the cluster name; each replica
    /// watches the shards whose Lease it holds in the management cluster (0: no sharding,
    /// this process watches every cluster).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub shards: u32,
    /// This replica's identity in the Leases (default: the pod's name).
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub replica_id: Option<String>,
    /// The namespace of the Leases in the management cluster (default: the pod's namespace).
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "POD_NAMESPACE",
        default_value = "kubeprint"
    )]
    pub lease_namespace: String,
    /// The kubeconfig context of the management cluster that holds the Leases (default: the
    /// current context, or the pod's own cluster).
    #[arg(long, value_name = "NAME")]
    pub lease_context: Option<String>,
    /// `leaseDurationSeconds` of the shard Leases: a replica that stops renewing loses its
    /// shards to the others after this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub lease_duration: u64,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

const PUBLISH_EXIT_CODES: &str = "\
Exit codes:
  0  every cluster published or already up to date
  1  a cluster's repository was edited by hand: refused (see --force)
  2  bad input: usage, invalid specs, blueprints or templates
  3  a remote failed (unreachable, authentication, kept moving); a re-run finishes the rest

Credentials: an SSH agent, `--ssh-key` (`KUBEPRINT_SSH_KEY`, passphrase in
`KUBEPRINT_SSH_KEY_PASSPHRASE`), an HTTPS token in `KUBEPRINT_GIT_TOKEN` (user name from
the URL or `KUBEPRINT_GIT_USERNAME`, default `x-access-token`), or git's credential helper.";

/// `kubeprint publish`
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Publish only these clusters (repeatable); default every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// Push to this URL instead of each spec's `repo.url`; `{cluster}` is replaced by the
    /// cluster's name (e.g. `file:///srv/git/{cluster}.git`).
    #[arg(long, value_name = "URL", env = "KUBEPRINT_REMOTE_TEMPLATE")]
    pub remote_template: Option<String>,
    /// Where the bare cache repositories live (one per cluster; fetched on each run).
    #[arg(long, value_name = "DIR", default_value = ".kubeprint/cache")]
    pub cache: PathBuf,
    /// Commit author, `Name <email>`.
    #[arg(long, value_name = "IDENTITY", env = "KUBEPRINT_GIT_AUTHOR")]
    pub author: Option<String>,
    /// Committer, `Name <email>` (default: the author).
    #[arg(long, value_name = "IDENTITY", env = "KUBEPRINT_GIT_COMMITTER")]
    pub committer: Option<String>,
    /// A private key file for SSH remotes.
    #[arg(
        long,
        value_name = "FILE",
        env = "KUBEPRINT_SSH_KEY",
        hide_env_values = true
    )]
    pub ssh_key: Option<PathBuf>,
    /// Overwrite hand edits in a cluster's repository (with a new commit; history is kept).
    #[arg(long)]
    pub force: bool,
    /// Clusters published at the same time (connections to remotes), 1 to 256.
    #[arg(long, short = 'j', default_value_t = kubeprint::publish::DEFAULT_JOBS, value_parser = jobs())]
    pub jobs: usize,
    /// Pushes tried per cluster when someone else pushes in between.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Output format of the per-cluster results.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// How `diff` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DiffOutput {
    /// For a terminal (coloured there).
    #[default]
    Text,
    /// For a pull-request comment.
    Markdown,
    Json,
}

/// `kubeprint diff`
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// The revision to compare from (a commit, branch or tag of the blueprint repository).
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The revision to compare to; default the working directory (`--fleet`).
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Compare only these clusters (repeatable); default every cluster.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: DiffOutput,
    /// Markdown only: the most characters of the comment before details are cut.
    #[arg(long, value_name = "CHARS", default_value_t = 60_000)]
    pub max_chars: usize,
    /// Compare the hydrated objects (`helm template` of every Application) instead of the
    /// rendered files, for the Applications whose chart or values changed.
    #[arg(long)]
    pub hydrate: bool,
    #[command(flatten)]
    pub hydration: HydrationArgs,
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
    /// Threads to render with, 1 to 256 (default: one per core).
    #[arg(long, short = 'j', value_parser = jobs())]
    pub jobs: Option<usize>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// The most threads or connections `-j` may ask for: each is a thread with its stack, and
/// no machine or git server is served faster by more.
pub const MAX_JOBS: u64 = 256;

/// The most clusters `status --concurrency` reads at once.
pub const MAX_CONCURRENCY: u64 = 1024;

/// `-j N`: a number from 1 to [`MAX_JOBS`]; anything else is a usage error (exit 2).
fn jobs() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=MAX_JOBS)
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

/// `kubeprint talos`
#[derive(Debug, Args)]
pub struct TalosArgs {
    #[command(subcommand)]
    pub command: TalosCommand,
}

#[derive(Debug, Subcommand)]
pub enum TalosCommand {
    /// Create, rotate or re-encrypt a cluster's secrets bundle
    /// (`overlays/clusters/<cluster>/talos-secrets.sops.yaml`).
    #[command(subcommand)]
    Secrets(TalosSecretsCommand),
    /// Print the complete, applyable machine config of one node (base + secrets + node patch)
    /// on stdout; writes nothing. Pipe it to `talosctl apply-config --file /dev/stdin`.
    /// A control plane's also carries the bootstrap (`talos/bootstrap.yaml`: Cilium and Argo
    /// CD, hydrated with helm from the vendored `charts/`, and the root Application).
    #[command(after_help = EXIT_CODES)]
    Config(TalosConfigArgs),
}

#[derive(Debug, Subcommand)]
pub enum TalosSecretsCommand {
    /// Generate a cluster's secrets bundle, encrypted to fleet.yaml `ageRecipients`.
    /// Refuses when the bundle exists, unless `--force`.
    #[command(after_help = EXIT_CODES)]
    Create(TalosSecretsCreateArgs),
    /// Re-encrypt a cluster's bundle to the current `ageRecipients` without changing a secret.
    #[command(after_help = EXIT_CODES)]
    Rekey(TalosSecretsRekeyArgs),
}

/// `kubeprint talos secrets create`
#[derive(Debug, Args)]
pub struct TalosSecretsCreateArgs {
    /// The cluster.
    pub cluster: String,
    /// Replace an existing bundle with new secrets: every CA, key and token changes, and
    /// running nodes stop trusting the new configs until they are re-installed or rotated.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// `kubeprint talos secrets rekey`
#[derive(Debug, Args)]
pub struct TalosSecretsRekeyArgs {
    /// The clusters (default: every cluster that has a bundle).
    pub clusters: Vec<String>,
    /// An age identity file that opens the current bundles.
    #[arg(long, env = "SOPS_AGE_KEY_FILE", value_name = "FILE")]
    pub identity: PathBuf,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// `kubeprint talos config`
#[derive(Debug, Args)]
pub struct TalosConfigArgs {
    /// The cluster.
    pub cluster: String,
    /// The node (its hostname).
    pub node: String,
    /// An age identity file (`age-keygen` output) that opens the cluster's bundle.
    #[arg(long, env = "SOPS_AGE_KEY_FILE", value_name = "FILE")]
    pub identity: PathBuf,
    /// How a control plane's bootstrap (Cilium, Argo CD) is hydrated: as `kubeprint hydrate`.
    #[command(flatten)]
    pub hydration: HydrationArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

fn parse_metrics_detail(text: &str) -> Result<kubeprint::metrics::Detail, String> {
    kubeprint::metrics::Detail::parse(text)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
