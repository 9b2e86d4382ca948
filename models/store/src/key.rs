//! Keys are relative, `/`-separated paths that mean the same on disk and in S3.

use crate::StoreError;

/// Checks that a key is relative, has no empty, `.` or `..` segments, no backslash, and no
/// segment starting with `.` (reserved for the local backend's locks and temporary files).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.into(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("contains a backslash or NUL");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("empty path segment (leading, trailing or double '/')");
        }
        if segment.starts_with('.') {
            return bad("a segment starts with '.'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_key;

    #[test]
    fn keys() {
        assert!(validate_key("models/mnist/versions/1/model.tflite").is_ok());
        for bad in ["", "/a", "a/", "a//b", "../a", "a/./b", "a\\b", ".locks/x"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }
}
