//! `fail2waf redrive`: replay the ingest function's dead letters.
//!
//! The stack's ingest queue sends an event whose object failed five
//! receives to its dead-letter queue: the message is the event as
//! EventBridge sent it (an S3 "Object Created" event). A stack from before
//! the queue sent Lambda destination records instead, whose
//! `requestPayload` is the event; both are read. This command ingests the
//! objects a message names with the deployed functions' engine and state,
//! exactly as the function would, and deletes a message once all its
//! objects are in. Ingesting is idempotent (every state object records the
//! log objects absorbed into it), so a message redriven twice, or one whose
//! first attempt got part of the way, counts once.

use crate::detect::Aws;
use crate::InputError;
use anyhow::Result;
use fail2waf_core::aws::events::{decode_ingest, IngestEvent, ObjectRef};
use fail2waf_core::clock::wall_ms;
use fail2waf_core::config::Config;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// `fail2waf redrive`.
#[derive(Debug, clap::Args)]
pub struct RedriveArgs {
    /// The dead-letter queue's URL (stack output `IngestDeadLetterQueueUrl`).
    queue_url: String,
    /// The state (`s3://bucket/prefix/`, stack output `StateUri`).
    #[arg(long)]
    state: String,
    /// Rules and settings (TOML), as the functions use them.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Stop after this many messages.
    #[arg(long, default_value_t = 1000)]
    max: usize,
}

/// The objects a dead letter names: its `requestPayload` (a Lambda
/// destination record) or the message itself, decoded as the ingest
/// function decodes its events.
fn objects_of(body: &str) -> Result<Vec<ObjectRef>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let event = v.get("requestPayload").unwrap_or(&v);
    match decode_ingest(event).map_err(|e| e.to_string())? {
        IngestEvent::Test => Ok(Vec::new()),
        IngestEvent::Objects(objects) => Ok(objects),
        IngestEvent::Sqs(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(item.objects.map_err(|e| e.to_string())?);
            }
            Ok(out)
        }
    }
}

/// Replay the queue's messages; exit 1 if any stayed in it.
pub fn run(a: &RedriveArgs) -> Result<ExitCode> {
    let config = match &a.config {
        Some(p) => Config::load(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?,
        None => Config::default(),
    };
    let aws = Aws::connect()?;
    let svc = aws.service(&a.state, config)?;
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
    let holder = format!("fail2waf-redrive-{}", std::process::id());
    let (mut messages, mut objects, mut again, mut kept) = (0usize, 0usize, 0usize, 0usize);
    let mut seen = std::collections::HashSet::new();
    while messages + kept < a.max {
        let got = aws
            .rt
            .block_on(
                sqs.receive_message()
                    .queue_url(&a.queue_url)
                    .max_number_of_messages(10)
                    .visibility_timeout(300)
                    .send(),
            )
            .map_err(|e| {
                InputError(format!(
                    "{}: {}",
                    a.queue_url,
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ))
            })?;
        let batch = got.messages();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let id = m.message_id().unwrap_or_default().to_string();
            if !seen.insert(id.clone()) {
                continue; // back after its visibility timeout: kept already
            }
            let result = objects_of(m.body().unwrap_or_default()).and_then(|objs| {
                for o in &objs {
                    let r = aws
                        .rt
                        .block_on(svc.ingest_object(&o.bucket, &o.key, wall_ms(), &holder, None))
                        .map_err(|e| format!("s3://{}/{}: {e}", o.bucket, o.key))?;
                    objects += 1;
                    again += usize::from(r.duplicate);
                    match &r.skipped {
                        Some(why) => println!("{}: skipped ({why})", r.object),
                        None => println!(
                            "{}: {} lines{}, {} new blocks",
                            r.object,
                            r.file.lines_read,
                            if r.duplicate {
                                " (already counted)"
                            } else {
                                ""
                            },
                            r.blocks.len()
                        ),
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) => {
                    messages += 1;
                    if let Some(h) = m.receipt_handle() {
                        aws.rt
                            .block_on(
                                sqs.delete_message()
                                    .queue_url(&a.queue_url)
                                    .receipt_handle(h)
                                    .send(),
                            )
                            .map_err(|e| {
                                InputError(format!(
                                    "delete {id}: {}",
                                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                                ))
                            })?;
                    }
                }
                Err(e) => {
                    kept += 1;
                    eprintln!("message {id}: {e} (left in the queue)");
                }
            }
        }
    }
    println!(
        "redrove {messages} messages: {objects} objects ingested ({again} already counted); {kept} left in the queue"
    );
    Ok(if kept == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lambda destination record (on failure) around an EventBridge S3
    /// event, as the stack's dead-letter queue holds them.
    #[test]
    fn a_destination_record_names_the_objects_of_its_request() {
        let record = serde_json::json!({
            "version": "1.0",
            "timestamp": "2026-12-04T18:00:00.000Z",
            "requestContext": {"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f-ingest:$LATEST", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": {
                "version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
                "account": "123456789012", "time": "2026-12-04T17:59:00Z", "region": "us-east-1",
                "resources": ["arn:aws:s3:::logs"],
                "detail": {"version": "0", "bucket": {"name": "logs"}, "object": {"key": "AWSLogs/a b.log.gz", "size": 1, "etag": "x", "sequencer": "1"}, "request-id": "q", "requester": "123456789012", "source-ip-address": "192.0.2.1", "reason": "PutObject"}
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Fail2waf.Retryable", "errorMessage": "S3 throttled"}
        });
        let objs = objects_of(&record.to_string()).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(
            (objs[0].bucket.as_str(), objs[0].key.as_str()),
            ("logs", "AWSLogs/a b.log.gz")
        );
        assert!(objects_of("not json").unwrap_err().contains("not JSON"));
        assert!(objects_of(r#"{"requestPayload": {"hello": 1}}"#).is_err());
    }
}
