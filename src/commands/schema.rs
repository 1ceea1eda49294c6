//! `kubeprint schema`: the JSON schema of the input files, generated from the types.

use kubeprint::model::{ClusterSpec, ComponentSpec, FleetSettings, Tier, catalog::Catalog};

use super::{ExitStatus, Printer, Result};
use crate::cli::{SchemaArgs, SchemaKind};

pub fn run(args: SchemaArgs, printer: &Printer) -> Result {
    let schema = match args.kind {
        SchemaKind::Cluster => schemars::schema_for!(ClusterSpec),
        SchemaKind::Tier => schemars::schema_for!(Tier),
        SchemaKind::Blueprint => schemars::schema_for!(ComponentSpec),
        SchemaKind::Catalog => schemars::schema_for!(Catalog),
        SchemaKind::Fleet => schemars::schema_for!(FleetSettings),
    };
    printer.out(&serde_json::to_string_pretty(&schema).expect("schemas serialise"));
    Ok(ExitStatus::Success)
}
