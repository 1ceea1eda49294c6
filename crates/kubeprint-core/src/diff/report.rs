//! Printing a [`ChangeSet`]: a terminal view, a pull-request comment (markdown), JSON.

use owo_colors::OwoColorize;
use serde::Serialize;

use super::{ChangeSet, ClusterChange, FieldChange, Group, Status};
use crate::yaml::Value;

/// One side of the comparison, as the reader should see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// What the user named: a revision, or `working directory`.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Side {
    fn short(&self) -> String {
        match (&self.commit, &self.subject) {
            (Some(c), Some(s)) => format!("{} ({}: {s})", self.label, &c[..c.len().min(7)]),
            _ => self.label.clone(),
        }
    }
}

const LONG_VALUE: usize = 160;

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = serde_json::to_string(v).expect("serialisable");
            if s.chars().count() > LONG_VALUE {
                format!("{}…", s.chars().take(LONG_VALUE).collect::<String>())
            } else {
                s
            }
        }
    }
}

fn field_lines(f: &FieldChange, indent: &str, out: &mut Vec<Line>) {
    if f.old.is_some() {
        out.push(Line(
            Some(Status::Removed),
            format!("-{indent}{}: {}", f.path, show(&f.old)),
        ));
    }
    if f.new.is_some() {
        out.push(Line(
            Some(Status::Added),
            format!("+{indent}{}: {}", f.path, show(&f.new)),
        ));
    }
}

/// A line of a cluster's change and the status that colours it.
struct Line(Option<Status>, String);

fn cluster_lines(change: &ClusterChange) -> Vec<Line> {
    let mut out = Vec::new();
    for file in &change.files {
        out.push(Line(
            Some(file.status),
            format!("{} {}", file.status.sign(), file.path),
        ));
        if change.status != Status::Changed {
            continue;
        }
        for o in &file.objects {
            out.push(Line(
                Some(o.status),
                format!("{}   {}", o.status.sign(), o.key),
            ));
            for f in &o.fields {
                field_lines(f, "       ", &mut out);
            }
        }
        for f in &file.fields {
            field_lines(f, "     ", &mut out);
        }
        if let Some(text) = &file.text {
            for line in text
                .lines()
                .filter(|l| !l.starts_with("--- ") && !l.starts_with("+++ "))
            {
                let status = match line.chars().next() {
                    Some('+') => Some(Status::Added),
                    Some('-') => Some(Status::Removed),
                    _ => None,
                };
                let body = line.get(1..).unwrap_or("");
                let sign = line.chars().next().unwrap_or(' ');
                if line.starts_with("@@") {
                    out.push(Line(None, format!("      {line}")));
                } else {
                    out.push(Line(status, format!("{sign}     {body}")));
                }
            }
        }
    }
    out
}

fn group_title(group: &Group, set: &ChangeSet, max_names: usize) -> String {
    let change = &set.clusters[&group.example];
    let what = match change.status {
        Status::Added => "added",
        Status::Removed => "removed",
        Status::Changed => "same change",
    };
    if group.clusters.len() == 1 {
        let what = if change.status == Status::Changed {
            ""
        } else {
            what
        };
        let sep = if what.is_empty() { "" } else { ", " };
        return format!("{} ({}{sep}{what})", group.example, change.tier);
    }
    let names = names(&group.clusters, max_names);
    format!("{} clusters, {what}: {names}", group.clusters.len())
}

fn names(list: &[String], max: usize) -> String {
    let mut s = list
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > max {
        s.push_str(&format!(" and {} more", list.len() - max));
    }
    s
}

fn summary_lines(set: &ChangeSet) -> Vec<String> {
    let s = &set.summary;
    let mut out = vec![format!(
        "{} cluster(s): {} changed, {} added, {} removed, {} unchanged; {} distinct change(s)",
        s.total, s.changed, s.added, s.removed, s.unchanged, s.distinct_changes
    )];
    if !s.per_tier.is_empty() {
        let tiers: Vec<String> = s.per_tier.iter().map(|(t, n)| format!("{t} {n}")).collect();
        out.push(format!("by tier: {}", tiers.join(", ")));
    }
    if !s.per_kind.is_empty() {
        let kinds: Vec<String> = s
            .per_kind
            .iter()
            .map(|(k, c)| {
                let mut parts = Vec::new();
                for (n, sign) in [(c.added, '+'), (c.changed, '~'), (c.removed, '-')] {
                    if n > 0 {
                        parts.push(format!("{sign}{n}"));
                    }
                }
                format!("{k} {}", parts.join(" "))
            })
            .collect();
        out.push(format!("by kind: {}", kinds.join(", ")));
    }
    out
}

