//! What the storefront asks the order service: a visitor's cart (lines, codes, shipping choice,
//! the pricing engine's breakdown) and the shipping methods of a destination.

use platform::address::AddressInput;
use platform::client::{Call, ClientError, ServiceClient};
use platform::money::Money;
use serde::Deserialize;
use serde_json::json;

/// A cart line, priced now.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// The SKU.
    pub sku: String,
    /// Its product.
    pub product_id: String,
    /// The product's name.
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// One unit's price.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// A line the catalog no longer sells.
#[derive(Debug, Clone, Deserialize)]
pub struct Unavailable {
    /// The SKU.
    pub sku: String,
    /// Units in the cart.
    pub quantity: i64,
}

/// Where a cart ships, and how.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Shipping {
    /// Country (ISO 3166-1 alpha-2).
    pub country: String,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// The method chosen.
    #[serde(default)]
    pub method_id: Option<String>,
}

/// A line of the breakdown.
#[derive(Debug, Clone, Deserialize)]
pub struct PricedLine {
    /// The SKU.
    pub sku: String,
    /// Units × unit price.
    pub subtotal: i64,
    /// What its discounts took off.
    pub discount_total: i64,
    /// What the shopper pays for it.
    pub total: i64,
}

/// The shipping of the breakdown.
#[derive(Debug, Clone, Deserialize)]
pub struct PricedShipping {
    /// The method.
    pub method_id: String,
    /// Its name.
    pub name: String,
    /// Its price.
    pub price: i64,
    /// What the shopper pays for it.
    pub total: i64,
}

/// A promotion the pricing engine considered.
#[derive(Debug, Clone, Deserialize)]
pub struct Outcome {
    /// Its name.
    pub name: String,
    /// The code that brought it.
    #[serde(default)]
    pub code: Option<String>,
    /// Whether it applied.
    pub applied: bool,
    /// What it took off.
    pub amount: i64,
    /// Why not, in words.
    #[serde(default)]
    pub detail: Option<String>,
}

/// The whole price of a cart.
#[derive(Debug, Clone, Deserialize)]
pub struct Breakdown {
    /// The currency.
    pub currency: String,
    /// Whether prices include tax.
    pub tax_inclusive: bool,
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// The shipping, once chosen.
    pub shipping: Option<PricedShipping>,
    /// The lines' subtotals.
    pub subtotal: i64,
    /// Every discount.
    pub discount_total: i64,
    /// Every tax.
    pub tax_total: i64,
    /// What the shopper pays.
    pub grand_total: i64,
    /// Every promotion considered.
    pub promotions: Vec<Outcome>,
}

/// A cart, priced.
#[derive(Debug, Clone, Deserialize)]
pub struct Cart {
    /// Its id.
    pub id: String,
    /// The lines.
    pub items: Vec<Item>,
    /// Lines no longer sold.
    pub unavailable: Vec<Unavailable>,
    /// Codes entered.
    pub codes: Vec<String>,
    /// Where it ships.
    pub shipping: Option<Shipping>,
    /// Why that choice does not hold.
    pub shipping_problem: Option<String>,
    /// The whole price.
    pub pricing: Breakdown,
}

/// A shipping method offered to a cart.
#[derive(Debug, Clone, Deserialize)]
pub struct Offer {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its price for this cart.
    pub price: i64,
    /// The currency.
    pub currency: String,
    /// Fewest days.
    pub min_days: u32,
    /// Most days.
    pub max_days: u32,
}

/// A moment of an order's history.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryEntry {
    /// The status reached.
    pub status: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Why (`out_of_stock`, a decline code …).
    #[serde(default)]
    pub reason: Option<String>,
}

