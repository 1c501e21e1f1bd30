//! Configuration: one TOML file plus environment variables that override it.
//!
//! This is the one place the keys are declared: the struct, its defaults, the environment
//! variable of each key and the `KEYS` table the README is checked against all come from
//! the single `config_keys!` invocation below.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Names the configuration file.
pub const CONFIG_ENV: &str = "HSM_AUDIT_CONFIG";
/// Read when `HSM_AUDIT_CONFIG` is unset; its absence is not an error.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hsm-audit/hsm-audit.toml";

/// One configuration key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// TOML key.
    pub name: &'static str,
    /// Environment variable that overrides it.
    pub env: &'static str,
    /// Default, as shown in docs.
    pub default: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// Why a configuration could not be used. Each message is one line naming the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a wrong type.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause, on one line.
        message: String,
    },
    /// An environment variable could not be parsed.
    #[error("invalid value {value:?} in {var}: {reason}")]
    Env {
        /// Variable.
        var: &'static str,
        /// Value found.
        value: String,
        /// Cause.
        reason: String,
    },
    /// A key without a default is missing.
    #[error("config key `{key}` (env {env}) is not set: {hint}")]
    Missing {
        /// Key.
        key: &'static str,
        /// Its variable.
        env: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A key has a value the shim cannot use.
    #[error("config key `{key}` is invalid: {reason}")]
    Invalid {
        /// Key.
        key: &'static str,
        /// Cause.
        reason: String,
    },
}

/// Parses an environment variable's text into a config value.
trait FromEnv: Sized {
    fn from_env(s: &str) -> Result<Self, String>;
}
impl FromEnv for String {
    fn from_env(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}
impl FromEnv for PathBuf {
    fn from_env(s: &str) -> Result<Self, String> {
        Ok(PathBuf::from(s))
    }
}
impl<T: FromEnv> FromEnv for Option<T> {
    fn from_env(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            Ok(None)
        } else {
            T::from_env(s).map(Some)
        }
    }
}
macro_rules! from_env_parse {
    ($($t:ty),*) => {$(
        impl FromEnv for $t {
            fn from_env(s: &str) -> Result<Self, String> {
                s.trim().parse().map_err(|e| format!("{e}"))
            }
        }
    )*};
}
from_env_parse!(u64, usize, bool);

/// When a recorded call may return, relative to its row reaching the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Calls return at once; rows reach the file within `flush_interval_ms`.
    Buffered,
    /// A call returns only once its row is written and `fdatasync`ed.
    Sync,
}

/// What the shim does with calls while rows cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteFailurePolicy {
    /// Calls proceed; lost rows are counted and reported by a gap row once writing works.
    FailOpen,
    /// Calls are refused with `CKR_FUNCTION_FAILED` before they reach the HSM.
    FailClosed,
}

/// Parses an enum key's environment text with the same spelling as the TOML file.
macro_rules! from_env_enum {
    ($($t:ty),*) => {$(
        impl FromEnv for $t {
            fn from_env(s: &str) -> Result<Self, String> {
                <$t>::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s.trim()))
                    .map_err(|e| e.to_string())
            }
        }
    )*};
}
from_env_enum!(Durability, WriteFailurePolicy);

macro_rules! config_keys {
    ($( #[doc = $doc:literal] $field:ident : $ty:ty = $default:expr, $shown:literal, $env:literal; )*) => {
        /// The shim's and the normalizer's configuration.
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Config {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $field: $default, )* }
            }
        }

        /// Every key, in the order the README lists them.
        pub const KEYS: &[Key] = &[
            $( Key { name: stringify!($field), env: $env, default: $shown, description: $doc }, )*
        ];

        impl Config {
            /// Applies every override found by `lookup` (normally the process environment).
            fn apply_env(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
                $(
                    if let Some(value) = lookup($env) {
                        self.$field = <$ty as FromEnv>::from_env(&value).map_err(|reason| {
                            ConfigError::Env { var: $env, value: value.clone(), reason }
                        })?;
                    }
                )*
                Ok(())
            }
        }
    };
}

