//! What the user service receives: its own account events that ask for an email (password
//! resets, address verification) and the customer-facing steps of orders and carts, on the
//! mailer's queue (see [`crate::mail`]).

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError, Subscription};

use crate::app::mail::{Mail, Mailer};

/// The mailer's queue.
pub const QUEUE: &str = "user-mail";

/// The queues the service consumes and the events each receives.
pub const SUBSCRIPTIONS: &[Subscription] = &[Subscription {
    queue: QUEUE,
    events: &[
        "user.password_reset_requested.v1",
        "user.email_verification_requested.v1",
        "order.confirmed.v1",
        "order.payment_failed.v1",
        "order.shipped.v1",
        "order.cancelled.v1",
        "order.refunded.v1",
        "cart.abandoned.v1",
    ],
}];

#[async_trait]
impl EventHandler for Mailer {
    #[tracing::instrument(skip_all, fields(user.id, order.id))]
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if event.kind.starts_with("user.")
            && let Some(user_id) = &event.subject
        {
            // An account's own events are about the user (their subject).
            tracing::Span::current().record("user.id", user_id.as_str());
        }
        let Some(Mail { to, subject, text, html }) = self.render(event).await? else { return Ok(()) };
        if to.contains(['\r', '\n']) || subject.contains(['\r', '\n']) {
            return Err(HandlerError::Reject("a recipient or subject with a line break".into()));
        }
        let (content_type, body) = match html {
            None => ("text/plain; charset=utf-8".to_owned(), text),
            Some(html) => {
                let boundary = format!("b-{}", event.id);
                (
                    format!("multipart/alternative; boundary=\"{boundary}\""),
                    format!(
                        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
                         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}--\r\n"
                    ),
                )
            }
        };
        let message = format!(
            "Message-ID: <{id}@shop>\r\nDate: {date}\r\nFrom: {from}\r\nTo: {to}\r\n\
             Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}",
            id = event.id,
            date = event.time.to_rfc2822(),
            from = self.from,
        );
        self.sink.deliver(&event.id, &to, &message).await.map_err(|e| {
            if e.is_permanent() {
                HandlerError::Reject(platform::error::cause_chain(&e))
            } else {
                HandlerError::retry(e)
            }
        })?;
        tracing::info!(event.id = %event.id, "email delivered");
        Ok(())
    }
}
