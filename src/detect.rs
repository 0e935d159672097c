//! `fail2waf detect`: the main job, on local files or S3 objects, with
//! state in a local directory or in S3 (the deployed functions' state).

use crate::inputs::{expand, Input};
use crate::output::{Output, Summary};
use crate::InputError;
use anyhow::{Context, Result};
use fail2waf_core::aws::s3::{client_from_env, BodyReader, S3Loc};
use fail2waf_core::aws::service::{LogObject, Service, Settings};
use fail2waf_core::clock::wall_ms;
use fail2waf_core::config::Config;
use fail2waf_core::engine::EngineStats;
use fail2waf_core::formats::Format;
use fail2waf_core::pipeline::{Decision, FileReport, Pipeline};
use fail2waf_core::state::DirState;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `fail2waf detect`.
#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Log files or directories (read recursively), `s3://bucket/prefix`
    /// (every object under it), or `-` for stdin.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Log format: alb, waf, cloudfront, nginx-combined, apache-combined,
    /// common, or a format defined in the config. Default: detected per file.
    #[arg(long)]
    format: Option<String>,
    /// Rules and settings (TOML). Default: the built-in rules.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Keep windows and blocks across runs: a directory, or
    /// `s3://bucket/prefix/` (the deployed functions' state; with
    /// FAIL2WAF_IPSET_V4_ARN and _V6_ARN set, new blocks are enforced).
    /// Inputs already counted there are skipped.
    #[arg(long)]
    state: Option<String>,
    /// Print JSON Lines (see README "JSON output").
    #[arg(long)]
    json: bool,
    /// Threads per input: 1 reads, parses and counts on one thread; 2 (the
    /// default) decompresses on a second core, which also parses while
    /// counting is the slower.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

/// Where windows and blocks live during a run.
enum Backend {
    /// In memory, optionally saved to a directory.
    Local {
        pipeline: Box<Pipeline>,
        dir: Option<DirState>,
        absorbed: fail2waf_core::state::Absorbed,
    },
    /// The S3 state store of the deployed functions.
    S3(Box<Service>),
}