config_keys! {
    /// Path of the vendor PKCS#11 module the shim forwards to. Required.
    module: Option<PathBuf> = None, "(none)", "HSM_AUDIT_MODULE";
    /// Directory the row files are written to; created if missing.
    output: PathBuf = PathBuf::from("/var/log/hsm-audit"), "/var/log/hsm-audit", "HSM_AUDIT_OUTPUT";
    /// `HsmInstance` and `MemberId` of every row.
    hsm_instance: String = String::new(), "\"\"", "HSM_AUDIT_HSM_INSTANCE";
    /// `ClusterType` and `PoolType` of every row.
    cluster_type: String = String::new(), "\"\"", "HSM_AUDIT_CLUSTER_TYPE";
    /// `CallerIpAddress` of every row; empty means the host's first non-loopback address.
    caller_ip_address: String = String::new(), "\"\" (derived)", "HSM_AUDIT_CALLER_IP_ADDRESS";
    /// Longest time a row waits in memory before it is written to its file, milliseconds.
    flush_interval_ms: u64 = 200, "200", "HSM_AUDIT_FLUSH_INTERVAL_MS";
    /// Events each calling thread's lane to the writer holds (64 bytes each), and the shared channel in `durability = "sync"`; a full lane makes its thread wait.
    channel_capacity: usize = 16384, "16384", "HSM_AUDIT_CHANNEL_CAPACITY";
    /// A row file is closed and the next part started once it reaches this size, bytes.
    max_file_bytes: u64 = 256 * 1024 * 1024, "268435456", "HSM_AUDIT_MAX_FILE_BYTES";
    /// A checkpoint row (chain head and count) follows this many call rows; one is also written after each flush interval with new rows, and at shutdown.
    checkpoint_every: u64 = 1000, "1000", "HSM_AUDIT_CHECKPOINT_EVERY";
    /// Ed25519 private key that signs checkpoints: PKCS#8 PEM, as `hsm-audit keygen` or `openssl genpkey -algorithm ed25519` writes it. Unset: checkpoints are unsigned.
    signing_key_file: Option<PathBuf> = None, "(unsigned)", "HSM_AUDIT_SIGNING_KEY_FILE";
    /// Diagnostic log filter (`error`, `warn`, `info`, `debug`, or a tracing filter).
    log_level: String = "warn".to_owned(), "warn", "HSM_AUDIT_LOG_LEVEL";
    /// Diagnostic log file; unset means standard error.
    log_file: Option<PathBuf> = None, "(stderr)", "HSM_AUDIT_LOG_FILE";
    /// `buffered`: rows reach the file within `flush_interval_ms`, a `kill -9` loses at most that much; `sync`: a call returns only after its row is written and `fdatasync`ed.
    durability: Durability = Durability::Buffered, "buffered", "HSM_AUDIT_DURABILITY";
    /// While rows cannot be written: `fail-open` lets calls proceed and writes a gap row counting the lost rows once writing works; `fail-closed` refuses calls with `CKR_FUNCTION_FAILED` before they reach the HSM.
    on_write_failure: WriteFailurePolicy = WriteFailurePolicy::FailOpen, "fail-open", "HSM_AUDIT_ON_WRITE_FAILURE";
    /// Cloud HSM cluster resource id; when set, rows are also written in the Azure storage archive layout under `output`.
    resource_id: Option<String> = None, "(none)", "HSM_AUDIT_RESOURCE_ID";
}

impl Config {
    /// Loads the file named by `HSM_AUDIT_CONFIG` (or the default path, if it exists) and
    /// applies environment overrides.
    pub fn load() -> Result<Config, ConfigError> {
        Config::load_with(&|name| std::env::var(name).ok())
    }

