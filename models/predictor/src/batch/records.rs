//! One input record to the instance the model receives, as Vertex AI's `instanceConfig` says:
//! the key field taken out, fields included or excluded, the result an object or an array.
//! Pure functions; the caller prefixes errors with the record's line number.

use indexmap::IndexMap;
use serde_json::{Map, Value as Json};

use super::spec::{InstanceConfig, InstanceType};
use crate::error::PredictError;
use crate::predict::json_kind;

/// What a record becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The key field's value, written as the output line's `key`.
    pub key: Option<Json>,
    /// What the model receives.
    pub value: Json,
}

/// True when the config asks for nothing beyond the record as written.
pub fn is_identity(config: &InstanceConfig) -> bool {
    config.key_field.is_none()
        && config.included_fields.is_empty()
        && config.excluded_fields.is_empty()
        && config.instance_type.is_none()
}

/// A JSON Lines record. Lines stay as written unless the config reshapes them; reshaping needs
/// an object line, whose field order is kept for array instances.
pub fn from_jsonl(line: &str, config: &InstanceConfig) -> Result<Instance, PredictError> {
    let malformed = |e: serde_json::Error| {
        PredictError::invalid(format!("malformed JSON at column {}: {e}", e.column()))
    };
    if is_identity(config) {
        let value: Json = serde_json::from_str(line).map_err(malformed)?;
        return Ok(Instance { key: None, value });
    }
    if !line.trim_start().starts_with('{') {
        let value: Json = serde_json::from_str(line).map_err(malformed)?;
        return Err(PredictError::invalid(format!(
            "instanceConfig reshapes object lines, but this line is {}",
            json_kind(&value)
        )));
    }
    let fields: IndexMap<String, Json> = serde_json::from_str(line).map_err(malformed)?;
    reshape(fields, config, InstanceType::Object)
}

/// A CSV row under its header. Unquoted numbers become JSON numbers, anything else a string;
/// rows are arrays unless the config asks for objects.
pub fn from_csv(
    header: &[String],
    row: &csv::StringRecord,
    config: &InstanceConfig,
) -> Result<Instance, PredictError> {
    if row.len() != header.len() {
        return Err(PredictError::invalid(format!(
            "the row has {} values but the header names {} columns",
            row.len(),
            header.len()
        )));
    }
    let mut fields = IndexMap::with_capacity(header.len());
    for (name, text) in header.iter().zip(row.iter()) {
        fields.insert(name.clone(), csv_value(name, text)?);
    }
    reshape(fields, config, InstanceType::Array)
}

/// A CSV cell: a finite number, or a string. NaN and infinities have no JSON form and are
/// refused by name.
fn csv_value(column: &str, text: &str) -> Result<Json, PredictError> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(Json::from(n));
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => {
            Ok(serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number))
        }
        Ok(x) => Err(PredictError::invalid(format!(
            "column '{column}' is {x}, not a finite number"
        ))),
        Err(_) => Ok(Json::String(text.to_string())),
    }
}

fn reshape(
    mut fields: IndexMap<String, Json>,
    config: &InstanceConfig,
    default: InstanceType,
) -> Result<Instance, PredictError> {
    let key = match &config.key_field {
        Some(k) => Some(fields.shift_remove(k).ok_or_else(|| {
            PredictError::invalid(format!(
                "keyField '{k}' is missing (fields: {})",
                names(&fields)
            ))
        })?),
        None => None,
    };
    let chosen: Vec<(String, Json)> = if !config.included_fields.is_empty() {
        let mut out = Vec::with_capacity(config.included_fields.len());
        for name in &config.included_fields {
            let v = fields.get(name).ok_or_else(|| {
                PredictError::invalid(format!(
                    "included field '{name}' is missing (fields: {})",
                    names(&fields)
                ))
            })?;
            out.push((name.clone(), v.clone()));
        }
        out
    } else {
        fields
            .into_iter()
            .filter(|(k, _)| !config.excluded_fields.contains(k))
            .collect()
    };
    let value = match config.instance_type.unwrap_or(default) {
        InstanceType::Array => Json::Array(chosen.into_iter().map(|(_, v)| v).collect()),
        InstanceType::Object => Json::Object(chosen.into_iter().collect::<Map<_, _>>()),
    };
    Ok(Instance { key, value })
}

