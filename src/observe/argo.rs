//! Argo CD `Application` objects and what drift reads of them ([`ObservedApp`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::drift::ObservedApp;

/// An Argo CD `Application` (`argoproj.io/v1alpha1`), only the fields drift reads.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Application {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: Option<ApplicationStatus>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default)]
    pub sync: Option<SyncStatus>,
    #[serde(default)]
    pub health: Option<HealthStatus>,
    #[serde(default)]
    pub operation_state: Option<OperationState>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub revisions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct HealthStatus {
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct OperationState {
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub message: String,
}

impl k8s_openapi::Resource for Application {
    const API_VERSION: &'static str = "argoproj.io/v1alpha1";
    const GROUP: &'static str = "argoproj.io";
    const KIND: &'static str = "Application";
    const VERSION: &'static str = "v1alpha1";
    const URL_PATH_SEGMENT: &'static str = "applications";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Application {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What drift reads of an Application: application-level sync and health (Argo CD 3.x
/// stores no per-resource health by default), the last operation and the conditions.
pub fn observed_app(app: &Application) -> ObservedApp {
    let status = app.status.clone().unwrap_or_default();
    let sync = status.sync.unwrap_or_default();
    let mut revisions: Vec<String> = sync
        .revision
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    revisions.extend(sync.revisions);
    ObservedApp {
        sync: sync.status.as_str().into(),
        revisions,
        health: status.health.map(|h| h.status).unwrap_or_default().into(),
        operation_phase: status
            .operation_state
            .as_ref()
            .map(|o| o.phase.as_str())
            .filter(|p| !p.is_empty())
            .map(Into::into),
        operation_message: status.operation_state.and_then(|o| o.message),
        conditions: status
            .conditions
            .into_iter()
            .map(|c| (c.type_, c.message))
            .collect(),
    }
}
