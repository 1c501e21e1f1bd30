//! Canary values: every secret-ish value the workloads hand to the module (PINs, labels,
//! IDs, data, key material). None may ever appear in anything the shim writes.
//!
//! The constants are the fixed set; [`Canaries::from_seed`] derives a random set (PINs,
//! labels, IDs, values), and a workload process uses the set [`get`] returns: the one
//! seeded by [`SEED_ENV`] when it is set (by [`crate::Token::command`] for a token made
//! with [`crate::Token::random_canary`]), the fixed one otherwise.
//! [`Canaries::for_command_line`] derives a set a command line can carry (for OpenSC's
//! `pkcs11-tool`). [`assert_no_canary`] scans what the shim wrote for a set, in every
//! [`forms`]; [`seeds`] picks the seeds of a random-canary test.

/// The token's label (given to `softhsm2-util`, read back through `C_GetTokenInfo`).
pub const TOKEN_LABEL: &str = "cAnAry-ToKeN-LaBeL-a1";
/// The user PIN the token is created with.
pub const USER_PIN: &str = "cAnAry-UsEr-PiN-5c1e";
/// The security officer PIN the token is created with.
pub const SO_PIN: &str = "cAnAry-So-PiN-e4f2";
/// A wrong PIN, tried once.
pub const WRONG_PIN: &str = "cAnAry-WrOnG-PiN-9d";
/// The user PIN the SO sets with `C_InitPIN`.
pub const INIT_PIN: &str = "cAnAry-InIt-PiN-77a0";
/// The user PIN the user sets with `C_SetPIN`.
pub const SET_PIN: &str = "cAnAry-SeT-PiN-0b9d";
/// SO PIN and label of the token `C_InitToken` creates in the free slot.
pub const INIT_TOKEN_SO_PIN: &str = "cAnAry-InitTok-So-31";
/// Label of the token `C_InitToken` creates in the free slot.
pub const INIT_TOKEN_LABEL: &str = "cAnAry-SeCoNd-ToKeN-b2";
/// `CKA_LABEL` of data objects.
pub const OBJECT_LABEL: &str = "cAnAry-ObJ-LaBeL-c3";
/// `CKA_LABEL` of keys.
pub const KEY_LABEL: &str = "cAnAry-KeY-LaBeL-d4";
/// The label `C_SetAttributeValue` writes.
pub const NEW_LABEL: &str = "cAnAry-ReLaBeL-e5";
/// `CKA_APPLICATION` of data objects.
pub const APPLICATION: &str = "cAnAry-ApP-f0";
/// `CKA_ID` of keys and objects.
pub const ID: &[u8] = b"cAnAry-Id-f6";
/// `CKA_VALUE` of the data object.
pub const OBJECT_VALUE: &[u8] = b"cAnAry-DaTa-ObJeCt-VaLuE-77";
/// Data signed, digested and encrypted.
pub const DATA: &[u8] = b"cAnAry-DaTa-To-SiGn-And-EnCrYpT-0123456789";
/// `CKA_VALUE` of the imported AES-256 key.
pub const KEY_VALUE: &[u8; 32] = b"cAnAry-AeS-KeY-VaLuE-0123456789!";
/// Seed for `C_SeedRandom`.
pub const SEED: &[u8] = b"cAnAry-SeEd-8e";

/// Every fixed canary, as bytes.
pub fn all() -> Vec<(&'static str, &'static [u8])> {
    Canaries::FIXED.all()
}

/// The variable that carries a random canary set's seed to a workload process.
pub const SEED_ENV: &str = "HSM_AUDIT_TEST_CANARY_SEED";

/// One set of canaries (the fields mirror the constants of the same names).
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub struct Canaries {
    pub token_label: &'static str,
    pub user_pin: &'static str,
    pub so_pin: &'static str,
    pub wrong_pin: &'static str,
    pub init_pin: &'static str,
    pub set_pin: &'static str,
    pub init_token_so_pin: &'static str,
    pub init_token_label: &'static str,
    pub object_label: &'static str,
    pub key_label: &'static str,
    pub new_label: &'static str,
    pub application: &'static str,
    pub id: &'static [u8],
    pub object_value: &'static [u8],
    /// Always 42 bytes: the workloads' buffers and ECDSA's 32-byte prefix are sized for it.
    pub data: &'static [u8],
    pub key_value: &'static [u8; 32],
    pub seed: &'static [u8],
}

