//! Images (PNG, JPEG) to model input values, under size limits.

use std::io::Cursor;

use image::{imageops::FilterType, DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::error::PredictError;
use crate::model_config::{ImageConfig, Layout};

/// Bounds on what an uploaded image may declare, checked before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest accepted width or height in pixels.
    pub max_side: u32,
    /// Largest accepted width * height.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_side: 8192,
            max_pixels: 16 * 1024 * 1024,
        }
    }
}

/// Width * height as declared by a PNG or JPEG header (nothing is decoded); `None` for
/// anything else.
pub fn declared_pixels(bytes: &[u8]) -> Option<u64> {
    let format = match image::guess_format(bytes).ok()? {
        f @ (ImageFormat::Png | ImageFormat::Jpeg) => f,
        _ => return None,
    };
    // PNG: IHDR is the first chunk, width and height at fixed offsets.
    if format == ImageFormat::Png && bytes.get(12..16) == Some(b"IHDR") {
        let w = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
        let h = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
        return Some(u64::from(w) * u64::from(h));
    }
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .ok()?;
    Some(u64::from(w) * u64::from(h))
}

/// Decodes `bytes` and turns the picture into the input values `config` describes.
pub fn to_values(
    bytes: &[u8],
    config: &ImageConfig,
    limits: ImageLimits,
) -> Result<Vec<f64>, PredictError> {
    let format = image::guess_format(bytes).ok();
    let format = match format {
        Some(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        Some(other) => {
            return Err(PredictError::invalid(format!(
                "unsupported image format {other:?}; send PNG or JPEG"
            )))
        }
        None => {
            return Err(PredictError::invalid(format!(
                "the data is not a PNG or JPEG image ({} bytes starting with {})",
                bytes.len(),
                preview(bytes)
            )))
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Limits are applied once the header is read, so that an oversized image gets our message.
    reader.no_limits();
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| PredictError::invalid(format!("cannot read the {format:?} header: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w > limits.max_side || h > limits.max_side || (w as u64) * (h as u64) > limits.max_pixels {
        return Err(PredictError::invalid(format!(
            "image is {w}x{h} pixels; the limit is {side}x{side} and {px} pixels",
            side = limits.max_side,
            px = limits.max_pixels
        )));
    }
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    decode_limits.max_alloc = Some(limits.max_pixels * 4 * 2);
    decoder
        .set_limits(decode_limits)
        .map_err(|e| PredictError::invalid(format!("image refused: {e}")))?;
    let img = DynamicImage::from_decoder(decoder)
        .map_err(|e| PredictError::invalid(format!("cannot decode the {format:?} image: {e}")))?;
    Ok(pixels(img, config))
}

fn pixels(img: DynamicImage, cfg: &ImageConfig) -> Vec<f64> {
    let resize = |img: DynamicImage| {
        if img.width() == cfg.width && img.height() == cfg.height {
            img
        } else {
            img.resize_exact(cfg.width, cfg.height, FilterType::Triangle)
        }
    };
    let channels = cfg.channels as usize;
    let raw: Vec<u8> = if channels == 1 {
        resize(DynamicImage::ImageLuma8(img.to_luma8())).into_bytes()
    } else {
        resize(DynamicImage::ImageRgb8(img.to_rgb8())).into_bytes()
    };
    let pick = |v: &[f32], c: usize, default: f32| -> f32 {
        match v.len() {
            0 => default,
            1 => v[0],
            _ => v[c],
        }
    };
    let value = |p: u8, c: usize| -> f64 {
        let p = if cfg.invert { 255 - p } else { p } as f32;
        ((p * cfg.scale - pick(&cfg.mean, c, 0.0)) / pick(&cfg.std, c, 1.0)) as f64
    };
    let hw = (cfg.width * cfg.height) as usize;
    match cfg.layout {
        Layout::Hwc => raw
            .iter()
            .enumerate()
            .map(|(i, &p)| value(p, i % channels))
            .collect(),
        Layout::Chw => (0..channels)
            .flat_map(|c| (0..hw).map(move |i| (c, i)))
            .map(|(c, i)| value(raw[i * channels + c], c))
            .collect(),
    }
}

fn preview(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if head.is_empty() {
        "nothing".into()
    } else {
        format!("0x{}", head.join(""))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
        let mut out = Cursor::new(vec![]);
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn cfg() -> ImageConfig {
        serde_json::from_str(r#"{"width": 4, "height": 2, "scale": 0.5}"#).unwrap()
    }

    #[test]
    fn grayscale_png_scaled_in_row_major_order() {
        let bytes = png(4, 2, |x, y| (x + 10 * y) as u8);
        let v = to_values(&bytes, &cfg(), ImageLimits::default()).unwrap();
        assert_eq!(v, vec![0.0, 0.5, 1.0, 1.5, 5.0, 5.5, 6.0, 6.5]);
    }

    #[test]
    fn invert_and_normalize() {
        let mut c = cfg();
        c.invert = true;
        c.mean = vec![100.0];
        c.std = vec![2.0];
        let bytes = png(4, 2, |_, _| 55);
        let v = to_values(&bytes, &c, ImageLimits::default()).unwrap();
        assert!(v.iter().all(|&x| x == 0.0), "{v:?}");
    }

    #[test]
    fn non_images_and_huge_declared_sizes_are_refused() {
        let e = to_values(b"hello world", &cfg(), ImageLimits::default()).unwrap_err();
        assert!(e.message.contains("not a PNG or JPEG"), "{}", e.message);
        let big = png(64, 64, |_, _| 0);
        let limits = ImageLimits {
            max_side: 32,
            max_pixels: 1024,
        };
        let e = to_values(&big, &cfg(), limits).unwrap_err();
        assert!(e.message.contains("64x64"), "{}", e.message);
    }
}
