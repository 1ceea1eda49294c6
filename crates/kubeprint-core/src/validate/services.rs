//! The provider's services the cluster is wired to: S3 for logs and backups, the Git
//! repository Argo CD syncs (its URL and branch).

use super::Checker;
use crate::model::names::{self, BranchName};
use crate::model::net::{HttpsUrl, RepoUrl};

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let c = &spec.value;
    if let Err(why) = HttpsUrl::parse(&c.s3.endpoint) {
        v.error(
            "s3.endpoint",
            format!("the S3 endpoint {} {why}", names::shown(&c.s3.endpoint)),
            "the provider's S3 is reached over https: `https://HOST[:PORT]`",
        );
    }
    let checks = [
        ("s3.region", names::check_region(&c.s3.region)),
        ("s3.logsBucket", names::check_bucket(&c.s3.logs_bucket)),
        ("s3.backupBucket", names::check_bucket(&c.s3.backup_bucket)),
        (
            "s3.credentialsSecret",
            names::check_object_name(&c.s3.credentials_secret),
        ),
        ("repo.branch", BranchName::parse(&c.repo.branch).map(|_| ())),
    ];
    for (path, result) in checks {
        if let Err(e) = result {
            v.error(path, e.message, e.hint);
        }
    }
    if let Err(why) = RepoUrl::parse(&c.repo.url) {
        v.error(
            "repo.url",
            format!("the repository URL {} {why}", names::shown(&c.repo.url)),
            "write it as Argo CD clones it: `https://git.example.net/clusters/NAME.git` or `git@git.example.net:clusters/NAME.git`",
        );
    }
}
