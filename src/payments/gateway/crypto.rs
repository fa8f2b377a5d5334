//! PLACEHOLDER: RSA (SHA256withRSA) signing and verification, key loading, AES-256-GCM.
