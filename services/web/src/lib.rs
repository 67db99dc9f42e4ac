//! The web tier: the storefront a shopper uses in a browser, HTML rendered here on the server
//! from compiled templates (`templates/`), calling the other services through the platform's
//! service clients exactly as they call each other (in-process in `shop up`, HTTP in the fleet and
//! on AWS). Every page works without JavaScript; the small script in `static/` only enhances.
//!
//! Pages are cacheable where they are the same for everyone (`Cache-Control` with a short
//! lifetime for the CDN and an `ETag`), static assets are served under content-hashed names for a
//! year ([`assets`]).

pub mod account;
pub mod assets;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod orders;
pub mod page;
pub mod pages;
pub mod session;
pub mod settings;
pub mod sitemap;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use platform::infra::{Infra, Service};

use crate::catalog::Catalog;
use crate::orders::Orders;

/// The service's name.
pub const NAME: &str = "web";

/// What the pages share.
#[derive(Clone)]
pub struct AppState {
    /// The catalog: products, categories, search, stock.
    pub catalog: Arc<Catalog>,
    /// Carts and orders.
    pub orders: Arc<Orders>,
    /// Whether cookies are `Secure` (the shop is served over HTTPS).
    pub secure_cookies: bool,
    /// The shop's public address (sitemaps list absolute URLs).
    pub public_url: url::Url,
    /// The sitemaps, with the catalog walk they keep.
    pub sitemaps: Arc<sitemap::Sitemaps>,
    /// Accounts and sessions.
    pub users: Arc<account::Users>,
    /// Verifies the shoppers' access tokens.
    pub verifier: Arc<platform::auth::TokenVerifier>,
    /// How a request's viewer is read (forwarded on sign-in calls made for them).
    pub client_address: platform::http::rate_limit::ClientAddress,
    /// Stripe's Payment Element at checkout, when the shop takes cards through Stripe; `None`: the
    /// simulated provider's test methods.
    pub card_form: Option<Arc<checkout::CardForm>>,
}

/// The Content-Security-Policy of the storefront's pages: scripts, styles and everything else from
/// the shop itself (inline, only the page script and the stylesheet, by their hashes), images also
/// from where the object store serves them, inline `style` attributes (the drawn thumbnails'
/// tint), forms only to the shop, never framed.
pub fn content_security_policy(image_origin: &str) -> String {
    let (inline, script) = (assets::stylesheet_source(), assets::script_source());
    format!(
        "default-src 'self'; img-src 'self' data: {image_origin}; style-src 'self' {inline}; \
         style-src-attr 'unsafe-inline'; script-src 'self' {script}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The Content-Security-Policy of the checkout when cards are collected by Stripe's Payment
/// Element: the storefront's, plus Stripe's script, its frames and its API (the origins Stripe
/// documents for Stripe.js), nothing else.
pub fn card_form_policy(image_origin: &str) -> String {
    let (inline, script) = (assets::stylesheet_source(), assets::script_source());
    format!(
        "default-src 'self'; img-src 'self' data: {image_origin} https://*.stripe.com; style-src 'self' {inline}; \
         style-src-attr 'unsafe-inline'; script-src 'self' {script} https://js.stripe.com https://*.js.stripe.com; \
         frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; \
         connect-src 'self' https://api.stripe.com; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The storefront's routes; its HTML answers carry `csp` unless a page set a policy of its own
/// (the checkout with Stripe's Payment Element).
pub fn router_with_policy(state: AppState, csp: HeaderValue) -> Router {
    router(state).layer(axum::middleware::map_response(move |mut response: axum::response::Response| {
        let csp = csp.clone();
        async move {
            let html = response
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            if html && !response.headers().contains_key(axum::http::header::CONTENT_SECURITY_POLICY) {
                response.headers_mut().insert(axum::http::header::CONTENT_SECURITY_POLICY, csp);
            }
            response
        }
    }))
}

/// The storefront's routes.
pub fn router(state: AppState) -> Router {
    pages::router()
        .merge(cart::router())
        .merge(checkout::router())
        .merge(sitemap::router())
        .merge(account::router())
        .merge(assets::router())
        .with_state(state)
}

/// Wires the storefront into a process: clients of the product, inventory, order and user
/// services, routes.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let settings: settings::Settings = infra.config.section()?;
    page::name_the_store(settings.store_name.trim());
    let catalog = Catalog::new(
        infra.client("product", infra.config.product_url.as_ref()),
        infra.client("inventory", infra.config.inventory_url.as_ref()),
    );
    let orders = Orders::new(infra.client("order", infra.config.order_url.as_ref()));
    let state = AppState {
        catalog: Arc::new(catalog),
        orders: Arc::new(orders),
        secure_cookies: infra.config.public_url().scheme() == "https",
        public_url: infra.config.public_url(),
        sitemaps: Arc::new(sitemap::Sitemaps::default()),
        users: Arc::new(account::Users::new(infra.client("user", infra.config.user_url.as_ref()))),
        verifier: infra.verifier.clone(),
        client_address: platform::http::rate_limit::ClientAddress::from_config(&infra.config),
        card_form: None,
    };
    let image_origin = infra.objects.public_url("images/x").origin().ascii_serialization();
    let state = match settings.card_key() {
        Some(key) => {
            let key = key.to_owned();
            let policy = HeaderValue::from_str(&card_form_policy(&image_origin))
                .map_err(|_| anyhow::anyhow!("the object store's origin {image_origin} cannot go in a header"))?;
            AppState { card_form: Some(Arc::new(checkout::CardForm { key, policy })), ..state }
        }
        None => state,
    };
    let csp = HeaderValue::from_str(&content_security_policy(&image_origin))
        .map_err(|_| anyhow::anyhow!("the object store's origin {image_origin} cannot go in a header"))?;
    Ok(Service {
        name: NAME,
        router: router_with_policy(state, csp),
        openapi: utoipa::openapi::OpenApiBuilder::new().build(),
        checks: Vec::new(),
        not_found_page: Some(pages::not_found),
    })
}
