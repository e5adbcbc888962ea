//! Key wrappers: a signing key that never prints its secret, and a public
//! key that refuses points no honest signer would publish.

use crate::CodeError;

/// A key id, printed in every code so the verifier knows which public key to
/// use. Keys rotate; old ids stay published until their codes expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct KeyId(pub u16);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An Ed25519 signing key. `Debug` prints `SigningKey(<redacted>)`; the
/// secret is zeroised on drop.
pub struct SigningKey(pub(crate) ed25519_dalek::SigningKey);

impl SigningKey {
    /// The key for a 32-byte Ed25519 secret (seed), as in RFC 8032.
    pub fn from_bytes(secret: &[u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(secret))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// An Ed25519 public key, as published with its [`KeyId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(pub(crate) ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses a 32-byte compressed Edwards point. Rejects bytes that are not
    /// a point and weak (small-order) points, which strict verification would
    /// refuse anyway.
    pub fn from_bytes(b: &[u8; 32]) -> Result<PublicKey, CodeError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(b)
            .map_err(|_| CodeError::InvalidPublicKey("not a valid ed25519 point"))?;
        if key.is_weak() {
            return Err(CodeError::InvalidPublicKey(
                "small-order point, not a usable ed25519 key",
            ));
        }
        Ok(PublicKey(key))
    }

    /// The 32-byte compressed form.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Strict Ed25519 verification (RFC 8032 with canonical `S`, no
    /// small-order `R` or `A`).
    pub(crate) fn verify_strict(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = SigningKey::from_bytes(&[0xAB; 32]);
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }

    #[test]
    fn public_key_round_trips_and_rejects_weak_points() {
        let key = SigningKey::from_bytes(&[1; 32]).public_key();
        assert_eq!(PublicKey::from_bytes(&key.to_bytes()).unwrap(), key);
        // The identity point (0, 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_err());
    }
}
