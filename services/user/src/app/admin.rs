//! Bootstrapping admins: `shop admin create` makes an admin account with a TOTP secret and prints
//! the `otpauth://` URI to enrol it in an authenticator app. The first login with a valid code
//! confirms the second factor; admin tokens require it.

use platform::auth::Role;

use crate::domain::{Account, User, check_password, normalize_email, password, totp};
use crate::store::{StoreError, UserStore};

/// Why an admin could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    /// The email is not an email address.
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    /// The password is too weak.
    #[error("the password {0}")]
    WeakPassword(&'static str),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes an admin; returns the account and the `otpauth://` URI of its second factor.
pub async fn create_admin(
    users: &dyn UserStore,
    email: &str,
    password_text: &str,
    name: &str,
) -> Result<(User, String), CreateAdminError> {
    let email = normalize_email(email).ok_or_else(|| CreateAdminError::BadEmail(email.to_owned()))?;
    check_password(password_text, &email).map_err(CreateAdminError::WeakPassword)?;
    let hash = password::hash_async(password_text.to_owned()).await.expect("hashing does not panic");
    let secret = totp::new_secret();
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.clone(),
        name: if name.trim().is_empty() { "Admin".to_owned() } else { name.trim().to_owned() },
        role: Role::Admin,
        created_at: chrono::Utc::now(),
    };
    users
        .create(
            &Account {
                user: user.clone(),
                password_hash: hash,
                mfa_secret: Some(secret.clone()),
                mfa_confirmed: false,
                mfa_last_step: 0,
                credentials_changed_at: 0,
                // The operator who makes an admin vouches for the address.
                email_verified: true,
                cognito_sub: None,
            },
            &[],
        )
        .await?;
    Ok((user, totp::otpauth_uri("Shop", &email, &secret)))
}
