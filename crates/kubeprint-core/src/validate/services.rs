//! The services outside the cluster it is wired to: the OIDC issuer, the provider's S3.

use super::Checker;

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let c = &spec.value;
    if let Some(sso) = &c.sso
        && !sso.issuer.starts_with("https://")
    {
        v.error(
            "sso.issuer",
            format!("the OIDC issuer `{}` is not an https URL", sso.issuer),
            "OIDC issuers are https URLs",
        );
    }
    if !c.s3.endpoint.starts_with("https://") {
        v.error(
            "s3.endpoint",
            format!("`{}` is not an https URL", c.s3.endpoint),
            "the provider's S3 is reached over https",
        );
    }
}
