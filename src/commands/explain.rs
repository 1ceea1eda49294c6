//! `kubeprint explain CLUSTER PATH`: a merged value and where it came from.

use kubeprint::plan::{self, Segment};

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{ExplainArgs, OutputFormat};

pub fn run(args: ExplainArgs, printer: &Printer) -> Result {
    let checked = load_checked(&args.fleet, printer)?;
    let names = kubeprint::fleet::select(&checked.fleet, std::slice::from_ref(&args.cluster))?;
    let path = plan::ValuePath::parse(&args.path)
        .map_err(|e| CommandError::bad_input(e, Some(plan::PathError::HINT.to_string())))?;
    let plan = plan::plan_with_origins(&checked.fleet, &checked.templates, &names[0])
        .map_err(|e| CommandError::bad_input(e, None))?;
    let not_a_value_path = || {
        CommandError::bad_input(
            anyhow::anyhow!("`{}` is not a value path", args.path),
            Some("paths start with `values.<component>.` or `settings.`".into()),
        )
    };
    let (merged, rest) = match path.0.as_slice() {
        [Segment::Key(first), rest @ ..] if first == "settings" => (&plan.settings, rest),
        [Segment::Key(first), Segment::Key(component), rest @ ..] if first == "values" => {
            match plan
                .components
                .iter()
                .find(|c| &c.component.name == component)
            {
                Some(pc) => (&pc.values, rest),
                None => {
                    let off = plan.disabled.iter().find(|(n, _)| n == component);
                    let hint = match off {
                        Some((_, why)) => format!(
                            "`{component}` is disabled for this cluster at {}",
                            why.location
                        ),
                        None => format!(
                            "the components are: {}",
                            plan.components
                                .iter()
                                .map(|c| c.component.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    return Err(CommandError::bad_input(
                        anyhow::anyhow!("no component `{component}` in cluster `{}`", args.cluster),
                        Some(hint),
                    ));
                }
            }
        }
        _ => return Err(not_a_value_path()),
    };
    let Some((value, origin)) = merged.lookup(&plan::ValuePath(rest.to_vec())) else {
        return Err(CommandError::bad_input(
            anyhow::anyhow!("`{}` is not set for cluster `{}`", args.path, args.cluster),
            Some(
                "a chart default applies where no layer sets a value; see the chart's values.yaml"
                    .into(),
            ),
        ));
    };
    match args.output {
        OutputFormat::Json => printer.out(
            &serde_json::to_string_pretty(&serde_json::json!({
                "cluster": args.cluster, "path": args.path, "value": value, "origin": origin,
            }))
            .expect("serialisable"),
        ),
        OutputFormat::Text => {
            let shown = kubeprint::yaml::value_to_string(value);
            printer.out(&format!("{}: {}", args.path, shown.trim_end()));
            if let Some(o) = origin {
                let layer = serde_json::to_value(o.layer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                printer.out(&format!("  from {layer} at {}", o.location));
            }
        }
    }
    Ok(ExitStatus::Success)
}
