//! Splitting the inputs into shards of whole lines, in one streaming pass over each file.
//! Each shard records where it starts (a byte offset, decompressed for gzip) and its first
//! line number, so any worker can run it alone and name bad lines exactly.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::source::{Buckets, InputFile};
use super::spec::Format;
use super::BatchError;

/// A run of whole lines of one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// Index into [`Plan::files`].
    pub file: usize,
    /// First byte (decompressed offset for gzip).
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// 1-based line number of its first line in the file.
    pub first_line: u64,
    /// Lines in it (blank ones included; they are skipped when run).
    pub lines: u64,
}

/// The shards of a job, fixed when it is created so that a resumed run commits the same ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Input files in order.
    pub files: Vec<InputFile>,
    /// CSV header row of each file (empty for other formats).
    #[serde(default)]
    pub headers: Vec<Option<String>>,
    /// Shards in order.
    pub shards: Vec<Shard>,
    /// Non-blank lines (records) over all shards.
    pub records: u64,
}

/// Reads every file once and cuts it into shards of `shard_size` lines. A CSV file's first
/// line is its header: it belongs to no shard and is kept in [`Plan::headers`]. Call from a
/// blocking thread.
pub fn plan(
    buckets: &Buckets,
    files: Vec<InputFile>,
    format: Format,
    shard_size: usize,
    handle: &Handle,
) -> Result<Plan, BatchError> {
    let mut shards = Vec::new();
    let mut headers = Vec::with_capacity(files.len());
    let mut records = 0u64;
    for (index, file) in files.iter().enumerate() {
        let mut reader = buckets.open(file, 0..u64::MAX, handle)?;
        let mut offset = 0u64;
        let mut line_no = 0u64;
        let mut header = None;
        let mut current: Option<Shard> = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| BatchError::Input(format!("{}: {e}", file.uri)))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let start = offset;
            offset += n as u64;
            if format == Format::Csv && header.is_none() {
                let text = String::from_utf8(line.clone()).map_err(|_| {
                    BatchError::Input(format!(
                        "{}: the CSV header (line 1) is not UTF-8",
                        file.uri
                    ))
                })?;
                header = Some(text.trim_end_matches(['\r', '\n']).to_string());
                continue;
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                records += 1;
            }
            let shard = current.get_or_insert(Shard {
                file: index,
                start,
                end: start,
                first_line: line_no,
                lines: 0,
            });
            shard.end = offset;
            shard.lines += 1;
            if shard.lines == shard_size as u64 {
                shards.extend(current.take());
            }
        }
        shards.extend(current.take());
        if format == Format::Csv && header.is_none() {
            return Err(BatchError::Input(format!(
                "{}: empty CSV file (expected a header row of field names)",
                file.uri
            )));
        }
        headers.push(header);
    }
    Ok(Plan {
        files,
        headers,
        shards,
        records,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn planned(text: &[u8], gzip: bool, format: Format, size: usize) -> (Plan, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        let bytes = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(text).unwrap();
            enc.finish().unwrap()
        } else {
            text.to_vec()
        };
        std::fs::write(&path, &bytes).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let buckets = Buckets::default();
        let files = rt
            .block_on(buckets.list(&[path.display().to_string()]))
            .unwrap();
        assert_eq!(files[0].gzip, gzip);
        let plan = plan(&buckets, files, format, size, rt.handle()).unwrap();
        let pieces = plan
            .shards
            .iter()
            .map(|s| {
                let mut out = String::new();
                let mut r = buckets
                    .open(&plan.files[0], s.start..s.end, rt.handle())
                    .unwrap();
                std::io::Read::read_to_string(&mut r, &mut out).unwrap();
                out
            })
            .collect();
        (plan, pieces)
    }

    #[test]
    fn shards_are_whole_lines_with_their_numbers() {
        for gzip in [false, true] {
            let (plan, pieces) = planned(b"a\nb\n\nc\nd", gzip, Format::Jsonl, 2);
            let firsts: Vec<u64> = plan.shards.iter().map(|s| s.first_line).collect();
            assert_eq!(firsts, vec![1, 3, 5], "gzip={gzip}");
            assert_eq!(pieces, vec!["a\nb\n", "\nc\n", "d"], "gzip={gzip}");
            assert_eq!(plan.records, 4);
        }
    }

    #[test]
    fn a_csv_header_is_kept_apart() {
        let (plan, pieces) = planned(b"x,y\r\n1,2\r\n3,4\r\n", false, Format::Csv, 10);
        assert_eq!(plan.headers, vec![Some("x,y".to_string())]);
        assert_eq!(plan.shards[0].first_line, 2);
        assert_eq!(pieces, vec!["1,2\r\n3,4\r\n"]);
    }
}