/// An order, as its page shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: String,
    /// Where it stands (`pending`, `confirmed`, `shipped`, `payment_failed` …).
    pub status: String,
    /// What was bought.
    pub items: Vec<Item>,
    /// The price it was placed at.
    pub pricing: Breakdown,
    /// Where it goes.
    pub shipping_address: AddressInput,
    /// Its tracking number, once shipped.
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// Every status it reached, oldest first.
    pub history: Vec<HistoryEntry>,
    /// A guest's email.
    #[serde(default)]
    pub email: Option<String>,
    /// When it was placed.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What a placed order answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Placement {
    /// The order.
    pub id: String,
    /// A guest's order's secret, which reads it.
    #[serde(default)]
    pub token: Option<String>,
}

/// A promotion the shop tells shoppers about.
#[derive(Debug, Clone, Deserialize)]
pub struct Featured {
    /// What it is called.
    pub name: String,
    /// The code that redeems it; `None`: it applies by itself.
    #[serde(default)]
    pub code: Option<String>,
    /// Until when, if it ends.
    #[serde(default)]
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
struct FeaturedPage {
    items: Vec<Featured>,
}

#[derive(Deserialize)]
struct Offers {
    items: Vec<Offer>,
}

/// Why the order service refused a change, in its words (a 4xx problem's detail or field message).
#[derive(Debug)]
pub enum Refusal {
    /// A 4xx with what the problem said.
    Refused(String),
    /// No such cart (gone, or never made).
    NoCart,
    /// The service did not answer.
    Failed(ClientError),
}

impl From<ClientError> for Refusal {
    fn from(error: ClientError) -> Self {
        match &error {
            ClientError::Status { status, .. } if status.as_u16() == 404 => Refusal::NoCart,
            ClientError::Status { status, body, .. } if status.is_client_error() => {
                Refusal::Refused(problem_text(body).unwrap_or_else(|| "That was refused.".into()))
            }
            _ => Refusal::Failed(error),
        }
    }
}

/// What a problem+json body says, as a sentence: its first field error (`code must be …`), else
/// its detail, else its title.
pub fn problem_text(body: &[u8]) -> Option<String> {
    let problem: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = match (problem["errors"][0]["field"].as_str(), problem["errors"][0]["message"].as_str()) {
        // "must be …" needs its subject; other messages say what they mean alone.
        (Some(field), Some(message)) if message.starts_with("must ") => {
            Some(format!("{} {message}", field.replace('_', " ")))
        }
        (_, Some(message)) => Some(message.to_owned()),
        _ => None,
    };
    let text =
        field.or(problem["detail"].as_str().map(str::to_owned)).or(problem["title"].as_str().map(str::to_owned))?;
    let mut text = text.trim().to_owned();
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    Some(text)
}

/// The order service, as the storefront uses it.
pub struct Orders {
    order: ServiceClient,
}

impl Orders {
    /// Asks `order`.
    pub fn new(order: ServiceClient) -> Self {
        Self { order }
    }

    /// A new, empty guest cart.
    pub async fn create_cart(&self) -> Result<Cart, ClientError> {
        self.order.send(axum::http::Method::POST, "/v1/carts", &json!({}), &Call::default()).await
    }

