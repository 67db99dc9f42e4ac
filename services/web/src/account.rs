//! Accounts in the storefront: register, sign in and out, the account page with the shopper's
//! orders, an order's page with its cancellation while it has not shipped.
//!
//! A signed-in browser holds the user service's tokens in two `HttpOnly`, `SameSite=Lax` cookies:
//! the short-lived access token (`shop_access`, verified here with the platform's verifier on every
//! page) and the refresh token (`shop_refresh`). When the access token has expired the web tier
//! trades the refresh token for new ones (the user service rotates it) and sets both cookies again,
//! so the shopper stays signed in for the refresh token's life without noticing. Sign-in calls are
//! made on the viewer's behalf (their address forwarded), so the user service's throttle counts the
//! shopper's attempts, not the web tier's.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use platform::address::AddressInput;
use platform::client::{Call, ClientError, ServiceClient};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::orders::{Order, Refusal, problem_text};
use crate::page::{Layout, PageError, money, personal};
use crate::session::{Token, read_form, set_cookie};

/// The cookie of the access token.
pub const ACCESS_COOKIE: &str = "shop_access";
/// The cookie of the refresh token.
pub const REFRESH_COOKIE: &str = "shop_refresh";
/// How long the refresh cookie is kept: the user service's refresh tokens last 30 days.
const REFRESH_DAYS: u64 = 30;

/// The viewer's connection, when the server knows it.
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

/// The user service's tokens for a signed-in shopper.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// The shopper.
    pub user: Shopper,
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
}

/// A shopper's account as the pages show it.
#[derive(Debug, Clone, Deserialize)]
pub struct Shopper {
    /// The account id.
    pub id: String,
    /// The email.
    pub email: String,
    /// The name.
    pub name: String,
}

/// An address of the shopper's book.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedAddress {
    /// Its id.
    pub id: String,
    /// The address.
    #[serde(flatten)]
    pub address: AddressInput,
}

/// An address on one line, as lists show it.
pub fn one_line(a: &AddressInput) -> String {
    let mut parts = vec![a.name.clone(), a.line1.clone()];
    parts.extend(a.line2.clone());
    parts.push(a.city.clone());
    parts.extend(a.region.clone());
    parts.push(a.postal_code.clone());
    parts.push(a.country.clone());
    parts.join(", ")
}

/// The user service, as the storefront uses it.
pub struct Users {
    user: ServiceClient,
}

impl Users {
    /// Asks `user`.
    pub fn new(user: ServiceClient) -> Self {
        Self { user }
    }

    /// Signs in (`call` carries the viewer's address).
    pub async fn sign_in(&self, email: &str, password: &str, call: &Call) -> Result<Tokens, ClientError> {
        self.user
            .send(axum::http::Method::POST, "/v1/auth/login", &json!({"email": email, "password": password}), call)
            .await
    }

    /// Registers and signs in.
    pub async fn register(&self, name: &str, email: &str, password: &str, call: &Call) -> Result<Tokens, ClientError> {
        let body = json!({"name": name, "email": email, "password": password});
        self.user.send(axum::http::Method::POST, "/v1/auth/register", &body, call).await
    }

    /// New tokens for a refresh token.
    pub async fn refresh(&self, refresh_token: &str, call: &Call) -> Result<Tokens, ClientError> {
        let body = json!({"refresh_token": refresh_token});
        self.user.send(axum::http::Method::POST, "/v1/auth/refresh", &body, call).await
    }

    /// Ends the session of a refresh token.
    pub async fn sign_out(&self, refresh_token: &str) -> Result<(), ClientError> {
        let body = json!({"refresh_token": refresh_token});
        self.user.submit(axum::http::Method::POST, "/v1/auth/logout", &body, &Call::default()).await?;
        Ok(())
    }

