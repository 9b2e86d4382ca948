//! Request bodies: size limit, gzip, JSON whatever the Content-Type says, multipart images.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use serde_json::Value as Json;

use crate::error::ServeError;

/// Reads the whole body, refusing more than `limit` bytes (before and after gzip decoding).
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ServeError> {
    let raw = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ServeError::too_large(limit))?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw),
        "gzip" | "x-gzip" => gunzip(&raw, limit),
        other => Err(ServeError::new(
            crate::error::Code::InvalidArgument,
            format!("unsupported Content-Encoding '{other}' (send gzip or an uncompressed body)"),
        )),
    }
}

/// Decompresses gzip, refusing output beyond `limit` (no decompression bombs).
fn gunzip(raw: &[u8], limit: usize) -> Result<Bytes, ServeError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(raw).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ServeError::invalid(format!("the body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(ServeError::too_large(limit));
    }
    Ok(out.into())
}

/// Parses a JSON body. The Content-Type is not trusted: real clients send JSON as
/// form-urlencoded (curl -d) or with no type at all (tritonclient).
pub fn parse_json(bytes: &[u8]) -> Result<Json, ServeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ServeError::invalid(
            "the request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ServeError::invalid(format!(
            "malformed JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// The media type of the request, lowercased, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// True for a multipart/form-data request.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    content_type(headers) == "multipart/form-data"
}

/// Pulls every file part out of a multipart/form-data body (any field name; `image` by
/// convention), in order.
pub async fn multipart_files(headers: &HeaderMap, body: Bytes) -> Result<Vec<Bytes>, ServeError> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| {
            ct.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| ServeError::invalid("multipart/form-data request without a boundary"))?;
    let stream = futures_once(body);
    let mut form = multer::Multipart::new(stream, boundary);
    let mut files = vec![];
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ServeError::invalid(format!("malformed multipart body: {e}")))?
    {
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ServeError::invalid(format!("malformed multipart body: {e}")))?;
        files.push(bytes);
    }
    if files.is_empty() {
        return Err(ServeError::invalid(
            "the multipart body has no parts; upload an image with -F image=@digit.png",
        ));
    }
    Ok(files)
}

fn futures_once(
    body: Bytes,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::once(async move { Ok(body) })
}
