//! `kubeprint diff`: render two revisions of the blueprints and compare every cluster.

use super::{CommandError, Printer, Result};
use crate::cli::DiffArgs;

pub fn run(_args: DiffArgs, _printer: &Printer) -> Result {
    Err(CommandError::bad_input(anyhow::anyhow!("not yet"), None))
}
