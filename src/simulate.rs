//! `fail2waf simulate` and `fail2waf gen-bench`: synthetic traffic from
//! the simulator (`fail2waf_core::sim`, behind the `sim` feature, which the
//! Lambda functions are built without).

use crate::InputError;
use anyhow::Result;
use fail2waf_core::sim::{self, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Directory to write the logs and `labels.csv` into.
    #[arg(long, short)]
    out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Minutes of traffic.
    #[arg(long, default_value_t = 60)]
    minutes: u32,
    /// Individual users browsing the site (besides NATs, crawlers, monitors).
    #[arg(long, default_value_t = 250)]
    users: usize,
    /// A scenario family of the quality matrix instead (docs/rules.md):
    /// route-outage, app-outage, site-outage, flaky-route, scanner-heavy,
    /// nat, cgnat, thin-scan; `--seed` draws its variant, `--minutes` and
    /// `--users` are the family's.
    #[arg(long)]
    family: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct GenBenchArgs {
    /// Output file (`.gz`: gzip).
    #[arg(long, short)]
    out: PathBuf,
    /// Number of lines.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Number of clients (a flood of addresses: as many as lines).
    #[arg(long, default_value_t = 5_000)]
    clients: u64,
    /// Event time of the first line (epoch ms; default 2026-01-01).
    #[arg(long, default_value_t = 1_767_225_600_000)]
    start_ms: i64,
    /// Milliseconds between two lines.
    #[arg(long, default_value_t = 2)]
    step_ms: i64,
    /// Seed (the same seed, the same lines).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Write a scenario's labeled ALB logs.
pub fn run(a: &SimulateArgs) -> Result<ExitCode> {
    let scenario = match &a.family {
        Some(f) => Scenario::family(f, a.seed).ok_or_else(|| {
            InputError(format!(
                "no scenario family `{f}` (one of {})",
                sim::FAMILIES.join(", ")
            ))
        })?,
        None => Scenario {
            seed: a.seed,
            duration_ms: i64::from(a.minutes) * 60_000,
            users: a.users,
            ..Default::default()
        },
    };
    let sim = sim::simulate(&scenario);
    let files = sim.write_alb_dir(&a.out)?;
    eprintln!(
        "wrote {} files ({} lines, {} actors) and labels.csv to {}",
        files.len(),
        sim.lines.len(),
        sim.actors.len(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Write bulk benchmark traffic.
pub fn gen_bench(a: &GenBenchArgs) -> Result<ExitCode> {
    let file = std::io::BufWriter::new(std::fs::File::create(&a.out)?);
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
    // One request every 2 ms by default: a busy site, 1M lines in about
    // half an hour.
    sim::bench::write_alb(&mut gz, a.lines, a.clients, a.seed, a.start_ms, a.step_ms)?;
    gz.finish()?.into_inner().map_err(|e| e.into_error())?;
    Ok(ExitCode::SUCCESS)
}
