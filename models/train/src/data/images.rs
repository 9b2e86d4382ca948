//! Images as examples: folders named by class (`DIR/<label>/*.png`), or a file list whose lines
//! are `path,label` (paths relative to the list). Every image must have the first one's size;
//! grayscale images give one channel, any other colour type three.

use std::path::{Path, PathBuf};

use super::{class_targets, Dataset, Features};
use crate::error::{Result, TrainError};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Reads `DIR/<label>/<image>` for every class folder, in name order.
pub fn read_image_folders(dir: &Path) -> Result<Dataset> {
    let listing = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| TrainError::data(d.display(), format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        Ok(entries)
    };
    let mut items = Vec::new();
    for class_dir in listing(dir)?.into_iter().filter(|p| p.is_dir()) {
        let label = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for file in listing(&class_dir)? {
            let image = file
                .extension()
                .is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()));
            if image {
                items.push((file, label.clone()));
            }
        }
    }
    if items.is_empty() {
        return Err(TrainError::data(
            dir.display(),
            "no images (expected DIR/<label>/*.png, .jpg or .jpeg)",
        ));
    }
    decode_all(&dir.display().to_string(), items)
}

/// Reads a file list: one `path,label` per line, paths relative to the list's folder.
pub fn read_file_list(list: &Path) -> Result<Dataset> {
    let source = list.display().to_string();
    let text =
        std::fs::read_to_string(list).map_err(|e| TrainError::data(&source, e.to_string()))?;
    let base = list.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (path, label) = line.rsplit_once(',').ok_or_else(|| {
            TrainError::data(
                &source,
                format!("line {}: expected `path,label`, found {line:?}", i + 1),
            )
        })?;
        items.push((base.join(path.trim()), label.trim().to_string()));
    }
    if items.is_empty() {
        return Err(TrainError::data(&source, "no examples"));
    }
    decode_all(&source, items)
}

fn decode_all(source: &str, items: Vec<(PathBuf, String)>) -> Result<Dataset> {
    let mut pixels = Vec::new();
    let mut shape: Option<(u32, u32, usize)> = None;
    for (path, _) in &items {
        let img = image::open(path)
            .map_err(|e| TrainError::data(path.display(), format!("not a readable image: {e}")))?;
        let (w, h) = (img.width(), img.height());
        let channels = match shape {
            Some((sw, sh, c)) => {
                if (sw, sh) != (w, h) {
                    return Err(TrainError::data(
                        path.display(),
                        format!(
                            "{w}x{h} pixels, the first image is {sw}x{sh} (images of mixed sizes)"
                        ),
                    ));
                }
                c
            }
            None => {
                let c = if img.color().has_color() { 3 } else { 1 };
                shape = Some((w, h, c));
                c
            }
        };
        if channels == 1 {
            pixels.extend_from_slice(img.to_luma8().as_raw());
        } else {
            pixels.extend_from_slice(img.to_rgb8().as_raw());
        }
    }
    let (w, h, c) = shape.unwrap_or((0, 0, 1));
    let dataset = Dataset {
        source: source.to_string(),
        item_shape: vec![h as usize, w as usize, c],
        feature_names: Vec::new(),
        features: Features::U8 {
            data: pixels,
            scale: 1.0 / 255.0,
        },
        targets: class_targets(&items.into_iter().map(|(_, l)| l).collect::<Vec<_>>()),
    };
    dataset.check()?;
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::data::Targets;

    fn png(path: &Path, w: u32, h: u32, v: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(w, h, image::Luma([v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn class_folders_become_labels() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("cat/a.png"), 3, 2, 10);
        png(&dir.path().join("dog/b.png"), 3, 2, 20);
        png(&dir.path().join("dog/c.png"), 3, 2, 30);
        std::fs::write(dir.path().join("dog/notes.txt"), "x").unwrap();
        let d = read_image_folders(dir.path()).unwrap();
        assert_eq!(d.item_shape, vec![2, 3, 1]);
        assert_eq!(
            d.targets,
            Targets::Classes {
                labels: vec![0, 1, 1],
                names: vec!["cat".into(), "dog".into()]
            }
        );
    }

    #[test]
    fn a_file_list_resolves_paths_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("img/x.png"), 2, 2, 1);
        png(&dir.path().join("img/y.png"), 2, 2, 2);
        std::fs::write(dir.path().join("list.txt"), "img/x.png,1\nimg/y.png,0\n").unwrap();
        let d = read_file_list(&dir.path().join("list.txt")).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d.features,
            Features::U8 {
                data: vec![1; 4].into_iter().chain(vec![2; 4]).collect(),
                scale: 1.0 / 255.0
            }
        );
    }

    #[test]
    fn bad_image_data_says_what_is_wrong() {
        let mixed = tempfile::tempdir().unwrap();
        png(&mixed.path().join("a/1.png"), 2, 2, 0);
        png(&mixed.path().join("b/2.png"), 3, 2, 0);
        let e = read_image_folders(mixed.path()).unwrap_err().to_string();
        assert!(
            e.contains("3x2 pixels, the first image is 2x2"),
            "mixed sizes: {e}"
        );

        let corrupt = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(corrupt.path().join("a")).unwrap();
        std::fs::write(corrupt.path().join("a/1.png"), b"not a png").unwrap();
        let e = read_image_folders(corrupt.path()).unwrap_err().to_string();
        assert!(e.contains("not a readable image"), "corrupt: {e}");

        let empty = tempfile::tempdir().unwrap();
        let e = read_image_folders(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no images"), "empty: {e}");
    }
}
