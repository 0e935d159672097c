//! S3: locations, streaming object bodies, and JSON objects under
//! optimistic concurrency (conditional writes on the ETag).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// `s3://bucket/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Loc {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix: empty or ending in `/` when given as a folder.
    pub prefix: String,
}

/// Why a text is not an [`S3Loc`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3LocError {
    /// It does not start with `s3://`.
    #[error("`{0}` is not an s3:// URI")]
    NotS3(String),
    /// `s3://` is followed by no bucket name.
    #[error("`{0}` names no bucket")]
    NoBucket(String),
}

impl FromStr for S3Loc {
    type Err = S3LocError;
    fn from_str(s: &str) -> Result<Self, S3LocError> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| S3LocError::NotS3(s.to_string()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3LocError::NoBucket(s.to_string()));
        }
        Ok(S3Loc {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for S3Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl S3Loc {
    /// The key of `name` under this prefix (a `/` is put between them when
    /// the prefix does not end in one).
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() || self.prefix.ends_with('/') {
            format!("{}{name}", self.prefix)
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

/// An S3 failure, with whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{op} s3://{bucket}/{key}: {message}")]
pub struct S3Error {
    /// The operation.
    pub op: &'static str,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Error code (`NoSuchKey`, `SlowDown`...).
    pub code: Option<String>,
    /// What happened.
    pub message: String,
}

impl S3Error {
    pub(crate) fn from_sdk<E>(
        op: &'static str,
        bucket: &str,
        key: &str,
        e: &aws_sdk_s3::error::SdkError<E, HttpResponse>,
    ) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        S3Error {
            op,
            bucket: bucket.into(),
            key: key.into(),
            status: e.raw_response().map(|r| r.status().as_u16()),
            code: e.code().map(str::to_string),
            message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
        }
    }

    /// The object does not exist (deleted between event and read).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404) || matches!(self.code.as_deref(), Some("NoSuchKey" | "NotFound"))
    }

    /// A conditional write lost the race (412), or S3 reports a concurrent
    /// conditional write (409 `ConditionalRequestConflict`).
    pub fn is_conflict(&self) -> bool {
        matches!(self.status, Some(412 | 409))
            || matches!(
                self.code.as_deref(),
                Some("PreconditionFailed" | "ConditionalRequestConflict")
            )
    }

    /// May a retry succeed? Not for a refused request (400, 403) nor for a
    /// state object that does not parse (`InvalidState`); for anything else
    /// (throttling, 5xx, a broken connection) it may.
    pub fn retryable(&self) -> bool {
        !matches!(self.status, Some(400 | 403)) && self.code.as_deref() != Some("InvalidState")
    }
}

/// A JSON object and the ETag it was read at (`None`: it does not exist).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The value (the type's default when the object does not exist).
    pub value: T,
    /// The ETag it was read at.
    pub etag: Option<String>,
}

/// Read a JSON object; a missing object reads as `T::default()`.
pub async fn get_json<T: DeserializeOwned + Default>(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Versioned<T>, S3Error> {
    let out = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) => {
            let err = S3Error::from_sdk("GetObject", bucket, key, &e);
            if err.is_not_found() {
                return Ok(Versioned {
                    value: T::default(),
                    etag: None,
                });
            }
            return Err(err);
        }
    };
    let etag = out.e_tag().map(str::to_string);
    let bytes = out.body.collect().await.map_err(|e| S3Error {
        op: "GetObject",
        bucket: bucket.into(),
        key: key.into(),
        status: None,
        code: None,
        message: e.to_string(),
    })?;
    let value = serde_json::from_slice(&bytes.into_bytes()).map_err(|e| S3Error {
        op: "GetObject",
        bucket: bucket.into(),
        key: key.into(),
        status: None,
        code: Some("InvalidState".into()),
        message: format!("not a fail2waf state object: {e}"),
    })?;
    Ok(Versioned { value, etag })
}

/// Write a JSON object only if it is still at `etag` (`None`: only if it
/// does not exist yet). `Ok(Err(()))` means another writer came first.
pub async fn put_json<T: Serialize>(
    s3: &Client,
    bucket: &str,
    key: &str,
    value: &T,
    etag: Option<&str>,
) -> Result<Result<String, ()>, S3Error> {
    let body = serde_json::to_vec(value).expect("state serializes");
    let mut req = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body));
    req = match etag {
        Some(t) => req.if_match(t),
        None => req.if_none_match("*"),
    };
    match req.send().await {
        Ok(o) => Ok(Ok(o.e_tag().unwrap_or_default().to_string())),
        Err(e) => {
            let err = S3Error::from_sdk("PutObject", bucket, key, &e);
            if err.is_conflict() {
                Ok(Err(()))
            } else {
                Err(err)
            }
        }
    }
}

/// A blocking [`Read`] over an S3 body that a task downloads ahead, so
/// download overlaps decompression and parsing. A failure of the download
/// (not of the data) is flagged in [`BodyReader::transport_failed`].
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    failed: Arc<AtomicBool>,
}

impl BodyReader {
    /// Start downloading `body` on the current runtime, up to `ahead`
    /// chunks in advance.
    pub fn spawn(mut body: ByteStream, ahead: usize) -> BodyReader {
        let (tx, rx) = mpsc::channel(ahead.max(1));
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        tokio::spawn(async move {
            loop {
                match body.try_next().await {
                    Ok(Some(b)) => {
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        flag.store(true, Ordering::SeqCst);
                        let _ = tx
                            .send(Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                e.to_string(),
                            )))
                            .await;
                        return;
                    }
                }
            }
        });
        BodyReader {
            rx,
            chunk: bytes::Bytes::new(),
            failed,
        }
    }

    /// Did the download itself fail (so the object was not read whole)?
    pub fn transport_failed(&self) -> Arc<AtomicBool> {
        self.failed.clone()
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// An S3 client from the environment (`AWS_ENDPOINT_URL` and the usual
/// credentials chain). Path-style addressing is used when an endpoint is
/// set, as local peers need.
pub async fn client_from_env(config: &aws_config::SdkConfig) -> Client {
    let mut b = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
    {
        b = b.force_path_style(true);
    }
    Client::from_conf(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l: S3Loc = "s3://state-bucket/fail2waf/".parse().unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("state-bucket", "fail2waf/")
        );
        assert_eq!(l.key("ledger.json"), "fail2waf/ledger.json");
        let l: S3Loc = "s3://b".parse().unwrap();
        assert_eq!(l.key("x"), "x");
        let l: S3Loc = "s3://b/p".parse().unwrap();
        assert_eq!(l.key("x"), "p/x");
        assert!("s3:///x".parse::<S3Loc>().is_err());
        assert!("/tmp/x".parse::<S3Loc>().is_err());
        assert_eq!(l.to_string(), "s3://b/p");
    }
}
