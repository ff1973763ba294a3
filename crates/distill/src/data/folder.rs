//! Image folders in the layout of torchvision's `ImageFolder`: `DIR/train/<class>/*.png|jpg|jpeg` and
//! `DIR/test/<class>/…` (or `DIR/val/<class>/…`, as ImageNet unpacks). The classes are the
//! training split's subfolder names in sorted order (torchvision's numbering); a test class
//! folder must be one of them. Images are decoded with the `image` crate; unlike torchvision,
//! which makes every image RGB, grey images stay one channel when every image of both splits is
//! grey, otherwise all are read as RGB. Images of
//! different sizes need `size` (`data.image_size`): each is resized to it (bilinear, a triangle
//! filter).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::dataset::{Dataset, Inputs, Targets};
use crate::error::{DistillError, Result};

/// File extensions read as images (case-insensitive); other files are skipped.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The class folders of `split` (sorted) and their image files (sorted).
fn scan(split: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let listing = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DistillError::io("listing", dir, e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| DistillError::io("listing", dir, e))?;
        entries.sort();
        Ok(entries)
    };
    let mut classes = Vec::new();
    for dir in listing(split)?.into_iter().filter(|p| p.is_dir()) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let files: Vec<PathBuf> = listing(&dir)?
            .into_iter()
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|e| {
                        EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())
                    })
            })
            .collect();
        classes.push((name, files));
    }
    Ok(classes)
}

/// One decoded image: its size, whether it is grey, and the image.
struct Decoded {
    size: [usize; 2],
    grey: bool,
    img: image::DynamicImage,
}

fn decode(path: &Path, size: Option<[usize; 2]>) -> Result<Decoded> {
    let img = image::ImageReader::open(path)
        .map_err(|e| DistillError::io("opening", path, e))?
        .with_guessed_format()
        .map_err(|e| DistillError::io("reading", path, e))?
        .decode()
        .map_err(|e| {
            DistillError::bad_data(
                path,
                format!("cannot decode the image ({e}); remove the file or replace it with a valid PNG or JPEG"),
            )
        })?;
    let grey = !img.color().has_color();
    let img = match size {
        Some([h, w]) if [img.height() as usize, img.width() as usize] != [h, w] => {
            img.resize_exact(w as u32, h as u32, FilterType::Triangle)
        }
        _ => img,
    };
    Ok(Decoded {
        size: [img.height() as usize, img.width() as usize],
        grey,
        img,
    })
}

/// A split's decoded images and labels (class indices into `classes`).
fn read_split(
    split: &Path,
    classes: &[String],
    size: Option<[usize; 2]>,
) -> Result<(Vec<Decoded>, Vec<u8>)> {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for (name, files) in scan(split)? {
        let Some(label) = classes.iter().position(|c| *c == name) else {
            return Err(DistillError::bad_data(
                split.join(&name),
                format!(
                    "class folder '{name}' is not among the training split's classes ({}); the test split must use the training split's class folders",
                    classes.join(", ")
                ),
            ));
        };
        for f in files {
            images.push(decode(&f, size)?);
            labels.push(label as u8);
        }
    }
    Ok((images, labels))
}

/// Packs decoded images as `[C, H, W]` (C = 1: grey, luma of colour images; C = 3: RGB) into a
/// data set.
fn pack(
    images: Vec<Decoded>,
    labels: Vec<u8>,
    channels: usize,
    classes: usize,
    origin: &Path,
    size: [usize; 2],
) -> Result<Dataset> {
    let [h, w] = size;
    let mut pixels = Vec::with_capacity(images.len() * channels * h * w);
    for d in &images {
        if channels == 1 {
            pixels.extend_from_slice(d.img.to_luma8().as_raw());
        } else {
            let rgb = d.img.to_rgb8();
            for c in 0..3 {
                pixels.extend(rgb.as_raw().iter().skip(c).step_by(3));
            }
        }
    }
    if labels.is_empty() {
        return Err(DistillError::bad_data(
            origin,
            format!(
                "no image found (files ending in {}) in its class folders",
                EXTENSIONS.join(", ")
            ),
        ));
    }
    Ok(Dataset {
        inputs: Inputs::Image {
            pixels,
            channels,
            height: h,
            width: w,
        },
        targets: Targets::Class(labels),
        num_classes: classes,
        groups: None,
    })
}

/// The test folder of `dir`: `test`, or `val` where there is no `test`.
fn test_dir(dir: &Path) -> PathBuf {
    let test = dir.join("test");
    if !test.is_dir() && dir.join("val").is_dir() {
        dir.join("val")
    } else {
        test
    }
}

/// The training split's classes: its subfolder names, sorted.
fn classes_of(train: &Path) -> Result<Vec<String>> {
    if !train.is_dir() {
        return Err(DistillError::bad_data(
            train,
            "no such folder: an image folder holds train/<class>/ and test/<class>/ (or val/<class>/) subfolders of PNG or JPEG files".into(),
        ));
    }
    let classes: Vec<String> = scan(train)?.into_iter().map(|(c, _)| c).collect();
    if classes.is_empty() || classes.len() > 256 {
        return Err(DistillError::bad_data(
            train,
            format!(
                "{} class folders; an image folder needs between 1 and 256 (labels are bytes)",
                classes.len()
            ),
        ));
    }
    Ok(classes)
}

/// Checks that the images share one size (after any resize) and returns it.
fn common_size(images: &[&Decoded], origin: &Path) -> Result<[usize; 2]> {
    let first = images.first().map_or([0, 0], |d| d.size);
    if let Some(other) = images.iter().find(|d| d.size != first) {
        return Err(DistillError::bad_data(
            origin,
            format!(
                "the images differ in size ({}×{} and {}×{}, height × width); set data.image_size = [height, width] to resize them all",
                first[0], first[1], other.size[0], other.size[1]
            ),
        ));
    }
    Ok(first)
}

