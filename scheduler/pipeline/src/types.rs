//! The types that flow between steps: parameters (string, integer, number, boolean) and
//! artifacts (dataset, model, metrics, schema), as the pipeline file spells them and as the KFP
//! IR encodes them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// true or false.
    Boolean,
}

/// An artifact's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactType {
    /// Data files with a `dataset.json` that says how to read them.
    Dataset,
    /// `model.tflite` with its serving config and figures.
    Model,
    /// `metrics.json`.
    Metrics,
    /// A data schema (`schema.json`).
    Schema,
}

/// What a step input or output carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortType {
    /// A parameter.
    Value(ValueType),
    /// An artifact.
    Artifact(ArtifactType),
}

impl ValueType {
    /// The KFP IR's `parameterType`.
    pub fn ir(self) -> &'static str {
        match self {
            ValueType::String => "STRING",
            ValueType::Integer => "NUMBER_INTEGER",
            ValueType::Number => "NUMBER_DOUBLE",
            ValueType::Boolean => "BOOLEAN",
        }
    }

    /// From the KFP IR's `parameterType`.
    pub fn from_ir(name: &str) -> Option<ValueType> {
        Some(match name {
            "STRING" => ValueType::String,
            "NUMBER_INTEGER" => ValueType::Integer,
            "NUMBER_DOUBLE" => ValueType::Number,
            "BOOLEAN" => ValueType::Boolean,
            _ => return None,
        })
    }

    /// The name used in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
        }
    }

    /// Whether a value of type `from` may feed an input of this type (an integer is a number).
    pub fn accepts(self, from: ValueType) -> bool {
        self == from || (self == ValueType::Number && from == ValueType::Integer)
    }

    /// `value` as this type, or why not. Strings from the command line (`--param k=v`) are
    /// parsed; JSON values must already have the type.
    pub fn coerce(self, value: &Value) -> std::result::Result<Value, String> {
        let found = || format!("expected {} {}, found {value}", article(self), self.name());
        match (self, value) {
            (ValueType::String, Value::String(_)) => Ok(value.clone()),
            (ValueType::String, Value::Number(_) | Value::Bool(_)) => {
                Ok(Value::String(value.to_string()))
            }
            (ValueType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            (ValueType::Integer, Value::Number(n)) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                _ => Err(found()),
            },
            (ValueType::Number, Value::Number(_)) => Ok(value.clone()),
            (ValueType::Boolean, Value::Bool(_)) => Ok(value.clone()),
            (_, Value::String(s)) => self.parse(s).ok_or_else(found),
            _ => Err(found()),
        }
    }

    /// Parses text (a command-line value) as this type.
    pub fn parse(self, text: &str) -> Option<Value> {
        let t = text.trim();
        match self {
            ValueType::String => Some(Value::String(text.to_string())),
            ValueType::Integer => t.parse::<i64>().ok().map(Value::from),
            ValueType::Number => t
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
            ValueType::Boolean => match t {
                "true" | "True" | "1" => Some(Value::Bool(true)),
                "false" | "False" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }
}

fn article(t: ValueType) -> &'static str {
    match t {
        ValueType::Integer => "an",
        _ => "a",
    }
}

/// A value as a command-line argument: strings bare, everything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ArtifactType {
    /// The KFP IR's `schemaTitle`.
    pub fn schema_title(self) -> &'static str {
        match self {
            ArtifactType::Dataset => "system.Dataset",
            ArtifactType::Model => "system.Model",
            ArtifactType::Metrics => "system.Metrics",
            ArtifactType::Schema => "system.Artifact",
        }
    }

    /// The name used in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactType::Dataset => "dataset",
            ArtifactType::Model => "model",
            ArtifactType::Metrics => "metrics",
            ArtifactType::Schema => "schema",
        }
    }
}

impl PortType {
    /// `string parameter`, `model artifact`.
    pub fn describe(self) -> String {
        match self {
            PortType::Value(v) => format!("{} parameter", v.name()),
            PortType::Artifact(a) => format!("{} artifact", a.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercion_parses_text_and_refuses_the_wrong_type() {
        assert_eq!(ValueType::Integer.coerce(&json!("12")), Ok(json!(12)));
        assert_eq!(ValueType::Number.coerce(&json!("0.5")), Ok(json!(0.5)));
        assert_eq!(ValueType::Boolean.coerce(&json!("true")), Ok(json!(true)));
        assert_eq!(ValueType::Integer.coerce(&json!(3.0)), Ok(json!(3)));
        assert!(ValueType::Integer
            .coerce(&json!(2.5))
            .unwrap_err()
            .contains("expected an integer, found 2.5"));
        assert!(ValueType::Number
            .coerce(&json!("NaN"))
            .unwrap_err()
            .contains("expected a number"));
        assert!(ValueType::Boolean.coerce(&json!(1)).is_err());
        assert!(ValueType::Number.accepts(ValueType::Integer));
        assert!(!ValueType::Integer.accepts(ValueType::Number));
    }
}
