//! Checkout as a guest, on one page: contact, shipping address, shipping method, payment, and a
//! place-order button that says the amount; then the order's page, found again by its secret
//! token, with its status as it moves (the page refreshes itself while the order is on its way).
//!
//! Placing is safe against double clicks and reloads: the page carries one key per checkout
//! attempt, sent as the order's `Idempotency-Key`, so the same attempt posted twice is one order.
//! A declined payment fails the order; its page gives the reason and a way back to checkout with
//! the same cart (its lines, codes and shipping are put back).

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use platform::address::AddressInput;
use serde::Deserialize;

use crate::AppState;
use crate::account::Peer;
use crate::cart::{COUNTRIES, OfferView, Summary, Visitor, offer_view};
use crate::orders::{Cart, Order, Refusal};
use crate::page::{Layout, PageError, money, product_path};
use crate::session::{Token, read_form};

/// The payment methods of the simulated provider: Stripe's test payment methods.
const TEST_METHODS: &[(&str, &str)] = &[
    ("pm_card_visa", "Test Visa card (succeeds)"),
    ("pm_card_mastercard", "Test Mastercard (succeeds)"),
    ("pm_card_chargeDeclined", "Test card that is declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", "Test card without enough funds"),
];

/// Cards collected by Stripe's Payment Element: the publishable key and the checkout's policy
/// that lets Stripe's script, frames and API in.
pub struct CardForm {
    /// `pk_live_…` or `pk_test_…`.
    pub key: String,
    /// The checkout's Content-Security-Policy ([`crate::card_form_policy`]).
    pub policy: HeaderValue,
}

/// What a free order (nothing to charge, so no payment is taken) names as its payment method
/// when cards are collected by Stripe: the order API wants a method's token on every order.
const NO_PAYMENT: &str = "pm_free_order";

/// The Payment Element's settings in the page: the key, the amount it shows, the currency.
pub struct CardView {
    key: String,
    amount: i64,
    currency: String,
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    /// Stripe's Payment Element, when cards are collected by Stripe (else the test methods).
    card: Option<CardView>,
    layout: Layout,
    /// The signed-in shopper's email (the order is theirs; no email is asked).
    account: Option<String>,
    csrf: String,
    attempt: String,
    fields: Fields,
    errors: Vec<(&'static str, String)>,
    notice: Option<String>,
    countries: Vec<(&'static str, &'static str, bool)>,
    offers: Vec<OfferView>,
    shipping_problem: Option<String>,
    methods: Vec<(&'static str, &'static str, bool)>,
    lines: Vec<(String, i64, String)>,
    rows: Vec<(String, String)>,
    total: String,
    tax_note: Option<String>,
}

impl CheckoutPage {
    /// The error of `field`, if any.
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, e)| e.as_str())
    }

    /// Whether a shipping method is chosen (else the first is, as the cheapest).
    fn any_offer_checked(&self) -> bool {
        self.offers.iter().any(|o| o.checked)
    }
}

/// The checkout form's fields, as posted (and shown again).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Fields {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    attempt: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    payment: String,
}

/// A fresh checkout attempt's key.
fn new_attempt() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("web-{}", hex::encode(bytes))
}

