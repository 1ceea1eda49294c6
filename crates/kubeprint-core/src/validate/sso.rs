//! Single sign-on: the issuer is an https URL, the claim, group and client names are of
//! the alphabets their consumers (API server, Argo CD, Grafana, Kasten) accept.

use super::Checker;
use crate::model::names::{self, ClaimName, GroupName};
use crate::model::net::HttpsUrl;

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let Some(sso) = &spec.value.sso else {
        return;
    };
    if let Err(why) = HttpsUrl::parse(&sso.issuer) {
        v.error(
            "sso.issuer",
            format!("the OIDC issuer {} {why}", names::shown(&sso.issuer)),
            "OIDC issuers are https URLs without query or fragment, e.g. `https://login.example.net/realms/x`",
        );
    }
    let checks = [
        (
            "sso.groupsClaim",
            ClaimName::parse(&sso.groups_claim).map(|_| ()),
        ),
        (
            "sso.adminGroup",
            GroupName::parse(&sso.admin_group).map(|_| ()),
        ),
        ("sso.clientId", names::check_client_id(&sso.client_id)),
        (
            "sso.clientSecretRef",
            names::check_object_name(&sso.client_secret_ref),
        ),
    ];
    for (path, result) in checks {
        if let Err(e) = result {
            v.error(path, e.message, e.hint);
        }
    }
}
