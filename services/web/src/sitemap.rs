//! What search engines read: `robots.txt`, and a sitemap index (`/sitemap.xml`) of sitemap files
//! of at most 50,000 URLs each — the categories, then every product, as many files as the catalog
//! needs. The product files are made by walking the catalog once and kept for an hour.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Mutex;

use crate::AppState;
use crate::catalog::Query;
use crate::page::{PageError, product_path};

/// URLs in one sitemap file (the protocol's limit).
pub const URLS_PER_FILE: usize = 50_000;
/// How long the walked catalog is kept.
const KEPT_FOR: Duration = Duration::from_secs(60 * 60);
/// Products a page of the walk asks for (the search API's largest page).
const WALK_PAGE: usize = 100;

/// The product paths of the last walk, and when it was made.
#[derive(Default)]
pub struct Walked {
    at: Option<Instant>,
    paths: Arc<Vec<String>>,
}

/// The sitemaps' state: one walk at a time.
#[derive(Default)]
pub struct Sitemaps {
    walked: Mutex<Walked>,
}

impl Sitemaps {
    /// Every product's path, walking the catalog again when the last walk is an hour old.
    async fn product_paths(&self, state: &AppState) -> Result<Arc<Vec<String>>, PageError> {
        let mut walked = self.walked.lock().await;
        if let Some(at) = walked.at
            && at.elapsed() < KEPT_FOR
        {
            return Ok(walked.paths.clone());
        }
        let mut paths = Vec::new();
        let mut query = Query { sort: Some("newest".into()), limit: Some(WALK_PAGE), ..Query::default() };
        loop {
            let page = state.catalog.search(&query).await?;
            paths.extend(page.items.iter().map(|p| product_path(&p.id, &p.name)));
            match page.next_cursor {
                Some(cursor) if !page.items.is_empty() => query.cursor = Some(cursor),
                _ => break,
            }
        }
        *walked = Walked { at: Some(Instant::now()), paths: Arc::new(paths) };
        Ok(walked.paths.clone())
    }
}

/// The shop's address without its trailing slash: sitemaps list absolute URLs.
fn origin(state: &AppState) -> String {
    state.public_url.as_str().trim_end_matches('/').to_owned()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/xml; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], body)
        .into_response()
}

/// Escapes text for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn urlset(origin: &str, paths: impl Iterator<Item = String>) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for path in paths {
        body.push_str(&format!("<url><loc>{}</loc></url>\n", escape(&format!("{origin}{path}"))));
    }
    body.push_str("</urlset>\n");
    body
}

/// `GET /sitemap.xml`: the index.
async fn index(State(state): State<AppState>) -> Result<Response, PageError> {
    let total = state.catalog.search(&Query { limit: Some(1), ..Query::default() }).await?.total as usize;
    let files = total.div_ceil(URLS_PER_FILE).max(1);
    let origin = origin(&state);
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    body.push_str(&format!("<sitemap><loc>{}</loc></sitemap>\n", escape(&format!("{origin}/sitemaps/categories.xml"))));
    for n in 1..=files {
        body.push_str(&format!(
            "<sitemap><loc>{}</loc></sitemap>\n",
            escape(&format!("{origin}/sitemaps/products-{n}.xml"))
        ));
    }
    body.push_str("</sitemapindex>\n");
    Ok(xml(body))
}

/// `GET /sitemaps/{file}`: `categories.xml` or `products-N.xml`.
async fn file(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, PageError> {
    let origin = origin(&state);
    if file == "categories.xml" {
        let categories = state.catalog.categories().await?;
        let paths = std::iter::once("/".to_owned()).chain(categories.iter().map(|c| format!("/c/{}", c.slug)));
        return Ok(xml(urlset(&origin, paths)));
    }
    let n: usize = file
        .strip_prefix("products-")
        .and_then(|rest| rest.strip_suffix(".xml"))
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1)
        .ok_or(PageError::NotFound)?;
    let paths = state.sitemaps.product_paths(&state).await?;
    let start = (n - 1) * URLS_PER_FILE;
    if start >= paths.len() && n > 1 {
        return Err(PageError::NotFound);
    }
    let chunk = paths.iter().skip(start).take(URLS_PER_FILE).cloned();
    Ok(xml(urlset(&origin, chunk)))
}

/// `GET /robots.txt`: personal pages and search results stay out of indexes; the sitemap index.
async fn robots(State(state): State<AppState>) -> Response {
    let body = format!(
        "User-agent: *\nDisallow: /cart\nDisallow: /checkout\nDisallow: /account\nDisallow: /orders/\nDisallow: /search\n\nSitemap: {}/sitemap.xml\n",
        origin(&state)
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], body)
        .into_response()
}

/// The sitemaps' routes, and `robots.txt`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/robots.txt", get(robots))
        .route("/sitemap.xml", get(index))
        .route("/sitemaps/{file}", get(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_absolute_and_escaped() {
        let body = urlset("https://shop.example", ["/c/a&b".to_owned(), "/p/x-1".to_owned()].into_iter());
        assert!(body.contains("<loc>https://shop.example/c/a&amp;b</loc>"));
        assert!(body.contains("<loc>https://shop.example/p/x-1</loc>"));
        assert!(body.starts_with("<?xml") && body.ends_with("</urlset>\n"));
    }
}
