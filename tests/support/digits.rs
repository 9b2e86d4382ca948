//! The 10 real MNIST test digits (0..9, shipped with the `tflite` crate and fetched by
//! `make fixtures`) as PNG files, for tests of image inputs. Included with `#[path]`.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Cursor;
use std::path::Path;

/// Digit `i` is the PNG at index `i`; `root` is the repository root.
pub fn digit_pngs(root: &Path) -> Vec<Vec<u8>> {
    let raw = std::fs::read(root.join("models/runtime/testdata/fetched/mnist10.bin"))
        .expect("run `make fixtures` first");
    raw.chunks(784)
        .map(|px| {
            let img = image::GrayImage::from_raw(28, 28, px.to_vec()).unwrap();
            let mut out = Cursor::new(vec![]);
            img.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        })
        .collect()
}
