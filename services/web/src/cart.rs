//! The cart page: lines with their quantities, lines no longer sold, discount codes with the
//! reason a code was refused, a shipping estimate by country, and the pricing engine's whole
//! breakdown. Every change is a form post answered with a redirect to the cart (so a reload does
//! not post again), or, when the order service refuses it, the cart again with the reason.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use platform::money::Money;
use serde::Deserialize;

use crate::AppState;
use crate::account::{Peer, Session};
use crate::orders::{Breakdown, Cart, CartOf, Offer, Refusal};
use crate::page::{Layout, PageError, money, product_path};
use crate::session::{CART_COOKIE, Token, cart_cookie, cookie, count_cookie, set_cookie};

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
async fn again(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &Visitor,
    problems: Problems,
) -> Result<Response, PageError> {
    let cart = visitor.cart(state).await?;
    cart_page(state, headers, visitor, cart.as_ref(), problems).await
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
    visitor: &Visitor,
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
        notice: problems.notice.or_else(|| {
            visitor.unmerged.as_ref().map(|reason| {
                format!(
                    "The cart you filled before signing in could not be added to this one: {reason} It is kept: \
                     remove some items here and it will be added."
                )
            })
        }),
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
    if let (Some(cart), Some(of)) = (cart, visitor.cart_of()) {
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
            match state.orders.offers(of, &shipping.country, shipping.region.as_deref()).await {
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

/// Who is at the cart: a signed-in shopper (whose cart is their account's, the same on every
/// device) or a guest (whose cart's id is in their cookie), and the cookies their answer carries.
pub struct Visitor {
    /// The signed-in shopper's session.
    pub session: Option<Session>,
    /// A guest's cart id.
    guest: Option<String>,
    /// `Set-Cookie` values the answer must carry.
    cookies: Vec<HeaderValue>,
    /// Why the guest cart still in this signed-in browser could not be brought into the shopper's.
    pub unmerged: Option<String>,
}

impl Visitor {
    /// The visitor of a request. A signed-in shopper who still has a guest cart in this browser
    /// (one that could not be brought into theirs when they signed in) has it brought in now, or
    /// is told why it cannot be ([`Visitor::unmerged`]).
    pub async fn of(state: &AppState, headers: &HeaderMap, peer: &Peer) -> Self {
        let session = crate::account::session(state, headers, peer).await;
        let mut guest = cookie(headers, CART_COOKIE).map(str::to_owned);
        let (mut cookies, mut unmerged) = (Vec::new(), None);
        if let Some(session) = &session
            && guest.is_some()
        {
            (cookies, unmerged) = adopt(state, headers, &session.token).await;
            guest = None;
        }
        Self { session, guest, cookies, unmerged }
    }

    /// Whose cart this visitor's is: none for a guest who has not made one.
    pub fn cart_of(&self) -> Option<CartOf<'_>> {
        match (&self.session, &self.guest) {
            (Some(session), _) => Some(CartOf::Account(&session.token)),
            (None, Some(id)) => Some(CartOf::Guest(id)),
            (None, None) => None,
        }
    }

    /// The visitor's cart, if they have one that still exists.
    pub async fn cart(&self, state: &AppState) -> Result<Option<Cart>, PageError> {
        match self.cart_of() {
            Some(of) => Ok(state.orders.cart(of).await?),
            None => Ok(None),
        }
    }

    /// The visitor's cart, a new guest cart when they have none. A guest cart's cookie goes with
    /// the answer ([`Visitor::keep`]): a new one's id, an existing one's renewed life. A signed-in
    /// shopper's cart always exists (the order service makes it on first use): when it is not
    /// answered, the page says the shop is unavailable.
    pub async fn cart_or_new(&mut self, state: &AppState) -> Result<Cart, PageError> {
        let cart = match self.cart(state).await? {
            Some(cart) => cart,
            None if self.session.is_some() => return Err(PageError::Unavailable),
            None => state.orders.create_cart().await?,
        };
        if self.session.is_none() {
            self.cookies.push(cart_cookie(&cart.id, state.secure_cookies));
            self.guest = Some(cart.id.clone());
        }
        Ok(cart)
    }

    /// Answers a request with `handle`, run for its visitor, and the visitor's cookies whether it
    /// succeeded or not: an error page must carry renewed session tokens too (the refresh token
    /// they replace is spent).
    pub async fn serve(
        state: &AppState,
        headers: &HeaderMap,
        peer: &Peer,
        handle: impl AsyncFnOnce(&mut Visitor) -> Result<Response, PageError>,
    ) -> Result<Response, PageError> {
        let mut visitor = Self::of(state, headers, peer).await;
        let answer = handle(&mut visitor).await;
        Ok(visitor.keep(answer.unwrap_or_else(IntoResponse::into_response)))
    }

    /// `response` with the visitor's cookies: renewed session tokens, a new guest cart's id, a
    /// guest cart's that was brought into the shopper's. They go before the cookies the response
    /// sets itself, so that where both set one (the cart's count, after the change just made) the
    /// response's, the later, is the one the browser keeps.
    fn keep(self, mut response: Response) -> Response {
        let own: Vec<HeaderValue> = response.headers().get_all(header::SET_COOKIE).iter().cloned().collect();
        let headers = response.headers_mut();
        headers.remove(header::SET_COOKIE);
        let renewed = self.session.map(|s| s.renewed).unwrap_or_default();
        for cookie in renewed.into_iter().chain(self.cookies).chain(own) {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// When a shopper signs in: the guest cart of this browser brought into their own (which follows
/// them to every device they sign in on), and the cookies that say so — the guest cart's removed,
/// the header's count of the shopper's cart. A guest cart the order service refuses to bring in
/// (the two together hold more lines than a cart may) stays in the browser, and why is answered
/// (the cart page says it); one it does not answer about stays too. Either is tried again on the
/// shopper's next visit to the cart or checkout ([`Visitor::of`]).
pub async fn adopt(state: &AppState, headers: &HeaderMap, access_token: &str) -> (Vec<HeaderValue>, Option<String>) {
    let guest = cookie(headers, CART_COOKIE);
    let mine = CartOf::Account(access_token);
    let (cart, merged, refused) = match guest {
        Some(id) => match state.orders.merge(id, access_token).await {
            Ok(cart) => (Ok(Some(cart)), true, None),
            // Gone (an old cookie): nothing to bring in.
            Err(Refusal::NoCart) => (state.orders.cart(mine).await, true, None),
            Err(Refusal::Refused(reason)) => {
                let cart = state.orders.cart(mine).await;
                let why = too_many_lines(state, cart.as_ref().ok().and_then(Option::as_ref), id).await;
                (cart, false, Some(why.unwrap_or(reason)))
            }
            Err(Refusal::Failed(error)) => (Err(error), false, None),
        },
        None => (state.orders.cart(mine).await, false, None),
    };
    let cookies = match cart {
        Ok(cart) => {
            let mut cookies = vec![count_cookie(cart.as_ref().map(item_count).unwrap_or(0), state.secure_cookies)];
            if merged {
                cookies.push(forget_cart(state));
            }
            cookies
        }
        Err(error) => {
            tracing::warn!(error = %platform::error::cause_chain(&error), "the shopper's cart could not be read at sign-in");
            Vec::new()
        }
    };
    (cookies, refused)
}

/// Why guest cart `guest` and the shopper's `mine` cannot be one, in a shopper's words, when it is
/// that together they would hold more different items than a cart takes.
async fn too_many_lines(state: &AppState, mine: Option<&Cart>, guest: &str) -> Option<String> {
    let guest = state.orders.cart(CartOf::Guest(guest)).await.ok().flatten()?;
    let mut all = std::collections::BTreeSet::new();
    for cart in [mine?, &guest] {
        all.extend(cart.items.iter().map(|i| i.sku.as_str()).chain(cart.unavailable.iter().map(|u| u.sku.as_str())));
    }
    let most = platform::contracts::inventory::MAX_LINES;
    (all.len() > most)
        .then(|| format!("together they would hold {} different items, and a cart takes {most}.", all.len()))
}

/// The `Set-Cookie` that removes a guest cart's id from the browser.
fn forget_cart(state: &AppState) -> HeaderValue {
    set_cookie(CART_COOKIE, "", 0, state.secure_cookies)
}

/// `GET /cart`.
async fn show(State(state): State<AppState>, headers: HeaderMap, peer: Peer) -> Result<Response, PageError> {
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let cart = visitor.cart(&state).await?;
        cart_page(&state, &headers, visitor, cart.as_ref(), Problems::default()).await
    })
    .await
}

/// A redirect to the cart.
fn to_cart() -> Response {
    Redirect::to("/cart").into_response()
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
    visitor: &Visitor,
    refusal: Refusal,
    problems: impl FnOnce(String) -> Problems,
) -> Result<Response, PageError> {
    match refusal {
        Refusal::Refused(reason) => again(state, headers, visitor, problems(reason)).await,
        Refusal::NoCart => Ok(to_cart()),
        Refusal::Failed(error) => Err(error.into()),
    }
}

/// `POST /cart/lines`: adds units of a SKU (from a product page), making the cart if need be.
async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Posted,
) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let sku = form.sku.clone().filter(|s| !s.trim().is_empty());
        let (Some(sku), Some(quantity)) = (sku, form.quantity().filter(|q| *q > 0)) else {
            let problems = Problems::notice("Choose an option and a quantity from 1 to 99, then add it again.");
            return again(&state, &headers, visitor, problems).await;
        };
        let cart = visitor.cart_or_new(&state).await?;
        let had = cart.items.iter().find(|i| i.sku == sku).map(|i| i.quantity).unwrap_or(0);
        let of = visitor.cart_of().ok_or(PageError::Unavailable)?;
        match state.orders.set_item(of, &sku, (had + quantity).min(MAX_QUANTITY)).await {
            Ok(changed) => Ok(counted(&state, to_cart(), &changed)),
            Err(refusal) => refused(&state, &headers, visitor, refusal, Problems::notice).await,
        }
    })
    .await
}