/// The canaries of this process: seeded by [`SEED_ENV`] if set, else [`Canaries::FIXED`].
pub fn get() -> &'static Canaries {
    static SET: std::sync::OnceLock<Canaries> = std::sync::OnceLock::new();
    SET.get_or_init(|| match std::env::var(SEED_ENV) {
        Ok(seed) => Canaries::from_seed(
            seed.parse()
                .unwrap_or_else(|_| panic!("{SEED_ENV}={seed:?} is not a u64")),
        ),
        Err(_) => Canaries::FIXED,
    })
}

/// SplitMix64: small, dependency-free and the same in every process for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    fn pick(&mut self, chars: &[char]) -> char {
        chars[self.range(0, chars.len() - 1)]
    }

    /// Alphanumeric, 8 to 32 characters: valid as a SoftHSM PIN and as a token label.
    fn alnum(&mut self) -> String {
        let chars: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
        (0..self.range(8, 32)).map(|_| self.pick(&chars)).collect()
    }

    /// Printable UTF-8, non-ASCII included, 8 to 32 bytes, no leading or trailing blank:
    /// an object label or application.
    fn text(&mut self) -> String {
        let mut chars: Vec<char> = ('!'..='~').collect();
        chars.extend(['é', 'ß', 'Ж', 'λ', '€', '漢', '字', '✓', ' ']);
        let target = self.range(8, 32);
        let mut s = String::new();
        loop {
            let c = self.pick(&chars);
            if s.len() + c.len_utf8() > target {
                break;
            }
            s.push(c);
        }
        while s.len() < 8 || s.ends_with(' ') || s.starts_with(' ') {
            s = s.trim().to_owned();
            s.push(self.pick(&chars[..94]));
        }
        s
    }

    /// Printable ASCII (blank to `~`, so quotes and backslashes too), `lo` to `hi` bytes:
    /// a command-line argument. No leading `-` (it would read as an option), no leading or
    /// trailing blank (SoftHSM pads token labels with blanks), no leading `env:` (OpenSC's
    /// tools read such a PIN from that environment variable).
    fn arg(&mut self, lo: usize, hi: usize) -> String {
        let chars: Vec<char> = (' '..='~').collect();
        loop {
            let s: String = (0..self.range(lo, hi)).map(|_| self.pick(&chars)).collect();
            if !s.starts_with(['-', ' ']) && !s.ends_with(' ') && !s.starts_with("env:") {
                return s;
            }
        }
    }

    /// Random bytes (every value, NUL and non-ASCII included).
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Between `lo` and `hi` random bytes, kept for the whole test run.
    fn leaked_bytes(&mut self, lo: usize, hi: usize) -> &'static [u8] {
        let n = self.range(lo, hi);
        leak_bytes(self.bytes(n))
    }
}

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_bytes(b: Vec<u8>) -> &'static [u8] {
    Box::leak(b.into_boxed_slice())
}

impl Canaries {
    /// The fixed canaries, the constants of this module.
    pub const FIXED: Canaries = Canaries {
        token_label: TOKEN_LABEL,
        user_pin: USER_PIN,
        so_pin: SO_PIN,
        wrong_pin: WRONG_PIN,
        init_pin: INIT_PIN,
        set_pin: SET_PIN,
        init_token_so_pin: INIT_TOKEN_SO_PIN,
        init_token_label: INIT_TOKEN_LABEL,
        object_label: OBJECT_LABEL,
        key_label: KEY_LABEL,
        new_label: NEW_LABEL,
        application: APPLICATION,
        id: ID,
        object_value: OBJECT_VALUE,
        data: DATA,
        key_value: KEY_VALUE,
        seed: SEED,
    };

    /// A random set derived from `seed` (the same in every process). PINs and token labels
    /// are alphanumeric, 8 to 32 characters; object labels and the application printable
    /// UTF-8 of 8 to 32 bytes; the ID, values, data and seed random bytes. All distinct.
    /// The sets are leaked: a process makes a handful.
    pub fn from_seed(seed: u64) -> Canaries {
        Canaries::distinct(seed, |rng| {
            let key_value: [u8; 32] = rng.bytes(32).try_into().expect("32 bytes");
            Canaries {
                token_label: leak_str(rng.alnum()),
                user_pin: leak_str(rng.alnum()),
                so_pin: leak_str(rng.alnum()),
                wrong_pin: leak_str(rng.alnum()),
                init_pin: leak_str(rng.alnum()),
                set_pin: leak_str(rng.alnum()),
                init_token_so_pin: leak_str(rng.alnum()),
                init_token_label: leak_str(rng.alnum()),
                object_label: leak_str(rng.text()),
                key_label: leak_str(rng.text()),
                new_label: leak_str(rng.text()),
                application: leak_str(rng.text()),
                id: rng.leaked_bytes(8, 32),
                object_value: rng.leaked_bytes(8, 64),
                data: leak_bytes(rng.bytes(DATA.len())),
                key_value: Box::leak(Box::new(key_value)),
                seed: rng.leaked_bytes(8, 32),
            }
        })
    }

