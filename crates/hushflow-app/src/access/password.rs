//! Passwords: Argon2id PHC strings made and checked with the `argon2` crate. Nothing here
//! returns or logs a password.

use super::{AccessError, PasswordParams};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// The longest password accepted (Argon2 takes any length; this bounds the work per attempt).
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2(params: PasswordParams) -> Result<Argon2<'static>, AccessError> {
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| AccessError::Failed(format!("password hashing parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The Argon2id PHC string of `password` with a new random salt.
pub fn hash_password(password: &str, params: PasswordParams) -> Result<String, AccessError> {
    Ok(argon2(params)?
        .hash_password(password.as_bytes())
        .map_err(|e| AccessError::Failed(format!("hashing a password: {e}")))?
        .to_string())
}

/// Whether `password` matches the PHC string `hash` (with the parameters the hash names). A
/// malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Whether `hash` was made with weaker parameters than `params` (then it is made again at the
/// next successful sign-in).
pub fn needs_rehash(hash: &str, params: PasswordParams) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return true;
    };
    let Ok(found) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || found.m_cost() < params.memory_kib
        || found.t_cost() < params.iterations
}

/// Refuses a password that is too short, too long or equal to the user name; the message
/// never holds the password.
pub fn check_password(password: &str, user: &str, min_chars: usize) -> Result<(), AccessError> {
    let chars = password.chars().count();
    if chars < min_chars {
        return Err(AccessError::Invalid(format!(
            "the password is too short: give at least {min_chars} characters (a passphrase of \
             several words is easiest to remember)"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccessError::Invalid(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.eq_ignore_ascii_case(user) {
        return Err(AccessError::Invalid(
            "the password must not be the user name".into(),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(AccessError::Invalid(
            "the password holds a control character (a line break read from stdin?)".into(),
        ));
    }
    Ok(())
}