    /// The signed-in shopper's saved addresses.
    pub async fn addresses(&self, access_token: &str) -> Result<Vec<SavedAddress>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            items: Vec<SavedAddress>,
        }
        let call = Call::bearer(access_token);
        Ok(self.user.get::<Page>("/v1/users/me/addresses", &call).await?.items)
    }

    /// Saves an address in the signed-in shopper's book.
    pub async fn add_address(&self, access_token: &str, address: &AddressInput) -> Result<(), ClientError> {
        self.user
            .submit(axum::http::Method::POST, "/v1/users/me/addresses", address, &Call::bearer(access_token))
            .await?;
        Ok(())
    }

    /// Deletes a saved address.
    pub async fn delete_address(&self, access_token: &str, id: &str) -> Result<(), ClientError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Ok(());
        }
        let call = Call::bearer(access_token);
        self.user.request(axum::http::Method::DELETE, &format!("/v1/users/me/addresses/{id}"), None, &call).await?;
        Ok(())
    }

    /// Renames the signed-in shopper.
    pub async fn rename(&self, access_token: &str, name: &str) -> Result<(), ClientError> {
        let body = json!({"name": name});
        self.user.submit(axum::http::Method::PATCH, "/v1/users/me", &body, &Call::bearer(access_token)).await?;
        Ok(())
    }

    /// Changes the signed-in shopper's password (`call` carries their token and address); the new
    /// session's tokens (every other session ends).
    pub async fn change_password(&self, current: &str, new: &str, call: &Call) -> Result<Tokens, ClientError> {
        let body = json!({"current_password": current, "new_password": new});
        self.user.send(axum::http::Method::POST, "/v1/users/me/password", &body, call).await
    }

    /// Asks for a password-reset email (accepted whether or not the account exists).
    pub async fn request_reset(&self, email: &str, call: &Call) -> Result<(), ClientError> {
        self.user.submit(axum::http::Method::POST, "/v1/auth/password-reset", &json!({"email": email}), call).await?;
        Ok(())
    }

    /// Sets a new password with a reset email's token.
    pub async fn confirm_reset(&self, token: &str, password: &str, call: &Call) -> Result<(), ClientError> {
        let body = json!({"token": token, "new_password": password});
        self.user.submit(axum::http::Method::POST, "/v1/auth/password-reset/confirm", &body, call).await?;
        Ok(())
    }

    /// Confirms an email with a verification email's token.
    pub async fn verify_email(&self, token: &str) -> Result<(), ClientError> {
        let body = json!({"token": token});
        self.user.submit(axum::http::Method::POST, "/v1/auth/verify-email", &body, &Call::default()).await?;
        Ok(())
    }

    /// The signed-in shopper's account.
    pub async fn me(&self, access_token: &str) -> Result<Shopper, ClientError> {
        self.user.get("/v1/users/me", &Call::bearer(access_token)).await
    }
}

/// The call of a request made on the viewer's behalf.
fn on_behalf(state: &AppState, headers: &HeaderMap, peer: &Peer) -> Call {
    Call { forwarded: state.client_address.forwarding(headers), peer: peer.0, ..Call::default() }
}

/// The cookies that keep `tokens`.
fn session_cookies(state: &AppState, tokens: &Tokens) -> [HeaderValue; 2] {
    [
        set_cookie(ACCESS_COOKIE, &tokens.access_token, tokens.expires_in, state.secure_cookies),
        set_cookie(REFRESH_COOKIE, &tokens.refresh_token, REFRESH_DAYS * 24 * 60 * 60, state.secure_cookies),
    ]
}

/// The cookies that end a session in the browser.
fn ended_cookies(state: &AppState) -> [HeaderValue; 2] {
    [set_cookie(ACCESS_COOKIE, "", 0, state.secure_cookies), set_cookie(REFRESH_COOKIE, "", 0, state.secure_cookies)]
}

/// A signed-in visitor: their access token, and the cookies to send when it was just renewed.
pub struct Session {
    /// The access token.
    pub token: String,
    /// `Set-Cookie` values of renewed tokens (empty when the cookie's token was still good).
    pub renewed: Vec<HeaderValue>,
}

impl Session {
    /// `response` with the renewed cookies, if any.
    pub fn keep(&self, mut response: Response) -> Response {
        for cookie in &self.renewed {
            response.headers_mut().append(header::SET_COOKIE, cookie.clone());
        }
        response
    }
}

