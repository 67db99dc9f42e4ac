//! The mailer: turns notification events into emails. In the embedded mode (and until an email
//! provider is configured) each email is written as an `.eml` file to a folder, where a developer can
//! open it. Writing is idempotent by event id, so a redelivered event sends nothing twice.

use std::path::PathBuf;

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError};
use serde::Deserialize;

/// The mailer's queue.
pub const QUEUE: &str = "user-mail";

/// Writes emails to a folder.
#[derive(Debug, Clone)]
pub struct Mailer {
    dir: PathBuf,
}

#[derive(Deserialize)]
struct PasswordResetRequested {
    email: String,
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

impl Mailer {
    /// A mailer writing to `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn render(event: &Event) -> Result<Option<(String, String, String)>, HandlerError> {
        match event.kind.as_str() {
            "user.password_reset_requested.v1" => {
                let data: PasswordResetRequested =
                    event.data_as().map_err(|e| HandlerError::Reject(format!("bad payload: {e}")))?;
                let body = format!(
                    "Someone asked to reset the password of your account.\r\n\r\n\
                     To choose a new password, send this token to POST /v1/auth/password-reset/confirm:\r\n\r\n\
                     {}\r\n\r\nIt works once, until {}. If it was not you, ignore this email.\r\n",
                    data.token,
                    data.expires_at.to_rfc3339()
                );
                Ok(Some((data.email, "Reset your password".to_owned(), body)))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl EventHandler for Mailer {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let Some((to, subject, body)) = Self::render(event)? else { return Ok(()) };
        if to.contains(['\r', '\n']) {
            return Err(HandlerError::Reject("a recipient with a line break".into()));
        }
        let message = format!(
            "Message-ID: <{id}@shop>\r\nDate: {date}\r\nFrom: Shop <no-reply@shop.local>\r\nTo: {to}\r\n\
             Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            id = event.id,
            date = event.time.to_rfc2822(),
        );
        let dir = self.dir.clone();
        let name = format!("{}.eml", event.id);
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
        .map_err(HandlerError::retry)?
        .map_err(HandlerError::retry)?;
        tracing::info!(event.id = %event.id, "email written to the mail folder");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_platform_routes_reset_requests_to_this_queue() {
        let routing = platform::events::Routing::platform();
        let queues: Vec<&str> = routing.queues_for("user.password_reset_requested.v1").collect();
        assert_eq!(queues, [QUEUE]);
    }

    #[tokio::test]
    async fn a_reset_email_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(dir.path().join("mail"));
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
        // Other events are not mail.
        mailer.handle(&Event::new("user.other.v1", "user", json!({}))).await.unwrap();
        let bad = Event::new("user.password_reset_requested.v1", "user", json!({"email": 1}));
        assert!(matches!(mailer.handle(&bad).await, Err(HandlerError::Reject(_))));
    }
}