    /// A random set derived from `seed` whose strings a command line can carry (OpenSC's
    /// `pkcs11-tool`, `softhsm2-util`): printable ASCII, quotes and backslashes included,
    /// without a leading `-`, a leading or trailing blank or a leading `env:` (OpenSC reads
    /// such a PIN from the environment); PINs 8 to 64 bytes (SoftHSM takes 4 to 255; fewer
    /// than 8 printable characters could turn up in a row by chance), labels 8 to 32 bytes
    /// (a token label's limit). The ID, values and data are random bytes, as in
    /// [`Canaries::from_seed`]: `--id` takes hex, data a file.
    pub fn for_command_line(seed: u64) -> Canaries {
        Canaries::distinct(seed, |rng| {
            let key_value: [u8; 32] = rng.bytes(32).try_into().expect("32 bytes");
            let mut pin = || leak_str(rng.arg(8, 64));
            let (user_pin, so_pin, wrong_pin) = (pin(), pin(), pin());
            let (init_pin, set_pin, init_token_so_pin) = (pin(), pin(), pin());
            let mut label = || leak_str(rng.arg(8, 32));
            let (token_label, init_token_label, object_label) = (label(), label(), label());
            let (key_label, new_label, application) = (label(), label(), label());
            Canaries {
                token_label,
                user_pin,
                so_pin,
                wrong_pin,
                init_pin,
                set_pin,
                init_token_so_pin,
                init_token_label,
                object_label,
                key_label,
                new_label,
                application,
                id: rng.leaked_bytes(8, 32),
                object_value: rng.leaked_bytes(8, 64),
                data: leak_bytes(rng.bytes(DATA.len())),
                key_value: Box::leak(Box::new(key_value)),
                seed: rng.leaked_bytes(8, 32),
            }
        })
    }

    /// The first set `make` draws from `seed` whose canaries are all distinct.
    fn distinct(seed: u64, mut make: impl FnMut(&mut Rng) -> Canaries) -> Canaries {
        let mut rng = Rng(seed);
        loop {
            let c = make(&mut rng);
            let all = c.all();
            if all
                .iter()
                .all(|(a, x)| all.iter().all(|(b, y)| a == b || x != y))
            {
                return c;
            }
        }
    }

    /// Every canary of the set, as bytes.
    pub fn all(&self) -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("TOKEN_LABEL", self.token_label.as_bytes()),
            ("USER_PIN", self.user_pin.as_bytes()),
            ("SO_PIN", self.so_pin.as_bytes()),
            ("WRONG_PIN", self.wrong_pin.as_bytes()),
            ("INIT_PIN", self.init_pin.as_bytes()),
            ("SET_PIN", self.set_pin.as_bytes()),
            ("INIT_TOKEN_SO_PIN", self.init_token_so_pin.as_bytes()),
            ("INIT_TOKEN_LABEL", self.init_token_label.as_bytes()),
            ("OBJECT_LABEL", self.object_label.as_bytes()),
            ("KEY_LABEL", self.key_label.as_bytes()),
            ("NEW_LABEL", self.new_label.as_bytes()),
            ("APPLICATION", self.application.as_bytes()),
            ("ID", self.id),
            ("OBJECT_VALUE", self.object_value),
            ("DATA", self.data),
            ("KEY_VALUE", self.key_value),
            ("SEED", self.seed),
        ]
    }
}

/// The forms a leaked `secret` could take in what the shim writes: raw, hex, HEX, base64
/// (unpadded, so it also matches inside a longer encoding's prefix), base64url, and, for
/// text with quotes or backslashes, escaped as JSON and Rust's `{:?}` escape them.
pub fn forms(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64_url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms = vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
        (
            "base64",
            b64.encode(secret).trim_end_matches('=').as_bytes().to_vec(),
        ),
        ("base64url", b64_url.encode(secret).into_bytes()),
    ];
    if let Ok(text) = std::str::from_utf8(secret) {
        let json = serde_json::to_string(text).expect("a string serialises");
        let escaped = &json.as_bytes()[1..json.len() - 1];
        if escaped != secret {
            forms.push(("escaped", escaped.to_vec()));
        }
    }
    forms
}

