//! The stylesheet, scripts and icons, compiled into the binary and served under names carrying a
//! hash of their content (`/static/shop.3f2a9c1e.css`), so each can be cached for a year: a
//! changed file is a new name. Pages link them through [`Assets::url`].

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::AppState;

/// The files: name, media type, content.
const FILES: &[(&str, &str, &[u8])] = &[
    ("shop.css", "text/css; charset=utf-8", include_bytes!("../static/shop.css")),
    ("checkout.js", "text/javascript; charset=utf-8", include_bytes!("../static/checkout.js")),
    ("icon.svg", "image/svg+xml", include_bytes!("../static/icon.svg")),
];

/// The assets of this build.
static ASSETS: LazyLock<Assets> = LazyLock::new(Assets::load);

/// The URL of the asset `name` (`shop.css`) in this build.
pub fn url(name: &str) -> &'static str {
    ASSETS.url(name)
}

/// The stylesheet, which every page carries inline in its `<head>`: a first visit then paints
/// without waiting a round trip for it (on a phone's network the largest part of the first paint).
pub fn stylesheet() -> &'static str {
    STYLESHEET
}

const STYLESHEET: &str = include_str!("../static/shop.css");

/// The Content-Security-Policy source that allows the inline stylesheet and no other `<style>`:
/// `'sha256-…'` of its bytes.
pub fn stylesheet_source() -> &'static str {
    static SOURCE: LazyLock<String> = LazyLock::new(|| source_of(STYLESHEET));
    &SOURCE
}

/// The page script (enhancements only: every page works without it), which every page carries
/// inline at the end of its `<body>`, as it does the stylesheet: a phone's first screen waits for
/// no request of it (a deferred file of its own was fetched and run before the first paint, and so
/// delayed the largest picture's by its round trips).
pub fn script() -> &'static str {
    SCRIPT
}

const SCRIPT: &str = include_str!("../static/shop.js");

/// The Content-Security-Policy source that allows the inline page script and no other inline
/// script: `'sha256-…'` of its bytes.
pub fn script_source() -> &'static str {
    static SOURCE: LazyLock<String> = LazyLock::new(|| source_of(SCRIPT));
    &SOURCE
}

/// `'sha256-…'` of `text`, as a Content-Security-Policy source.
fn source_of(text: &str) -> String {
    use base64::Engine as _;
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// How long a hashed asset may be cached: a year, never revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One file.
struct Asset {
    media_type: &'static str,
    body: &'static [u8],
}

/// The assets by their hashed names, and each name's hashed URL.
pub struct Assets {
    by_hashed: HashMap<String, Asset>,
    urls: HashMap<&'static str, String>,
}

impl Assets {
    /// Hashes every file.
    fn load() -> Self {
        let mut by_hashed = HashMap::new();
        let mut urls = HashMap::new();
        for &(name, media_type, body) in FILES {
            let digest = hex::encode(&Sha256::digest(body)[..5]);
            let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
            let hashed = format!("{stem}.{digest}.{extension}");
            urls.insert(name, format!("/static/{hashed}"));
            by_hashed.insert(hashed, Asset { media_type, body });
        }
        Self { by_hashed, urls }
    }

    /// The URL of the asset `name` (`shop.css`); panics on a name that is not an asset, which the
    /// render tests of every page would show.
    pub fn url(&self, name: &str) -> &str {
        self.urls.get(name).map(String::as_str).unwrap_or_else(|| panic!("no asset named {name}"))
    }
}

async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.by_hashed.get(&file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
            ],
            asset.body,
        )
            .into_response(),
        // An old name (a page cached from before a release) or none: not cached, so the next
        // release's file is found.
        None => (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no such file").into_response(),
    }
}

/// `GET /static/{file}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(serve))
}