    /// The cart `of`; `None` when a guest's is gone (an old cookie). The signed-in shopper's is made,
    /// empty, on first use.
    pub async fn cart(&self, of: CartOf<'_>) -> Result<Option<Cart>, ClientError> {
        let Ok((path, call)) = of.address() else { return Ok(None) };
        match self.order.get(&path, &call).await {
            Ok(cart) => Ok(Some(cart)),
            Err(error) if error.status().is_some_and(|s| s.as_u16() == 404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Brings guest cart `guest` into the cart of the shopper of `access_token` (units of a SKU in
    /// both are added, up to what is available); the guest cart goes away.
    pub async fn merge(&self, guest: &str, access_token: &str) -> Result<Cart, Refusal> {
        let body = json!({"cart_id": checked(guest)?});
        Ok(self.order.send(axum::http::Method::POST, "/v1/cart/merge", &body, &Call::bearer(access_token)).await?)
    }

    /// Sets the units of `sku` in the cart `of` (0 takes the line out).
    pub async fn set_item(&self, of: CartOf<'_>, sku: &str, quantity: i64) -> Result<Cart, Refusal> {
        let (base, call) = of.address()?;
        let path = format!("{base}/items/{}", crate::page::encode(sku));
        Ok(self.order.send(axum::http::Method::PUT, &path, &json!({"quantity": quantity}), &call).await?)
    }

    /// Enters a discount code.
    pub async fn add_code(&self, of: CartOf<'_>, code: &str) -> Result<Cart, Refusal> {
        let (base, call) = of.address()?;
        Ok(self.order.send(axum::http::Method::POST, &format!("{base}/codes"), &json!({"code": code}), &call).await?)
    }

    /// Takes a code off.
    pub async fn remove_code(&self, of: CartOf<'_>, code: &str) -> Result<(), Refusal> {
        let (base, call) = of.address()?;
        let path = format!("{base}/codes/{}", crate::page::encode(code));
        self.order.request(axum::http::Method::DELETE, &path, None, &call).await?;
        Ok(())
    }

    /// The promotions the shop tells shoppers about, highest priority first.
    pub async fn promotions(&self) -> Result<Vec<Featured>, ClientError> {
        Ok(self.order.get::<FeaturedPage>("/v1/promotions", &Call::default()).await?.items)
    }

    /// The methods that ship the cart `of` to `country`, cheapest first.
    pub async fn offers(&self, of: CartOf<'_>, country: &str, region: Option<&str>) -> Result<Vec<Offer>, Refusal> {
        let (base, call) = of.address()?;
        let mut path = format!("{base}/shipping-methods?country={}", crate::page::encode(country));
        if let Some(region) = region.filter(|r| !r.is_empty()) {
            path.push_str(&format!("&region={}", crate::page::encode(region)));
        }
        Ok(self.order.get::<Offers>(&path, &call).await?.items)
    }

    /// Chooses where the cart `of` ships, and how.
    pub async fn set_shipping(
        &self,
        of: CartOf<'_>,
        country: &str,
        region: Option<&str>,
        postal_code: Option<&str>,
        method_id: Option<&str>,
    ) -> Result<Cart, Refusal> {
        let (base, call) = of.address()?;
        let body = json!({"country": country, "region": region, "postal_code": postal_code, "method_id": method_id});
        Ok(self.order.send(axum::http::Method::PUT, &format!("{base}/shipping"), &body, &call).await?)
    }
}

/// Whose cart a call reaches: a guest's by its id (the id is its secret, kept in the browser's
/// cookie), or the signed-in shopper's own, by their access token — the same cart on every device
/// they sign in on.
#[derive(Clone, Copy)]
pub enum CartOf<'a> {
    /// A guest cart's id.
    Guest(&'a str),
    /// A signed-in shopper's access token.
    Account(&'a str),
}

/// Neither a guest cart's id nor an access token is shown: both are secrets.
impl std::fmt::Debug for CartOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CartOf::Guest(_) => "CartOf::Guest(..)",
            CartOf::Account(_) => "CartOf::Account(..)",
        })
    }
}

impl CartOf<'_> {
    /// The order service's path of the cart and the call that reaches it.
    fn address(self) -> Result<(String, Call), Refusal> {
        match self {
            CartOf::Guest(id) => Ok((format!("/v1/carts/{}", checked(id)?), Call::default())),
            CartOf::Account(token) => Ok(("/v1/cart".to_owned(), Call::bearer(token))),
        }
    }
}

impl Orders {
    /// Checks out guest cart `cart_id` for `email` to `address`, paying with `payment_method`;
    /// `attempt` is the checkout attempt's idempotency key (a double click or a reload posts the
    /// same one, and gets the same order).
    pub async fn place(
        &self,
        cart_id: &str,
        email: &str,
        address: &AddressInput,
        payment_method: &str,
        attempt: &str,
    ) -> Result<Placement, Refusal> {
        let body = json!({"cart_id": checked(cart_id)?, "email": email, "shipping_address": address,
            "payment_method": payment_method});
        let call = Call { idempotency_key: Some(attempt.to_owned()), ..Call::default() };
        Ok(self.order.send(axum::http::Method::POST, "/v1/orders", &body, &call).await?)
    }