/// Renders the checkout of `cart` with `fields` (as typed), `errors` by field and a `notice`.
#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &Visitor,
    cart: &Cart,
    account: Option<&str>,
    mut fields: Fields,
    errors: Vec<(&'static str, String)>,
    notice: Option<String>,
    shipping_problem: Option<String>,
) -> Result<Response, PageError> {
    let Some(of) = visitor.cart_of() else { return Ok(Redirect::to("/cart").into_response()) };
    let token = Token::of(headers);
    if fields.attempt.is_empty() {
        fields.attempt = new_attempt();
    }
    if let Some(shipping) = &cart.shipping {
        if fields.country.is_empty() {
            fields.country = shipping.country.clone();
        }
        if fields.region.is_empty() {
            fields.region = shipping.region.clone().unwrap_or_default();
        }
        if fields.postal_code.is_empty() {
            fields.postal_code = shipping.postal_code.clone().unwrap_or_default();
        }
        if fields.method.is_empty() {
            fields.method = shipping.method_id.clone().unwrap_or_default();
        }
    }
    if fields.country.is_empty() {
        fields.country = "US".into();
    }
    if state.card_form.is_some() {
        // A payment method made by Stripe's script is used once: a page shown again asks anew.
        fields.payment.clear();
    } else if fields.payment.is_empty() {
        fields.payment = TEST_METHODS[0].0.into();
    }
    let mut shipping_problem = shipping_problem;
    let mut offers: Vec<OfferView> = match state.orders.offers(of, &fields.country, Some(&fields.region)).await {
        Ok(offers) => offers.iter().map(|o| offer_view(o, Some(&fields.method))).collect(),
        Err(Refusal::Refused(reason)) => {
            shipping_problem = shipping_problem.or(Some(reason));
            Vec::new()
        }
        Err(Refusal::NoCart) => Vec::new(),
        Err(Refusal::Failed(error)) => return Err(error.into()),
    };
    // The method shown as chosen (the cheapest, listed first, when none is) is the cart's too, so
    // that the summary and the button say what placing the order charges.
    let mut chosen_cart = None;
    let wanted = offers.iter().position(|o| o.checked).unwrap_or(0);
    let in_cart = cart.shipping.as_ref().and_then(|s| s.method_id.as_deref());
    if let Some(offer) = offers.get_mut(wanted)
        && in_cart != Some(offer.id.as_str())
    {
        match state
            .orders
            .set_shipping(of, &fields.country, text(&fields.region), text(&fields.postal_code), Some(&offer.id))
            .await
        {
            Ok(updated) => {
                offer.checked = true;
                fields.method = offer.id.clone();
                chosen_cart = Some(updated);
            }
            Err(Refusal::Failed(error)) => return Err(error.into()),
            Err(_) => {}
        }
    }
    let cart = chosen_cart.as_ref().unwrap_or(cart);
    let card = state.card_form.as_ref().map(|form| CardView {
        key: form.key.clone(),
        amount: cart.pricing.grand_total,
        currency: cart.pricing.currency.to_ascii_lowercase(),
    });
    let summary = Summary::of(&cart.pricing, cart.shipping.is_some());
    let failed = !errors.is_empty() || notice.is_some();
    let view = CheckoutPage {
        layout: Layout { title: "Checkout".into(), noindex: true, nav: Vec::new(), ..Layout::default() },
        account: account.map(str::to_owned),
        csrf: token.value.clone(),
        attempt: fields.attempt.clone(),
        countries: COUNTRIES.iter().map(|&(code, name)| (code, name, code == fields.country)).collect(),
        methods: match card {
            Some(_) => Vec::new(),
            None => TEST_METHODS.iter().map(|&(id, label)| (id, label, id == fields.payment)).collect(),
        },
        card,
        fields,
        errors,
        notice,
        offers,
        shipping_problem,
        lines: cart.items.iter().map(|i| (i.name.clone(), i.quantity, money(&i.line_total))).collect(),
        rows: summary.rows,
        total: summary.total,
        tax_note: summary.tax_note,
    };
    let status = if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let mut response = crate::page::personal(&view, status, &token, state.secure_cookies)?;
    if let Some(form) = &state.card_form {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, form.policy.clone());
    }
    Ok(response)
}

/// `?declined=…` on the way back from a declined payment.
#[derive(Debug, Default, Deserialize)]
struct Back {
    declined: Option<String>,
}

/// What a decline code means to a shopper.
fn decline_text(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "Your card was declined: it does not have enough funds.",
        "expired_card" => "Your card was declined: it has expired.",
        "incorrect_cvc" => "Your card was declined: the security code is wrong.",
        "timed_out" => "We could not get an answer from the payment provider in time.",
        _ => "Your card was declined.",
    }
}

/// `GET /checkout`.
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    Query(back): Query<Back>,
) -> Result<Response, PageError> {
    Visitor::serve(&state, &headers, &peer, async |visitor| {
        let Some(cart) = visitor.cart(&state).await?.filter(|c| !c.items.is_empty()) else {
            return Ok(Redirect::to("/cart").into_response());
        };
        checkout_page(&state, &headers, visitor, &cart, back).await
    })
    .await
}

