//! Secret key files: 32-byte secrets kept outside the event log, created owner-only.
//!
//! A key file holds the 32-byte secret as 64 lower-case hex digits (a trailing newline is
//! allowed). A fresh install generates one (`OsRng`) and creates the file atomically with owner-only
//! permissions: it is written to a temporary file opened with mode 0600 and `create_new`, flushed to
//! disk, then hard-linked to its name (which fails rather than overwrite a key another process made
//! first), so the secret is never readable by anyone else, not even briefly. An existing file is
//! loaded, and refused if its permissions grant anything to group or others, or if it is malformed.
//! Several servers share one key by sharing the file (the policy signing key, the token key).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a key file could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is readable or writable by group or others: the secret may have leaked.
    #[error(
        "key file {path} has permissions {mode:o}, wider than owner-only; run `chmod 600 {path}` \
         (and consider the key compromised if others could read it)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// Loads the secret at `path`, or creates a random one there if there is no file. Returns the secret
/// and whether it was created.
pub fn load_or_create(path: &Path) -> Result<([u8; 32], bool), KeyFileError> {
    match load(path) {
        Err(KeyFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            match create(path) {
                Ok(secret) => Ok((secret, true)),
                // Another process created it first: use theirs.
                Err(KeyFileError::Io { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    Ok((load(path)?, false))
                }
                Err(other) => Err(other),
            }
        }
        other => other.map(|secret| (secret, false)),
    }
}

fn load(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let io_error = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = fs::metadata(path).map_err(io_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    if !metadata.is_file() {
        return Err(KeyFileError::Malformed {
            path: path.to_owned(),
            reason: "not a regular file".into(),
        });
    }
    let text = fs::read_to_string(path).map_err(io_error)?;
    let seed = decode_hex_seed(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| {
        KeyFileError::Malformed {
            path: path.to_owned(),
            reason: "expected 64 hexadecimal digits (a 32-byte Ed25519 secret)".into(),
        }
    })?;
    Ok(seed)
}

fn create(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let io_error = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret.key".into());
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
        file.write_all(format!("{}\n", encode_hex(&secret)).as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    linked.map_err(io_error)?;
    Ok(secret)
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
