//! The cart page: lines with their quantities, lines no longer sold, discount codes with the
//! reason a code was refused, a shipping estimate by country, and the pricing engine's whole
//! breakdown. Every change is a form post answered with a redirect to the cart (so a reload does
//! not post again), or, when the order service refuses it, the cart again with the reason.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use platform::money::Money;
use serde::Deserialize;

use crate::AppState;
use crate::orders::{Breakdown, Cart, Offer, Refusal};
use crate::page::{Layout, PageError, money, product_path};
use crate::session::{CART_COOKIE, Token, cart_cookie, cookie, count_cookie};

/// Most units of one line a shopper can put in the cart from a page.
const MAX_QUANTITY: i64 = 99;

/// Where the shop ships, as the estimate's country list offers it.
pub const COUNTRIES: &[(&str, &str)] = &[
    ("US", "United States"),
    ("CA", "Canada"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("DE", "Germany"),
    ("FR", "France"),
    ("NL", "Netherlands"),
    ("BE", "Belgium"),
    ("ES", "Spain"),
    ("IT", "Italy"),
    ("AT", "Austria"),
    ("SE", "Sweden"),
    ("AU", "Australia"),
    ("NZ", "New Zealand"),
    ("JP", "Japan"),
];

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    layout: Layout,
    csrf: String,
    lines: Vec<LineView>,
    unavailable: Vec<String>,
    codes: Vec<String>,
    code_value: String,
    code_error: Option<String>,
    notice: Option<String>,
    refused: Vec<String>,
    rows: Vec<(String, String)>,
    total: String,
    tax_note: Option<String>,
    countries: Vec<(&'static str, &'static str, bool)>,
    region: String,
    offers: Vec<OfferView>,
    shipping_problem: Option<String>,
    can_check_out: bool,
}

struct LineView {
    href: String,
    name: String,
    sku: String,
    unit: String,
    quantity: i64,
    total: String,
    before: Option<String>,
}

pub struct OfferView {
    /// The method's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its price.
    pub price: String,
    /// How long it takes.
    pub days: String,
    /// Whether it is the one chosen.
    pub checked: bool,
}

/// What a failed change shows on the cart page.
#[derive(Default)]
struct Problems {
    notice: Option<String>,
    code: Option<(String, String)>,
    shipping: Option<String>,
}

impl Problems {
    /// A notice above the cart.
    fn notice(text: impl Into<String>) -> Self {
        Self { notice: Some(text.into()), ..Self::default() }
    }

    /// The code typed, and why it was refused.
    fn code(typed: String, reason: impl Into<String>) -> Self {
        Self { code: Some((typed, reason.into())), ..Self::default() }
    }

    /// Why the shipping choice was refused.
    fn shipping(reason: impl Into<String>) -> Self {
        Self { shipping: Some(reason.into()), ..Self::default() }
    }
}

/// A posted cart form, or why it could not be read.
type Posted = Result<Form<CartForm>, axum::extract::rejection::FormRejection>;

/// The visitor's cart again, with `problems`.
async fn again(state: &AppState, headers: &HeaderMap, problems: Problems) -> Result<Response, PageError> {
    let cart = current(state, headers).await?;
    cart_page(state, headers, cart.as_ref(), problems).await
}

fn amount(cart: &Cart, minor: i64) -> String {
    money(&Money::new(minor, &cart.pricing.currency))
}

/// The rows of a price breakdown as a summary shows them, and its total.
pub struct Summary {
    /// Label and amount: subtotal, each promotion applied, shipping, tax.
    pub rows: Vec<(String, String)>,
    /// What the shopper pays.
    pub total: String,
    /// The tax, where it is in the prices, or why it is not known yet.
    pub tax_note: Option<String>,
}

