//! `fail2waf`: run the fail2waf engine on local logs.
//!
//! Exit codes: 0 success; 2 usage error or unreadable or damaged input
//! (after processing everything that could be read); 1 any other failure.

mod detect;
mod inputs;
mod manage;
mod output;
mod redrive;
mod report;
#[cfg(feature = "sim")]
mod simulate;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// fail2ban for AWS WAF: find the clients whose responses give them away
/// (404 storms, failed logins, 5xx fuzzing) and block them.
#[derive(Debug, Parser)]
#[command(name = "fail2waf", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the rules over log files and print the blocks they decide.
    Detect(detect::DetectArgs),
    /// Show one client's windows per rule, its block, offenses and audit trail.
    Explain {
        /// The client address (or `user:VALUE`).
        #[arg(required_unless_present = "user")]
        address: Option<String>,
        #[command(flatten)]
        user: manage::UserArg,
        #[command(flatten)]
        state: manage::StateArgs,
    },
    /// Block an address, network or user by hand (recorded with who, when, why).
    Block {
        /// Address or CIDR (or `user:VALUE`).
        #[arg(required_unless_present = "user")]
        target: Option<String>,
        #[command(flatten)]
        user: manage::UserArg,
        /// How long.
        #[arg(long, default_value = "1h")]
        ttl: fail2waf_core::duration::Secs,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state: manage::StateArgs,
    },
    /// Remove a block by hand (and forget its offenses; recorded).
    Unblock {
        /// Address or CIDR, as blocked (or `user:VALUE`).
        #[arg(required_unless_present = "user")]
        target: Option<String>,
        #[command(flatten)]
        user: manage::UserArg,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state: manage::StateArgs,
    },
    /// Active blocks per IP version, capacity used, incident mode.
    Status {
        #[command(flatten)]
        state: manage::StateArgs,
    },
    /// Push the ledger to the WAF IP sets (or print what they should hold).
    Sync {
        #[command(flatten)]
        state: manage::StateArgs,
    },
    /// Replay the ingest function's dead letters (failed events) into the
    /// deployed state; each counts once, however often it is replayed.
    Redrive(redrive::RedriveArgs),
    /// Backtest the rules on logs: one self-contained HTML page (timeline,
    /// decisions with evidence, near misses).
    Report(report::ReportArgs),
    /// Check or print configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write labeled synthetic ALB logs (attackers and benign clients).
    #[cfg(feature = "sim")]
    Simulate(simulate::SimulateArgs),
    /// Write bulk, unlabeled ALB traffic (gzip) for benchmarks.
    #[cfg(feature = "sim")]
    #[command(hide = true)]
    GenBench(simulate::GenBenchArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file; errors name the line and field.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print the default configuration as a commented TOML file.
    PrintDefault,
}

/// An error that is the user's to fix: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Detect(args) => detect::run(&args),
        Command::Explain {
            address,
            user,
            state,
        } => manage::explain(&user.target(address)?, &state),
        Command::Block {
            target,
            user,
            ttl,
            reason,
            state,
        } => manage::block(&user.target(target)?, ttl, &reason, &state),
        Command::Unblock {
            target,
            user,
            reason,
            state,
        } => manage::unblock(&user.target(target)?, &reason, &state),
        Command::Status { state } => manage::status(&state),
        Command::Sync { state } => manage::sync(&state),
        Command::Redrive(args) => redrive::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Config(ConfigCommand::Check { file }) => {
            let c = fail2waf_core::config::Config::load(&file)
                .map_err(|e| InputError(format!("{}: {e}", file.display())))?;
            println!("{}: ok, {} rules", file.display(), c.rules.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::PrintDefault) => {
            print!("{}", fail2waf_core::config::default_toml());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::GenBench(a) => simulate::gen_bench(&a),
        #[cfg(feature = "sim")]
        Command::Simulate(a) => simulate::run(&a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<InputError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