pub fn run(args: &DetectArgs) -> Result<ExitCode> {
    let Sources {
        config,
        format,
        inputs,
        aws,
    } = Sources::open(
        &args.paths,
        args.config.as_deref(),
        args.format.as_deref(),
        args.state.as_deref(),
    )?;
    let _guard = aws.as_ref().map(|a| a.rt.enter());
    let mut backend = Backend::open(args, config, aws.as_ref())?;
    let bar = progress(input_bytes(&inputs), args.json);
    let mut out = Output::new(args.json);
    let mut summary = Summary::default();
    // Requests parsed but counted for no client (summed over objects for
    // s3:// state; the local engine's own figures otherwise).
    let mut counts = EngineStats::default();
    let mut damaged = Vec::new();
    for input in &inputs {
        let name = input.name();
        let reader = open_input(input, &bar, aws.as_ref())?;
        bar.set_message(name.clone());
        let Some(got) = backend.ingest(
            input,
            &name,
            reader,
            format.as_ref(),
            aws.as_ref(),
            &mut counts,
        )?
        else {
            summary.files_already_counted += 1;
            continue;
        };
        if got.counted_before {
            summary.files_already_counted += 1;
        }
        record(&name, &got.report, &mut damaged);
        summary.add(&got.report);
        out.file(&got.report)?;
        for d in &got.decisions {
            out.decision(d)?;
        }
        summary.blocks += got.decisions.len() as u64;
    }
    bar.finish_and_clear();
    if let Backend::Local { pipeline, .. } = &backend {
        summary.refused = pipeline
            .refused()
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect();
        counts = pipeline.engine().stats();
    }
    summary.not_counted = [
        ("untracked", counts.untracked),
        ("future", counts.future),
        ("proxy_only", counts.proxy_only),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect();
    out.summary(&summary)?;
    backend.save()?;
    for d in &damaged {
        eprintln!("error: {d}");
    }
    Ok(if damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// One input, counted.
struct Ingested {
    report: FileReport,
    /// The blocks it decided.
    decisions: Vec<Decision>,
    /// The S3 state had counted it before (its report comes from that).
    counted_before: bool,
}

impl Backend {
    /// The state `--state` names: S3, a directory, or none.
    fn open(args: &DetectArgs, config: Config, aws: Option<&Aws>) -> Result<Backend> {
        let mut backend = match args.state.as_deref() {
            Some(s) if s.starts_with("s3://") => {
                let aws = aws.expect("connected for s3:// state");
                Backend::S3(Box::new(aws.service(s, config)?))
            }
            Some(dir) => {
                let dir = DirState::new(dir);
                let (stored, ledger, absorbed) =
                    dir.load().map_err(|e| InputError(format!("state: {e}")))?;
                Backend::Local {
                    pipeline: Box::new(Pipeline::with_state(config, Some(&stored), ledger)),
                    dir: Some(dir),
                    absorbed,
                }
            }
            None => Backend::Local {
                pipeline: Box::new(Pipeline::new(config)),
                dir: None,
                absorbed: Default::default(),
            },
        };
        if let Backend::Local { pipeline, .. } = &mut backend {
            pipeline.set_threads(usize::from(args.threads));
        }
        Ok(backend)
    }

    /// Count one input: its report and the blocks it decided, or `None`
    /// when the local state had counted it already (not read again).
    fn ingest(
        &mut self,
        input: &Input,
        name: &str,
        reader: Box<dyn Read + Send>,
        format: Option<&Format>,
        aws: Option<&Aws>,
        counts: &mut EngineStats,
    ) -> Result<Option<Ingested>> {
        match self {
            Backend::Local {
                pipeline,
                dir,
                absorbed,
            } => {
                let id = identity(input);
                if dir.is_some() && id.as_ref().is_some_and(|id| absorbed.contains_key(id)) {
                    return Ok(None);
                }
                let before = pipeline.decisions().len();
                let report = pipeline.process(name, reader, format);
                if let Some(id) = id {
                    absorbed.insert(id, wall_ms() / 1000);
                }
                Ok(Some(Ingested {
                    report,
                    decisions: pipeline.decisions()[before..].to_vec(),
                    counted_before: false,
                }))
            }
            Backend::S3(svc) => {
                let rt = &aws.expect("connected for s3:// state").rt;
                let id = identity(input).unwrap_or_else(|| format!("stdin@{}", wall_ms()));
                let object = LogObject {
                    object: name.to_string(),
                    name: name.to_string(),
                    id,
                    reader,
                    transport_failed: None,
                };
                let no_deadline = None;
                let rep = rt
                    .block_on(svc.ingest_reader(object, wall_ms(), "fail2waf-cli", no_deadline))
                    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
                counts.untracked += rep.counts.untracked;
                counts.future += rep.counts.future;
                counts.proxy_only += rep.counts.proxy_only;
                let decisions = rep
                    .blocks
                    .into_iter()
                    .map(|(key, block)| Decision { key, block })
                    .collect();
                Ok(Some(Ingested {
                    report: rep.file,
                    decisions,
                    counted_before: rep.duplicate,
                }))
            }
        }
    }

    /// Save a local state directory (pruned windows, expired blocks).
    ///
    /// The process ends next: the engine is not freed key by key (with
    /// 100,000 clients held that took 2 % of a run), the exit returns its
    /// memory at once.
    fn save(self) -> Result<()> {
        let Backend::Local {
            pipeline,
            dir,
            absorbed,
        } = self
        else {
            return Ok(());
        };
        let Some(dir) = dir else {
            std::mem::forget(pipeline);
            return Ok(());
        };
        let policy = pipeline.policy().clone();
        let (mut engine, mut ledger) = pipeline.into_parts();
        engine.prune();
        let state = engine.export();
        std::mem::forget(engine);
        let now = i64::from(state.newest) * state.bucket_secs as i64 * 1000;
        ledger.expire(now, &policy);
        dir.save(&state, &ledger, &absorbed).context("saving state")
    }
}

/// What `detect` and `report` read and how: the rules and settings, the
/// format forced by `--format`, the inputs (each `s3://` prefix listed) and,
/// when an input or the state is in S3, what talks to AWS.
pub(crate) struct Sources {
    pub config: Config,
    pub format: Option<Format>,
    pub inputs: Vec<Input>,
    pub aws: Option<Aws>,
}

impl Sources {
    /// Set up from the command line: `paths`, `--config`, `--format` and,
    /// for `detect`, `--state` (an `s3://` state connects to AWS too).
    pub fn open(
        paths: &[String],
        config: Option<&Path>,
        format: Option<&str>,
        state: Option<&str>,
    ) -> Result<Sources> {
        let config = match config {
            Some(p) => Config::load(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?,
            None => Config::default(),
        };
        let format = match format {
            Some(name) => Some(
                config
                    .format(name)
                    .ok_or_else(|| InputError(format!("unknown format `{name}`")))?,
            ),
            None => None,
        };
        let local = expand(paths)?;
        let needs_aws = local.iter().any(|i| matches!(i, Input::S3Prefix(_)))
            || state.is_some_and(|s| s.starts_with("s3://"));
        let aws = needs_aws.then(Aws::connect).transpose()?;
        let inputs = list_s3(local, aws.as_ref())?;
        Ok(Sources {
            config,
            format,
            inputs,
            aws,
        })
    }
}

/// The bytes to read from `inputs`, for the progress bar (stdin: none).
pub(crate) fn input_bytes(inputs: &[Input]) -> u64 {
    inputs
        .iter()
        .map(|i| match i {
            Input::File(_, n) | Input::S3(_, _, n) => *n,
            _ => 0,
        })
        .sum()
}

/// What the commands need to talk to AWS: a runtime, the SDK
/// configuration from the environment, and an S3 client.
pub(crate) struct Aws {
    pub rt: tokio::runtime::Runtime,
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    /// Load the configuration from the environment (`AWS_ENDPOINT_URL` too).
    pub fn connect() -> std::io::Result<Aws> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let sdk = rt.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load());
        let s3 = rt.block_on(client_from_env(&sdk));
        Ok(Aws { rt, sdk, s3 })
    }

    /// The deployed functions' service on the state at `state`
    /// (`s3://bucket/prefix/`) with `config`. With FAIL2WAF_IPSET_V4_ARN and
    /// _V6_ARN in the environment it writes WAF; without, it is a dry run.
    pub fn service(&self, state: &str, config: Config) -> Result<Service, InputError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let sets = env("FAIL2WAF_IPSET_V4_ARN").is_some() && env("FAIL2WAF_IPSET_V6_ARN").is_some();
        let settings = Settings::from_lookup(|k| match k {
            "FAIL2WAF_STATE" => Some(state.to_string()),
            "FAIL2WAF_DRY_RUN" => Some((!sets).to_string()),
            "FAIL2WAF_IPSET_V4_ARN"
            | "FAIL2WAF_IPSET_V6_ARN"
            | "FAIL2WAF_USER_PATTERN_SET_ARN"
            | "FAIL2WAF_EVENT_BUS" => env(k),
            _ => None,
        })
        .map_err(|e| InputError(e.to_string()))?;
        let mut svc = self
            .rt
            .block_on(Service::with_sdk(settings, &self.sdk))
            .map_err(|e| InputError(e.to_string()))?;
        svc.set_config(config);
        Ok(svc)
    }
}

/// A reader over one input, counted by the progress bar.
pub(crate) fn open_input(
    input: &Input,
    bar: &ProgressBar,
    aws: Option<&Aws>,
) -> Result<Box<dyn Read + Send>, InputError> {
    let name = input.name();
    Ok(match input {
        Input::File(p, _) => Box::new(bar.wrap_read(
            std::fs::File::open(p).map_err(|e| InputError(format!("cannot read {name}: {e}")))?,
        )),
        Input::Stdin => Box::new(std::io::stdin()),
        Input::S3(b, k, _) => {
            let aws = aws.expect("connected for s3:// inputs");
            let (rt, s3) = (&aws.rt, &aws.s3);
            let obj = rt
                .block_on(s3.get_object().bucket(b).key(k).send())
                .map_err(|e| {
                    InputError(format!(
                        "cannot read {name}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ))
                })?;
            Box::new(bar.wrap_read(BodyReader::spawn(obj.body, 8)))
        }
        Input::S3Prefix(_) => unreachable!("listed before reading"),
    })
}

fn record(name: &str, report: &FileReport, damaged: &mut Vec<String>) {
    if let Some(e) = &report.error {
        damaged.push(format!("{name}: {e}"));
    }
}

/// What identifies an input across runs: a file by path, size and
/// modification time; an S3 object by bucket, key and size.
fn identity(input: &Input) -> Option<String> {
    match input {
        Input::File(p, size) => {
            let mtime = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            Some(format!("{}:{size}:{mtime}", p.display()))
        }
        Input::S3(b, k, size) => Some(format!("{b}/{k}:{size}")),
        _ => None,
    }
}

/// Replace each `s3://` prefix by the objects under it, in key order.
fn list_s3(inputs: Vec<Input>, aws: Option<&Aws>) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    for input in inputs {
        let Input::S3Prefix(uri) = &input else {
            out.push(input);
            continue;
        };
        let loc = uri
            .parse::<S3Loc>()
            .map_err(|e| InputError(e.to_string()))?;
        let aws = aws.expect("connected for s3:// inputs");
        let (rt, s3) = (&aws.rt, &aws.s3);
        let mut objects = Vec::new();
        rt.block_on(async {
            let mut pages = s3
                .list_objects_v2()
                .bucket(&loc.bucket)
                .prefix(&loc.prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    InputError(format!(
                        "cannot list {uri}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ))
                })?;
                for o in page.contents() {
                    if let Some(k) = o.key() {
                        objects.push(Input::S3(
                            loc.bucket.clone(),
                            k.to_string(),
                            o.size().unwrap_or(0).max(0) as u64,
                        ));
                    }
                }
            }
            Ok::<_, InputError>(())
        })?;
        if objects.is_empty() {
            return Err(InputError(format!("{uri}: no objects")));
        }
        out.extend(objects);
    }
    Ok(out)
}

pub(crate) fn progress(total: u64, json: bool) -> ProgressBar {
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
