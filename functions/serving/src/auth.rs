//! Bearer tokens for the prediction routes: `Authorization: Bearer <token>`, checked against a
//! set of accepted tokens in constant time (each candidate is hashed, and the digests compared
//! with `subtle`, so neither a token's content nor its length shows in the timing).

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted tokens (their SHA-256 digests; the tokens themselves are not kept).
#[derive(Clone)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} accepted)", self.digests.len())
    }
}

/// Why a set of tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The source held no token.
    #[error(
        "{0} holds no token (expected one token per line; blank lines and # comments are skipped)"
    )]
    Empty(String),
    /// A token with characters a header cannot carry.
    #[error("{source_name} line {line}: a token must be visible ASCII with no spaces")]
    Invalid {
        /// Where the token came from.
        source_name: String,
        /// 1-based line.
        line: usize,
    },
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// Tokens one per line (a tokens file); blank lines and lines starting with `#` are skipped.
    /// `source_name` names the source in errors.
    pub fn parse_lines(text: &str, source_name: &str) -> Result<Self, TokensError> {
        Self::parse(text.lines(), source_name)
    }

    /// Tokens separated by commas or whitespace (the `LITEHOUSE_AUTH_TOKENS` variable).
    pub fn parse_list(text: &str, source_name: &str) -> Result<Self, TokensError> {
        Self::parse(
            text.split(|c: char| c == ',' || c.is_whitespace()),
            source_name,
        )
    }

    fn parse<'a>(
        items: impl Iterator<Item = &'a str>,
        source_name: &str,
    ) -> Result<Self, TokensError> {
        let mut digests = Vec::new();
        for (i, item) in items.enumerate() {
            let token = item.trim();
            if token.is_empty() || token.starts_with('#') {
                continue;
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokensError::Invalid {
                    source_name: source_name.to_string(),
                    line: i + 1,
                });
            }
            digests.push(digest(token.as_bytes()));
        }
        if digests.is_empty() {
            return Err(TokensError::Empty(source_name.to_string()));
        }
        Ok(Tokens { digests })
    }

    /// True when `candidate` is one of the tokens. Every accepted digest is compared, so the
    /// time does not say which one matched either.
    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = digest(candidate.as_bytes());
        let mut found = subtle::Choice::from(0);
        for accepted in &self.digests {
            found |= accepted.ct_eq(&candidate);
        }
        found.into()
    }
}

/// What the `Authorization` header says.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token.
    Bearer(&'a str),
}

/// Reads the bearer token of a request (the scheme is case-blind, as RFC 6750 allows).
pub fn credential(headers: &HeaderMap) -> Credential<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credential::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credential::Malformed;
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Credential::Bearer(token.trim())
        }
        _ => Credential::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_from_a_file_skip_blanks_and_comments() {
        let tokens = Tokens::parse_lines("# team a\nalpha\n\n  beta  \n", "tokens.txt").unwrap();
        assert!(tokens.accepts("alpha"));
        assert!(tokens.accepts("beta"));
        assert!(!tokens.accepts("alph"));
        assert!(!tokens.accepts("alphaa"));
        assert!(!tokens.accepts(""));
        assert_eq!(format!("{tokens:?}"), "Tokens(2 accepted)");
    }

    #[test]
    fn tokens_from_a_list_split_on_commas_and_spaces() {
        let tokens = Tokens::parse_list("one,two three", "LITEHOUSE_AUTH_TOKENS").unwrap();
        assert!(tokens.accepts("one") && tokens.accepts("two") && tokens.accepts("three"));
    }

    #[test]
    fn an_empty_source_is_refused_by_name() {
        let err = Tokens::parse_lines("# nothing\n\n", "tokens.txt").unwrap_err();
        assert!(
            err.to_string().contains("tokens.txt holds no token"),
            "{err}"
        );
    }

    #[test]
    fn a_token_with_control_characters_is_refused_with_its_line() {
        let err = Tokens::parse_lines("good\nbad\u{7}token\n", "t").unwrap_err();
        assert!(err.to_string().contains("t line 2"), "{err}");
    }

    #[test]
    fn the_authorization_header_is_read_as_a_bearer_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(credential(&headers), Credential::Missing);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcg=="),
        );
        assert_eq!(credential(&headers), Credential::Malformed);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer "));
        assert_eq!(credential(&headers), Credential::Malformed);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(credential(&headers), Credential::Bearer("s3cret"));
    }
}