impl Summary {
    /// The summary of `pricing`; `destination`: whether it was priced for an address (tax known).
    pub fn of(pricing: &Breakdown, destination: bool) -> Self {
        let at = |minor: i64| money(&Money::new(minor, &pricing.currency));
        let mut rows = vec![("Subtotal".to_owned(), at(pricing.subtotal))];
        for promotion in pricing.promotions.iter().filter(|p| p.applied && p.amount > 0) {
            rows.push((promotion.name.clone(), format!("−{}", at(promotion.amount))));
        }
        // The shipping at its price: a promotion that makes it free is a row of its own above.
        match &pricing.shipping {
            Some(shipping) if shipping.price == 0 => {
                rows.push((format!("Shipping ({})", shipping.name), "Free".into()))
            }
            Some(shipping) => rows.push((format!("Shipping ({})", shipping.name), at(shipping.price))),
            None => rows.push(("Shipping".into(), "Choose a method".into())),
        }
        let mut tax_note = None;
        if pricing.tax_inclusive {
            tax_note = (pricing.tax_total > 0).then(|| format!("Includes {} tax", at(pricing.tax_total)));
        } else if destination {
            rows.push(("Tax".into(), at(pricing.tax_total)));
        } else {
            tax_note = Some("Tax is worked out once you choose where it ships.".into());
        }
        Self { rows, total: at(pricing.grand_total), tax_note }
    }
}

/// The cart page of `cart` (none: empty), with `problems` of the change just refused.
async fn cart_page(
    state: &AppState,
    headers: &HeaderMap,
    cart: Option<&Cart>,
    problems: Problems,
) -> Result<Response, PageError> {
    let token = Token::of(headers);
    let failed = problems.notice.is_some() || problems.code.is_some() || problems.shipping.is_some();
    let tree = crate::pages::nav(state).await?;
    let mut page = CartPage {
        layout: Layout { title: "Your cart".into(), noindex: true, nav: tree, ..Layout::default() },
        csrf: token.value.clone(),
        lines: Vec::new(),
        unavailable: Vec::new(),
        codes: Vec::new(),
        code_value: String::new(),
        code_error: None,
        notice: problems.notice,
        refused: Vec::new(),
        rows: Vec::new(),
        total: String::new(),
        tax_note: None,
        countries: COUNTRIES.iter().map(|&(code, name)| (code, name, false)).collect(),
        region: String::new(),
        offers: Vec::new(),
        shipping_problem: problems.shipping,
        can_check_out: false,
    };
    if let Some((value, error)) = problems.code {
        page.code_value = value;
        page.code_error = Some(error);
    }
    if let Some(cart) = cart {
        let pricing = &cart.pricing;
        page.lines = cart
            .items
            .iter()
            .map(|item| {
                let priced = pricing.lines.iter().find(|l| l.sku == item.sku);
                // What the line costs after its discounts, as the summary adds it up: with its tax
                // where prices include tax, before it where the tax is a row of its own.
                let total = match priced {
                    Some(line) if pricing.tax_inclusive => line.total,
                    Some(line) => line.subtotal - line.discount_total,
                    None => item.line_total.amount,
                };
                let discounted = priced.is_some_and(|l| l.discount_total > 0);
                LineView {
                    href: product_path(&item.product_id, &item.name),
                    name: item.name.clone(),
                    sku: item.sku.clone(),
                    unit: money(&item.unit_price),
                    quantity: item.quantity,
                    total: amount(cart, total),
                    before: discounted.then(|| money(&item.line_total)),
                }
            })
            .collect();
        page.unavailable = cart.unavailable.iter().map(|u| u.sku.clone()).collect();
        page.codes = cart.codes.clone();
        page.refused = pricing
            .promotions
            .iter()
            .filter(|p| !p.applied && p.code.is_some())
            .map(|p| {
                format!("{}: {}", p.code.as_deref().unwrap_or(&p.name), p.detail.as_deref().unwrap_or("not applied"))
            })
            .collect();
        let summary = Summary::of(pricing, cart.shipping.is_some());
        (page.rows, page.total, page.tax_note) = (summary.rows, summary.total, summary.tax_note);
        if let Some(shipping) = &cart.shipping {
            for country in &mut page.countries {
                country.2 = country.0 == shipping.country;
            }
            page.region = shipping.region.clone().unwrap_or_default();
            match state.orders.offers(&cart.id, &shipping.country, shipping.region.as_deref()).await {
                Ok(offers) => {
                    page.offers = offers.iter().map(|o| offer_view(o, shipping.method_id.as_deref())).collect()
                }
                Err(Refusal::Refused(reason)) => page.shipping_problem = page.shipping_problem.or(Some(reason)),
                Err(Refusal::NoCart) => {}
                Err(Refusal::Failed(error)) => return Err(error.into()),
            }
            if page.shipping_problem.is_none() {
                page.shipping_problem = cart.shipping_problem.clone();
            }
        }
        page.can_check_out = !cart.items.is_empty();
    }
    let status = if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let mut response = crate::page::personal(&page, status, &token, state.secure_cookies)?;
    let count = count_cookie(cart.map(item_count).unwrap_or(0), state.secure_cookies);
    response.headers_mut().append(header::SET_COOKIE, count);
    Ok(response)
}