/// `POST /cart/update`: sets a line's units (0 takes it out).
async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Posted,
) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let Some(of) = visitor.cart_of() else { return Ok(to_cart()) };
        match (form.sku.as_deref(), form.quantity()) {
            (Some(sku), Some(quantity)) => match state.orders.set_item(of, sku, quantity).await {
                Ok(changed) => Ok(counted(&state, to_cart(), &changed)),
                Err(refusal) => refused(&state, &headers, visitor, refusal, Problems::notice).await,
            },
            _ => again(&state, &headers, visitor, Problems::notice("Enter a quantity from 0 to 99.")).await,
        }
    })
    .await
}

/// `POST /cart/codes`: enters a discount code; a refused one is shown with the reason.
async fn add_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Posted,
) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let code = form.code.as_deref().map(str::trim).unwrap_or_default().to_owned();
        let Some(of) = visitor.cart_of() else { return Ok(to_cart()) };
        if code.is_empty() {
            return again(&state, &headers, visitor, Problems::code(code, "Enter a code.")).await;
        }
        match state.orders.add_code(of, &code).await {
            Ok(_) => Ok(to_cart()),
            Err(refusal) => refused(&state, &headers, visitor, refusal, |reason| Problems::code(code, reason)).await,
        }
    })
    .await
}