/// The terminal view; `color` paints additions green, removals red.
pub fn text(set: &ChangeSet, base: &Side, head: &Side, color: bool) -> String {
    let paint = |status: Option<Status>, s: &str| -> String {
        match (color, status) {
            (false, _) | (true, None) => s.to_string(),
            (true, Some(Status::Added)) => s.green().to_string(),
            (true, Some(Status::Removed)) => s.red().to_string(),
            (true, Some(Status::Changed)) => s.yellow().to_string(),
        }
    };
    let bold = |s: &str| {
        if color {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    };
    let mut out = format!("base {} → head {}\n", base.short(), head.short());
    for line in summary_lines(set) {
        out.push_str(&line);
        out.push('\n');
    }
    for group in &set.groups {
        out.push('\n');
        out.push_str(&bold(&format!("== {} ==", group_title(group, set, 8))));
        out.push('\n');
        for Line(status, line) in cluster_lines(&set.clusters[&group.example]) {
            out.push_str(&paint(status, &line));
            out.push('\n');
        }
    }
    out
}

/// The pull-request comment: the summary tables first, then one folded section per
/// distinct change; cut with a note when it would pass `max_chars`.
pub fn markdown(set: &ChangeSet, base: &Side, head: &Side, max_chars: usize) -> String {
    let s = &set.summary;
    let mut out = format!(
        "### kubeprint diff\n\n`{}` → `{}`\n\n",
        base.short(),
        head.short()
    );
    if set.is_empty() {
        out.push_str(&format!(
            "No cluster changes ({} cluster(s) compared).\n",
            s.total
        ));
        return out;
    }
    out.push_str(&format!(
        "**{} of {} cluster(s) change** ({} changed, {} added, {} removed) in **{} distinct change(s)**.\n\n",
        s.changed + s.added + s.removed,
        s.total,
        s.changed,
        s.added,
        s.removed,
        s.distinct_changes
    ));
    out.push_str("| # | clusters | tiers | files | objects |\n| --- | --- | --- | --- | --- |\n");
    for (i, group) in set.groups.iter().enumerate() {
        let change = &set.clusters[&group.example];
        let mut tiers: Vec<&str> = group
            .clusters
            .iter()
            .map(|c| set.clusters[c].tier.as_str())
            .collect();
        tiers.sort();
        tiers.dedup();
        let mut objects: Vec<String> = Vec::new();
        for f in &change.files {
            if f.objects.is_empty() {
                objects.push(format!("{} `{}`", f.status.sign(), f.path));
            }
            for o in &f.objects {
                let at = o
                    .key
                    .namespace
                    .as_ref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                objects.push(format!(
                    "{} {} `{at}{}`",
                    o.status.sign(),
                    o.key.kind,
                    o.key.name
                ));
            }
        }
        let shown = names(&objects, 6);
        let clusters = group
            .clusters
            .iter()
            .take(10)
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let more = if group.clusters.len() > 10 {
            format!(" and {} more", group.clusters.len() - 10)
        } else {
            String::new()
        };
        let status = match change.status {
            Status::Added => " (added)",
            Status::Removed => " (removed)",
            Status::Changed => "",
        };
        out.push_str(&format!(
            "| {} | {}{more}{status} | {} | {} | {} |\n",
            i + 1,
            clusters,
            tiers.join(", "),
            change.files.len(),
            shown.replace('|', "\\|")
        ));
    }
    out.push_str("\n| kind | added | changed | removed |\n| --- | --- | --- | --- |\n");
    for (kind, c) in &s.per_kind {
        out.push_str(&format!(
            "| {kind} | {} | {} | {} |\n",
            c.added, c.changed, c.removed
        ));
    }
    let tiers: Vec<String> = s
        .per_tier
        .iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    out.push_str(&format!(
        "\nClusters changed per tier: {}.\n\n",
        tiers.join(", ")
    ));

    const RESERVE: usize = 400;
    let budget = max_chars.saturating_sub(RESERVE);
    let mut shown = 0;
    let mut truncated = false;
    for (i, group) in set.groups.iter().enumerate() {
        let body: String = cluster_lines(&set.clusters[&group.example])
            .into_iter()
            .map(|Line(_, l)| l + "\n")
            .collect();
        let head_part = format!(
            "<details><summary>{}. {}</summary>\n\n````diff\n",
            i + 1,
            group_title(group, set, 10)
        );
        let tail = "````\n\n</details>\n\n";
        let size = head_part.len() + body.len() + tail.len();
        if out.len() + size > budget {
            truncated = true;
            if shown == 0 {
                // Not even the first change fits: show its beginning.
                let room = budget.saturating_sub(out.len() + head_part.len() + tail.len());
                let mut cut = room.min(body.len());
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                let cut = body[..cut].rfind('\n').map(|n| n + 1).unwrap_or(0);
                out.push_str(&head_part);
                out.push_str(&body[..cut]);
                out.push_str(tail);
                shown = 1;
            }
            break;
        }
        out.push_str(&head_part);
        out.push_str(&body);
        out.push_str(tail);
        shown += 1;
    }
    if truncated {
        out.push_str(&format!(
            "> **Truncated**: the comment would pass {max_chars} characters; {} of {} change(s) are shown in full or in part. Run `kubeprint diff --base {}` locally, or read the JSON output, for everything.\n",
            shown,
            set.groups.len(),
            base.label
        ));
    }
    out
}

/// The JSON document: both sides, then the change set.
pub fn json(set: &ChangeSet, base: &Side, head: &Side) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "base": base,
        "head": head,
        "changed": !set.is_empty(),
        "summary": set.summary,
        "groups": set.groups,
        "clusters": set.clusters,
        "unchanged": set.unchanged,
    }))
    .expect("serialisable")
}
