//! The check an uploaded image passes before it is published: decoded, within bounds on its size in
//! pixels and on the memory the decode takes, and encoded again in its own format. What is served
//! is an image this service wrote, never the uploaded bytes, whatever they hid after or inside a
//! valid header (a page, a script). The resized variants the storefront needs come from the same
//! decoded image.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Longest side of an uploaded image, in pixels.
pub const MAX_SIDE: u32 = 10_000;

/// Most memory one decode may take: 40 megapixels of RGBA (a 10,000-pixel side only on a narrow
/// image). The rewrite converts in place, so a check never holds much more than this.
const MAX_DECODE_BYTES: u64 = 160 * 1024 * 1024;

/// Checks that run at once (each may hold [`MAX_DECODE_BYTES`]); more wait their turn.
pub const CONCURRENT_CHECKS: usize = 2;

static CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_CHECKS);

/// [`process`] on a blocking thread, [`CONCURRENT_CHECKS`] at a time; a panic in a decoder is a
/// refusal like any other bad image.
pub async fn check(bytes: bytes::Bytes, content_type: &'static str) -> Result<Checked, Refused> {
    let _turn = CHECKS.acquire().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || process(&bytes, content_type))
        .await
        .unwrap_or_else(|_| Err(Refused(format!("the bytes could not be read as {content_type}"))))
}

/// The resized copies of every published image, for the storefront's `srcset`: name and longest
/// side in pixels. Each is a JPEG stored beside the image as `{stem}.{name}.jpg` ([`variant_key`]);
/// an image smaller than a variant is not enlarged.
pub const VARIANTS: &[(&str, u32)] = &[("thumb", 160), ("card", 400), ("full", 1200)];

/// JPEG quality of the resized copies.
const VARIANT_QUALITY: u8 = 82;

/// The key of the `variant` of the image stored at `key`: `…/a.png` → `…/a.card.jpg`.
pub fn variant_key(key: &str, variant: &str) -> String {
    let stem = match key.rsplit_once('.') {
        Some((stem, extension)) if !extension.contains('/') => stem,
        _ => key,
    };
    format!("{stem}.{variant}.jpg")
}

/// An uploaded image as it is published: written again in its own format, and its resized copies.
#[derive(Debug)]
pub struct Checked {
    /// The image, written again by this service.
    pub original: Vec<u8>,
    /// Each of [`VARIANTS`]: its name and its JPEG.
    pub variants: Vec<(&'static str, Vec<u8>)>,
}

/// [`reencode`], and the [`VARIANTS`] of the same decoded image.
pub fn process(bytes: &[u8], content_type: &str) -> Result<Checked, Refused> {
    let format =
        format_of(content_type).ok_or_else(|| Refused(format!("{content_type} is not an image type we take")))?;
    let image = decode(bytes, format, content_type)?;
    let variants = variants_of(&image)?;
    Ok(Checked { original: encode(image, format, content_type, bytes.len())?, variants })
}

/// The [`VARIANTS`] of `image`: resized to fit each one's side (never enlarged), transparent parts
/// on white, as JPEGs.
pub fn variants_of(image: &DynamicImage) -> Result<Vec<(&'static str, Vec<u8>)>, Refused> {
    VARIANTS
        .iter()
        .map(|&(name, side)| {
            let fitted = if image.width() > side || image.height() > side {
                image.resize(side, side, image::imageops::FilterType::Triangle)
            } else {
                image.clone()
            };
            Ok((name, jpeg(&fitted, VARIANT_QUALITY)?))
        })
        .collect()
}

/// `image` as a JPEG of `quality`, transparent pixels laid on white: baseline, chroma subsampled
/// 4:2:0 and Huffman tables made for the image (a drawn 1,200-pixel picture is 18 KB this way, 51 KB
/// with `image`'s encoder, which keeps full chroma and its fixed tables).
pub fn jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, Refused> {
    let rgb = match image.color().has_alpha() {
        false => image.to_rgb8(),
        true => {
            let rgba = image.to_rgba8();
            image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let [r, g, b, a] = rgba.get_pixel(x, y).0;
                let on_white = |c: u8| ((c as u32 * a as u32 + 255 * (255 - a as u32)) / 255) as u8;
                image::Rgb([on_white(r), on_white(g), on_white(b)])
            })
        }
    };
    let refused = |e: &dyn std::fmt::Display| Refused(format!("a resized copy could not be written: {e}"));
    let side = |n: u32| u16::try_from(n).map_err(|e| refused(&e));
    let (width, height) = (side(rgb.width())?, side(rgb.height())?);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.set_optimized_huffman_tables(true);
    encoder.encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb).map_err(|e| refused(&e))?;
    Ok(out)
}

/// JPEG quality of a re-encoded photo.
const JPEG_QUALITY: u8 = 90;

/// Why an upload is not published.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refused(pub String);

/// The image types an admin may upload: media type, file extension, and the format it is decoded
/// and written again in.
pub const TYPES: &[(&str, &str, ImageFormat)] = &[
    ("image/jpeg", "jpg", ImageFormat::Jpeg),
    ("image/png", "png", ImageFormat::Png),
    ("image/webp", "webp", ImageFormat::WebP),
    ("image/gif", "gif", ImageFormat::Gif),
];

fn format_of(content_type: &str) -> Option<ImageFormat> {
    TYPES.iter().find(|(t, _, _)| *t == content_type).map(|(_, _, format)| *format)
}

