//! kubeprint's integration tests: one test binary, so that git2, kube and k8s-openapi are
//! linked once. Each module tests what crosses an edge (the binary, git servers, the API
//! double, the real `sops`, `age` and `helm`); pure logic is tested in kubeprint-core.

// Tests may panic on the spot: a failed set-up is a failed test.
#![allow(clippy::unwrap_used)]
// The CEL interpreter takes its variables in a HashMap; nothing here prints in its order.
#![allow(clippy::disallowed_types)]

mod support;

mod argo;
mod boot;
mod cli;
mod dashboard;
mod diff;
mod fuzz;
mod hydrate;
mod hydrated;
mod inject;
mod layering;
mod limits;
mod policies;
mod publish;
mod render_out;
mod runbook;
mod snapshots;
mod sops_interop;
mod stack;
mod status;
mod talos;
mod talos_cli;
mod watch;
mod yaml_corpus;
