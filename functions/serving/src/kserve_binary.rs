//! The V2 binary tensor extension (what `tritonclient` sends by default): the body is a JSON
//! header of `Inference-Header-Content-Length` bytes followed by raw little-endian tensors, one per
//! input whose `parameters.binary_data_size` says how many bytes it takes. Outputs come back the
//! same way when asked (`outputs[].parameters.binary_data` or `parameters.binary_data_output`).

use base64::Engine as _;
use serde_json::{json, Value as Json};

use crate::error::ServeError;

/// Header naming the JSON part's length.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Bytes per element of a numeric V2 datatype.
fn element_size(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "BOOL" | "UINT8" | "INT8" => 1,
        "UINT16" | "INT16" | "FP16" => 2,
        "UINT32" | "INT32" | "FP32" => 4,
        "UINT64" | "INT64" | "FP64" => 8,
        _ => return None,
    })
}

/// Splits a binary request into its JSON header with every binary input turned into a `data`
/// array, so the JSON path handles the rest.
pub fn decode(body: &[u8], header_length: &str) -> Result<Json, ServeError> {
    let n: usize = header_length.trim().parse().map_err(|_| {
        ServeError::invalid(format!(
            "Inference-Header-Content-Length must be a byte count, got '{header_length}'"
        ))
    })?;
    if n > body.len() {
        return Err(ServeError::invalid(format!(
            "Inference-Header-Content-Length is {n} but the body has only {} bytes",
            body.len()
        )));
    }
    let mut doc: Json = serde_json::from_slice(&body[..n])
        .map_err(|e| ServeError::invalid(format!("the JSON header is malformed: {e}")))?;
    let mut rest = &body[n..];
    if let Some(inputs) = doc.get_mut("inputs").and_then(Json::as_array_mut) {
        for input in inputs {
            let Some(size) = input
                .pointer("/parameters/binary_data_size")
                .and_then(Json::as_u64)
            else {
                continue;
            };
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            let name = input
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or("?")
                .to_string();
            if size > rest.len() {
                return Err(ServeError::invalid(format!(
                    "input '{name}' declares binary_data_size {size} but only {} bytes remain",
                    rest.len()
                )));
            }
            let (raw, tail) = rest.split_at(size);
            rest = tail;
            let datatype = input.get("datatype").and_then(Json::as_str).unwrap_or("");
            input["data"] = to_json(&name, datatype, raw)?;
        }
    }
    if !rest.is_empty() {
        return Err(ServeError::invalid(format!(
            "{} bytes after the last binary input; binary_data_size values do not add up",
            rest.len()
        )));
    }
    Ok(doc)
}

/// Raw little-endian elements (or length-prefixed BYTES) as a JSON `data` array.
fn to_json(name: &str, datatype: &str, raw: &[u8]) -> Result<Json, ServeError> {
    if datatype == "BYTES" {
        // Each element: a 4-byte little-endian length, then that many bytes. The JSON path takes
        // BYTES elements as base64 strings.
        let mut items = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let len = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .filter(|&len| len <= rest.len() - 4)
                .ok_or_else(|| {
                    ServeError::invalid(format!(
                        "input '{name}': BYTES element {} has a broken length prefix",
                        items.len()
                    ))
                })?;
            items.push(json!(
                base64::engine::general_purpose::STANDARD.encode(&rest[4..4 + len])
            ));
            rest = &rest[4 + len..];
        }
        return Ok(Json::Array(items));
    }
    let size = element_size(datatype).ok_or_else(|| {
        ServeError::invalid(format!("input '{name}': unknown datatype '{datatype}'"))
    })?;
    if !raw.len().is_multiple_of(size) {
        return Err(ServeError::invalid(format!(
            "input '{name}': {} bytes is not a whole number of {datatype} elements ({size} bytes each)",
            raw.len()
        )));
    }
    let values: Vec<Json> = raw
        .chunks_exact(size)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(c);
            match datatype {
                "BOOL" => json!(c[0] != 0),
                "UINT8" => json!(c[0]),
                "INT8" => json!(c[0] as i8),
                "UINT16" => json!(u16::from_le_bytes([b[0], b[1]])),
                "INT16" => json!(i16::from_le_bytes([b[0], b[1]])),
                "FP16" => json!(half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()),
                "UINT32" => json!(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                "INT32" => json!(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                "FP32" => json!(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                "UINT64" => json!(u64::from_le_bytes(b)),
                "INT64" => json!(i64::from_le_bytes(b)),
                _ => json!(f64::from_le_bytes(b)),
            }
        })
        .collect();
    Ok(Json::Array(values))
}

