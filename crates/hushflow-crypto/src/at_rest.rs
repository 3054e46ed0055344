//! Personal data at rest (quarantined records, staged batches) in the age file format, encrypted
//! to the state directory's X25519 identity. Only the holder of that identity reads the files;
//! an operator given it (`hushflow keys export-identity`) opens them with the standard `age` CLI.
//!
//! age authenticates every 64 KiB chunk and marks the last one, so a flipped byte, a cut-off
//! file, swapped chunks and the wrong identity all fail to decrypt instead of yielding data.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use age::secrecy::ExposeSecret;
use hushflow_secrets::SecretValue;

/// The state directory's identity: an age X25519 secret key (`AGE-SECRET-KEY-1…`).
#[derive(Clone)]
pub struct StateIdentity(age::x25519::Identity);

/// Whom files are encrypted to: the public half of a [`StateIdentity`] (`age1…`).
#[derive(Clone)]
pub struct StateRecipient(age::x25519::Recipient);

/// Why a file could not be encrypted or decrypted. Never holds file contents.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    /// The identity kept in the keyring does not parse.
    #[error(
        "the state identity in the keyring is not a valid age identity; restore the keyring \
         from a backup"
    )]
    BadIdentity,
    /// The input does not start with an age header.
    #[error("not an age-encrypted file (or its header is damaged)")]
    NotAgeFile,
    /// The file was encrypted to another identity.
    #[error(
        "cannot be decrypted with this state directory's identity: it was encrypted to another \
         one (another state directory, or a keyring restored from elsewhere)"
    )]
    WrongIdentity,
    /// A chunk failed to authenticate, or the file ends early; holds age's description, never
    /// content.
    #[error("is damaged or was tampered with: age's authentication failed ({0})")]
    Damaged(String),
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl StateIdentity {
    /// A new identity from the OS RNG.
    pub fn generate() -> StateIdentity {
        StateIdentity(age::x25519::Identity::generate())
    }

    /// Parses `AGE-SECRET-KEY-1…`; the error never repeats the text.
    pub fn parse(secret: &str) -> Result<StateIdentity, AtRestError> {
        secret
            .trim()
            .parse::<age::x25519::Identity>()
            .map(StateIdentity)
            .map_err(|_| AtRestError::BadIdentity)
    }

    /// The secret key as the `age` CLI reads it from an identity file.
    pub fn secret(&self) -> SecretValue {
        SecretValue::new(self.0.to_string().expose_secret().as_bytes().to_vec())
    }

    /// The public half, which files are encrypted to.
    pub fn recipient(&self) -> StateRecipient {
        StateRecipient(self.0.to_public())
    }

    /// Reads an age file encrypted to this identity. The reader fails (an `io::Error` of kind
    /// `InvalidData`) at the first chunk that does not authenticate, or at a missing end.
    pub fn decrypt<R: BufRead>(&self, input: R) -> Result<impl Read + use<R>, AtRestError> {
        let decryptor = age::Decryptor::new_buffered(input).map_err(decrypt_error)?;
        decryptor
            .decrypt(std::iter::once(&self.0 as &dyn age::Identity))
            .map_err(decrypt_error)
    }

    /// Decrypts a whole file into memory (wiped when dropped), mapping a failure to authenticate
    /// to [`AtRestError::Damaged`].
    pub fn decrypt_all<R: BufRead>(&self, input: R) -> Result<SecretValue, AtRestError> {
        let mut reader = self.decrypt(input)?;
        let mut out = zeroize::Zeroizing::new(Vec::new());
        reader.read_to_end(&mut out).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                AtRestError::Damaged(e.kind().to_string())
            }
            _ => AtRestError::Io(e),
        })?;
        Ok(SecretValue::new(std::mem::take(&mut *out)))
    }
}

impl fmt::Debug for StateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateIdentity({})", self.recipient())
    }
}

impl StateRecipient {
    /// Parses `age1…` (a public key: not secret).
    pub fn parse(text: &str) -> Option<StateRecipient> {
        text.trim().parse().ok().map(StateRecipient)
    }

    /// Starts an age file on `output`. [`EncryptedWriter::finish`] must be called, or the file
    /// ends without its last chunk and fails to decrypt (which is what a crash should give).
    pub fn encrypt<W: Write>(&self, output: W) -> Result<EncryptedWriter<W>, AtRestError> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&self.0 as &dyn age::Recipient))
                .map_err(|e| AtRestError::Io(io::Error::other(e.to_string())))?;
        Ok(EncryptedWriter(encryptor.wrap_output(output)?))
    }
}