    /// `load` with a custom environment, for tests.
    pub fn load_with(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = match lookup(CONFIG_ENV).filter(|p| !p.is_empty()) {
            Some(path) => Config::from_file(Path::new(&path))?,
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                Config::from_file(Path::new(DEFAULT_CONFIG_PATH))?
            }
            None => Config::default(),
        };
        config.apply_env(lookup)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses one TOML file (no environment overrides).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().replace('\n', " "),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.channel_capacity == 0 {
            return Err(ConfigError::Invalid {
                key: "channel_capacity",
                reason: "must be at least 1".into(),
            });
        }
        if self.flush_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "flush_interval_ms",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(id) = &self.resource_id {
            crate::resource_id::ResourceId::parse(id).map_err(|reason| ConfigError::Invalid {
                key: "resource_id",
                reason,
            })?;
        }
        if self.checkpoint_every == 0 {
            return Err(ConfigError::Invalid {
                key: "checkpoint_every",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The vendor module path, or the error that explains how to set it.
    pub fn module_path(&self) -> Result<&Path, ConfigError> {
        self.module.as_deref().ok_or(ConfigError::Missing {
            key: "module",
            env: "HSM_AUDIT_MODULE",
            hint: "set it to the vendor PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so",
        })
    }
}

/// The keys as a Markdown table (what the README shows).
pub fn markdown() -> String {
    let mut out = String::from("| key | environment | default | meaning |\n|---|---|---|---|\n");
    for k in KEYS {
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} |\n",
            k.name,
            k.env,
            k.default,
            k.description.trim()
        ));
    }
    out
}

/// A fake environment of `pairs`, for tests that take an environment lookup.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::test_env as env;
    use super::*;

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "module = \"/a.so\"\noutput = \"/tmp/x\"\nflush_interval_ms = 50\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let c =
            Config::load_with(&env(&[(CONFIG_ENV, f), ("HSM_AUDIT_OUTPUT", "/tmp/y")])).unwrap();
        assert_eq!(c.module.as_deref(), Some(Path::new("/a.so")));
        assert_eq!(c.output, PathBuf::from("/tmp/y"));
        assert_eq!(c.flush_interval_ms, 50);
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "modul = \"/a.so\"\n").unwrap();
        let f = file.to_str().unwrap();
        let e = Config::load_with(&env(&[(CONFIG_ENV, f)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("modul") && e.contains("c.toml"), "{e}");
        assert!(!e.contains('\n'));

        let e = Config::load_with(&env(&[("HSM_AUDIT_FLUSH_INTERVAL_MS", "soon")])).unwrap_err();
        assert!(e.to_string().contains("HSM_AUDIT_FLUSH_INTERVAL_MS"), "{e}");

        let e = Config::load_with(&env(&[("HSM_AUDIT_CHECKPOINT_EVERY", "0")])).unwrap_err();
        assert!(e.to_string().contains("checkpoint_every"), "{e}");

        let e = Config::load_with(&env(&[(CONFIG_ENV, "/nonexistent/x.toml")])).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");

        let e = Config::load_with(&env(&[("HSM_AUDIT_DURABILITY", "fast")])).unwrap_err();
        assert!(e.to_string().contains("HSM_AUDIT_DURABILITY"), "{e}");

        let c = Config::load_with(&env(&[
            ("HSM_AUDIT_DURABILITY", "sync"),
            ("HSM_AUDIT_ON_WRITE_FAILURE", "fail-closed"),
        ]))
        .unwrap();
        assert_eq!(c.durability, Durability::Sync);
        assert_eq!(c.on_write_failure, WriteFailurePolicy::FailClosed);

        let e = Config::load_with(&env(&[("HSM_AUDIT_RESOURCE_ID", "/subscriptions/x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`resource_id`") && !e.contains('\n'), "{e}");

        let c = Config::load_with(&env(&[])).unwrap();
        assert!(c
            .module_path()
            .unwrap_err()
            .to_string()
            .contains("HSM_AUDIT_MODULE"));
    }

    #[test]
    fn every_field_has_a_key() {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let toml_all = names
            .iter()
            .map(|n| format!("# {n}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!toml_all.is_empty());
        // Each key is accepted by the parser (deny_unknown_fields rejects anything else).
        for k in KEYS {
            let value = match k.name {
                "flush_interval_ms" | "max_file_bytes" | "channel_capacity"
                | "checkpoint_every" => "5".to_owned(),
                "durability" => "\"sync\"".to_owned(),
                "on_write_failure" => "\"fail-closed\"".to_owned(),
                _ => "\"x\"".to_owned(),
            };
            let parsed: Result<Config, _> = toml::from_str(&format!("{} = {value}", k.name));
            assert!(parsed.is_ok(), "{}: {:?}", k.name, parsed.err());
        }
    }
}