pub fn offer_view(offer: &Offer, chosen: Option<&str>) -> OfferView {
    let price = match offer.price {
        0 => "Free".to_owned(),
        p => money(&Money::new(p, &offer.currency)),
    };
    let days = match (offer.min_days, offer.max_days) {
        (a, b) if a == b => format!("{a} business day{}", if a == 1 { "" } else { "s" }),
        (a, b) => format!("{a}–{b} business days"),
    };
    OfferView {
        id: offer.id.clone(),
        name: offer.name.clone(),
        price,
        days,
        checked: chosen == Some(offer.id.as_str()),
    }
}

/// The visitor's cart, if they have one that still exists.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Cart>, PageError> {
    match cookie(headers, CART_COOKIE) {
        Some(id) => Ok(state.orders.cart(id).await?),
        None => Ok(None),
    }
}

/// `GET /cart`.
async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let cart = current(&state, &headers).await?;
    cart_page(&state, &headers, cart.as_ref(), Problems::default()).await
}

/// A redirect to the cart, keeping `cart`'s id in the cookie.
fn to_cart(state: &AppState, cart_id: Option<&str>) -> Response {
    let mut response = Redirect::to("/cart").into_response();
    if let Some(id) = cart_id {
        response.headers_mut().append(header::SET_COOKIE, cart_cookie(id, state.secure_cookies));
    }
    response
}

/// `response` with the cookie that tells the page's script how many items `cart` holds (the header
/// shows it; not `HttpOnly`, as the script reads it, and nothing secret).
fn counted(state: &AppState, mut response: Response, cart: &Cart) -> Response {
    response.headers_mut().append(header::SET_COOKIE, count_cookie(item_count(cart), state.secure_cookies));
    response
}

/// Units in `cart`.
pub fn item_count(cart: &Cart) -> i64 {
    cart.items.iter().map(|i| i.quantity).sum()
}

/// A form's fields, all optional: a page's forms only ever send some.
#[derive(Debug, Default, Deserialize)]
struct CartForm {
    csrf: Option<String>,
    sku: Option<String>,
    quantity: Option<String>,
    code: Option<String>,
    country: Option<String>,
    region: Option<String>,
    method: Option<String>,
}

impl CartForm {
    fn quantity(&self) -> Option<i64> {
        self.quantity
            .as_deref()
            .map(str::trim)
            .and_then(|q| q.parse::<i64>().ok())
            .filter(|q| (0..=MAX_QUANTITY).contains(q))
    }
}

crate::session::posted!(CartForm);

/// What a refused change shows: the cart again with the reason, or the error page.
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    refusal: Refusal,
    problems: impl FnOnce(String) -> Problems,
) -> Result<Response, PageError> {
    match refusal {
        Refusal::Refused(reason) => again(state, headers, problems(reason)).await,
        Refusal::NoCart => Ok(to_cart(state, None)),
        Refusal::Failed(error) => Err(error.into()),
    }
}

