//! What every page shares: the layout's data, HTML answers with their caching headers and ETag,
//! the error page, and the small formatting helpers templates use (money, slugs, URLs).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::client::ClientError;
use platform::money::Money;
use sha2::{Digest, Sha256};

/// What the layout (`base.html`) shows around every page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The document title (the shop's name is added).
    pub title: String,
    /// The meta description.
    pub description: String,
    /// The canonical URL's path, when the page has one.
    pub canonical: Option<String>,
    /// The top-level categories, for the navigation.
    pub nav: Vec<NavLink>,
    /// The search box's text (the last query).
    pub query: String,
    /// `noindex`: search results and error pages stay out of search engines.
    pub noindex: bool,
    /// The picture that is the first screen's largest element, asked for from the `<head>` (before
    /// the page below it is read), and its `sizes`.
    pub preload: Option<(Picture, &'static str)>,
}

/// The `sizes` of a product card's picture: two columns on a phone, three on a tablet, 200 pixels
/// on a wider screen.
pub const CARD_SIZES: &str = "(max-width: 420px) 46vw, (max-width: 800px) 30vw, 200px";

/// The `sizes` of the product page's pictures.
pub const PRODUCT_SIZES: &str = "(max-width: 800px) 100vw, 640px";

/// A link of the navigation.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Its text.
    pub name: String,
    /// Where it goes.
    pub href: String,
    /// Whether it is the page shown (or its parent).
    pub current: bool,
}

/// The shop's name, in titles and the header: the process's setting, once it is read.
static STORE_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the shop for every page of this process (the first name given holds).
pub fn name_the_store(name: &str) {
    let _ = STORE_NAME.set(name.to_owned());
}

/// The shop's name.
pub fn store_name() -> &'static str {
    STORE_NAME.get().map(String::as_str).unwrap_or("Shop")
}

/// How a page may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// The same for every visitor: a CDN may keep it a minute, a browser revalidates (ETag).
    Public,
    /// A visitor's own (cart, account, checkout): never stored.
    Private,
}

impl Caching {
    fn header(self) -> &'static str {
        match self {
            Caching::Public => "public, max-age=0, s-maxage=60, stale-while-revalidate=30",
            Caching::Private => "private, no-store",
        }
    }
}

/// An HTML answer of `body`, with its caching headers; a public page carries an ETag and is a 304
/// for a request that has it already.
pub fn html(request: &HeaderMap, body: String, caching: Caching) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(caching.header()));
    if caching == Caching::Public {
        let tag = format!("\"{}\"", hex::encode(&Sha256::digest(body.as_bytes())[..12]));
        let matches = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == tag || t.trim() == "*"));
        headers.insert(header::ETAG, HeaderValue::from_str(&tag).expect("hex is a valid header"));
        if matches {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }
    (headers, body).into_response()
}

/// A visitor's own page (`private, no-store`) rendered from `page` with `status`, keeping the form
/// `token` in its cookie when it is new.
pub fn personal(
    page: &impl askama::Template,
    status: StatusCode,
    token: &crate::session::Token,
    secure: bool,
) -> Result<Response, PageError> {
    let body = page.render().map_err(|error| {
        tracing::error!(%error, "a page did not render");
        PageError::Unavailable
    })?;
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(set) = token.cookie(secure) {
        headers.append(header::SET_COOKIE, set);
    }
    Ok(response)
}

/// A page that could not be shown, answered as a page in the shop's look: what happened and what
/// to do next. Never a stack trace, never JSON.
#[derive(Debug)]
pub enum PageError {
    /// Nothing here (an unknown product, category or path).
    NotFound,
    /// A service the page needs did not answer (the page says to try again shortly).
    Unavailable,
    /// A form posted from another site, or with a token that is not the visitor's.
    Forbidden,
    /// A form body that could not be read.
    BadForm,
}

impl From<ClientError> for PageError {
    fn from(error: ClientError) -> Self {
        match error.status() {
            Some(StatusCode::NOT_FOUND) => PageError::NotFound,
            _ => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "a page could not be built");
                PageError::Unavailable
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "We couldn't find that page",
                "The link may be old, or the product may no longer be sold. Try a search, or browse from the home page.",
            ),
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side",
                "Part of the shop is not answering right now. Please try again in a moment.",
            ),
            PageError::Forbidden => (
                StatusCode::FORBIDDEN,
                "That form has expired",
                "For your safety we only accept forms sent from this shop's own pages. Go back, reload the page and try again.",
            ),
            PageError::BadForm => (
                StatusCode::BAD_REQUEST,
                "We couldn't read that form",
                "Something in what was sent did not make sense to us. Go back, reload the page and try again.",
            ),
        };
        let page = crate::pages::ErrorPage {
            layout: Layout { title: heading.into(), noindex: true, ..Layout::default() },
            heading,
            message,
        };
        let body = askama::Template::render(&page).unwrap_or_else(|_| heading.to_owned());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// `amount` as a shopper reads it: `$25.00`, `€8.50`, `¥1200`, `12.00 CHF`.
pub fn money(amount: &Money) -> String {
    let (symbol, decimals) = match amount.currency.as_str() {
        "USD" => (Some("$"), 2),
        "EUR" => (Some("€"), 2),
        "GBP" => (Some("£"), 2),
        "JPY" => (Some("¥"), 0),
        "KRW" => (None, 0),
        _ => (None, 2),
    };
    let sign = if amount.amount < 0 { "-" } else { "" };
    let units = amount.amount.unsigned_abs();
    let number = match decimals {
        0 => grouped(units),
        _ => format!("{}.{:02}", grouped(units / 100), units % 100),
    };
    match symbol {
        Some(symbol) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{number} {}", amount.currency),
    }
}

