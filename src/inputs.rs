//! Command-line inputs: files, directories (recursive) and `-` for stdin.

use crate::InputError;
use std::path::{Path, PathBuf};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A local file and its size.
    File(PathBuf, u64),
    /// Standard input.
    Stdin,
    /// An S3 object: bucket, key, size.
    S3(String, String, u64),
    /// Everything under an `s3://bucket/prefix` (listed before reading).
    S3Prefix(String),
}

impl Input {
    /// The name used for format detection and reports.
    pub fn name(&self) -> String {
        match self {
            Input::File(p, _) => p.display().to_string(),
            Input::Stdin => "-".into(),
            Input::S3(b, k, _) => format!("s3://{b}/{k}"),
            Input::S3Prefix(p) => p.clone(),
        }
    }
}

/// Expand the command line's paths into inputs, sorted within each
/// directory (ALB, WAF and CloudFront names sort by time). An unreadable
/// path is an error that names it.
pub fn expand(paths: &[String]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p == "-" {
            out.push(Input::Stdin);
        } else if p.starts_with("s3://") {
            out.push(Input::S3Prefix(p.clone()));
        } else {
            walk(Path::new(p), &mut out)?;
        }
    }
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<Input>) -> Result<(), InputError> {
    let err = |e: std::io::Error| InputError(format!("cannot read {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(err)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        entries.sort();
        for e in entries {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Hidden files and our own labels are not logs.
            if name.starts_with('.') || name.ends_with(".csv") && name.starts_with("labels") {
                continue;
            }
            if e.is_dir() || is_log_name(name) {
                walk(&e, out)?;
            }
        }
    } else {
        std::fs::File::open(path).map_err(err)?;
        out.push(Input::File(path.to_path_buf(), meta.len()));
    }
    Ok(())
}

/// Files in a directory that are read: logs, not configs or docs.
fn is_log_name(name: &str) -> bool {
    let skip = [
        ".toml", ".md", ".csv", ".json", ".html", ".txt", ".yaml", ".yml",
    ];
    !skip.iter().any(|s| name.ends_with(s)) || name.ends_with(".log.json")
}