/// `POST /cart/lines`: adds units of a SKU (from a product page), making the cart if need be.
async fn add(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    let sku = form.sku.clone().filter(|s| !s.trim().is_empty());
    let (Some(sku), Some(quantity)) = (sku, form.quantity().filter(|q| *q > 0)) else {
        return again(
            &state,
            &headers,
            Problems::notice("Choose an option and a quantity from 1 to 99, then add it again."),
        )
        .await;
    };
    let cart = match current(&state, &headers).await? {
        Some(cart) => cart,
        None => state.orders.create_cart().await?,
    };
    let had = cart.items.iter().find(|i| i.sku == sku).map(|i| i.quantity).unwrap_or(0);
    match state.orders.set_item(&cart.id, &sku, (had + quantity).min(MAX_QUANTITY)).await {
        Ok(changed) => Ok(counted(&state, to_cart(&state, Some(&cart.id)), &changed)),
        Err(refusal) => {
            let mut response = refused(&state, &headers, refusal, Problems::notice).await?;
            response.headers_mut().append(header::SET_COOKIE, cart_cookie(&cart.id, state.secure_cookies));
            Ok(response)
        }
    }
}

/// `POST /cart/update`: sets a line's units (0 takes it out).
async fn update(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    let Some(cart_id) = cookie(&headers, CART_COOKIE) else { return Ok(to_cart(&state, None)) };
    let (Some(sku), Some(quantity)) = (form.sku.as_deref(), form.quantity()) else {
        return again(&state, &headers, Problems::notice("Enter a quantity from 0 to 99.")).await;
    };
    match state.orders.set_item(cart_id, sku, quantity).await {
        Ok(changed) => Ok(counted(&state, to_cart(&state, None), &changed)),
        Err(refusal) => refused(&state, &headers, refusal, Problems::notice).await,
    }
}

/// `POST /cart/codes`: enters a discount code; a refused one is shown with the reason.
async fn add_code(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    let code = form.code.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let Some(cart_id) = cookie(&headers, CART_COOKIE) else { return Ok(to_cart(&state, None)) };
    if code.is_empty() {
        return again(&state, &headers, Problems::code(code, "Enter a code.")).await;
    }
    match state.orders.add_code(cart_id, &code).await {
        Ok(_) => Ok(to_cart(&state, None)),
        Err(refusal) => refused(&state, &headers, refusal, |reason| Problems::code(code, reason)).await,
    }
}

/// `POST /cart/codes/remove`.
async fn remove_code(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    let Some(cart_id) = cookie(&headers, CART_COOKIE) else { return Ok(to_cart(&state, None)) };
    let code = form.code.unwrap_or_default();
    match state.orders.remove_code(cart_id, &code).await {
        Ok(()) | Err(Refusal::NoCart) => Ok(to_cart(&state, None)),
        Err(refusal) => refused(&state, &headers, refusal, Problems::notice).await,
    }
}

/// `POST /cart/shipping`: where the cart ships (for the estimate), and by which method.
async fn shipping(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    let Some(cart_id) = cookie(&headers, CART_COOKIE) else { return Ok(to_cart(&state, None)) };
    let country = form.country.as_deref().map(str::trim).unwrap_or_default().to_uppercase();
    if !COUNTRIES.iter().any(|(code, _)| *code == country) {
        return again(&state, &headers, Problems::shipping("Choose a country from the list.")).await;
    }
    let region = form.region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_uppercase);
    let method = form.method.as_deref().filter(|m| !m.is_empty());
    match state.orders.set_shipping(cart_id, &country, region.as_deref(), None, method).await {
        Ok(_) => Ok(to_cart(&state, None)),
        Err(refusal) => refused(&state, &headers, refusal, Problems::shipping).await,
    }
}

/// The cart's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(show))
        .route("/cart/lines", post(add))
        .route("/cart/update", post(update))
        .route("/cart/codes", post(add_code))
        .route("/cart/codes/remove", post(remove_code))
        .route("/cart/shipping", post(shipping))
}