/// `POST /cart/codes/remove`.
async fn remove_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Posted,
) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let Some(of) = visitor.cart_of() else { return Ok(to_cart()) };
        let code = form.code.clone().unwrap_or_default();
        match state.orders.remove_code(of, &code).await {
            Ok(()) | Err(Refusal::NoCart) => Ok(to_cart()),
            Err(refusal) => refused(&state, &headers, visitor, refusal, Problems::notice).await,
        }
    })
    .await
}

/// `POST /cart/shipping`: where the cart ships (for the estimate), and by which method.
async fn shipping(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Posted,
) -> Result<Response, PageError> {
    let form = crate::session::read_form(&headers, form)?;
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let Some(of) = visitor.cart_of() else { return Ok(to_cart()) };
        let country = form.country.as_deref().map(str::trim).unwrap_or_default().to_uppercase();
        if !COUNTRIES.iter().any(|(code, _)| *code == country) {
            return again(&state, &headers, visitor, Problems::shipping("Choose a country from the list.")).await;
        }
        let region = form.region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_uppercase);
        let method = form.method.as_deref().filter(|m| !m.is_empty());
        match state.orders.set_shipping(of, &country, region.as_deref(), None, method).await {
            Ok(_) => Ok(to_cart()),
            Err(refusal) => refused(&state, &headers, visitor, refusal, Problems::shipping).await,
        }
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(response: &Response) -> Vec<&str> {
        response.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn a_visitors_cookies_go_with_every_answer_and_the_answers_own_come_last() {
        let renewed = HeaderValue::from_static("shop_access=new; Path=/");
        let visitor = |count: i64| Visitor {
            session: Some(Session { token: "t".into(), renewed: vec![renewed.clone()] }),
            guest: None,
            cookies: vec![count_cookie(count, false)],
            unmerged: None,
        };
        // An error page carries the renewed tokens too: the refresh token they replace is spent.
        let failed = visitor(1).keep(PageError::NotFound.into_response());
        assert_eq!(failed.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            cookies(&failed)[..2],
            ["shop_access=new; Path=/", "shop_cart_count=1; Path=/; Max-Age=2592000; SameSite=Lax"]
        );
        // The count the answer sets after its change is the later one, which the browser keeps.
        let mut changed = to_cart();
        changed.headers_mut().append(header::SET_COOKIE, count_cookie(5, false));
        let kept = visitor(1).keep(changed);
        let set = cookies(&kept);
        assert_eq!(set.len(), 3, "{set:?}");
        assert_eq!(set[0], "shop_access=new; Path=/");
        assert!(set[1].starts_with("shop_cart_count=1;") && set[2].starts_with("shop_cart_count=5;"), "{set:?}");
        assert_eq!(format!("{:?}", CartOf::Account("secret")), "CartOf::Account(..)", "no token in a debug line");
    }
}
