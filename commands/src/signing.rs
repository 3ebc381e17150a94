//! The dealership's Ed25519 signing key for electronic policies.
//!
//! The key file holds the 32-byte secret seed, kept and created as [`crate::key_file`] describes
//! (owner-only, created atomically, refused when readable by others or malformed).
//!
//! Signatures are Ed25519 over the canonical document's UTF-8 bytes, written as standard base64
//! with padding (88 characters); the public key is standard base64 of its 32 bytes.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use queries::insurance::DealershipKey;

pub use crate::key_file::KeyFileError as SigningKeyError;

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

    /// Loads the key at `path`, or creates one there if there is no file (see [`crate::key_file`]).
    /// Returns the signer and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SigningKeyError> {
        let (seed, created) = crate::key_file::load_or_create(path)?;
        Ok((Self::from_key(SigningKey::from_bytes(&seed)), created))
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

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

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
