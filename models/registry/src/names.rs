//! Names that are safe as store keys and in URLs.

use crate::RegistryError;

fn check(kind: &str, value: &str, extra_ok: impl Fn(char) -> bool) -> Result<(), RegistryError> {
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if value.is_empty()
        || value.len() > 63
        || !first_ok
        || !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra_ok(c))
    {
        return Err(RegistryError::InvalidArgument(format!(
            "invalid {kind} '{value}': expected 1-63 characters of a-z, 0-9, '-' or '_', \
             starting with a letter or digit"
        )));
    }
    Ok(())
}

/// A model name: `mnist`, `linnerud-v2`.
pub fn validate_model_name(name: &str) -> Result<(), RegistryError> {
    check("model name", name, |c| c == '-' || c == '_')
}

/// An endpoint id: `mnist`, `fraud-eu`.
pub fn validate_endpoint_id(id: &str) -> Result<(), RegistryError> {
    check("endpoint id", id, |c| c == '-' || c == '_')
}

/// An alias: `champion`, `challenger`, `canary-2`. Not all digits, so it never reads as a version.
pub fn validate_alias(alias: &str) -> Result<(), RegistryError> {
    check("alias", alias, |c| c == '-' || c == '_')?;
    if alias.chars().all(|c| c.is_ascii_digit()) || alias == "latest" {
        return Err(RegistryError::InvalidArgument(format!(
            "invalid alias '{alias}': it would read as a version (use a name such as 'champion')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_model_name("mnist_cnn-2").is_ok());
        for bad in ["", "Mnist", "-a", "a/b", "a.b", &"x".repeat(64)] {
            assert!(validate_model_name(bad).is_err(), "{bad}");
        }
        assert!(validate_alias("champion").is_ok());
        assert!(validate_alias("12").is_err());
        assert!(validate_alias("latest").is_err());
    }
}
