//! A visitor's cookies and the forms' protection against cross-site requests.
//!
//! The cart lives in the order service; the browser keeps its id in an `HttpOnly`, `SameSite=Lax`
//! cookie (`Secure` when the shop is served over HTTPS). Every form post must come from the shop's
//! own pages: a browser says where a post comes from (`Sec-Fetch-Site`, else `Origin`), and one from
//! another site is refused. Forms of personal pages (never cached) also carry a token that must
//! match the visitor's `shop_csrf` cookie (double submit), which holds for browsers that send
//! neither header; forms of public pages, which a CDN caches for everyone and so cannot carry a
//! visitor's token, rely on the origin headers and on `SameSite=Lax` (a post from another site
//! carries none of the shop's cookies).

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookie holding the visitor's guest cart id.
pub const CART_COOKIE: &str = "shop_cart";
/// The cookie holding the visitor's form token.
pub const CSRF_COOKIE: &str = "shop_csrf";
/// How long the cart cookie lives: 30 days after the last change.
const CART_DAYS: u64 = 30;

/// The value of cookie `name` in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, for the whole site; `max_age` 0 removes it.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"))
        .expect("cookie names and values here are plain ASCII")
}

/// The cookie the page script reads to show the cart's item count in the header.
pub const COUNT_COOKIE: &str = "shop_cart_count";

/// The `Set-Cookie` of the cart's item count: readable by the page's script (not `HttpOnly`; a
/// number, nothing secret).
pub fn count_cookie(count: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COUNT_COOKIE}={count}; Path=/; Max-Age={}; SameSite=Lax{secure}",
        CART_DAYS * 24 * 60 * 60
    ))
    .expect("a number is a valid cookie value")
}

/// The `Set-Cookie` of a cart id.
pub fn cart_cookie(id: &str, secure: bool) -> HeaderValue {
    set_cookie(CART_COOKIE, id, CART_DAYS * 24 * 60 * 60, secure)
}

/// The visitor's form token, and whether it is new (then [`Token::cookie`] must be sent).
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub value: String,
    /// Made for this answer.
    pub fresh: bool,
}

impl Token {
    /// The request's token, or a new one.
    pub fn of(headers: &HeaderMap) -> Self {
        match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
            Some(value) => Self { value: value.to_owned(), fresh: false },
            None => {
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                Self { value: hex::encode(bytes), fresh: true }
            }
        }
    }

    /// The `Set-Cookie` that keeps a fresh token (for the browser's session).
    pub fn cookie(&self, secure: bool) -> Option<HeaderValue> {
        self.fresh.then(|| {
            let secure = if secure { "; Secure" } else { "" };
            HeaderValue::from_str(&format!("{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}", self.value))
                .expect("hex is a valid cookie value")
        })
    }
}

/// Whether the browser says the request comes from the shop's own pages: `Some(false)` for
/// another site, `None` when it says nothing.
fn same_origin(headers: &HeaderMap) -> Option<bool> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return Some(site == "same-origin");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok())?;
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    Some(authority.eq_ignore_ascii_case(host))
}

/// Whether a form post may go on: from the shop's pages (by the browser's word), and, when the form
/// carries a token or the browser says nothing, with the visitor's token.
pub fn form_allowed(headers: &HeaderMap, form_token: Option<&str>) -> bool {
    let token_matches = || {
        let cookie = cookie(headers, CSRF_COOKIE);
        matches!((cookie, form_token), (Some(c), Some(f)) if constant_eq(c.as_bytes(), f.as_bytes()))
    };
    match (same_origin(headers), form_token) {
        (Some(false), _) => false,
        (Some(true), None) => true,
        (_, Some(_)) | (None, None) => token_matches(),
    }
}

/// A posted form, which may carry the visitor's form token.
pub trait Posted {
    /// The form's token field.
    fn csrf(&self) -> Option<&str>;
}

/// Implements [`Posted`] for forms whose token field is `csrf: Option<String>`.
macro_rules! posted {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::session::Posted for $form {
            fn csrf(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
        })+
    };
}
pub(crate) use posted;

/// A posted form's fields, or why it is refused: a body that cannot be read, or a post from
/// another site or with another visitor's token ([`form_allowed`]).
pub fn read_form<T: Posted>(
    headers: &HeaderMap,
    form: Result<axum::extract::Form<T>, axum::extract::rejection::FormRejection>,
) -> Result<T, crate::page::PageError> {
    let axum::extract::Form(form) = form.map_err(|_| crate::page::PageError::BadForm)?;
    if !form_allowed(headers, form.csrf()) {
        return Err(crate::page::PageError::Forbidden);
    }
    Ok(form)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn cookies_are_read_and_written_safely() {
        let h = headers(&[("cookie", "a=1; shop_cart=abc-123"), ("cookie", "shop_csrf=")]);
        assert_eq!(cookie(&h, CART_COOKIE), Some("abc-123"));
        assert_eq!(cookie(&h, CSRF_COOKIE), None, "empty is none");
        let set = cart_cookie("abc", true);
        assert_eq!(set, "shop_cart=abc; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax; Secure");
        assert!(!cart_cookie("abc", false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn posts_from_other_sites_are_refused_and_tokens_must_match() {
        let token = "ab".repeat(32);
        let cookie = format!("shop_csrf={token}");
        let same = headers(&[("sec-fetch-site", "same-origin"), ("cookie", &cookie)]);
        assert!(form_allowed(&same, None), "a public page's form from the shop");
        assert!(form_allowed(&same, Some(&token)));
        assert!(!form_allowed(&same, Some(&"cd".repeat(32))), "a token that is not the visitor's");
        let cross = headers(&[("sec-fetch-site", "cross-site"), ("cookie", &cookie)]);
        assert!(!form_allowed(&cross, Some(&token)), "another site, even with the token");
        let origin = headers(&[("origin", "https://evil.example"), ("host", "shop.example")]);
        assert!(!form_allowed(&origin, None));
        let ours = headers(&[("origin", "https://shop.example"), ("host", "shop.example")]);
        assert!(form_allowed(&ours, None));
        let silent = headers(&[("cookie", &cookie)]);
        assert!(!form_allowed(&silent, None), "a browser that says nothing needs the token");
        assert!(form_allowed(&silent, Some(&token)));
        assert!(Token::of(&same).value == token && !Token::of(&same).fresh);
        let new = Token::of(&HeaderMap::new());
        assert!(new.fresh && new.value.len() == 64 && new.cookie(false).is_some());
    }
}
