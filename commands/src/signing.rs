//! The dealership's Ed25519 signing key for electronic policies.
//!
//! The key file holds the 32-byte secret seed as 64 lower-case hex digits (a trailing newline is
//! allowed). A fresh install generates one (`OsRng`) and creates the file atomically with owner-only
//! permissions: it is written to a temporary file opened with mode 0600 and `create_new`, flushed to
//! disk, then hard-linked to its name (which fails rather than overwrite a key another process made
//! first), so the secret is never readable by anyone else, not even briefly. An existing file is
//! loaded, and refused if its permissions grant anything to group or others, or if it is malformed.
//!
//! Signatures are Ed25519 over the canonical document's UTF-8 bytes, written as standard base64
//! with padding (88 characters); the public key is standard base64 of its 32 bytes.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use queries::insurance::DealershipKey;

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("signing key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is readable or writable by group or others: the secret may have leaked.
    #[error(
        "signing key file {path} has permissions {mode:o}, wider than owner-only; run `chmod 600 {path}` \
         (and consider the key compromised if others could read it)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("signing key file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// Signs electronic policies. The secret never leaves this struct.
pub struct PolicySigner {
    key: SigningKey,
    public: DealershipKey,
}

impl std::fmt::Debug for PolicySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySigner")
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl PolicySigner {
    pub fn from_key(key: SigningKey) -> Self {
        let public = DealershipKey::new(key.verifying_key());
        Self { key, public }
    }

    /// A fresh random key that is never stored (tests and tools).
    pub fn ephemeral() -> Self {
        Self::from_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Loads the key at `path`, or creates one there if there is no file. Returns the signer and
    /// whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SigningKeyError> {
        match Self::load(path) {
            Err(SigningKeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                match Self::create(path) {
                    Ok(signer) => Ok((signer, true)),
                    // Another process created it first: use theirs.
                    Err(SigningKeyError::Io { source, .. })
                        if source.kind() == io::ErrorKind::AlreadyExists =>
                    {
                        Ok((Self::load(path)?, false))
                    }
                    Err(other) => Err(other),
                }
            }
            other => other.map(|signer| (signer, false)),
        }
    }

    fn load(path: &Path) -> Result<Self, SigningKeyError> {
        let io_error = |source| SigningKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let metadata = fs::metadata(path).map_err(io_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SigningKeyError::TooOpen {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        if !metadata.is_file() {
            return Err(SigningKeyError::Malformed {
                path: path.to_owned(),
                reason: "not a regular file".into(),
            });
        }
        let text = fs::read_to_string(path).map_err(io_error)?;
        let seed = decode_hex_seed(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| {
            SigningKeyError::Malformed {
                path: path.to_owned(),
                reason: "expected 64 hexadecimal digits (a 32-byte Ed25519 secret)".into(),
            }
        })?;
        Ok(Self::from_key(SigningKey::from_bytes(&seed)))
    }

    fn create(path: &Path) -> Result<Self, SigningKeyError> {
        let io_error = |source| SigningKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "signing.key".into());
        let temporary = path.with_file_name(format!(
            ".{file_name}.{}-{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&temporary).and_then(|mut file| {
            file.write_all(format!("{}\n", encode_hex(&key.to_bytes())).as_bytes())?;
            file.sync_all()
        });
        let linked = written.and_then(|()| fs::hard_link(&temporary, path));
        let _ = fs::remove_file(&temporary);
        linked.map_err(io_error)?;
        Ok(Self::from_key(key))
    }

    /// The public half and its id, for verification.
    pub fn public(&self) -> &DealershipKey {
        &self.public
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The base64 signature of `document`'s UTF-8 bytes.
    pub fn sign(&self, document: &str) -> String {
        STANDARD.encode(self.key.sign(document.as_bytes()).to_bytes())
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex_seed(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_install_creates_an_owner_only_key_and_loads_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let (created, fresh) = PolicySigner::load_or_create(&path).unwrap();
        assert!(fresh);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (loaded, fresh) = PolicySigner::load_or_create(&path).unwrap();
        assert!(!fresh);
        assert_eq!(loaded.public().key_id(), created.public().key_id());
        assert_eq!(loaded.sign("policy"), created.sign("policy"));
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        PolicySigner::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            PolicySigner::load_or_create(&path),
            Err(SigningKeyError::TooOpen { mode: 0o644, .. })
        ));
    }

    #[test]
    fn a_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&path)
            .unwrap()
            .write_all(b"not a key\n")
            .unwrap();
        assert!(matches!(
            PolicySigner::load_or_create(&path),
            Err(SigningKeyError::Malformed { .. })
        ));
    }

    #[test]
    fn a_signature_verifies_and_any_changed_byte_fails() {
        let signer = PolicySigner::ephemeral();
        let document = r#"{"policy_number":"ASL-OSAGO-2026-1"}"#;
        let signature = signer.sign(document);
        assert!(signer.public().verify(document, &signature).valid);
        let tampered = document.replace("2026", "2027");
        assert!(!signer.public().verify(&tampered, &signature).valid);
    }
}
