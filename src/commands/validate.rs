//! `kubeprint validate`: every problem of the fleet, at once.

use kubeprint::model::Fleet;
use kubeprint::validate;

use super::{CommandError, ExitStatus, Printer, Result, today};
use crate::cli::{OutputFormat, ValidateArgs};

pub fn run(args: ValidateArgs, printer: &Printer) -> Result {
    let sources = kubeprint::load::load_dir(&args.fleet.fleet)?;
    let date = today(&args.fleet);
    let diags = match Fleet::from_sources(&sources) {
        Ok(fleet) => {
            let mut diags = validate::validate(&fleet, date);
            if !diags.has_errors()
                && let Err(e) = kubeprint::templates::Templates::new(&fleet)
            {
                diags.push(kubeprint::diagnostics::Diagnostic::error(
                    String::new(),
                    e.to_string(),
                    None,
                ));
            }
            diags
        }
        Err(diags) => diags.sorted(),
    };
    let errors = diags.errors().count();
    let warnings = diags.warnings().count();
    match args.output {
        OutputFormat::Json => {
            let report = serde_json::json!({
                "valid": errors == 0,
                "today": date.to_string(),
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diags.items,
            });
            printer.out(&serde_json::to_string_pretty(&report).expect("serialisable"));
        }
        OutputFormat::Text => {
            printer.diagnostics(&diags);
            if errors == 0 {
                let clusters = Fleet::from_sources(&sources)
                    .map(|f| f.clusters.len())
                    .unwrap_or(0);
                printer.status(&format!(
                    "{clusters} cluster(s) valid as of {date}, {warnings} warning(s)"
                ));
            }
        }
    }
    if errors > 0 {
        if args.output == OutputFormat::Text {
            return Err(CommandError::bad_input(
                anyhow::anyhow!("{errors} error(s), {warnings} warning(s)"),
                Some("fix the errors above; each names its file, line and column".into()),
            ));
        }
        return Ok(ExitStatus::BadInput);
    }
    Ok(ExitStatus::Success)
}
