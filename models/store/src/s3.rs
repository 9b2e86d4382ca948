//! The S3 backend (aws-sdk-s3). Conditional writes use S3's own `If-None-Match: *` and
//! `If-Match: <etag>`, so compare-and-swap holds across every writer of the bucket.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::{Condition, Object, StoreError};

#[derive(Debug, Clone)]
pub(crate) struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

/// The HTTP status of a failed call, when the service answered at all.
fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

fn endpoint_override() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()))
}

impl S3Store {
    pub(crate) async fn connect(bucket: &str, prefix: &str) -> Self {
        // rustls on ring: no C toolchain beyond `cc`, and no aws-lc build on 2 cores.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .load()
            .await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            // S3 signs with a region; without one configured, the SDK's own default.
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        let config = config
            // S3-compatible servers on an endpoint override (moto, MinIO) want path-style URLs.
            .force_path_style(endpoint_override())
            .build();
        S3Store {
            client: Client::from_conf(config),
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    fn full(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.into()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn backend<E, R>(store: &str, key: &str, op: &'static str, err: &SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::Backend {
            store: store.into(),
            key: key.into(),
            op,
            message: DisplayErrorContext(err).to_string(),
        }
    }

    pub(crate) async fn get(&self, store: &str, key: &str) -> Result<Object, StoreError> {
        self.fetch(store, key, None).await
    }

    /// One GET, whole or of a byte range.
    async fn fetch(
        &self,
        store: &str,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Object, StoreError> {
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key));
        if let Some(r) = range {
            req = req.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) if status(&e) == Some(404) => {
                return Err(StoreError::NotFound {
                    store: store.into(),
                    key: key.into(),
                })
            }
            Err(e) => return Err(Self::backend(store, key, "read", &e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend {
                store: store.into(),
                key: key.into(),
                op: "read",
                message: e.to_string(),
            })?
            .into_bytes()
            .to_vec();
        Ok(Object { bytes, etag })
    }

    pub(crate) async fn etag(&self, store: &str, key: &str) -> Result<Option<String>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_string())),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(Self::backend(store, key, "read", &e)),
        }
    }

    pub(crate) async fn size(&self, store: &str, key: &str) -> Result<Option<u64>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(Self::backend(store, key, "read", &e)),
        }
    }

    pub(crate) async fn get_range(
        &self,
        store: &str,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<u8>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.fetch(store, key, Some(range)).await?.bytes)
    }

    pub(crate) async fn put(
        &self,
        store: &str,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(ByteStream::from(bytes));
        let detail = match &condition {
            Condition::Always => String::new(),
            Condition::IfAbsent => {
                req = req.if_none_match("*");
                "it already exists".to_string()
            }
            Condition::IfMatch(etag) => {
                req = req.if_match(etag);
                format!("expected etag {etag}, which no longer matches")
            }
        };
        match req.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            // 412: the condition failed; 409: a concurrent conditional write won; 404: If-Match
            // on an object that is gone.
            Err(e)
                if condition != Condition::Always
                    && matches!(status(&e), Some(412 | 409 | 404)) =>
            {
                Err(StoreError::PreconditionFailed {
                    store: store.into(),
                    key: key.into(),
                    detail,
                })
            }
            Err(e) => Err(Self::backend(store, key, "write", &e)),
        }
    }

    pub(crate) async fn list(&self, store: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full = self.full(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Self::backend(store, prefix, "list", &e))?;
            for object in page.contents() {
                if let Some(k) = object.key().and_then(|k| k.get(strip..)) {
                    keys.push(k.to_string());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    pub(crate) async fn delete(&self, store: &str, key: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(Self::backend(store, key, "delete", &e)),
        }
    }

    pub(crate) async fn ensure_bucket(&self, store: &str) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(Self::backend(store, "", "check bucket", &e)),
        }
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        let region = self.client.config().region().map(|r| r.to_string());
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        region.as_str(),
                    ))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(409) => Ok(()), // created meanwhile
            Err(e) => Err(Self::backend(store, "", "create bucket", &e)),
        }
    }
}