/// The visitor's session, if they are signed in: the access cookie when it verifies, else the
/// refresh cookie traded for new tokens.
pub async fn session(state: &AppState, headers: &HeaderMap, peer: &Peer) -> Option<Session> {
    if let Some(token) = crate::session::cookie(headers, ACCESS_COOKIE)
        && state.verifier.verify(token).await.is_ok()
    {
        return Some(Session { token: token.to_owned(), renewed: Vec::new() });
    }
    let refresh = crate::session::cookie(headers, REFRESH_COOKIE)?;
    match state.users.refresh(refresh, &on_behalf(state, headers, peer)).await {
        Ok(tokens) => {
            Some(Session { token: tokens.access_token.clone(), renewed: session_cookies(state, &tokens).to_vec() })
        }
        Err(error) => {
            if error.status().is_none() {
                tracing::warn!(error = %platform::error::cause_chain(&error), "a session could not be renewed");
            }
            None
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    csrf: String,
    register: bool,
    next: String,
    email: String,
    name: String,
    error: Option<String>,
}

/// Where to go after signing in: a path of this shop only (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') && path.len() < 500 => {
            path.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct NextParam {
    next: Option<String>,
}

async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    page: SignInPage,
    status: StatusCode,
) -> Result<Response, PageError> {
    let token = Token::of(headers);
    let page = SignInPage { csrf: token.value.clone(), ..page };
    personal(&page, status, &token, state.secure_cookies)
}

fn blank(register: bool, next: String) -> SignInPage {
    let title = if register { "Create an account" } else { "Sign in" };
    SignInPage {
        layout: Layout { title: title.into(), noindex: true, ..Layout::default() },
        csrf: String::new(),
        register,
        next,
        email: String::new(),
        name: String::new(),
        error: None,
    }
}

/// `GET /account/sign-in`.
async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(param): axum::extract::Query<NextParam>,
) -> Result<Response, PageError> {
    form_page(&state, &headers, blank(false, safe_next(param.next.as_deref())), StatusCode::OK).await
}

/// `GET /account/register`.
async fn register_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(param): axum::extract::Query<NextParam>,
) -> Result<Response, PageError> {
    form_page(&state, &headers, blank(true, safe_next(param.next.as_deref())), StatusCode::OK).await
}

#[derive(Debug, Default, Deserialize)]
struct Credentials {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
    next: Option<String>,
}

/// What a refused sign-in or registration tells the shopper.
fn refused_text(error: &ClientError, register: bool) -> Option<String> {
    let ClientError::Status { status, body, .. } = error else { return None };
    Some(match status.as_u16() {
        401 if !register => "That email and password don't match an account.".into(),
        429 => "Too many attempts. For your safety, wait a few minutes before trying again.".into(),
        409 => "An account with this email exists already. Sign in instead.".into(),
        403 => "This account signs in with a second factor: use the admin portal.".into(),
        400..=499 => problem_text(body).unwrap_or_else(|| "That didn't work. Check what you typed.".into()),
        _ => return None,
    })
}