    /// Checks out cart `cart_id` for the signed-in shopper of `access_token` (the order is theirs).
    pub async fn place_signed_in(
        &self,
        cart_id: &str,
        access_token: &str,
        address: &AddressInput,
        payment_method: &str,
        attempt: &str,
    ) -> Result<Placement, Refusal> {
        let body = json!({"cart_id": checked(cart_id)?, "shipping_address": address, "payment_method": payment_method});
        let call = Call {
            bearer: Some(access_token.to_owned()),
            idempotency_key: Some(attempt.to_owned()),
            ..Call::default()
        };
        Ok(self.order.send(axum::http::Method::POST, "/v1/orders", &body, &call).await?)
    }

    /// The signed-in shopper's latest orders, newest first.
    pub async fn my_orders(&self, access_token: &str) -> Result<Vec<Order>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            items: Vec<Order>,
        }
        let call = Call::bearer(access_token);
        Ok(self.order.get::<Page>("/v1/orders?limit=50", &call).await?.items)
    }

    /// The signed-in shopper's order `id`; `None` when it is not theirs or does not exist.
    pub async fn my_order(&self, id: &str, access_token: &str) -> Result<Option<Order>, ClientError> {
        if !safe_id(id) {
            return Ok(None);
        }
        let call = Call::bearer(access_token);
        match self.order.get(&format!("/v1/orders/{id}"), &call).await {
            Ok(order) => Ok(Some(order)),
            Err(error) if error.status().is_some_and(|s| matches!(s.as_u16(), 403 | 404)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Cancels the signed-in shopper's order `id` (before it ships).
    pub async fn cancel(&self, id: &str, access_token: &str) -> Result<(), Refusal> {
        let call = Call::bearer(access_token);
        let path = format!("/v1/orders/{}/cancel", checked(id)?);
        self.order.request(axum::http::Method::POST, &path, None, &call).await?;
        Ok(())
    }

    /// The guest order `id` by its secret `token`; `None` when there is no such order for it.
    pub async fn guest_order(&self, id: &str, token: &str) -> Result<Option<Order>, ClientError> {
        if !safe_id(id) || token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let path = format!("/v1/orders/{id}?token={}", crate::page::encode(token));
        match self.order.get(&path, &Call::default()).await {
            Ok(order) => Ok(Some(order)),
            Err(error) if error.status().is_some_and(|s| matches!(s.as_u16(), 401 | 403 | 404)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Whether `id` may go in a path as it is (carts' and orders' ids: letters, digits, '-' and '_').
fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn checked(id: &str) -> Result<&str, Refusal> {
    if safe_id(id) { Ok(id) } else { Err(Refusal::NoCart) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_a_sentence() {
        let field = br#"{"title":"Unprocessable","detail":"invalid fields","errors":[{"field":"postal_code","message":"must not be empty"}]}"#;
        assert_eq!(problem_text(field).as_deref(), Some("Postal code must not be empty."));
        assert_eq!(
            problem_text(br#"{"title":"Conflict","detail":"the cart changed."}"#).as_deref(),
            Some("The cart changed.")
        );
        assert_eq!(problem_text(b"not json"), None);
        let said = br#"{"errors":[{"field":"country","message":"we do not ship to XX"}]}"#;
        assert_eq!(problem_text(said).as_deref(), Some("We do not ship to XX."));
        assert!(!safe_id("../admin") && !safe_id("") && safe_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
    }
}
