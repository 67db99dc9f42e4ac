//! The mailer: turns notification events into emails: password resets, the customer-facing
//! steps of an order (confirmed, payment failed, shipped, cancelled) and abandoned-cart reminders
//! (text and HTML). Each rendered message goes to a [`MailSink`] (`SHOP_MAIL_SINK`): in the embedded
//! mode [`FolderSink`] writes it as an `.eml` file to a folder, where a developer can open it; on
//! AWS [`SesSink`] sends it through Amazon SES as it is. Delivery is idempotent by event id, so a
//! redelivered event sends nothing twice.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use platform::events::{Event, HandlerError};
use serde::Deserialize;

/// A delivery that failed: tried again later, unless the provider refused this message for good.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery")]
pub struct MailError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
    permanent: bool,
}

impl MailError {
    /// A passing failure (the provider unreachable, a timeout): the event is tried again later.
    pub fn failed(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { source: source.into(), permanent: false }
    }

    /// The provider refused this message and would refuse it again (an unverified sender, a
    /// malformed message): the event is dead-lettered at once, to be redriven once it is fixed.
    pub fn refused(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { source: source.into(), permanent: true }
    }

    /// Whether trying again cannot help.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// What went wrong.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

/// Where rendered emails go.
#[async_trait]
pub trait MailSink: Send + Sync {
    /// Delivers `message` (RFC 5322 with CRLF line ends, its headers included) to `to`. `id` names
    /// the message: delivering an id again sends nothing twice.
    async fn deliver(&self, id: &str, to: &str, message: &str) -> Result<(), MailError>;
}

/// The embedded mode's sink: each email an `<id>.eml` file in a folder.
#[derive(Debug, Clone)]
pub struct FolderSink {
    dir: PathBuf,
}

impl FolderSink {
    /// Writes to `dir` (made when missing).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl MailSink for FolderSink {
    async fn deliver(&self, id: &str, _to: &str, message: &str) -> Result<(), MailError> {
        let (dir, name, message) = (self.dir.clone(), format!("{id}.eml"), message.to_owned());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(&name);
            if path.exists() {
                return Ok(());
            }
            // Write then rename, so a reader never sees half an email.
            let partial = dir.join(format!(".{name}.partial"));
            std::fs::write(&partial, message)?;
            std::fs::rename(partial, path)
        })
        .await
        .map_err(MailError::failed)?
        .map_err(MailError::failed)
    }
}

/// Amazon SES (its v2 API): each message sent as it is with the raw `SendEmail`, from the
/// configured `From` identity. SES has no idempotency key of its own, so the sink remembers
/// delivered ids in the cache: an id is claimed for [`SesSink::CLAIM`] before the call (a second
/// delivery of it meanwhile is told to try again later, and a failed call gives the claim back),
/// then marked sent for [`SesSink::REMEMBER`], longer than any event stays in a queue.
pub struct SesSink {
    client: aws_sdk_sesv2::Client,
    from: String,
    cache: Arc<dyn platform::cache::Cache>,
}

impl std::fmt::Debug for SesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesSink").field("from", &self.from).finish_non_exhaustive()
    }
}

/// A claim's value: this, then the attempt's id.
const SENDING: &[u8] = b"sending:";
const SENT: &[u8] = b"sent";

impl SesSink {
    /// How long one delivery holds its id: past it, a delivery that died mid-call is tried again.
    pub const CLAIM: std::time::Duration = std::time::Duration::from_secs(120);
    /// The longest one SES call may take.
    pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
    /// How long a sent id is remembered.
    pub const REMEMBER: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 60 * 60);

    /// A sink sending with `client` from `from`, remembering ids in `cache`.
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>, cache: Arc<dyn platform::cache::Cache>) -> Self {
        Self { client, from: from.into(), cache }
    }

    fn key(id: &str) -> String {
        format!("mail:{id}")
    }

    /// Makes `from`'s address a verified identity on an AWS emulator (moto verifies at once), for
    /// the local stack; on AWS the CDK app verifies the shop's domain. An existing one is kept.
    pub async fn verify_on_emulator(sdk: &platform::aws::SdkConfig, from: &str) -> anyhow::Result<()> {
        let client = aws_sdk_sesv2::Client::new(sdk);
        let address = address_of(from);
        match client.create_email_identity().email_identity(address).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => Ok(()),
            Err(e) => {
                Err(anyhow::anyhow!("cannot verify {address} on SES: {}", aws_sdk_sesv2::error::DisplayErrorContext(e)))
            }
        }
    }
}

