//! kubeprint: renders one Git repository per client cluster (Talos machine configs, Argo CD
//! Applications, Helm values, policies and tenants) from shared blueprints and overlays,
//! publishes them, and reports where the fleet drifts from what was rendered.
//!
//! The pipeline: [`load`] → [`model::Fleet`] → [`validate`] → [`plan`] → [`render`] →
//! [`write`] (or diff, publish). Pure stages take values and return values; only the
//! edges (`load`, `write`) touch the file system.

pub mod check;
pub mod diagnostics;
pub mod diff;
pub mod digest;
pub mod drift;
pub mod fleet;
pub mod generate;
pub mod git;
pub mod load;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod plan;
pub mod publish;
pub mod render;
pub mod secret;
pub mod serve;
pub mod sops;
pub mod talos;
pub mod tree;
pub mod validate;
pub mod write;
pub mod yaml;

#[cfg(test)]
mod purity;
