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
        let read_err = |e: std::io::Error| BatchError::Input(format!("{}: {e}", file.uri));
        let mut lines = LineCounter {
            file: index,
            shard_size: shard_size as u64,
            ..LineCounter::default()
        };
        let mut header = None;
        if format == Format::Csv {
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line).map_err(read_err)?;
            if n == 0 {
                return Err(BatchError::Input(format!(
                    "{}: empty CSV file (expected a header row of field names)",
                    file.uri
                )));
            }
            let text = String::from_utf8(line).map_err(|_| {
                BatchError::Input(format!(
                    "{}: the CSV header (line 1) is not UTF-8",
                    file.uri
                ))
            })?;
            header = Some(text.trim_end_matches(['\r', '\n']).to_string());
            lines.skip_line(n as u64);
        }
        // Lines are found in the reader's own buffer, never copied out.
        loop {
            let buf = reader.fill_buf().map_err(read_err)?;
            if buf.is_empty() {
                break;
            }
            let len = buf.len();
            lines.scan(buf);
            reader.consume(len);
        }
        lines.finish();
        records += lines.records;
        shards.append(&mut lines.shards);
        headers.push(header);
    }
    Ok(Plan {
        files,
        headers,
        shards,
        records,
    })
}

/// Cuts one file's bytes, as they stream past, into shards of whole lines.
#[derive(Default)]
struct LineCounter {
    file: usize,
    shard_size: u64,
    /// Bytes seen so far.
    offset: u64,
    /// Lines finished so far (the header included).
    line_no: u64,
    /// Where the line being read started, and whether it has anything but whitespace.
    line_start: u64,
    nonblank: bool,
    /// Bytes seen since the last newline.
    open: bool,
    current: Option<Shard>,
    shards: Vec<Shard>,
    records: u64,
}

impl LineCounter {
    /// A line that belongs to no shard (a CSV header), `len` bytes long.
    fn skip_line(&mut self, len: u64) {
        self.offset += len;
        self.line_no += 1;
        self.line_start = self.offset;
    }

    fn scan(&mut self, buf: &[u8]) {
        let mut pos = 0;
        while pos < buf.len() {
            let (segment, ends_line) = match memchr::memchr(b'\n', &buf[pos..]) {
                Some(i) => (&buf[pos..=pos + i], true),
                None => (&buf[pos..], false),
            };
            if !self.nonblank {
                self.nonblank = !segment.iter().all(u8::is_ascii_whitespace);
            }
            pos += segment.len();
            self.offset += segment.len() as u64;
            self.open = true;
            if ends_line {
                self.end_line();
            }
        }
    }

    /// The end of the file: a last line without a newline still counts.
    fn finish(&mut self) {
        if self.open {
            self.end_line();
        }
        self.shards.extend(self.current.take());
    }

    fn end_line(&mut self) {
        self.line_no += 1;
        if self.nonblank {
            self.records += 1;
        }
        let shard = self.current.get_or_insert(Shard {
            file: self.file,
            start: self.line_start,
            end: self.line_start,
            first_line: self.line_no,
            lines: 0,
        });
        shard.end = self.offset;
        shard.lines += 1;
        if shard.lines == self.shard_size {
            self.shards.extend(self.current.take());
        }
        self.line_start = self.offset;
        self.nonblank = false;
        self.open = false;
    }
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
    fn lines_longer_than_the_read_buffer_are_cut_whole() {
        // Lines of every length up to past the reader's buffer, blank ones made of spaces.
        let mut rng = fastrand::Rng::with_seed(7);
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for i in 0..300 {
            let len = if i % 50 == 0 {
                300_000
            } else {
                rng.usize(0..3_000)
            };
            let fill = if i % 7 == 0 { b' ' } else { b'x' };
            let line: Vec<u8> = std::iter::repeat_n(fill, len).chain([b'\n']).collect();
            expected.push(line.clone());
            text.extend(line);
        }
        for gzip in [false, true] {
            let (plan, pieces) = planned(&text, gzip, Format::Jsonl, 16);
            let blank = expected
                .iter()
                .filter(|l| l.iter().all(u8::is_ascii_whitespace));
            assert_eq!(plan.records, 300 - blank.count() as u64, "gzip={gzip}");
            let want: Vec<String> = expected
                .chunks(16)
                .map(|c| String::from_utf8(c.concat()).unwrap())
                .collect();
            assert_eq!(pieces, want, "gzip={gzip}");
            let firsts: Vec<u64> = plan.shards.iter().map(|s| s.first_line).collect();
            assert_eq!(firsts, (0..19).map(|k| 1 + 16 * k).collect::<Vec<_>>());
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
