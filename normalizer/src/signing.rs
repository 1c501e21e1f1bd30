//! Ed25519 signatures on checkpoints, checkable with the public key alone.
//!
//! A signed checkpoint's `Signature` is the hex Ed25519 signature of
//! [`checkpoint_message`]: the writer, the number of rows before the checkpoint and the chain
//! head (the checkpoint's `PrevHash`). The head's hash covers every earlier row, so one valid
//! signature vouches for the whole stream up to it. Keys are PKCS#8 / SPKI PEM files, the
//! format `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` use.

use crate::chain::{hex, unhex};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// Why a key file could not be used. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file holds no key of the expected kind.
    #[error("invalid key file {path}: {reason}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// A new key file could not be written.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The bytes a checkpoint signature covers. The first line separates them from anything
/// else the same key might sign.
pub fn checkpoint_message(writer_id: &str, chain_count: u64, head_hex: &str) -> Vec<u8> {
    format!("hsm-audit checkpoint v1\n{writer_id}\n{chain_count}\n{head_hex}").into_bytes()
}

/// Signs checkpoints with a private key.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl CheckpointSigner {
    /// Reads a PKCS#8 PEM Ed25519 private key. Warns (once, in the diagnostic log) if others
    /// than its owner may read it: whoever can read it can sign forged checkpoints.
    pub fn from_file(path: &Path) -> Result<CheckpointSigner, KeyError> {
        let text = read(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                tracing::warn!(
                    "hsm-audit: signing key {} is readable by group or others; chmod 600 it",
                    path.display()
                );
            }
        }
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            reason: format!("not a PKCS#8 PEM Ed25519 private key ({e})"),
        })?;
        Ok(CheckpointSigner { key })
    }

    /// Creates a new random key at `path` (readable by its owner only; an existing file is
    /// never overwritten).
    pub fn generate(path: &Path) -> Result<CheckpointSigner, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| KeyError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(format!("no randomness: {e}")),
        })?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        // PKCS#8 v1 (no public key inside): the form OpenSSL 3.0 reads and writes.
        let pem = KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an Ed25519 key always encodes");
        let write_err = |source| KeyError::Write {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(write_err)?;
        std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        Ok(CheckpointSigner { key })
    }

    /// The hex signature for a checkpoint (see [`checkpoint_message`]).
    pub fn sign(&self, writer_id: &str, chain_count: u64, head_hex: &str) -> String {
        let sig = self
            .key
            .sign(&checkpoint_message(writer_id, chain_count, head_hex));
        hex(&sig.to_bytes())
    }

    /// The matching public key.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            key: self.key.verifying_key(),
        }
    }
}

/// Checks checkpoint signatures with a public key.
#[derive(Clone, Debug)]
pub struct CheckpointVerifier {
    key: VerifyingKey,
}

impl CheckpointVerifier {
    /// Reads a public key: SPKI PEM (`-----BEGIN PUBLIC KEY-----`), or the raw 32-byte key as
    /// 64 hex digits.
    pub fn from_file(path: &Path) -> Result<CheckpointVerifier, KeyError> {
        let text = read(path)?;
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let key = if let Some(raw) = unhex::<32>(text.trim()) {
            VerifyingKey::from_bytes(&raw).map_err(|e| invalid(format!("{e}")))?
        } else {
            VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
                invalid(format!(
                    "not an SPKI PEM Ed25519 public key or 64 hex digits ({e})"
                ))
            })?
        };
        Ok(CheckpointVerifier { key })
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 key always encodes")
    }

    /// The raw key as hex.
    pub fn to_hex(&self) -> String {
        hex(self.key.as_bytes())
    }

    /// Whether `signature_hex` is this key's signature of the checkpoint.
    pub fn verify(
        &self,
        writer_id: &str,
        chain_count: u64,
        head_hex: &str,
        signature_hex: &str,
    ) -> bool {
        let Some(sig) = unhex::<64>(signature_hex) else {
            return false;
        };
        let message = checkpoint_message(writer_id, chain_count, head_hex);
        self.key
            .verify_strict(&message, &Signature::from_bytes(&sig))
            .is_ok()
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("k.pem");
        let signer = CheckpointSigner::generate(&key_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(CheckpointSigner::generate(&key_path).is_err(), "overwrote");

        let reloaded = CheckpointSigner::from_file(&key_path).unwrap();
        let head = "ab".repeat(32);
        let sig = reloaded.sign("w1", 10, &head);
        assert_eq!(
            sig,
            signer.sign("w1", 10, &head),
            "Ed25519 is deterministic"
        );

        let pem_path = dir.path().join("k.pub");
        std::fs::write(&pem_path, signer.verifier().to_pem()).unwrap();
        let hex_path = dir.path().join("k.hex");
        std::fs::write(&hex_path, signer.verifier().to_hex() + "\n").unwrap();
        for path in [&pem_path, &hex_path] {
            let v = CheckpointVerifier::from_file(path).unwrap();
            assert!(v.verify("w1", 10, &head, &sig));
            assert!(!v.verify("w2", 10, &head, &sig));
            assert!(!v.verify("w1", 11, &head, &sig));
            assert!(!v.verify("w1", 10, &"ac".repeat(32), &sig));
            assert!(!v.verify("w1", 10, &head, &sig[2..]));
            assert!(!v.verify("w1", 10, &head, ""));
        }
    }

    #[test]
    fn bad_key_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = CheckpointSigner::from_file(&path)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("junk.pem"), "{e}");
        assert!(CheckpointVerifier::from_file(&path).is_err());
        let missing = dir.path().join("missing.pem");
        let e = CheckpointVerifier::from_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