fn names(fields: &IndexMap<String, Json>) -> String {
    if fields.is_empty() {
        return "none".into();
    }
    fields.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn config(
        key: Option<&str>,
        inc: &[&str],
        exc: &[&str],
        ty: Option<InstanceType>,
    ) -> InstanceConfig {
        InstanceConfig {
            instance_type: ty,
            key_field: key.map(Into::into),
            included_fields: inc.iter().map(|s| s.to_string()).collect(),
            excluded_fields: exc.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn jsonl_lines_stay_as_written_without_config() {
        let i = from_jsonl("[5, 162, 60]", &InstanceConfig::default()).unwrap();
        assert_eq!(
            i,
            Instance {
                key: None,
                value: json!([5, 162, 60])
            }
        );
    }

    #[test]
    fn key_and_field_order_follow_the_line_or_included_fields() {
        let line = r#"{"id": "a1", "z": 3, "a": 1, "m": 2}"#;
        let arr = from_jsonl(
            line,
            &config(Some("id"), &[], &[], Some(InstanceType::Array)),
        )
        .unwrap();
        assert_eq!(arr.key, Some(json!("a1")));
        assert_eq!(
            arr.value,
            json!([3, 1, 2]),
            "the line's order, not alphabetical"
        );
        let inc = from_jsonl(
            line,
            &config(None, &["m", "z"], &[], Some(InstanceType::Array)),
        )
        .unwrap();
        assert_eq!(inc.value, json!([2, 3]));
        let exc = from_jsonl(line, &config(Some("id"), &[], &["a"], None)).unwrap();
        assert_eq!(exc.value, json!({"z": 3, "m": 2}));
    }

    #[test]
    fn csv_rows_are_typed_arrays_or_objects() {
        let header: Vec<String> = ["id", "w", "h"].iter().map(|s| s.to_string()).collect();
        let row = csv::StringRecord::from(vec!["x7", "5", "162.5"]);
        let arr = from_csv(&header, &row, &config(Some("id"), &[], &[], None)).unwrap();
        assert_eq!(arr.key, Some(json!("x7")));
        assert_eq!(arr.value, json!([5, 162.5]));
        let obj = from_csv(
            &header,
            &row,
            &config(None, &[], &["id"], Some(InstanceType::Object)),
        )
        .unwrap();
        assert_eq!(obj.value, json!({"w": 5, "h": 162.5}));
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        let header: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let keyed = config(Some("id"), &[], &[], None);
        let cases: Vec<(&str, Result<Instance, PredictError>, &str)> = vec![
            (
                "malformed json",
                from_jsonl("[1, 2", &InstanceConfig::default()),
                "malformed JSON",
            ),
            (
                "array line with a key field",
                from_jsonl("[1, 2]", &keyed),
                "an array",
            ),
            (
                "missing key",
                from_jsonl(r#"{"a": 1}"#, &keyed),
                "keyField 'id' is missing (fields: a)",
            ),
            (
                "missing included field",
                from_jsonl(r#"{"a": 1}"#, &config(None, &["b"], &[], None)),
                "included field 'b'",
            ),
            (
                "short csv row",
                from_csv(
                    &header,
                    &csv::StringRecord::from(vec!["1"]),
                    &InstanceConfig::default(),
                ),
                "1 values but the header names 2",
            ),
            (
                "csv NaN",
                from_csv(
                    &header,
                    &csv::StringRecord::from(vec!["1", "NaN"]),
                    &InstanceConfig::default(),
                ),
                "column 'b' is NaN",
            ),
        ];
        for (name, result, needle) in cases {
            let e = result.unwrap_err();
            assert!(e.message.contains(needle), "{name}: {}", e.message);
        }
    }
}