/// `POST /account/sign-in` and `POST /account/register`.
async fn submit(
    state: AppState,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<Credentials>, axum::extract::rejection::FormRejection>,
    register: bool,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_owned();
    let call = on_behalf(&state, &headers, &peer);
    let answer = if register {
        state.users.register(form.name.trim(), &email, &form.password, &call).await
    } else {
        state.users.sign_in(&email, &form.password, &call).await
    };
    match answer {
        Ok(tokens) => {
            let mut response = Redirect::to(&next).into_response();
            // This browser's guest cart joins the shopper's own, which follows them to every device
            // (a refused one is explained on the cart page).
            let (cart, _) = crate::cart::adopt(&state, &headers, &tokens.access_token).await;
            for cookie in session_cookies(&state, &tokens).into_iter().chain(cart) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        Err(error) => match refused_text(&error, register) {
            Some(text) => {
                let status = match error.status() {
                    Some(StatusCode::TOO_MANY_REQUESTS) => StatusCode::TOO_MANY_REQUESTS,
                    Some(StatusCode::UNAUTHORIZED) => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let page =
                    SignInPage { email, name: form.name.trim().to_owned(), error: Some(text), ..blank(register, next) };
                form_page(&state, &headers, page, status).await
            }
            None => Err(error.into()),
        },
    }
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<Credentials>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    submit(state, headers, peer, form, false).await
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<Credentials>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    submit(state, headers, peer, form, true).await
}

#[derive(Debug, Default, Deserialize)]
struct TokenOnly {
    csrf: Option<String>,
}

/// `POST /account/sign-out`: the session ends at the user service and in the browser.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenOnly>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    read_form(&headers, form)?;
    if let Some(refresh) = crate::session::cookie(&headers, REFRESH_COOKIE)
        && let Err(error) = state.users.sign_out(refresh).await
    {
        // The browser forgets the tokens either way; the access token lapses within minutes.
        tracing::warn!(error = %platform::error::cause_chain(&error), "a session could not be ended at the user service");
    }
    let mut response = Redirect::to("/").into_response();
    // The shopper's cart stays with their account, not in this browser (a guest cart still here,
    // one that could not be brought into theirs, is this browser's again).
    let count = crate::session::count_cookie(0, state.secure_cookies);
    for cookie in ended_cookies(&state).into_iter().chain([count]) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    csrf: String,
    name: String,
    email: String,
    orders: Vec<OrderRow>,
    addresses: Vec<(String, String)>,
    countries: Vec<(&'static str, &'static str)>,
    address_error: Option<String>,
    /// Why a profile change was refused, or that one was made.
    profile_error: Option<String>,
    profile_done: Option<&'static str>,
}

struct OrderRow {
    href: String,
    id: String,
    placed: String,
    status: String,
    total: String,
    items: String,
}

/// A status as the account page says it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "pending" | "reserved" | "paid" => "Being confirmed",
        "confirmed" => "Confirmed",
        "shipped" => "Shipped",
        "delivered" => "Delivered",
        "refunded" => "Refunded",
        "payment_failed" => "Payment declined",
        "rejected" => "Not available",
        _ => "Cancelled",
    }
}

/// A redirect to the sign-in page, back to `path` afterwards.
fn to_sign_in(path: &str) -> Response {
    Redirect::to(&format!("/account/sign-in?next={}", crate::page::encode(path))).into_response()
}

/// `GET /account`.
#[derive(Debug, Default, Deserialize)]
struct Changed {
    changed: Option<String>,
}

async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    axum::extract::Query(changed): axum::extract::Query<Changed>,
) -> Result<Response, PageError> {
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in("/account")) };
    let done = match changed.changed.as_deref() {
        Some("name") => Some("Your name is changed."),
        Some("password") => Some("Your password is changed; your other sessions have ended."),
        _ => None,
    };
    account_page(&state, &headers, session, Problem { done, ..Problem::default() }).await
}

/// What the account page says about the change just tried.
#[derive(Default)]
struct Problem {
    address: Option<String>,
    profile: Option<String>,
    done: Option<&'static str>,
}