impl fmt::Display for StateRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for StateRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateRecipient({})", self.0)
    }
}

/// An age file being written: plaintext in, encrypted chunks out.
pub struct EncryptedWriter<W: Write>(age::stream::StreamWriter<W>);

impl<W: Write> EncryptedWriter<W> {
    /// Writes the last chunk and hands back the output (for the caller to flush and sync).
    pub fn finish(self) -> io::Result<W> {
        self.0.finish()
    }
}

impl<W: Write> Write for EncryptedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn decrypt_error(e: age::DecryptError) -> AtRestError {
    match e {
        age::DecryptError::NoMatchingKeys => AtRestError::WrongIdentity,
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            AtRestError::NotAgeFile
        }
        age::DecryptError::Io(e) => AtRestError::Io(e),
        other => AtRestError::Damaged(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypt(identity: &StateIdentity, plain: &[u8]) -> Vec<u8> {
        let mut w = identity.recipient().encrypt(Vec::new()).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap()
    }

    /// More than two 64 KiB chunks, so that chunk order and the last-chunk flag are exercised.
    fn plaintext() -> Vec<u8> {
        (0..200_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let id = StateIdentity::generate();
        let plain = b"canary-at-rest@example.com".repeat(10);
        let file = encrypt(&id, &plain);
        assert!(file.starts_with(b"age-encryption.org/v1\n"));
        assert!(!file.windows(6).any(|w| w == b"canary"));
        assert_eq!(id.decrypt_all(&file[..]).unwrap().expose(), &plain[..]);
        let again =
            StateIdentity::parse(std::str::from_utf8(id.secret().expose()).unwrap()).unwrap();
        assert_eq!(again.decrypt_all(&file[..]).unwrap().expose(), &plain[..]);
    }

    #[test]
    fn tampering_truncation_reordering_and_the_wrong_key_all_fail() {
        let id = StateIdentity::generate();
        let plain = plaintext();
        let file = encrypt(&id, &plain);
        // The header ends with the line "--- <MAC>"; the payload (a 16-byte nonce, then chunks)
        // follows it.
        let mac_line = file.windows(4).position(|w| w == b"\n---").unwrap() + 1;
        let body = file[mac_line..].iter().position(|&b| b == b'\n').unwrap() + mac_line + 1;

        let mut flipped = file.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 1;
        assert!(matches!(
            id.decrypt_all(&flipped[..]),
            Err(AtRestError::Damaged(_))
        ));

        let cut = &file[..file.len() - 100];
        assert!(matches!(id.decrypt_all(cut), Err(AtRestError::Damaged(_))));
        // Cut exactly at a chunk boundary: the last-chunk flag is missing.
        let chunk = 64 * 1024 + 16;
        let at_boundary = &file[..body + 16 + chunk];
        assert!(matches!(
            id.decrypt_all(at_boundary),
            Err(AtRestError::Damaged(_))
        ));

        // Swap the first two chunks (16 bytes of nonce follow the header).
        let start = body + 16;
        let mut swapped = file[..start].to_vec();
        swapped.extend_from_slice(&file[start + chunk..start + 2 * chunk]);
        swapped.extend_from_slice(&file[start..start + chunk]);
        swapped.extend_from_slice(&file[start + 2 * chunk..]);
        assert_eq!(swapped.len(), file.len());
        assert!(matches!(
            id.decrypt_all(&swapped[..]),
            Err(AtRestError::Damaged(_))
        ));

        let other = StateIdentity::generate();
        assert!(matches!(
            other.decrypt_all(&file[..]),
            Err(AtRestError::WrongIdentity)
        ));
        assert!(matches!(
            id.decrypt_all(&b"plain text"[..]),
            Err(AtRestError::NotAgeFile)
        ));
    }

    #[test]
    fn debug_shows_only_the_public_half() {
        let id = StateIdentity::generate();
        let secret = String::from_utf8(id.secret().expose().to_vec()).unwrap();
        assert!(secret.starts_with("AGE-SECRET-KEY-1"));
        let shown = format!("{id:?} {:?} {}", id.recipient(), id.recipient());
        assert!(!shown.contains(&secret[16..]), "{shown}");
        assert!(shown.contains("age1"), "{shown}");
        assert!(StateIdentity::parse("AGE-SECRET-KEY-1NOPE").is_err());
    }
}
