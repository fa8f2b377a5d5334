//! The RSA keys that sign access tokens. They live as PEM files in one directory, shared by
//! every instance; the newest signs, and older keys stay published in the JWKS document
//! until every token they signed has expired, so a rotation never breaks a live token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::tokens::VerifiedTokens;

/// One signing key and its public half.
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    jwk: Jwk,
    /// When the file appeared: keys are ordered by it.
    added: SystemTime,
}

struct Loaded {
    /// Newest first.
    keys: Vec<Arc<SigningKey>>,
    /// The directory listing the keys came from, to skip reloads when nothing changed.
    listing: Vec<(String, SystemTime)>,
}

/// The keys of one key directory, reloaded when the directory changes.
pub struct KeyRing {
    dir: PathBuf,
    /// How long a token lives: a retired key is kept this long after its successor came.
    token_ttl: Duration,
    loaded: RwLock<Loaded>,
    /// When an unknown `kid` last made us re-read the directory.
    last_reload: Mutex<Instant>,
    /// Tokens these keys verified, so each is checked once.
    pub(super) verified: VerifiedTokens,
}

impl KeyRing {
    /// Opens `dir`, generating the first key if it holds none.
    pub fn open(dir: &Path, token_ttl: Duration) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the key directory {}", dir.display()))?;
        generate_first_key(dir)?;
        let ring = Self {
            dir: dir.to_owned(),
            token_ttl,
            loaded: RwLock::new(Loaded {
                keys: Vec::new(),
                listing: Vec::new(),
            }),
            last_reload: Mutex::new(Instant::now()),
            verified: VerifiedTokens::default(),
        };
        ring.reload()?;
        Ok(ring)
    }

    /// Re-reads the directory when its listing changed (another instance rotated).
    pub fn reload(&self) -> anyhow::Result<()> {
        let current = listing(&self.dir)?;
        if self.read().listing == current {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(current.len());
        for (name, added) in &current {
            let path = self.dir.join(format!("{name}.pem"));
            let pem = std::fs::read(&path)?;
            keys.push(Arc::new(
                load_key(name, &pem, *added).with_context(|| format!("key {}", path.display()))?,
            ));
        }
        keys.sort_by(|a, b| b.added.cmp(&a.added).then_with(|| b.kid.cmp(&a.kid)));
        if keys.is_empty() {
            anyhow::bail!("the key directory {} holds no key", self.dir.display());
        }
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded {
            keys,
            listing: current,
        };
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new key, which signs from now on; returns its `kid`.
    pub fn rotate(&self) -> anyhow::Result<String> {
        let kid = generate_key(&self.dir)?;
        self.reload()?;
        Ok(kid)
    }

    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.read().keys[0].clone()
    }

    /// The keys still valid for verification: the newest, and each older one until
    /// `token_ttl` after the key that replaced it was added.
    fn live(&self) -> Vec<Arc<SigningKey>> {
        let loaded = self.read();
        let now = SystemTime::now();
        let mut live = vec![loaded.keys[0].clone()];
        live.extend(
            loaded
                .keys
                .windows(2)
                .filter(|pair| self.still_live(&pair[0], now))
                .map(|pair| pair[1].clone()),
        );
        live
    }

    /// Whether the key replaced by `successor` still verifies at `now`.
    fn still_live(&self, successor: &SigningKey, now: SystemTime) -> bool {
        successor.added + self.token_ttl > now
    }

    /// The live key named `kid`. An unknown `kid` may be a key another instance just
    /// added, so the directory is re-read (at most once a second) before giving up.
    pub fn verification_key(&self, kid: &str) -> Option<Arc<SigningKey>> {
        if let Some(key) = self.live_key(kid) {
            return Some(key);
        }
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < Duration::from_secs(1) {
                return None;
            }
            *last = Instant::now();
        }
        if let Err(err) = self.reload() {
            tracing::error!(error = %err, "cannot reload the token signing keys");
        }
        self.live_key(kid)
    }

    /// On the path of every bearer request, so it allocates nothing.
    fn live_key(&self, kid: &str) -> Option<Arc<SigningKey>> {
        let loaded = self.read();
        let position = loaded.keys.iter().position(|k| k.kid == kid)?;
        let live = position == 0 || self.still_live(&loaded.keys[position - 1], SystemTime::now());
        live.then(|| loaded.keys[position].clone())
    }

    /// The public keys for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.live().iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

/// Generates the first key unless the directory has one. Instances starting together on
/// one shared directory must not each make their own, so the one that creates the lock
/// file generates and the others wait for its key. A lock left by a crash is taken over
/// after a minute.
fn generate_first_key(dir: &Path) -> anyhow::Result<()> {
    let lock = dir.join(".generating");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if !listing(dir)?.is_empty() {
            return Ok(());
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => {
                let result = if listing(dir)?.is_empty() {
                    generate_key(dir).map(drop)
                } else {
                    Ok(())
                };
                let _ = std::fs::remove_file(&lock);
                return result;
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
                if stale {
                    let _ = std::fs::remove_file(&lock);
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "another process holds {} and wrote no key",
                    lock.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => return Err(err).context("creating the key generation lock"),
        }
    }
}

fn listing(dir: &Path) -> anyhow::Result<Vec<(String, SystemTime)>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pem")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push((stem.to_owned(), entry.metadata()?.modified()?));
        }
    }
    names.sort();
    Ok(names)
}

fn load_key(kid: &str, pem: &[u8], added: SystemTime) -> anyhow::Result<SigningKey> {
    let encoding = EncodingKey::from_rsa_pem(pem)?;
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let decoding = DecodingKey::from_jwk(&jwk)?;
    Ok(SigningKey {
        kid: kid.to_owned(),
        encoding,
        decoding,
        jwk,
        added,
    })
}

/// Writes a new 2048-bit key as `<kid>.pem` (owner-readable only) and returns the kid,
/// which starts with the creation time so a listing sorts by age.
fn generate_key(dir: &Path) -> anyhow::Result<String> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?;
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line)?);
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let kid = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        &crate::identity::session::random_token()[..8]
    );
    let path = dir.join(format!("{kid}.pem"));
    let tmp = dir.join(format!(".{kid}.tmp"));
    write_private(&tmp, pem.as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok(kid)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_starting_together_share_one_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(900);
        let kids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        KeyRing::open(dir.path(), ttl)
                            .unwrap()
                            .signing_key()
                            .kid
                            .clone()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
        assert_eq!(listing(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_key_added_elsewhere_verifies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(900);
        let here = KeyRing::open(dir.path(), ttl).unwrap();
        let there = KeyRing::open(dir.path(), ttl).unwrap();
        // Let the once-a-second reload guard pass.
        *here.last_reload.lock().unwrap() = Instant::now() - Duration::from_secs(2);
        let kid = there.rotate().unwrap();
        assert_eq!(
            here.verification_key(&kid).map(|k| k.kid.clone()),
            Some(kid)
        );
        assert!(here.verification_key("unknown").is_none());
    }
}