/// The bare address of an RFC 5322 mailbox: `Shop <shop@example.com>` → `shop@example.com`.
pub fn address_of(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => mailbox[open + 1..close].trim(),
        _ => mailbox.trim(),
    }
}

#[async_trait]
impl MailSink for SesSink {
    async fn deliver(&self, id: &str, to: &str, message: &str) -> Result<(), MailError> {
        use aws_sdk_sesv2::primitives::Blob;
        use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

        let key = Self::key(id);
        // This attempt's own claim, so a failure gives back only its own.
        let claim = format!("{}{}", String::from_utf8_lossy(SENDING), uuid::Uuid::new_v4().simple()).into_bytes();
        if !self.cache.set_if_absent(&key, &claim, Some(Self::CLAIM)).await.map_err(MailError::failed)? {
            return match self.cache.get(&key).await.map_err(MailError::failed)? {
                Some(state) if state == SENT => Ok(()),
                // Another delivery of this id is under way (or its claim just lapsed): later.
                _ => Err(MailError::failed(format!("email {id} is being delivered by another attempt"))),
            };
        }
        let raw = RawMessage::builder().data(Blob::new(message.as_bytes())).build().map_err(MailError::failed)?;
        let call = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send();
        // Well inside the claim, so a redelivery never sends while this call may still.
        let sent = match tokio::time::timeout(Self::CALL_TIMEOUT, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                use aws_sdk_sesv2::operation::send_email::SendEmailError as E;
                // Refusals of this message that a retry would meet again.
                let permanent = e.as_service_error().is_some_and(|e| {
                    matches!(
                        e,
                        E::MessageRejected(_) | E::MailFromDomainNotVerifiedException(_) | E::BadRequestException(_)
                    )
                });
                let why = format!("SES refused the email: {}", aws_sdk_sesv2::error::DisplayErrorContext(e));
                Err(if permanent { MailError::refused(why) } else { MailError::failed(why) })
            }
            Err(_) => Err(MailError::failed(format!("SES did not answer within {:?}", Self::CALL_TIMEOUT))),
        };
        match sent {
            Ok(answer) => {
                tracing::debug!(ses.message_id = answer.message_id().unwrap_or_default(), "sent through SES");
                // Were this lost, a redelivery would send the email again: log it, it is sent.
                if let Err(e) = self.cache.set(&key, SENT, Some(Self::REMEMBER)).await {
                    tracing::warn!(error = %e, "could not remember a sent email");
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.cache.delete_if(&key, &claim).await;
                Err(e)
            }
        }
    }
}