/// Loads `dir/train` and `dir/test` (or `dir/val`), resizing every image to `size` if given.
pub fn load_image_folder(dir: &Path, size: Option<[usize; 2]>) -> Result<(Dataset, Dataset)> {
    let classes = classes_of(&dir.join("train"))?;
    let (train, train_labels) = read_split(&dir.join("train"), &classes, size)?;
    let (test, test_labels) = read_split(&test_dir(dir), &classes, size)?;
    let all: Vec<&Decoded> = train.iter().chain(&test).collect();
    let shape = common_size(&all, dir)?;
    let channels = if all.iter().all(|d| d.grey) { 1 } else { 3 };
    Ok((
        pack(
            train,
            train_labels,
            channels,
            classes.len(),
            &dir.join("train"),
            shape,
        )?,
        pack(
            test,
            test_labels,
            channels,
            classes.len(),
            &test_dir(dir),
            shape,
        )?,
    ))
}

/// Loads the test split alone (what `distill eval` scores on) as a model reading
/// `[channels, height, width]` images sees it: resized to its size, grey (luma) for 1 channel,
/// RGB for 3. The classes are the training split's folders where `dir/train` exists, otherwise
/// the test split's own.
pub fn load_image_folder_test(dir: &Path, input: [usize; 3]) -> Result<Dataset> {
    let [channels, h, w] = input;
    if channels != 1 && channels != 3 {
        return Err(DistillError::bad_data(
            dir,
            format!("an image folder gives 1 (grey) or 3 (RGB) channels, but the model reads {channels}"),
        ));
    }
    let classes = if dir.join("train").is_dir() {
        classes_of(&dir.join("train"))?
    } else {
        classes_of(&test_dir(dir))?
    };
    let (test, labels) = read_split(&test_dir(dir), &classes, Some([h, w]))?;
    pack(
        test,
        labels,
        channels,
        classes.len(),
        &test_dir(dir),
        [h, w],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(path: &Path, w: u32, h: u32, colour: bool, seed: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if colour {
            image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([seed, (x * 10) as u8, (y * 10) as u8])
            })
            .save(path)
            .unwrap();
        } else {
            image::GrayImage::from_fn(w, h, |x, y| image::Luma([seed + (x + y) as u8]))
                .save(path)
                .unwrap();
        }
    }

    #[test]
    fn an_image_folder_loads_classes_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        save(&d.join("train/cat/a.png"), 4, 3, true, 7);
        save(&d.join("train/cat/b.PNG"), 4, 3, true, 8);
        save(&d.join("train/ant/c.png"), 4, 3, true, 9);
        std::fs::write(d.join("train/ant/notes.txt"), "skipped").unwrap();
        save(&d.join("val/cat/d.png"), 4, 3, true, 10);
        let (train, test) = load_image_folder(d, None).unwrap();
        assert_eq!((train.len(), test.len()), (3, 1));
        assert_eq!((train.geometry(), train.num_classes), ([3, 3, 4], 2));
        // ant = 0, cat = 1 (sorted), files in sorted order
        assert_eq!(train.labels().unwrap(), &[0, 1, 1]);
        assert_eq!(test.labels().unwrap(), &[1]);
        let Inputs::Image { pixels, .. } = &train.inputs else {
            panic!("images")
        };
        // image 0 (c.png): red plane all 9, then green = 10·x
        assert!(pixels[..12].iter().all(|&p| p == 9));
        assert_eq!(&pixels[12..16], &[0, 10, 20, 30]);
        let alone = load_image_folder_test(d, [3, 3, 4]).unwrap();
        let pixels = |d: &Dataset| match &d.inputs {
            Inputs::Image { pixels, .. } => pixels.clone(),
            _ => panic!("images"),
        };
        assert_eq!(pixels(&alone), pixels(&test));
        assert_eq!(alone.labels(), test.labels());
    }

    #[test]
    fn grey_images_stay_one_channel_and_sizes_need_image_size() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        save(&d.join("train/a/1.png"), 8, 8, false, 0);
        save(&d.join("train/b/2.png"), 6, 4, false, 50);
        save(&d.join("test/a/3.png"), 8, 8, false, 100);
        let e = load_image_folder(d, None).unwrap_err().to_string();
        assert!(
            e.contains("differ in size") && e.contains("data.image_size"),
            "{e}"
        );
        let (train, test) = load_image_folder(d, Some([4, 4])).unwrap();
        assert_eq!((train.geometry(), test.geometry()), ([1, 4, 4], [1, 4, 4]));
    }

    #[test]
    fn bad_folders_and_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let e = load_image_folder(d, None).unwrap_err().to_string();
        assert!(e.contains("train/<class>/"), "{e}");
        save(&d.join("train/a/1.png"), 2, 2, true, 0);
        save(&d.join("test/zebra/1.png"), 2, 2, true, 0);
        let e = load_image_folder(d, None).unwrap_err().to_string();
        assert!(e.contains("'zebra'") && e.contains("classes (a)"), "{e}");
        std::fs::remove_dir_all(d.join("test/zebra")).unwrap();
        std::fs::create_dir_all(d.join("test/a")).unwrap();
        std::fs::write(d.join("test/a/broken.png"), b"not a png").unwrap();
        let e = load_image_folder(d, None).unwrap_err().to_string();
        assert!(
            e.contains("broken.png") && e.contains("cannot decode"),
            "{e}"
        );
    }
}