/// Decodes `bytes` as an image of `content_type` and encodes it again in that format (a GIF keeps
/// its first frame; a WebP is written lossless). CPU-bound: call it off the async runtime.
pub fn reencode(bytes: &[u8], content_type: &str) -> Result<Vec<u8>, Refused> {
    let format =
        format_of(content_type).ok_or_else(|| Refused(format!("{content_type} is not an image type we take")))?;
    let image = decode(bytes, format, content_type)?;
    encode(image, format, content_type, bytes.len())
}

/// `image` written in `format` (the uploaded type).
fn encode(image: DynamicImage, format: ImageFormat, content_type: &str, size_hint: usize) -> Result<Vec<u8>, Refused> {
    let mut out = Cursor::new(Vec::with_capacity(size_hint));
    let written = match format {
        // JPEG has no alpha channel: a photo is written as RGB.
        ImageFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&DynamicImage::ImageRgb8(image.into_rgb8())),
        ImageFormat::Gif | ImageFormat::WebP => DynamicImage::ImageRgba8(image.into_rgba8()).write_to(&mut out, format),
        _ => image.write_to(&mut out, format),
    };
    written.map_err(|e| Refused(format!("the image could not be written again as {content_type}: {e}")))?;
    Ok(out.into_inner())
}

fn decode(bytes: &[u8], format: ImageFormat, content_type: &str) -> Result<DynamicImage, Refused> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    // A photo's EXIF orientation is applied to the pixels: the rewrite carries no EXIF.
    let mut decoder = reader.into_decoder().map_err(|error| refusal(error, content_type))?;
    let orientation = image::ImageDecoder::orientation(&mut decoder).ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|error| refusal(error, content_type))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image)
}

fn refusal(error: image::ImageError, content_type: &str) -> Refused {
    match error {
        image::ImageError::Limits(_) => Refused(format!("the image is too large: at most {MAX_SIDE} pixels a side")),
        error => Refused(format!("the bytes are not a whole {content_type} image ({error})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 40) as u8, (y * 40) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn each_type_is_written_again_as_itself_with_its_pixels() {
        for (content_type, format) in [
            ("image/png", ImageFormat::Png),
            ("image/jpeg", ImageFormat::Jpeg),
            ("image/gif", ImageFormat::Gif),
            ("image/webp", ImageFormat::WebP),
        ] {
            let written = reencode(&encoded(6, 4, format), content_type).unwrap();
            assert_eq!(platform::objects::sniff_image(&written), Some(content_type));
            let back = image::load_from_memory_with_format(&written, format).unwrap();
            assert_eq!((back.width(), back.height()), (6, 4), "{content_type}");
        }
    }

    #[test]
    fn resized_copies_fit_each_side_keep_the_shape_and_are_never_enlarged() {
        let checked = process(&encoded(2_000, 1_000, ImageFormat::Png), "image/png").unwrap();
        let sizes: Vec<(&str, (u32, u32))> = checked
            .variants
            .iter()
            .map(|(name, bytes)| {
                assert_eq!(platform::objects::sniff_image(bytes), Some("image/jpeg"));
                let image = image::load_from_memory(bytes).unwrap();
                (*name, (image.width(), image.height()))
            })
            .collect();
        assert_eq!(sizes, [("thumb", (160, 80)), ("card", (400, 200)), ("full", (1200, 600))]);
        let small = process(&encoded(300, 200, ImageFormat::Png), "image/png").unwrap();
        let full = image::load_from_memory(&small.variants[2].1).unwrap();
        assert_eq!((full.width(), full.height()), (300, 200), "not enlarged");
        assert_eq!(variant_key("images/products/p1/ab-12.png", "card"), "images/products/p1/ab-12.card.jpg");
        assert_eq!(variant_key("images/seed/x", "thumb"), "images/seed/x.thumb.jpg");
    }

    #[test]
    fn transparent_parts_of_a_copy_are_white() {
        let clear = image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 0, 0, 0]));
        let bytes = jpeg(&DynamicImage::ImageRgba8(clear), 90).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert!(back.pixels().all(|p| p.0.iter().all(|c| *c > 245)), "{:?}", back.get_pixel(0, 0));
    }

    #[test]
    fn what_hides_after_a_valid_image_is_never_written() {
        let mut polyglot = encoded(3, 3, ImageFormat::Png);
        polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
        let written = reencode(&polyglot, "image/png").unwrap();
        assert!(!written.windows(7).any(|w| w == b"<script"), "the page is gone");
        assert_eq!(image::load_from_memory(&written).unwrap().width(), 3);
    }

    #[test]
    fn a_header_without_an_image_a_bomb_and_an_unknown_type_are_refused() {
        let fake: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 24]].concat();
        assert!(reencode(&fake, "image/png").unwrap_err().0.contains("not a whole image/png image"));
        let wide = encoded(MAX_SIDE + 1, 1, ImageFormat::Png);
        assert_eq!(
            reencode(&wide, "image/png").unwrap_err().0,
            format!("the image is too large: at most {MAX_SIDE} pixels a side")
        );
        assert!(reencode(&encoded(2, 2, ImageFormat::Png), "image/svg+xml").is_err());
        assert!(
            reencode(&encoded(2, 2, ImageFormat::Png), "image/jpeg").is_err(),
            "declared one type, another's bytes"
        );
    }
}