/// No canary of `canaries`, in any of its [`forms`], in the contents or the name (relative
/// to the output directory) of any file under `token`'s output directory: rows, and the
/// diagnostic log when a test puts it there. Expects at least two files (rows and a log).
pub fn assert_no_canary(token: &crate::Token, canaries: &Canaries) {
    use std::os::unix::ffi::OsStrExt;
    let out_dir = token.out_dir();
    let files = crate::all_output_bytes(&out_dir);
    assert!(
        files.len() >= 2,
        "expected row files and the log: {files:?}"
    );
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (path, bytes) in &files {
        let name_bytes = path.strip_prefix(&out_dir).unwrap().as_os_str().as_bytes();
        for (name, secret) in canaries.all() {
            for (form, needle) in forms(secret) {
                assert!(
                    !contains(bytes, &needle),
                    "{name} appears ({form}) in {}",
                    path.display()
                );
                assert!(
                    !contains(name_bytes, &needle),
                    "{name} appears ({form}) in the file name {}",
                    path.display()
                );
            }
        }
    }
}

/// The seeds a random-canary test tries: [`SEED_ENV`] alone when set (to reproduce a
/// failure), else `HSM_AUDIT_TEST_CANARY_CASES` seeds (default `default_cases`) drawn from
/// the clock and the process id.
pub fn seeds(default_cases: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var(SEED_ENV) {
        return vec![seed.parse().expect("a u64 seed")];
    }
    let cases: u64 = std::env::var("HSM_AUDIT_TEST_CANARY_CASES")
        .map(|n| n.parse().expect("a number of cases"))
        .unwrap_or(default_cases);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let base = (clock.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32);
    (0..cases).map(|i| base.wrapping_add(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sets_are_valid_for_softhsm_and_reproducible() {
        for seed in 0..2000u64 {
            let c = Canaries::from_seed(seed);
            assert_eq!(c.all(), Canaries::from_seed(seed).all(), "seed {seed}");
            for s in [
                c.token_label,
                c.user_pin,
                c.so_pin,
                c.wrong_pin,
                c.init_pin,
                c.set_pin,
                c.init_token_so_pin,
                c.init_token_label,
            ] {
                assert!((8..=32).contains(&s.len()), "seed {seed}: {s:?}");
                assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s:?}");
            }
            for s in [c.object_label, c.key_label, c.new_label, c.application] {
                assert!((8..=32).contains(&s.len()), "seed {seed}: {s:?}");
                assert_eq!(s, s.trim(), "seed {seed}");
                assert!(!s.chars().any(char::is_control), "{s:?}");
            }
            assert_eq!(c.data.len(), DATA.len());
            assert!((8..=32).contains(&c.id.len()) && c.seed.len() >= 8);
        }
        assert_ne!(
            Canaries::from_seed(1).user_pin,
            Canaries::from_seed(2).user_pin
        );
    }

    #[test]
    fn command_line_sets_fit_a_command_line_and_softhsm() {
        for seed in 0..2000u64 {
            let c = Canaries::for_command_line(seed);
            assert_eq!(
                c.all(),
                Canaries::for_command_line(seed).all(),
                "seed {seed}"
            );
            let pins = [
                c.user_pin,
                c.so_pin,
                c.wrong_pin,
                c.init_pin,
                c.set_pin,
                c.init_token_so_pin,
            ];
            let labels = [
                c.token_label,
                c.init_token_label,
                c.object_label,
                c.key_label,
                c.new_label,
                c.application,
            ];
            for s in pins.iter().chain(&labels) {
                assert!(s.bytes().all(|b| (b' '..=b'~').contains(&b)), "{s:?}");
                assert!(!s.starts_with(['-', ' ']) && !s.ends_with(' '), "{s:?}");
                assert!(!s.starts_with("env:"), "{s:?}");
            }
            for s in pins {
                assert!((8..=64).contains(&s.len()), "seed {seed}: {s:?}");
            }
            for s in labels {
                assert!((8..=32).contains(&s.len()), "seed {seed}: {s:?}");
            }
            assert!((8..=32).contains(&c.id.len()) && c.data.len() == DATA.len());
        }
        assert_ne!(
            Canaries::for_command_line(1).user_pin,
            Canaries::for_command_line(2).user_pin
        );
    }

    #[test]
    fn forms_escape_quotes_and_backslashes() {
        let names = |s: &[u8]| forms(s).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(b"plain"),
            ["raw", "hex", "HEX", "base64", "base64url"]
        );
        let escaped = forms(br#"a"b\c"#).pop().unwrap();
        assert_eq!(escaped, ("escaped", br#"a\"b\\c"#.to_vec()));
    }
}