/// The checkout of `cart`, filled in with what is known of the visitor.
async fn checkout_page(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &Visitor,
    cart: &Cart,
    back: Back,
) -> Result<Response, PageError> {
    let mut fields = Fields::default();
    let account = match &visitor.session {
        Some(session) => {
            // The first saved address is filled in; the shopper may change it.
            let (me, saved) =
                futures::try_join!(state.users.me(&session.token), state.users.addresses(&session.token))?;
            if let Some(first) = saved.first() {
                let a = &first.address;
                fields.name = a.name.clone();
                fields.line1 = a.line1.clone();
                fields.line2 = a.line2.clone().unwrap_or_default();
                fields.city = a.city.clone();
                fields.region = a.region.clone().unwrap_or_default();
                fields.postal_code = a.postal_code.clone();
                fields.country = a.country.clone();
            }
            Some(me.email)
        }
        None => None,
    };
    let notice = back
        .declined
        .as_deref()
        .map(|code| format!("{} Choose another way to pay; your cart is as it was.", decline_text(code)));
    page(state, headers, visitor, cart, account.as_deref(), fields, Vec::new(), notice, None).await
}

/// How the shopper pays: one of the simulated provider's test methods, or a payment method Stripe's
/// script made in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paying {
    TestMethods,
    Card,
}

/// Checks what was typed: the errors by field.
fn check(fields: &Fields, signed_in: bool, paying: Paying) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let email = fields.email.trim();
    let plausible = signed_in
        || email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.ends_with('.'));
    if !plausible {
        errors.push(("email", "Enter an email address like name@example.com.".into()));
    }
    for (field, value, label) in [
        ("name", &fields.name, "your full name"),
        ("line1", &fields.line1, "the street address"),
        ("city", &fields.city, "the city"),
        ("postal_code", &fields.postal_code, "the postal code"),
    ] {
        if value.trim().is_empty() {
            errors.push((field, format!("Enter {label}.")));
        } else if value.chars().count() > 100 {
            errors.push((field, "Use at most 100 characters.".into()));
        }
    }
    if !COUNTRIES.iter().any(|(code, _)| *code == fields.country) {
        errors.push(("country", "Choose a country from the list.".into()));
    }
    match paying {
        Paying::TestMethods if !TEST_METHODS.iter().any(|(id, _)| *id == fields.payment) => {
            errors.push(("payment", "Choose how to pay.".into()));
        }
        Paying::Card if !platform::contracts::payment::is_payment_method_token(&fields.payment) => {
            errors.push(("payment", "Enter your card details (the card form needs JavaScript).".into()));
        }
        _ => {}
    }
    errors
}

fn text(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// The address typed (at checkout, or saved from the account page).
pub fn address_of(fields: &Fields) -> AddressInput {
    AddressInput {
        name: fields.name.trim().to_owned(),
        line1: fields.line1.trim().to_owned(),
        line2: text(&fields.line2).map(str::to_owned),
        city: fields.city.trim().to_owned(),
        region: text(&fields.region).map(str::to_uppercase),
        postal_code: fields.postal_code.trim().to_owned(),
        country: fields.country.trim().to_uppercase(),
    }
}

/// The redirect to a placed order's page: the account's, or the guest's by its token. The cart
/// emptied with the order, and the header's count says so.
fn to_order(placed: &crate::orders::Placement, signed_in: bool, secure: bool) -> Response {
    let to = match signed_in {
        true => format!("/account/orders/{}", placed.id),
        false => {
            let token = placed.token.as_deref().unwrap_or_default();
            format!("/orders/{}?token={}", placed.id, crate::page::encode(token))
        }
    };
    let mut response = Redirect::to(&to).into_response();
    response.headers_mut().append(header::SET_COOKIE, crate::session::count_cookie(0, secure));
    response
}

/// `POST /checkout`: updates the shipping options for the address typed, or places the order.
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<Fields>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let fields = read_form(&headers, form)?;
    Visitor::serve(&state, &headers, &peer, async |visitor| match visitor.cart(&state).await? {
        Some(cart) => place(&state, &headers, visitor, cart, fields).await,
        None => Ok(Redirect::to("/cart").into_response()),
    })
    .await
}