/// The account page of `session`'s shopper, with why an address was refused.
async fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    session: Session,
    problem: Problem,
) -> Result<Response, PageError> {
    let (me, orders, addresses) = futures::try_join!(
        state.users.me(&session.token),
        state.orders.my_orders(&session.token),
        state.users.addresses(&session.token)
    )?;
    let token = Token::of(headers);
    let page = AccountPage {
        layout: Layout { title: "Your account".into(), noindex: true, ..Layout::default() },
        csrf: token.value.clone(),
        name: me.name,
        email: me.email,
        orders: orders
            .iter()
            .map(|o| OrderRow {
                href: format!("/account/orders/{}", o.id),
                id: o.id.clone(),
                placed: o.created_at.format("%b %-d, %Y").to_string(),
                status: status_label(&o.status).to_owned(),
                total: money(&platform::money::Money::new(o.pricing.grand_total, &o.pricing.currency)),
                items: o.items.iter().map(|i| format!("{} × {}", i.name, i.quantity)).collect::<Vec<_>>().join(", "),
            })
            .collect(),
        addresses: addresses.iter().map(|a| (a.id.clone(), one_line(&a.address))).collect(),
        countries: crate::cart::COUNTRIES.to_vec(),
        address_error: problem.address.clone(),
        profile_error: problem.profile.clone(),
        profile_done: problem.done,
    };
    let refused = problem.address.is_some() || problem.profile.is_some();
    let status = if refused { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(session.keep(personal(&page, status, &token, state.secure_cookies)?))
}

/// `POST /account/addresses`: saves an address (the user service checks it).
async fn add_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<crate::checkout::Fields>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    // The address fields are the checkout's, read the same way.
    let form = read_form(&headers, form)?;
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in("/account")) };
    let address = crate::checkout::address_of(&form);
    match state.users.add_address(&session.token, &address).await {
        Ok(()) => Ok(session.keep(Redirect::to("/account#addresses").into_response())),
        Err(error) => match error.status() {
            Some(status) if status.is_client_error() => {
                let ClientError::Status { body, .. } = &error else { unreachable!("a status is a Status") };
                let text = problem_text(body).unwrap_or_else(|| "Check the address.".into());
                account_page(&state, &headers, session, Problem { address: Some(text), ..Problem::default() }).await
            }
            _ => Err(error.into()),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
struct ProfileForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /account/name`: a new display name.
async fn change_name(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<ProfileForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in("/account")) };
    match state.users.rename(&session.token, form.name.trim()).await {
        Ok(_) => Ok(session.keep(Redirect::to("/account?changed=name").into_response())),
        Err(error) => match refused_text(&error, true) {
            Some(text) => {
                account_page(&state, &headers, session, Problem { profile: Some(text), ..Problem::default() }).await
            }
            None => Err(error.into()),
        },
    }
}

/// `POST /account/password`: a new password; every other session ends, this one goes on with the
/// new tokens.
async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<ProfileForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in("/account")) };
    let call = Call { bearer: Some(session.token.clone()), ..on_behalf(&state, &headers, &peer) };
    match state.users.change_password(&form.current_password, &form.new_password, &call).await {
        Ok(tokens) => {
            let mut response = Redirect::to("/account?changed=password").into_response();
            for cookie in session_cookies(&state, &tokens) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        Err(error) => match refused_text(&error, true) {
            Some(text) => {
                account_page(&state, &headers, session, Problem { profile: Some(text), ..Problem::default() }).await
            }
            None => Err(error.into()),
        },
    }
}

/// `POST /account/addresses/{id}/delete`.
async fn delete_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
    form: Result<Form<TokenOnly>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    read_form(&headers, form)?;
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in("/account")) };
    match state.users.delete_address(&session.token, &id).await {
        Ok(()) => Ok(session.keep(Redirect::to("/account#addresses").into_response())),
        Err(error) if error.status().is_some_and(|s| s.as_u16() == 404) => {
            Ok(session.keep(Redirect::to("/account#addresses").into_response()))
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /account/orders/{id}`: one of the shopper's orders.
async fn order(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let path = format!("/account/orders/{id}");
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in(&path)) };
    let order: Order = state.orders.my_order(&id, &session.token).await?.ok_or(PageError::NotFound)?;
    let response = crate::checkout::order_response(&state, &headers, &order, crate::checkout::Reader::Account, None)?;
    Ok(session.keep(response))
}

/// `POST /account/orders/{id}/cancel`.
async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
    form: Result<Form<TokenOnly>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    read_form(&headers, form)?;
    let path = format!("/account/orders/{id}");
    let Some(session) = session(&state, &headers, &peer).await else { return Ok(to_sign_in(&path)) };
    match state.orders.cancel(&id, &session.token).await {
        Ok(()) => Ok(session.keep(Redirect::to(&path).into_response())),
        Err(Refusal::Refused(reason)) => {
            let order = state.orders.my_order(&id, &session.token).await?.ok_or(PageError::NotFound)?;
            let response = crate::checkout::order_response(
                &state,
                &headers,
                &order,
                crate::checkout::Reader::Account,
                Some(reason),
            )?;
            Ok(session.keep(response))
        }
        Err(Refusal::NoCart) => Err(PageError::NotFound),
        Err(Refusal::Failed(error)) => Err(error.into()),
    }
}