/// Whether the request asks for output `name` in binary.
pub fn wants_binary(doc: &Json, name: &str) -> bool {
    let per_output = doc
        .get("outputs")
        .and_then(Json::as_array)
        .and_then(|outs| {
            outs.iter()
                .find(|o| o.get("name").and_then(Json::as_str) == Some(name))
        })
        .and_then(|o| o.pointer("/parameters/binary_data"))
        .and_then(Json::as_bool);
    per_output.unwrap_or_else(|| {
        doc.pointer("/parameters/binary_data_output")
            .and_then(Json::as_bool)
            .unwrap_or(false)
    })
}

/// Moves an output's `data` into raw little-endian bytes appended to `tail`, leaving
/// `parameters.binary_data_size` in its place.
pub fn encode_output(output: &mut Json, tail: &mut Vec<u8>) {
    let datatype = output["datatype"].as_str().unwrap_or("FP32").to_string();
    let data = output.get_mut("data").map(Json::take).unwrap_or(Json::Null);
    let start = tail.len();
    for v in data.as_array().into_iter().flatten() {
        let f = v.as_f64().unwrap_or(0.0);
        match datatype.as_str() {
            "BOOL" => tail.push(u8::from(v.as_bool().unwrap_or(f != 0.0))),
            "UINT8" => tail.push(f as u8),
            "INT8" => tail.push((f as i8) as u8),
            "INT16" => tail.extend((f as i16).to_le_bytes()),
            "UINT16" => tail.extend((f as u16).to_le_bytes()),
            "INT32" => tail.extend((f as i32).to_le_bytes()),
            "UINT32" => tail.extend((f as u32).to_le_bytes()),
            "INT64" => tail.extend(v.as_i64().unwrap_or(f as i64).to_le_bytes()),
            "UINT64" => tail.extend(v.as_u64().unwrap_or(f as u64).to_le_bytes()),
            "FP64" => tail.extend(f.to_le_bytes()),
            _ => tail.extend((f as f32).to_le_bytes()),
        }
    }
    if let Some(map) = output.as_object_mut() {
        map.remove("data");
        map.insert(
            "parameters".into(),
            json!({"binary_data_size": tail.len() - start}),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decodes_numeric_and_bytes_inputs() {
        let header = json!({"inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 7}},
        ]})
        .to_string();
        let mut body = header.clone().into_bytes();
        body.extend(1.5f32.to_le_bytes());
        body.extend((-2.0f32).to_le_bytes());
        body.extend(3u32.to_le_bytes());
        body.extend(b"png");
        let doc = decode(&body, &header.len().to_string()).unwrap();
        assert_eq!(doc["inputs"][0]["data"], json!([1.5, -2.0]));
        assert_eq!(doc["inputs"][1]["data"], json!(["cG5n"]));
        // Sizes that do not add up are refused.
        let err = decode(&body[..body.len() - 1], &header.len().to_string()).unwrap_err();
        assert!(
            err.message.contains("only 6 bytes remain"),
            "{}",
            err.message
        );
        let mut lying = body.clone();
        let at = header.len() + 8;
        lying[at..at + 4].copy_from_slice(&10u32.to_le_bytes());
        let err = decode(&lying, &header.len().to_string()).unwrap_err();
        assert!(
            err.message.contains("broken length prefix"),
            "{}",
            err.message
        );
        let err = decode(&body, "99999").unwrap_err();
        assert!(err.message.contains("only"), "{}", err.message);
    }

    #[test]
    fn encodes_outputs() {
        let mut out = json!({"name": "y", "datatype": "FP32", "shape": [2], "data": [0.5, 2.0]});
        let mut tail = vec![];
        encode_output(&mut out, &mut tail);
        assert_eq!(out["parameters"]["binary_data_size"], 8);
        assert!(out.get("data").is_none());
        assert_eq!(&tail[..4], &0.5f32.to_le_bytes());
    }
}
