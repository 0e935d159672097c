//! `fail2waf detect`: the main job, on local files.

use crate::inputs::{expand, Input};
use crate::output::{Output, Summary};
use crate::InputError;
use anyhow::{Context, Result};
use fail2waf_core::config::Config;
use fail2waf_core::pipeline::Detector;
use fail2waf_core::state::DirState;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `fail2waf detect`.
#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Log files or directories (read recursively); `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Log format: alb, waf, cloudfront, nginx-combined, apache-combined,
    /// common, or a format defined in the config. Default: detected per file.
    #[arg(long)]
    format: Option<String>,
    /// Rules and settings (TOML). Default: the built-in rules.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Keep windows and blocks in this directory across runs; inputs
    /// already counted there are skipped.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print JSON Lines (see README "JSON output").
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DetectArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(p) => Config::load(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?,
        None => Config::default(),
    };
    let format = match &args.format {
        Some(name) => Some(
            config
                .format(name)
                .ok_or_else(|| InputError(format!("unknown format `{name}`")))?,
        ),
        None => None,
    };
    let inputs = expand(&args.paths)?;
    let store = args.state.as_ref().map(DirState::new);
    let (stored, ledger, mut absorbed) = match &store {
        Some(s) => s.load().map_err(|e| InputError(format!("state: {e}")))?,
        None => Default::default(),
    };
    let mut detector = Detector::with_state(config, Some(&stored), ledger);

    let total: u64 = inputs
        .iter()
        .map(|i| if let Input::File(_, n) = i { *n } else { 0 })
        .sum();
    let bar = progress(total, args.json);
    let mut out = Output::new(args.json);
    let mut summary = Summary::default();
    let mut damaged = Vec::new();
    for input in &inputs {
        let name = input.name();
        let identity = match input {
            Input::File(p, size) => {
                let mtime = std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                Some(format!("{name}:{size}:{mtime}"))
            }
            Input::Stdin => None,
        };
        if let Some(id) = &identity {
            if store.is_some() && absorbed.contains_key(id) {
                summary.files_already_counted += 1;
                continue;
            }
        }
        let reader: Box<dyn Read + Send> = match input {
            Input::File(p, _) => Box::new(
                bar.wrap_read(
                    std::fs::File::open(p)
                        .map_err(|e| InputError(format!("cannot read {name}: {e}")))?,
                ),
            ),
            Input::Stdin => Box::new(std::io::stdin()),
        };
        bar.set_message(name.clone());
        let before = detector.decisions().len();
        let report = detector.process(&name, reader, format.as_ref());
        if let Some(e) = &report.error {
            damaged.push(format!("{name}: {e}"));
        }
        if let Some(id) = identity {
            absorbed.insert(id, detector.engine().export().newest.into());
        }
        summary.add(&report);
        out.file(&report)?;
        for d in &detector.decisions()[before..] {
            out.decision(d)?;
        }
    }
    bar.finish_and_clear();
    summary.blocks = detector.decisions().len() as u64;
    summary.refused = detector
        .refused()
        .iter()
        .map(|(k, v)| ((*k).to_string(), *v))
        .collect();
    out.summary(&summary)?;
    if let Some(store) = &store {
        let policy = detector.policy().clone();
        let (mut engine, mut ledger) = detector.into_parts();
        engine.prune();
        let state = engine.export();
        let now = i64::from(state.newest) * state.bucket_secs as i64 * 1000;
        ledger.expire(now, &policy);
        store
            .save(&state, &ledger, &absorbed)
            .context("saving state")?;
    }
    for d in &damaged {
        eprintln!("error: {d}");
    }
    Ok(if damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn progress(total: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}")
            .expect("valid template"),
    );
    bar
}
