//! The whole-fleet pipeline over typed values: validate, plan and render every cluster.
//!
//! Clusters render in parallel (rayon); results are keyed by cluster name, so the output
//! never depends on the number of threads or their timing.

use std::collections::BTreeMap;

use jiff::civil::Date;
use rayon::prelude::*;

use crate::diagnostics::Diagnostics;
use crate::model::{Fleet, Sources};
use crate::plan;
use crate::render;
use crate::templates::{self, Templates};
use crate::tree::RenderedTree;
use crate::validate;

/// Why a fleet could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inputs have errors; the diagnostics list every one.
    #[error("the fleet has {} error(s)", .0.errors().count())]
    Invalid(Diagnostics),
    #[error("cluster `{0}` is not in the fleet")]
    UnknownCluster(String, Option<String>),
    #[error(transparent)]
    Template(#[from] templates::Error),
    #[error(transparent)]
    Render(#[from] render::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A fleet that passed validation, with its compiled templates and its warnings.
pub struct Checked {
    pub fleet: Fleet,
    pub templates: Templates,
    pub warnings: Diagnostics,
}

/// Reads, validates and compiles a fleet; errors stop here with every problem listed.
pub fn check(sources: &Sources, today: Date) -> Result<Checked> {
    let fleet = Fleet::from_sources(sources).map_err(Error::Invalid)?;
    let diags = validate::validate(&fleet, today);
    if diags.has_errors() {
        return Err(Error::Invalid(diags));
    }
    let templates = Templates::new(&fleet)?;
    Ok(Checked {
        fleet,
        templates,
        warnings: diags,
    })
}

/// The cluster names to render: `selected`, or every cluster when empty.
pub fn select(fleet: &Fleet, selected: &[String]) -> Result<Vec<String>> {
    if selected.is_empty() {
        return Ok(fleet.clusters.keys().cloned().collect());
    }
    let known: Vec<String> = fleet.clusters.keys().cloned().collect();
    let mut out = Vec::new();
    for name in selected {
        if !fleet.clusters.contains_key(name) {
            let hint =
                crate::yaml::did_you_mean(name, &known).map(|s| format!("did you mean `{s}`?"));
            return Err(Error::UnknownCluster(name.clone(), hint));
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Renders one cluster.
pub fn render_cluster(checked: &Checked, name: &str) -> Result<RenderedTree> {
    let plan = plan::plan(&checked.fleet, &checked.templates, name).map_err(render::Error::from)?;
    Ok(render::render(&plan, &checked.templates)?)
}

/// [`render_cluster`] without the lock file ([`render::render_files`]), for comparisons;
/// the templates' output is parsed through `memo`, which the other side of the comparison
/// shares (see [`crate::yaml::Memo`]).
pub fn render_cluster_files(
    checked: &Checked,
    name: &str,
    memo: &mut crate::yaml::Memo,
) -> Result<RenderedTree> {
    let plan = plan::plan_remembering(&checked.fleet, &checked.templates, name, memo)
        .map_err(render::Error::from)?;
    Ok(render::render_files(&plan, &checked.templates, Some(memo))?)
}

/// Renders the named clusters in parallel; the first error (in name order) wins.
pub fn render_all(checked: &Checked, names: &[String]) -> Result<BTreeMap<String, RenderedTree>> {
    let results: Vec<(String, Result<RenderedTree>)> = names
        .par_iter()
        .map(|n| (n.clone(), render_cluster(checked, n)))
        .collect();
    let mut out = BTreeMap::new();
    for (name, result) in results {
        out.insert(name, result?);
    }
    Ok(out)
}