/// `POST /account/orders/{id}/retry`: after a declined payment, the order's cart again and back to
/// checkout with the reason.
async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
    form: Result<Form<TokenOnly>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    read_form(&headers, form)?;
    let path = format!("/account/orders/{id}");
    crate::cart::Visitor::serve(&state, &headers, &peer, async |visitor| {
        let Some(token) = visitor.session.as_ref().map(|s| s.token.clone()) else { return Ok(to_sign_in(&path)) };
        let order: Order = state.orders.my_order(&id, &token).await?.ok_or(PageError::NotFound)?;
        if order.status != "payment_failed" {
            return Ok(Redirect::to(&path).into_response());
        }
        crate::checkout::again(&state, visitor, &order).await
    })
    .await
}

#[derive(Template)]
#[template(path = "simple.html")]
struct SimplePage {
    layout: Layout,
    csrf: String,
    heading: &'static str,
    error: Option<String>,
    text: Vec<String>,
    form: Option<SimpleForm>,
    links: Vec<(&'static str, &'static str)>,
}

struct SimpleForm {
    action: &'static str,
    hidden: Vec<(&'static str, String)>,
    fields: Vec<SimpleField>,
    button: &'static str,
}

struct SimpleField {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
}

impl SimplePage {
    fn new(heading: &'static str) -> Self {
        Self {
            layout: Layout { title: heading.into(), noindex: true, ..Layout::default() },
            csrf: String::new(),
            heading,
            error: None,
            text: Vec::new(),
            form: None,
            links: Vec::new(),
        }
    }

    fn answer(self, state: &AppState, headers: &HeaderMap, status: StatusCode) -> Result<Response, PageError> {
        let token = Token::of(headers);
        let page = Self { csrf: token.value.clone(), ..self };
        let mut response = personal(&page, status, &token, state.secure_cookies)?;
        // These pages' addresses may hold a token: no other site learns it from a link.
        response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        Ok(response)
    }
}

#[derive(Debug, Default, Deserialize)]
struct TokenParam {
    token: Option<String>,
}

/// The form that asks for a reset email.
fn reset_request_page() -> SimplePage {
    SimplePage {
        text: vec!["Enter your account's email and we'll send you a link to choose a new password.".into()],
        form: Some(SimpleForm {
            action: "/account/reset",
            hidden: Vec::new(),
            fields: vec![SimpleField { name: "email", label: "Email", kind: "email", autocomplete: "email" }],
            button: "Send the link",
        }),
        links: vec![("/account/sign-in", "Back to sign in")],
        ..SimplePage::new("Reset your password")
    }
}

/// The form that chooses a new password with the emailed `token`.
fn new_password_page(token: String) -> SimplePage {
    SimplePage {
        text: vec!["Choose a new password: at least 10 characters, not a common one.".into()],
        form: Some(SimpleForm {
            action: "/account/reset/confirm",
            hidden: vec![("token", token)],
            fields: vec![SimpleField {
                name: "password",
                label: "New password",
                kind: "password",
                autocomplete: "new-password",
            }],
            button: "Change password",
        }),
        ..SimplePage::new("Choose a new password")
    }
}

/// `GET /account/reset`: the reset request, or with the emailed `?token=` the new password's form.
async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(param): axum::extract::Query<TokenParam>,
) -> Result<Response, PageError> {
    let page = match param.token.filter(|t| !t.is_empty() && t.len() <= 200) {
        Some(token) => new_password_page(token),
        None => reset_request_page(),
    };
    page.answer(&state, &headers, StatusCode::OK)
}

