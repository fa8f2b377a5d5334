//! Argon2id password hashing, run off the async executor because it is deliberately slow.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::platform::{ApiError, ApiResult};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

/// Verified against when the account does not exist, so a login for an unknown email
/// costs as much time as one for a known email.
static DECOY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("decoy password that matches nothing").unwrap_or_default());

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks the password policy; the message names the rule broken.
pub fn check_policy(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        Err("must be at least 10 characters")
    } else if len > MAX_LENGTH {
        Err("must be at most 256 characters")
    } else {
        Ok(())
    }
}

pub async fn hash(password: &str) -> ApiResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Verifies `password` against `stored`, or against a decoy when there is no account.
pub async fn verify(password: &str, stored: Option<&str>) -> bool {
    let password = password.to_owned();
    let known = stored.is_some();
    let stored = stored.map_or_else(|| DECOY_HASH.clone(), str::to_owned);
    let matched = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && matched
}
