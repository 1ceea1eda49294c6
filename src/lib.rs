//! kubeprint: renders one Git repository per client cluster (Talos machine configs, Argo CD
//! Applications, Helm values, policies and tenants) from shared blueprints and overlays,
//! publishes them, and reports where the fleet drifts from what was rendered.
//!
//! This crate holds the edges, the parts that touch the world: [`load`] (a directory or a
//! git revision in), [`write`] (atomic trees out), [`git`] and [`publish`], [`observe`]
//! (Kubernetes), [`serve`] (HTTP). The pure stages are in `kubeprint-core`, re-exported
//! here under their own names so that `kubeprint::render` is the render.

pub use kubeprint_core::{
    check, diagnostics, diff, digest, drift, fleet, generate, hydrate, lock, metrics, model, plan,
    render, secret, sops, talos, templates, tree, validate, yaml,
};

pub mod git;
pub mod helm;
pub mod load;
pub mod observe;
pub mod publish;
pub mod serve;
pub mod write;
