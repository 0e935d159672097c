//! What the three Lambda binaries share: logging and reporting.

use fail2waf_core::aws::handlers::HandlerError;
use fail2waf_core::aws::metrics::Metrics;
use fail2waf_core::clock::wall_ms;
use lambda_runtime::Diagnostic;
use serde_json::Value;

/// Logs as JSON on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), text elsewhere;
/// level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .init();
    } else {
        builder.with_ansi(false).init();
    }
}

/// Print the invocation's metrics as one EMF line and turn the outcome into
/// the runtime's.
pub fn finish(result: Result<(Value, Metrics), HandlerError>) -> Result<Value, Diagnostic> {
    match result {
        Ok((response, metrics)) => {
            println!("{}", metrics.to_json_line(wall_ms()));
            Ok(response)
        }
        Err(e) => {
            tracing::error!(error = %e.message, retryable = e.retryable, "invocation failed");
            Err(e.into())
        }
    }
}
