//! IDX files (MNIST's format): a directory holding `train-images` / `train-labels` and, when
//! present, `t10k-images` / `t10k-labels`, named either way MNIST is shipped
//! (`train-images-idx3-ubyte` or `train-images.idx3-ubyte`), gzipped or not.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{open_maybe_gz, Dataset, Features, Targets};
use crate::error::{Result, TrainError};

/// Unsigned bytes, the only element type MNIST uses.
const UBYTE: u8 = 0x08;

/// Reads the training set and, when the directory has one, the test set.
pub fn read_idx_dir(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    if !dir.is_dir() {
        return Err(TrainError::data(
            dir.display(),
            "not a directory (IDX data is a directory holding train-images and train-labels)",
        ));
    }
    let train = read_pair(dir, "train")?.ok_or_else(|| {
        TrainError::data(
            dir.display(),
            "no train-images-idx3-ubyte (or train-images.idx3-ubyte, optionally .gz) with its \
             train-labels file",
        )
    })?;
    let test = read_pair(dir, "t10k")?;
    // One class list for both splits: every label seen in either.
    let max = |d: &Pair| d.2.iter().copied().max().unwrap_or(0);
    let classes = max(&train).max(test.as_ref().map_or(0, max));
    let names: Vec<String> = (0..=classes).map(|c| c.to_string()).collect();
    let build = |(pixels, shape, labels): Pair, which: &str| Dataset {
        source: format!("{} ({which})", dir.display()),
        item_shape: shape,
        feature_names: Vec::new(),
        features: Features::U8 {
            data: pixels,
            scale: 1.0 / 255.0,
        },
        targets: Targets::Classes {
            labels: labels.into_iter().map(u32::from).collect(),
            names: names.clone(),
        },
    };
    Ok((build(train, "train"), test.map(|t| build(t, "t10k"))))
}

/// The images and labels of one split, or `None` when its images file is absent.
/// One split's pixels, item shape and labels.
type Pair = (Vec<u8>, Vec<usize>, Vec<u8>);

fn read_pair(dir: &Path, split: &str) -> Result<Option<Pair>> {
    let Some(images) = find(dir, split, "images", 3) else {
        return Ok(None);
    };
    let labels = find(dir, split, "labels", 1).ok_or_else(|| {
        TrainError::data(
            dir.display(),
            format!(
                "{} has no {split}-labels-idx1-ubyte beside it",
                images.display()
            ),
        )
    })?;
    let (image_dims, pixels) = read_idx(&images)?;
    let (label_dims, labels) = read_idx(&labels)?;
    let (&[n, rows, cols], &[m]) = (image_dims.as_slice(), label_dims.as_slice()) else {
        return Err(TrainError::data(
            images.display(),
            format!(
                "expected images of 3 dimensions and labels of 1, found {image_dims:?} and {label_dims:?}"
            ),
        ));
    };
    if n != m {
        return Err(TrainError::data(
            dir.display(),
            format!("{n} {split} images but {m} labels"),
        ));
    }
    Ok(Some((pixels, vec![rows, cols, 1], labels)))
}

fn find(dir: &Path, split: &str, kind: &str, ndim: u8) -> Option<PathBuf> {
    [
        format!("{split}-{kind}-idx{ndim}-ubyte"),
        format!("{split}-{kind}.idx{ndim}-ubyte"),
    ]
    .into_iter()
    .flat_map(|name| [dir.join(&name), dir.join(format!("{name}.gz"))])
    .find(|p| p.is_file())
}

/// One IDX file: its dimensions and its bytes, checked against each other.
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |m: String| TrainError::data(path.display(), m);
    let mut reader = open_maybe_gz(path)?;
    let read = |r: &mut dyn Read, buf: &mut [u8]| {
        read_up_to(r, buf).map_err(|e| bad(format!("cannot read: {e}")))
    };
    // Header first, then exactly the data it announces, read once.
    let mut magic = [0u8; 4];
    let got = read(&mut reader, &mut magic)?;
    let [0, 0, dtype, ndim] = magic else {
        return Err(bad(format!(
            "not an IDX file (expected the magic bytes 00 00 08 0n, found {:02x?})",
            &magic[..got]
        )));
    };
    if dtype != UBYTE {
        return Err(bad(format!(
            "element type 0x{dtype:02x}; only unsigned bytes (0x08) are read"
        )));
    }
    let mut raw_dims = vec![0u8; 4 * usize::from(ndim)];
    let got = read(&mut reader, &mut raw_dims)?;
    if got < 4 || got < raw_dims.len() {
        return Err(bad(format!("truncated header ({} bytes)", 4 + got)));
    }
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let volume = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    // One byte past the announced size tells a longer file from an exact one.
    let mut data = Vec::with_capacity(volume.min(1 << 30));
    (&mut reader)
        .take(volume as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    if data.len() != volume {
        let found = if data.len() > volume {
            "more".to_string()
        } else {
            data.len().to_string()
        };
        return Err(bad(format!(
            "dimensions {dims:?} need {volume} bytes of data, the file has {found}"
        )));
    }
    Ok((dims, data))
}

/// Fills `buf` as far as the reader goes; the count read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, UBYTE, dims.len() as u8];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(data);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn both_namings_gzipped_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("train-images.idx3-ubyte"),
            idx(&[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7]),
        )
        .unwrap();
        std::fs::write(p.join("train-labels.idx1-ubyte"), idx(&[2], &[3, 1])).unwrap();
        std::fs::write(
            p.join("t10k-images-idx3-ubyte.gz"),
            gz(&idx(&[1, 2, 2], &[9, 9, 9, 9])),
        )
        .unwrap();
        std::fs::write(p.join("t10k-labels-idx1-ubyte.gz"), gz(&idx(&[1], &[7]))).unwrap();
        let (train, test) = read_idx_dir(p).unwrap();
        assert_eq!(train.item_shape, vec![2, 2, 1]);
        assert_eq!(train.len(), 2);
        let test = test.unwrap();
        let Targets::Classes { labels, names } = &test.targets else {
            panic!("classes")
        };
        assert_eq!(labels, &vec![7]);
        assert_eq!(names.len(), 8, "classes 0..=7 over both splits");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases: [(&str, Vec<u8>, &str); 4] = [
            ("not idx", b"hello world".to_vec(), "not an IDX file"),
            (
                "short data",
                idx(&[2, 2, 2], &[0; 7]),
                "need 8 bytes of data, the file has 7",
            ),
            (
                "int type",
                {
                    let mut b = idx(&[2, 2, 2], &[0; 8]);
                    b[2] = 0x0c;
                    b
                },
                "element type 0x0c",
            ),
            ("truncated header", vec![0, 0, 8, 3, 0], "truncated header"),
        ];
        for (name, images, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("train-images-idx3-ubyte"), images).unwrap();
            std::fs::write(
                dir.path().join("train-labels-idx1-ubyte"),
                idx(&[2], &[0, 1]),
            )
            .unwrap();
            let e = read_idx_dir(dir.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn counts_must_agree_and_labels_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            idx(&[2, 1, 1], &[0, 1]),
        )
        .unwrap();
        let e = read_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has no train-labels"), "{e}");
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx(&[3], &[0, 1, 2]),
        )
        .unwrap();
        let e = read_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("2 train images but 3 labels"), "{e}");
    }
}