/// Renders notification events into emails for a sink.
#[derive(Clone)]
pub struct Mailer {
    pub(crate) sink: Arc<dyn MailSink>,
    /// The `From` header.
    pub(crate) from: String,
    /// Where order notifications find their shopper's address.
    users: Option<Arc<dyn crate::store::UserStore>>,
    /// Opens the reset tokens sealed for the mailer.
    keys: Option<Arc<crate::app::keys::KeyRing>>,
    /// Where the links in emails lead (the shop's public URL).
    base: url::Url,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

/// One email to write.
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: Option<String>,
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The subject and paragraphs of an order notification, or `None` for an event that is not one.
fn order_mail(event: &platform::contracts::order::OrderEvent, kind: &str) -> Option<(String, Vec<String>)> {
    use platform::contracts::order::OrderEvent as E;
    let amount = platform::money::decimal;
    let total = format!("{} {}", amount(event.total.amount), event.total.currency);
    let order = &event.order_id;
    Some(match kind {
        E::CONFIRMED => {
            let mut paragraphs =
                vec![format!("Thank you! We have your payment of {total} and are packing your order {order}.")];
            if let Some(t) = &event.totals {
                let tax = if t.tax_inclusive { "tax included" } else { "tax" };
                paragraphs.push(format!(
                    "Items {}, discounts -{}, shipping {}, {tax} {}: {total}.",
                    amount(t.subtotal),
                    amount(t.discount_total),
                    amount(t.shipping_total),
                    amount(t.tax_total),
                ));
            }
            (format!("Your order {order} is confirmed"), paragraphs)
        }
        E::PAYMENT_FAILED => (
            format!("The payment for your order {order} did not go through"),
            vec![
                format!(
                    "Your bank declined the payment of {total} ({}). Nothing was charged.",
                    event.reason.as_deref().unwrap_or("declined")
                ),
                "You can place the order again with another payment method.".to_owned(),
            ],
        ),
        E::SHIPPED => (
            format!("Your order {order} is on its way"),
            vec![format!(
                "Your parcel has left our warehouse. Its tracking number is {}.",
                event.tracking_number.as_deref().unwrap_or("on its way")
            )],
        ),
        E::CANCELLED => (
            format!("Your order {order} is cancelled"),
            vec![format!("Your order {order} is cancelled; any payment of {total} is released or refunded.")],
        ),
        E::REFUNDED => {
            let refunded = event.refunded.as_ref()?;
            let mut paragraphs = vec![format!(
                "We are refunding {} {} of your order {order} to the payment method you used; banks take a few \
                 days to show it.",
                amount(refunded.amount),
                refunded.currency
            )];
            if let Some(reason) = event.reason.as_deref().filter(|r| !r.is_empty()) {
                paragraphs.push(format!("Reason: {reason}."));
            }
            if event.status == "refunded" {
                paragraphs.push(format!("With this refund, the whole of your order ({total}) has been given back."));
            }
            (format!("A refund for your order {order}"), paragraphs)
        }
        _ => return None,
    })
}

#[derive(Deserialize)]
struct VerificationRequested {
    email: String,
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
struct PasswordResetRequested {
    email: String,
    /// The token sealed for the mailer (`KeyRing::seal`).
    #[serde(default)]
    token_sealed: Option<String>,
    /// The token in the clear (events made before sealing).
    #[serde(default)]
    token: Option<String>,
    expires_at: chrono::DateTime<chrono::Utc>,
}

impl Mailer {
    /// A mailer writing to the folder `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self::with_sink(Arc::new(FolderSink::new(dir)))
    }

    /// A mailer delivering to `sink`.
    pub fn with_sink(sink: Arc<dyn MailSink>) -> Self {
        Self {
            sink,
            from: crate::settings::DEFAULT_MAIL_FROM.to_owned(),
            users: None,
            keys: None,
            base: url::Url::parse("http://localhost:8080/").expect("a URL"),
        }
    }

    /// Links in emails lead to `base` (the shop's public URL).
    pub fn linking_to(mut self, base: url::Url) -> Self {
        self.base = base;
        self
    }

    /// The link to the storefront's page of a guest's order, which reads it with its token.
    fn order_link(&self, order_id: &str, token: &str) -> String {
        self.page_link(&format!("orders/{order_id}"), token)
    }

    /// The storefront page `path` with `token` in its query.
    fn page_link(&self, path: &str, token: &str) -> String {
        let mut link = self.base.join(path).unwrap_or_else(|_| self.base.clone());
        link.query_pairs_mut().append_pair("token", token);
        link.to_string()
    }

    /// Sends from `from` (an RFC 5322 address, such as `Shop <shop@example.com>`).
    pub fn from_address(mut self, from: impl Into<String>) -> Self {
        self.from = from.into();
        self
    }

