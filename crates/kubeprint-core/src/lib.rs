//! kubeprint's pure stages: values in, values out.
//!
//! The pipeline, in the order modules may depend on each other (a module uses only the
//! ones before it): [`yaml`] and [`model`] (the typed fleet with source locations) ←
//! [`validate`] and [`templates`] ← [`plan`] (the overlay merge with origins) ← [`render`]
//! and [`lock`] ← [`fleet`] (the whole-fleet pipeline) ← [`talos`] (one node's complete
//! config). Beside it: [`check`] (rendered trees against upstream schemas), [`diff`] (two
//! trees), [`drift`] (desired against observed) and [`metrics`] (findings as Prometheus
//! text), [`sops`] (SOPS files with age).
//!
//! Nothing here touches the file system, the network, a clock, the environment or
//! hash-map order, and randomness is passed in: this crate does not depend on tokio, git2,
//! kube or axum, and `clippy.toml` disallows the rest. The edges live in the `kubeprint`
//! crate.

pub mod check;
pub mod diagnostics;
pub mod diff;
pub mod digest;
pub mod drift;
pub mod fleet;
pub mod generate;
pub mod hydrate;
pub mod lock;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod render;
pub mod secret;
pub mod sops;
pub mod talos;
pub mod templates;
pub mod tree;
pub mod validate;
pub mod yaml;

/// A seeded generator for tests: the same keys on every run.
#[cfg(test)]
fn test_rng() -> rand::rngs::StdRng {
    <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0x6b75_6265)
}
