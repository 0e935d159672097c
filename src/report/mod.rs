//! `fail2waf report`: a backtest of the rules on history, as one
//! self-contained HTML page (inline CSS and SVG, no scripts, no external
//! assets): who would be blocked, why, and how close others came
//! (docs/report.md explains each part).
//!
//! [`collect`] reads the inputs and keeps what the page needs, [`model`]
//! turns that into offenders, near misses and outages, [`html`] writes the
//! page and [`chart`] its timeline.

mod chart;
mod collect;
mod html;
mod model;
#[cfg(test)]
mod tests;

use crate::detect::Sources;
use anyhow::{Context, Result};
use model::Model;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `fail2waf report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Log files or directories (read recursively), `s3://bucket/prefix`
    /// (every object under it), or `-` for stdin.
    #[arg(required = true)]
    paths: Vec<String>,
    /// The HTML file to write.
    #[arg(long, short)]
    output: PathBuf,
    /// Log format: alb, waf, cloudfront, nginx-combined, apache-combined,
    /// common, or a format defined in the config. Default: detected per file.
    #[arg(long)]
    format: Option<String>,
    /// Rules and settings (TOML). Default: the built-in rules.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Offenders shown in the timeline and the detail (blocked first).
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// Write the report and say what it holds; exit code 2 when an input was
/// damaged (after reading everything that could be read).
pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    // No `--state`: a backtest starts from nothing and keeps nothing.
    let state = None;
    let sources = Sources::open(
        &args.paths,
        args.config.as_deref(),
        args.format.as_deref(),
        state,
    )?;
    let collected = collect::collect(sources)?;
    let model = Model::build(&args.paths, collected, args.top);
    let html = model.html();
    std::fs::write(&args.output, html)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {}: {} blocks, {} offenders, {} near misses; {} files, {} lines read, {} parsed",
        args.output.display(),
        model.decisions.len(),
        model.offenders.len(),
        model.near.len(),
        model.summary.files,
        model.summary.lines_read,
        model.summary.lines_parsed,
    );
    let mut damaged = false;
    for r in &model.reports {
        if let Some(e) = &r.error {
            eprintln!("error: {}: {e}", r.name);
            damaged = true;
        }
    }
    Ok(if damaged {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
