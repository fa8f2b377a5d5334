//! The primitives every gateway signs with: SHA256withRSA (PKCS#1 v1.5) over a message the
//! gateway defines, and AES-256-GCM for WeChat Pay's encrypted notification resources.

use std::path::Path;

use anyhow::Context;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A merchant's RSA private key.
pub struct PrivateKey(RsaKeyPair);

impl PrivateKey {
    /// Reads PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`), as PEM or as
    /// the bare base64 the Alipay console hands out.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?;
        Self::from_pem(&text)
            .with_context(|| format!("{} is not an RSA private key", path.display()))
    }

    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let der = pem_body(text)?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self(pair))
    }

    /// SHA256withRSA signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        // Signing with a valid key into a buffer of the modulus length cannot fail.
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("RSA signing with a checked key");
        signature
    }

    /// The signature, base64-encoded as every gateway sends it.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        STANDARD.encode(self.sign(message))
    }
}

/// A gateway's RSA public key.
pub struct PublicKey(ParsedPublicKey);

impl PublicKey {
    /// Reads `BEGIN PUBLIC KEY` (X.509 SubjectPublicKeyInfo) or `BEGIN RSA PUBLIC KEY`
    /// (PKCS#1), as PEM or bare base64.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the public key {}", path.display()))?;
        Self::from_pem(&text)
            .with_context(|| format!("{} is not an RSA public key", path.display()))
    }

    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let der = pem_body(text)?;
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map(Self)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Whether `signature_b64` is a valid SHA256withRSA signature of `message`.
    pub fn verify_base64(&self, message: &[u8], signature_b64: &str) -> bool {
        let compact: String = signature_b64
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        STANDARD
            .decode(compact)
            .is_ok_and(|sig| self.0.verify_sig(message, &sig).is_ok())
    }
}

/// Decrypts AES-256-GCM `ciphertext` (with its 16-byte tag at the end); `None` if the key,
/// nonce, associated data or ciphertext do not match.
pub fn aes_256_gcm_open(
    key: &[u8],
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = ciphertext.to_vec();
    let plain_len = key
        .open_in_place(nonce, Aad::from(associated_data), &mut buffer)
        .ok()?
        .len();
    buffer.truncate(plain_len);
    Some(buffer)
}

/// The DER inside a PEM block, or the whole text as base64 when there is no armour.
fn pem_body(text: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    anyhow::ensure!(!body.is_empty(), "no key found");
    STANDARD
        .decode(body)
        .map_err(|e| anyhow::anyhow!("not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::aes_256_gcm_open;

    /// Test case 16 of the GCM specification (McGrew & Viega): AES-256, 96-bit IV, AAD.
    #[test]
    fn aes_256_gcm_opens_the_published_vector() {
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .unwrap();
        let iv = hex::decode("cafebabefacedbaddecaf888").unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let ciphertext = hex::decode(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b"
        ))
        .unwrap();
        let plain = aes_256_gcm_open(&key, &iv, &aad, &ciphertext).unwrap();
        assert_eq!(
            hex::encode(plain),
            concat!(
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
            )
        );
        let mut tampered = ciphertext.clone();
        tampered[0] ^= 1;
        assert_eq!(aes_256_gcm_open(&key, &iv, &aad, &tampered), None);
        assert_eq!(aes_256_gcm_open(&key, &iv, b"other", &ciphertext), None);
    }
}