/// Places the order of `cart` (for the visitor when signed in, else as a guest), or shows the
/// checkout again with what stopped it.
async fn place(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &Visitor,
    cart: Cart,
    fields: Fields,
) -> Result<Response, PageError> {
    let session = visitor.session.as_ref();
    let Some(of) = visitor.cart_of() else { return Ok(Redirect::to("/cart").into_response()) };
    let (state, headers) = (state.clone(), headers.clone());
    let mut fields = fields;
    let paying = match &state.card_form {
        Some(_) if cart.pricing.grand_total == 0 && !cart.items.is_empty() => {
            fields.payment = NO_PAYMENT.into();
            Paying::Card
        }
        Some(_) => Paying::Card,
        None => Paying::TestMethods,
    };
    let account = match session {
        Some(session) => Some(state.users.me(&session.token).await?.email),
        None => None,
    };
    let order_of = |cart_id: String, attempt: String, fields: Fields| {
        let state = state.clone();
        async move {
            let address = address_of(&fields);
            match session {
                Some(session) => {
                    state.orders.place_signed_in(&cart_id, &session.token, &address, &fields.payment, &attempt).await
                }
                None => state.orders.place(&cart_id, fields.email.trim(), &address, &fields.payment, &attempt).await,
            }
        }
    };
    if cart.items.is_empty() {
        // Placed already (the cart empties with the order): a double click or a reload posts the
        // same attempt again, which the order service answers with the same order.
        if fields.action == "place" && check(&fields, account.is_some(), paying).is_empty() {
            let attempt = fields.attempt.clone();
            if let Ok(placed) = order_of(cart.id.clone(), attempt, fields).await {
                return Ok(to_order(&placed, session.is_some(), state.secure_cookies));
            }
        }
        return Ok(Redirect::to("/cart").into_response());
    }
    let country = fields.country.trim().to_uppercase();
    let known_country = COUNTRIES.iter().any(|(code, _)| *code == country);
    // The destination first: the shipping methods and the tax depend on it.
    let method = if fields.action == "place" { text(&fields.method) } else { None };
    let cart = if known_country {
        match state.orders.set_shipping(of, &country, text(&fields.region), text(&fields.postal_code), method).await {
            Ok(cart) => cart,
            // Only an estimate refused: placing goes on, and the order service says whether the
            // address can be shipped to (a shop without zones charges no shipping).
            Err(Refusal::Refused(reason)) if fields.action != "place" => {
                let cart = visitor.cart(&state).await?.unwrap_or(cart);
                let reason = Some(reason);
                return page(&state, &headers, visitor, &cart, account.as_deref(), fields, Vec::new(), None, reason)
                    .await;
            }
            Err(Refusal::Refused(_)) => cart,
            Err(Refusal::NoCart) => return Ok(Redirect::to("/cart").into_response()),
            Err(Refusal::Failed(error)) => return Err(error.into()),
        }
    } else {
        cart
    };
    if fields.action != "place" {
        return page(&state, &headers, visitor, &cart, account.as_deref(), fields, Vec::new(), None, None).await;
    }
    let errors = check(&fields, account.is_some(), paying);
    if !errors.is_empty() {
        return page(&state, &headers, visitor, &cart, account.as_deref(), fields, errors, None, None).await;
    }
    let attempt = match fields.attempt.as_str() {
        a if a.starts_with("web-") && a.len() == 36 && a[4..].bytes().all(|b| b.is_ascii_hexdigit()) => a.to_owned(),
        _ => new_attempt(),
    };
    match order_of(cart.id.clone(), attempt, fields.clone()).await {
        Ok(placed) => Ok(to_order(&placed, session.is_some(), state.secure_cookies)),
        Err(Refusal::Refused(reason)) => {
            let cart = visitor.cart(&state).await?.unwrap_or(cart);
            page(&state, &headers, visitor, &cart, account.as_deref(), fields, Vec::new(), Some(reason), None).await
        }
        Err(Refusal::NoCart) => Ok(Redirect::to("/cart").into_response()),
        Err(Refusal::Failed(error)) => Err(error.into()),
    }
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    layout: Layout,
    csrf: String,
    id: String,
    token: String,
    heading: String,
    status_text: String,
    in_progress: bool,
    failed: Option<String>,
    /// Where the form that tries another way to pay posts (after a declined payment).
    retry_action: Option<String>,
    can_cancel: bool,
    notice: Option<String>,
    steps: Vec<Step>,
    lines: Vec<(String, String, i64, String)>,
    rows: Vec<(String, String)>,
    total: String,
    tax_note: Option<String>,
    address: Vec<String>,
    email: Option<String>,
    tracking: Option<String>,
    placed: String,
}