    /// Also sends order notifications, to the addresses `users` holds.
    pub fn with_users(mut self, users: Arc<dyn crate::store::UserStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// Opens the reset tokens the user service seals for it with `keys`.
    pub fn with_keys(mut self, keys: Arc<crate::app::keys::KeyRing>) -> Self {
        self.keys = Some(keys);
        self
    }

    pub(crate) async fn render(&self, event: &Event) -> Result<Option<Mail>, HandlerError> {
        if event.kind == platform::contracts::order::CartAbandoned::KIND {
            let Some(users) = &self.users else { return Ok(None) };
            let cart: platform::contracts::order::CartAbandoned =
                event.data_as().map_err(|e| HandlerError::Reject(format!("bad payload: {e}")))?;
            // A guest cart has nobody to remind.
            let Some(owner) = &cart.owner_id else { return Ok(None) };
            tracing::Span::current().record("user.id", owner.as_str());
            let Some(account) = users.by_id(owner).await.map_err(HandlerError::retry)? else { return Ok(None) };
            let units: i64 = cart.lines.iter().map(|l| l.quantity).sum();
            let name = account.user.name.clone();
            let line = format!("You left {units} item(s) in your cart. They are waiting for you, at today's prices.");
            let text = format!("Hello {name},\r\n\r\n{line}\r\n\r\nShop\r\n");
            let html = format!(
                "<!doctype html><html><body><p>Hello {},</p><p>{}</p><p>Shop</p></body></html>",
                escape_html(&name),
                escape_html(&line)
            );
            let subject = "You left something in your cart".to_owned();
            return Ok(Some(Mail { to: account.user.email, subject, text, html: Some(html) }));
        }
        if event.kind.starts_with("order.") {
            let order: platform::contracts::order::OrderEvent =
                event.data_as().map_err(|e| HandlerError::Reject(format!("bad payload: {e}")))?;
            let span = tracing::Span::current();
            span.record("order.id", order.order_id.as_str()).record("user.id", order.customer_id.as_str());
            let Some((subject, mut paragraphs)) = order_mail(&order, &event.kind) else { return Ok(None) };
            let (to, name) = match &order.guest {
                // A guest's order: to the address given at checkout, with the link that reads it.
                Some(guest) => {
                    paragraphs.push(format!(
                        "Follow your order here (keep this link to yourself: it opens your order): {}",
                        self.order_link(&order.order_id, &guest.token)
                    ));
                    (guest.email.clone(), None)
                }
                None => {
                    let Some(users) = &self.users else { return Ok(None) };
                    let Some(account) = users.by_id(&order.customer_id).await.map_err(HandlerError::retry)? else {
                        return Ok(None);
                    };
                    (account.user.email, Some(account.user.name))
                }
            };
            let greeting = name.map_or_else(|| "Hello,".to_owned(), |name| format!("Hello {name},"));
            let text = format!("{greeting}\r\n\r\n{}\r\n\r\nShop\r\n", paragraphs.join("\r\n\r\n"));
            let html = format!(
                "<!doctype html><html><body><p>{}</p>{}<p>Shop</p></body></html>",
                escape_html(&greeting),
                paragraphs.iter().map(|p| format!("<p>{}</p>", escape_html(p))).collect::<String>()
            );
            return Ok(Some(Mail { to, subject, text, html: Some(html) }));
        }
        Ok(self.render_account(event)?.map(|(to, subject, text)| Mail { to, subject, text, html: None }))
    }

    fn render_account(&self, event: &Event) -> Result<Option<(String, String, String)>, HandlerError> {
        match event.kind.as_str() {
            "user.password_reset_requested.v1" => {
                let data: PasswordResetRequested =
                    event.data_as().map_err(|e| HandlerError::Reject(format!("bad payload: {e}")))?;
                // The token travels sealed (events and dead letters keep no usable token); an
                // event from before sealing carries it plain.
                let token = match (&data.token_sealed, &data.token, &self.keys) {
                    (Some(sealed), _, Some(keys)) => keys
                        .open(sealed)
                        .ok_or_else(|| HandlerError::Reject("the sealed token does not open with our keys".into()))?,
                    (None, Some(plain), _) => plain.clone(),
                    _ => {
                        return Err(HandlerError::Reject(
                            "the reset event carries no token this mailer can read".into(),
                        ));
                    }
                };
                let body = format!(
                    "Someone asked to reset the password of your account.\r\n\r\n\
                     To choose a new password, open this page:\r\n\r\n{}\r\n\r\n\
                     (or send this token to POST /v1/auth/password-reset/confirm:\r\n\r\n\
                     {}\r\n\r\n)\r\n\r\nIt works once, until {}. If it was not you, ignore this email.\r\n",
                    self.page_link("account/reset", &token),
                    token,
                    data.expires_at.to_rfc3339()
                );
                Ok(Some((data.email, "Reset your password".to_owned(), body)))
            }
            crate::api::verify_email::REQUESTED => {
                let data: VerificationRequested =
                    event.data_as().map_err(|e| HandlerError::Reject(format!("bad payload: {e}")))?;
                let body = format!(
                    "Welcome. To confirm that this address is yours, open this page:\r\n\r\n{}\r\n\r\n\
                     (or send this token to POST /v1/auth/verify-email:\r\n\r\n\
                     {}\r\n\r\n)\r\n\r\nIt works until {}. If you did not open an account, ignore this email: nothing \
                     else can sign in with this address until it is confirmed.\r\n",
                    self.page_link("account/verify", &data.token),
                    data.token,
                    data.expires_at.to_rfc3339()
                );
                Ok(Some((data.email, "Confirm your email address".to_owned(), body)))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use platform::events::EventHandler;
    use serde_json::json;

    use super::*;

    #[test]
    fn an_order_confirmation_shows_how_its_total_is_made_up() {
        use platform::contracts::order::{OrderEvent, Totals};
        let mut event = OrderEvent {
            order_id: "ord_1".into(),
            customer_id: "u1".into(),
            status: "confirmed".into(),
            total: platform::money::Money::new(11_900, "USD"),
            reason: None,
            tracking_number: None,
            totals: Some(Totals {
                subtotal: 11_900,
                discount_total: 1_190,
                shipping_total: 1_190,
                tax_total: 1_900,
                tax_inclusive: true,
            }),
            guest: None,
            refunded: None,
        };
        let (subject, paragraphs) = order_mail(&event, OrderEvent::CONFIRMED).unwrap();
        assert_eq!(subject, "Your order ord_1 is confirmed");
        assert_eq!(paragraphs[1], "Items 119.00, discounts -11.90, shipping 11.90, tax included 19.00: 119.00 USD.");
        event.totals = None;
        assert_eq!(order_mail(&event, OrderEvent::CONFIRMED).unwrap().1.len(), 1, "an order from before");
    }

    #[test]
    fn a_refund_email_says_what_this_refund_gives_back_and_when_the_order_is_refunded_whole() {
        use platform::contracts::order::OrderEvent;
        let mut event = OrderEvent {
            order_id: "ord_1".into(),
            customer_id: "u1".into(),
            status: "shipped".into(),
            total: platform::money::Money::new(11_900, "EUR"),
            reason: Some("returned".into()),
            tracking_number: None,
            totals: None,
            guest: None,
            refunded: Some(platform::money::Money::new(2_999, "EUR")),
        };
        let (subject, paragraphs) = order_mail(&event, OrderEvent::REFUNDED).unwrap();
        assert_eq!(subject, "A refund for your order ord_1");
        assert!(paragraphs[0].starts_with("We are refunding 29.99 EUR of your order ord_1"), "{paragraphs:?}");
        assert_eq!(paragraphs[1], "Reason: returned.");
        assert_eq!(paragraphs.len(), 2, "part of the order only");
        event.status = "refunded".into();
        let (_, paragraphs) = order_mail(&event, OrderEvent::REFUNDED).unwrap();
        assert_eq!(paragraphs[2], "With this refund, the whole of your order (119.00 EUR) has been given back.");
        event.refunded = None;
        assert!(order_mail(&event, OrderEvent::REFUNDED).is_none(), "no amount, no email");
    }

    #[test]
    fn the_bare_address_is_taken_from_a_mailbox() {
        assert_eq!(address_of("Shop <shop@example.com>"), "shop@example.com");
        assert_eq!(address_of("shop@example.com"), "shop@example.com");
        assert_eq!(address_of(" \"A <b>\" < shop@example.com > "), "shop@example.com");
    }

    #[test]
    fn the_service_routes_reset_requests_to_this_queue() {
        let routing = platform::events::Routing::of(crate::consumers::SUBSCRIPTIONS);
        let queues: Vec<&str> = routing.queues_for("user.password_reset_requested.v1").collect();
        assert_eq!(queues, [crate::consumers::QUEUE]);
    }

    #[tokio::test]
    async fn a_reset_email_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(dir.path().join("mail")).from_address("Acme Shop <hello@acme.example>");
        let event = Event::new(
            "user.password_reset_requested.v1",
            "user",
            json!({"user_id": "u1", "email": "ada@example.com", "token": "tok-123", "expires_at": "2030-01-01T00:00:00Z"}),
        );
        mailer.handle(&event).await.unwrap();
        mailer.handle(&event).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail")).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(dir.path().join("mail").join(format!("{}.eml", event.id))).unwrap();
        assert!(text.contains("To: ada@example.com") && text.contains("tok-123"), "{text}");
        assert!(text.contains("\r\nFrom: Acme Shop <hello@acme.example>\r\n"), "the configured sender: {text}");
        // Other events are not mail.
        mailer.handle(&Event::new("user.other.v1", "user", json!({}))).await.unwrap();
        let bad = Event::new("user.password_reset_requested.v1", "user", json!({"email": 1}));
        assert!(matches!(mailer.handle(&bad).await, Err(HandlerError::Reject(_))));
    }

    /// A provider stand-in: records what it was given, and fails when asked to.
    #[derive(Default)]
    struct Recording {
        sent: std::sync::Mutex<Vec<(String, String, String)>>,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl MailSink for Recording {
        async fn deliver(&self, id: &str, to: &str, message: &str) -> Result<(), MailError> {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(MailError::failed("the provider is down"));
            }
            self.sent.lock().unwrap().push((id.to_owned(), to.to_owned(), message.to_owned()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_provider_gets_the_whole_message_and_its_outage_is_retried() {
        let sink = Arc::new(Recording::default());
        let mailer = Mailer::with_sink(sink.clone());
        let event = Event::new(
            "user.password_reset_requested.v1",
            "user",
            json!({"user_id": "u1", "email": "ada@example.com", "token": "tok-9", "expires_at": "2030-01-01T00:00:00Z"}),
        );
        sink.down.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(mailer.handle(&event).await, Err(HandlerError::Retry(_))), "tried again later");
        sink.down.store(false, std::sync::atomic::Ordering::Relaxed);
        mailer.handle(&event).await.unwrap();
        let sent = sink.sent.lock().unwrap();
        let (id, to, message) = &sent[0];
        assert_eq!((id.as_str(), to.as_str()), (event.id.as_str(), "ada@example.com"));
        assert!(message.starts_with(&format!("Message-ID: <{}@shop>\r\n", event.id)), "{message}");
        assert!(message.contains("\r\nSubject: Reset your password\r\n") && message.contains("tok-9"));
    }

    #[tokio::test]
    async fn a_guests_order_mail_goes_to_the_email_given_at_checkout_with_the_link_that_reads_it() {
        let sink = Arc::new(Recording::default());
        let mailer = Mailer::with_sink(sink.clone()).linking_to(url::Url::parse("https://shop.example/").unwrap());
        let event = Event::new(
            "order.confirmed.v1",
            "order",
            json!({"order_id": "ord_1", "customer_id": "guest:ada@example.com", "status": "confirmed",
                "total": {"amount": 2500, "currency": "USD"},
                "guest": {"email": "ada@example.com", "token": "tok_A-1"}}),
        );
        mailer.handle(&event).await.unwrap();
        let sent = sink.sent.lock().unwrap();
        let (_, to, message) = &sent[0];
        assert_eq!(to, "ada@example.com");
        assert!(message.contains("\r\nTo: ada@example.com\r\n") && message.contains("Hello,\r\n"), "{message}");
        assert!(message.contains("https://shop.example/orders/ord_1?token=tok_A-1"), "the order's page: {message}");
        let contact: platform::contracts::order::GuestContact =
            serde_json::from_value(json!({"email": "a@b.c", "token": "secret"})).unwrap();
        assert!(!format!("{contact:?}").contains("secret"), "the token is never in a log");
    }

    #[tokio::test]
    async fn a_message_the_provider_refuses_for_good_is_dead_lettered() {
        struct Refusing;
        #[async_trait]
        impl MailSink for Refusing {
            async fn deliver(&self, _: &str, _: &str, _: &str) -> Result<(), MailError> {
                Err(MailError::refused("MessageRejected: Email address is not verified"))
            }
        }
        let mailer = Mailer::with_sink(Arc::new(Refusing));
        let event = Event::new(
            "user.password_reset_requested.v1",
            "user",
            json!({"user_id": "u1", "email": "ada@example.com", "token": "tok-9", "expires_at": "2030-01-01T00:00:00Z"}),
        );
        match mailer.handle(&event).await {
            Err(HandlerError::Reject(reason)) => assert!(reason.contains("not verified"), "{reason}"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