#[derive(Debug, Default, Deserialize)]
struct ResetForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /account/reset`: asks for the email (the answer is the same whether or not the account
/// exists).
async fn request_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<ResetForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    match state.users.request_reset(form.email.trim(), &on_behalf(&state, &headers, &peer)).await {
        Ok(_) => {
            let page = SimplePage {
                text: vec![
                    "If an account has this email, a link to choose a new password is on its way. It works once, for a short time.".into(),
                ],
                links: vec![("/account/sign-in", "Back to sign in")],
                ..SimplePage::new("Check your email")
            };
            page.answer(&state, &headers, StatusCode::OK)
        }
        Err(error) => match refused_text(&error, true) {
            Some(text) => SimplePage { error: Some(text), ..reset_request_page() }.answer(
                &state,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            None => Err(error.into()),
        },
    }
}

/// `POST /account/reset/confirm`: the new password, with the emailed token.
async fn confirm_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    form: Result<Form<ResetForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    match state.users.confirm_reset(&form.token, &form.password, &on_behalf(&state, &headers, &peer)).await {
        Ok(_) => {
            let page = SimplePage {
                text: vec!["Your password is changed, and every other session of your account has ended.".into()],
                links: vec![("/account/sign-in", "Sign in with your new password")],
                ..SimplePage::new("Password changed")
            };
            page.answer(&state, &headers, StatusCode::OK)
        }
        Err(error) => match error.status() {
            Some(status) if status.is_client_error() => {
                let text = match status.as_u16() {
                    422 => refused_text(&error, true).unwrap_or_else(|| "Choose another password.".into()),
                    _ => "This link has expired or was used already. Ask for a new one.".into(),
                };
                let page = SimplePage { error: Some(text), ..new_password_page(form.token) };
                page.answer(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY)
            }
            _ => Err(error.into()),
        },
    }
}

/// `GET /account/verify?token=…`: a button that confirms the email (a link alone changes nothing,
/// so a mail scanner opening it does not use the token).
async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(param): axum::extract::Query<TokenParam>,
) -> Result<Response, PageError> {
    let token = param.token.unwrap_or_default();
    let page = SimplePage {
        text: vec!["Confirm that this email address is yours.".into()],
        form: Some(SimpleForm {
            action: "/account/verify",
            hidden: vec![("token", token)],
            fields: Vec::new(),
            button: "Confirm my email",
        }),
        ..SimplePage::new("Confirm your email")
    };
    page.answer(&state, &headers, StatusCode::OK)
}

/// `POST /account/verify`.
async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ResetForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(&headers, form)?;
    match state.users.verify_email(&form.token).await {
        Ok(_) => SimplePage {
            text: vec![
                "Thank you: your email is confirmed. Orders you placed as a guest with it are now in your account."
                    .into(),
            ],
            links: vec![("/account", "Go to your account")],
            ..SimplePage::new("Email confirmed")
        }
        .answer(&state, &headers, StatusCode::OK),
        Err(error) if error.status().is_some_and(|s| s.is_client_error()) => SimplePage {
            error: Some("This link has expired or was used already.".into()),
            links: vec![("/account", "Go to your account")],
            ..SimplePage::new("Confirm your email")
        }
        .answer(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY),
        Err(error) => Err(error.into()),
    }
}

/// The account's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/sign-in", get(sign_in_page).post(sign_in))
        .route("/account/register", get(register_page).post(register))
        .route("/account/sign-out", post(sign_out))
        .route("/account/orders/{id}", get(order))
        .route("/account/orders/{id}/cancel", post(cancel))
        .route("/account/orders/{id}/retry", post(retry))
        .route("/account/addresses", post(add_address))
        .route("/account/name", post(change_name))
        .route("/account/password", post(change_password))
        .route("/account/addresses/{id}/delete", post(delete_address))
        .route("/account/reset", get(reset_page).post(request_reset))
        .route("/account/reset/confirm", post(confirm_reset))
        .route("/account/verify", get(verify_page).post(verify))
}

crate::session::posted!(Credentials, TokenOnly, ResetForm, ProfileForm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_signing_in_only_this_shop_s_pages() {
        assert_eq!(safe_next(Some("/checkout")), "/checkout");
        for outside in ["//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"] {
            assert_eq!(safe_next(Some(outside)), "/account", "{outside}");
        }
        assert_eq!(safe_next(None), "/account");
    }
}