/// A published image with its resized copies (made by the product service beside every image it
/// publishes: `{stem}.thumb.jpg`, `.card.jpg`, `.full.jpg` of 160, 400 and 1,200 pixels; copies made
/// before the card became 400 pixels are 480, which a browser shows as well, scaled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// The copy to load where `srcset` is not read.
    pub src: String,
    /// The copies by width, for `srcset`; empty for an image that is not ours.
    pub srcset: String,
}

impl Picture {
    /// The `size` copy (`card` or `full`) of image `url` and the srcset of that copy and the ones
    /// below it; an image the product service did not publish (any other address) as it is.
    pub fn of(url: &str, size: &str) -> Self {
        let ours = url.contains("/images/products/") || url.contains("/images/seed/");
        let Some((stem, _)) = url.rsplit_once('.').filter(|(_, e)| ours && ["png", "jpg", "gif", "webp"].contains(e))
        else {
            return Self { src: url.to_owned(), srcset: String::new() };
        };
        let copies: &[(&str, u32)] = match size {
            "full" => &[("card", 400), ("full", 1200)],
            _ => &[("thumb", 160), ("card", 400)],
        };
        let srcset =
            copies.iter().map(|(name, width)| format!("{stem}.{name}.jpg {width}w")).collect::<Vec<_>>().join(", ");
        Self { src: format!("{stem}.{size}.jpg"), srcset }
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `amount` without its cents when it has none (`$25`, `$24.50`): price ranges read better so.
pub fn money_short(amount: &Money) -> String {
    let full = money(amount);
    full.strip_suffix(".00").map(str::to_owned).unwrap_or(full)
}

/// The first letter of `name`, upper case: what is drawn for a product without an image.
pub fn initial(name: &str) -> String {
    name.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default()
}

/// A hue (0–359) of `text`, always the same for the same text: the tint of a product drawn
/// without an image.
pub fn hue(text: &str) -> u16 {
    let digest = Sha256::digest(text.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]]) % 360
}

/// A URL name made of `text`: lowercase letters and digits joined by single hyphens, at most 80
/// characters (`"Trail Shoe 2 — Blue"` → `trail-shoe-2-blue`).
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 80 {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// A product's page: `/p/{slug}-{id}`.
pub fn product_path(id: &str, name: &str) -> String {
    match slugify(name) {
        slug if slug.is_empty() => format!("/p/{id}"),
        slug => format!("/p/{slug}-{id}"),
    }
}

/// Percent-encodes `text` for a URL path segment or query value (RFC 3986's unreserved characters
/// stay as they are).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?a=1&b=2` of `pairs` (values encoded), or nothing without pairs.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    format!("?{}", joined.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_shoppers_expect() {
        assert_eq!(money(&Money::new(2500, "USD")), "$25.00");
        assert_eq!(money(&Money::new(5, "EUR")), "€0.05");
        assert_eq!(money(&Money::new(-1999, "GBP")), "-£19.99");
        assert_eq!(money(&Money::new(1200, "JPY")), "¥1,200");
        assert_eq!(money(&Money::new(1200, "CHF")), "12.00 CHF");
        assert_eq!(money(&Money::new(158_399, "USD")), "$1,583.99");
        assert_eq!(money(&Money::new(123_456_700, "JPY")), "¥123,456,700");
        assert_eq!(money_short(&Money::new(2500, "USD")), "$25");
        assert_eq!(money_short(&Money::new(2550, "USD")), "$25.50");
    }

    #[test]
    fn slugs_and_product_paths() {
        assert_eq!(slugify("Trail Shoe 2 — Blue!"), "trail-shoe-2-blue");
        assert_eq!(slugify("  <script>alert(1)</script> "), "script-alert-1-script");
        assert_eq!(slugify("日本"), "");
        assert_eq!(product_path("p-1", "日本"), "/p/p-1");
        assert_eq!(product_path("0193-ab", "Desk Lamp"), "/p/desk-lamp-0193-ab");
        assert!(slugify(&"word ".repeat(40)).len() <= 80);
    }

    #[test]
    fn our_images_are_shown_by_their_resized_copies() {
        let card = Picture::of("https://cdn.example/images/seed/tent-blue.png", "card");
        assert_eq!(card.src, "https://cdn.example/images/seed/tent-blue.card.jpg");
        assert_eq!(
            card.srcset,
            "https://cdn.example/images/seed/tent-blue.thumb.jpg 160w, https://cdn.example/images/seed/tent-blue.card.jpg 400w"
        );
        let full = Picture::of("/files/images/products/p1/ab-12.webp", "full");
        assert_eq!(
            full.srcset,
            "/files/images/products/p1/ab-12.card.jpg 400w, /files/images/products/p1/ab-12.full.jpg 1200w"
        );
        let theirs = Picture::of("https://elsewhere.example/x.png", "card");
        assert_eq!((theirs.src.as_str(), theirs.srcset.as_str()), ("https://elsewhere.example/x.png", ""));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_string(&[]), "");
        assert_eq!(query_string(&[("q", "red & blue".into()), ("b", "A/B".into())]), "?q=red%20%26%20blue&b=A%2FB");
    }
}