/// A step of the order's timeline.
struct Step {
    label: &'static str,
    at: Option<String>,
    done: bool,
}

#[derive(Debug, Default, Deserialize)]
struct TokenParam {
    token: Option<String>,
}

/// `GET /orders/{id}?token=…`: a guest's order.
async fn order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(param): Query<TokenParam>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let token = param.token.unwrap_or_default();
    let order = state.orders.guest_order(&id, &token).await?.ok_or(PageError::NotFound)?;
    order_response(&state, &headers, &order, Reader::Guest(token), None)
}

/// Who reads an order's page: a guest by the order's secret token, or the signed-in shopper whose
/// order it is.
pub enum Reader {
    /// A guest, with the token (the retry form carries it).
    Guest(String),
    /// The account's shopper (the page offers cancelling before it ships).
    Account,
}

/// The page of `order` for `reader`, with `notice` (a refused cancellation).
pub fn order_response(
    state: &AppState,
    headers: &HeaderMap,
    order: &Order,
    reader: Reader,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let form_token = Token::of(headers);
    let in_progress = matches!(order.status.as_str(), "pending" | "reserved" | "paid");
    let reached = |status: &str| {
        order.history.iter().find(|h| h.status == status).map(|h| h.at.format("%b %-d, %H:%M UTC").to_string())
    };
    let steps = vec![
        Step { label: "Placed", at: reached("pending"), done: true },
        Step { label: "Confirmed", at: reached("confirmed"), done: reached("confirmed").is_some() },
        Step { label: "Shipped", at: reached("shipped"), done: reached("shipped").is_some() },
        Step { label: "Delivered", at: reached("delivered"), done: reached("delivered").is_some() },
    ];
    let reason = failure_reason(order).unwrap_or_default();
    let failed = match order.status.as_str() {
        "payment_failed" => Some(decline_text(&reason).to_owned()),
        "rejected" => {
            Some("Some of what you ordered ran out before we could reserve it, so nothing was charged.".to_owned())
        }
        "cancelled" => Some("This order was cancelled; anything charged has been given back.".to_owned()),
        _ => None,
    };
    let (heading, status_text) = match order.status.as_str() {
        "pending" | "reserved" | "paid" => ("Thank you! We're confirming your order", "Confirming payment and stock…"),
        "confirmed" => ("Your order is confirmed", "Confirmed: we're packing it."),
        "shipped" => ("Your order is on its way", "Shipped."),
        "delivered" => ("Your order was delivered", "Delivered."),
        "refunded" => ("Your order was refunded", "Refunded."),
        "payment_failed" => ("Your payment didn't go through", "Payment declined."),
        "rejected" => ("We couldn't fill your order", "Not available."),
        _ => ("Your order", "Cancelled."),
    };
    let summary = Summary::of(&order.pricing, true);
    let a = &order.shipping_address;
    let mut address = vec![a.name.clone(), a.line1.clone()];
    address.extend(a.line2.clone());
    address.push(
        format!("{} {} {}", a.city, a.region.clone().unwrap_or_default(), a.postal_code)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    );
    address.push(
        COUNTRIES
            .iter()
            .find(|(c, _)| *c == a.country)
            .map(|(_, n)| (*n).to_owned())
            .unwrap_or_else(|| a.country.clone()),
    );
    let cancellable = matches!(order.status.as_str(), "pending" | "reserved" | "paid" | "confirmed");
    let (token, can_cancel, reader_is_guest) = match reader {
        Reader::Guest(token) => (token, false, true),
        Reader::Account => (String::new(), cancellable, false),
    };
    let view = OrderPage {
        layout: Layout { title: format!("Order {}", order.id), noindex: true, ..Layout::default() },
        csrf: form_token.value.clone(),
        id: order.id.clone(),
        retry_action: (order.status == "payment_failed").then(|| {
            let prefix = if reader_is_guest { "" } else { "/account" };
            format!("{prefix}/orders/{}/retry", order.id)
        }),
        can_cancel,
        notice,
        token,
        heading: heading.into(),
        status_text: status_text.into(),
        in_progress,
        failed,
        steps,
        lines: order
            .items
            .iter()
            .map(|i| (product_path(&i.product_id, &i.name), i.name.clone(), i.quantity, money(&i.line_total)))
            .collect(),
        rows: summary.rows,
        total: summary.total,
        tax_note: summary.tax_note,
        address,
        email: order.email.clone(),
        tracking: order.tracking_number.clone(),
        placed: order.created_at.format("%B %-d, %Y").to_string(),
    };
    let mut response = crate::page::personal(&view, StatusCode::OK, &form_token, state.secure_cookies)?;
    // The page's address holds its secret: no other site learns it from a link.
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// Why the order reached its status (the decline code of a failed payment), not what came after
/// (the stock given back).
fn failure_reason(order: &Order) -> Option<String> {
    order.history.iter().find(|h| h.status == order.status).and_then(|h| h.reason.clone())
}

#[derive(Debug, Default, Deserialize)]
struct RetryForm {
    csrf: Option<String>,
    token: Option<String>,
}

/// `POST /orders/{id}/retry`: after a guest's declined payment, the order's cart again and back
/// to checkout with the reason.
async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<RetryForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    let token = form.token.unwrap_or_default();
    let order: Order = state.orders.guest_order(&id, &token).await?.ok_or(PageError::NotFound)?;
    if order.status != "payment_failed" {
        return Ok(Redirect::to(&format!("/orders/{id}?token={}", crate::page::encode(&token))).into_response());
    }
    Visitor::serve(&state, &headers, &peer, async |visitor| again(&state, visitor, &order).await).await
}

