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

/// [`reencode`] on a blocking thread, [`CONCURRENT_CHECKS`] at a time; a panic in a decoder is a
/// refusal like any other bad image.
pub async fn check(bytes: bytes::Bytes, content_type: &'static str) -> Result<Vec<u8>, Refused> {
    let _turn = CHECKS.acquire().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || reencode(&bytes, content_type))
        .await
        .unwrap_or_else(|_| Err(Refused(format!("the bytes could not be read as {content_type}"))))
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
    let mut out = Cursor::new(Vec::with_capacity(bytes.len()));
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
