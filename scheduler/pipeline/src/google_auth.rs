//! An OAuth access token for Vertex AI from Application Default Credentials, found the way
//! Google's client libraries find them: `GOOGLE_OAUTH_ACCESS_TOKEN`, then the file named by
//! `GOOGLE_APPLICATION_CREDENTIALS` (or gcloud's `application_default_credentials.json`): a
//! service-account key (a signed JWT exchanged at its `token_uri`) or an `authorized_user`
//! refresh token; then the metadata server of a Google Cloud VM or container.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{PipelineError, Result};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const METADATA_TOKEN: &str =
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";

#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

fn bad(message: impl std::fmt::Display) -> PipelineError {
    PipelineError::Invalid(format!("Google credentials: {message}"))
}

/// Where the ADC file is, if anywhere.
fn credentials_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    let p = config.join("application_default_credentials.json");
    p.is_file().then_some(p)
}

/// An access token with the cloud-platform scope.
pub async fn access_token(client: &reqwest::Client) -> Result<String> {
    if let Ok(t) = std::env::var("GOOGLE_OAUTH_ACCESS_TOKEN") {
        if !t.is_empty() {
            return Ok(t);
        }
    }
    if let Some(path) = credentials_path() {
        let bytes = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let file: CredentialsFile =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        return from_file(client, &file)
            .await
            .map_err(|e| bad(format!("{}: {e}", path.display())));
    }
    let answer = client
        .get(METADATA_TOKEN)
        .header("Metadata-Flavor", "Google")
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|_| {
            bad("none found: set GOOGLE_APPLICATION_CREDENTIALS to a key file, run `gcloud auth application-default login`, pass --token, or run on Google Cloud")
        })?;
    token_from(answer).await.map_err(bad)
}

async fn from_file(
    client: &reqwest::Client,
    f: &CredentialsFile,
) -> std::result::Result<String, String> {
    let need = |v: &Option<String>, name: &str| {
        v.clone()
            .ok_or_else(|| format!("a {} file needs '{name}'", f.kind))
    };
    match f.kind.as_str() {
        "service_account" => {
            let uri = f
                .token_uri
                .clone()
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.into());
            let jwt = signed_jwt(
                &need(&f.client_email, "client_email")?,
                f.private_key_id.as_deref(),
                &need(&f.private_key, "private_key")?,
                &uri,
            )?;
            let answer = client
                .post(&uri)
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", jwt.as_str()),
                ])
                .send()
                .await
                .map_err(|e| format!("POST {uri}: {e}"))?;
            token_from(answer).await
        }
        "authorized_user" => {
            let uri = f
                .token_uri
                .clone()
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.into());
            let answer = client
                .post(&uri)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", need(&f.client_id, "client_id")?.as_str()),
                    (
                        "client_secret",
                        need(&f.client_secret, "client_secret")?.as_str(),
                    ),
                    (
                        "refresh_token",
                        need(&f.refresh_token, "refresh_token")?.as_str(),
                    ),
                ])
                .send()
                .await
                .map_err(|e| format!("POST {uri}: {e}"))?;
            token_from(answer).await
        }
        other => Err(format!(
            "credentials of type '{other}' are not supported (service_account, authorized_user)"
        )),
    }
}

async fn token_from(answer: reqwest::Response) -> std::result::Result<String, String> {
    let status = answer.status();
    let text = answer.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "token request: {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    serde_json::from_str::<TokenAnswer>(&text)
        .map(|t| t.access_token)
        .map_err(|e| format!("token answer: {e}"))
}

/// A JWT signed with the key (RS256), claiming the cloud-platform scope for `audience`.
pub fn signed_jwt(
    email: &str,
    key_id: Option<&str>,
    pem: &str,
    audience: &str,
) -> std::result::Result<String, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let der = pem_body(pem)?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("private_key is not a PKCS#8 RSA key: {e}"))?;
    let now = chrono::Utc::now().timestamp();
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(k) = key_id {
        header["kid"] = k.into();
    }
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
    });
    let message = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|e| format!("signing: {e}"))?;
    Ok(format!("{message}.{}", b64.encode(signature)))
}

/// The DER bytes inside a `-----BEGIN PRIVATE KEY-----` block.
fn pem_body(pem: &str) -> std::result::Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("private_key is not PEM: {e}"))
}