/// After a declined payment, `order`'s cart again (its lines, codes and shipping, in the visitor's
/// current cart or a new one), and a redirect back to checkout with the reason. The visitor's
/// cookies must go with it ([`Visitor::serve`]).
pub async fn again(state: &AppState, visitor: &mut Visitor, order: &Order) -> Result<Response, PageError> {
    visitor.cart_or_new(state).await?;
    let of = visitor.cart_of().ok_or(PageError::Unavailable)?;
    let refused = |r: Refusal| match r {
        Refusal::Failed(error) => PageError::from(error),
        _ => PageError::Unavailable,
    };
    for item in &order.items {
        state.orders.set_item(of, &item.sku, item.quantity).await.map_err(refused)?;
    }
    for code in order.pricing.promotions.iter().filter(|p| p.applied).filter_map(|p| p.code.as_deref()) {
        // A code that no longer applies is shown with its reason at checkout; it does not stop this.
        let _ = state.orders.add_code(of, code).await;
    }
    let a = &order.shipping_address;
    let method = order.pricing.shipping.as_ref().map(|s| s.method_id.as_str());
    let _ = state.orders.set_shipping(of, &a.country, a.region.as_deref(), Some(&a.postal_code), method).await;
    let reason = failure_reason(order).unwrap_or_else(|| "card_declined".into());
    let code: String = reason.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
    Ok(Redirect::to(&format!("/checkout?declined={code}")).into_response())
}

/// The checkout's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout", get(show).post(submit))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/retry", post(retry))
}

crate::session::posted!(Fields);

impl crate::session::Posted for RetryForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}
