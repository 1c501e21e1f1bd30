//! OpenSC's `pkcs11-tool` against SoftHSM directly and through the shim, on two tokens made
//! alike: same exit status and same output once the per-token slot id, serial and random
//! key material are normalised. Then the rows of the shim's sessions: the right operations.
//! And a session through the shim on a token made with random command-line canaries
//! ([`Canaries::for_command_line`]): none of them in anything the shim writes. One seed per
//! run (printed), `HSM_AUDIT_TEST_CANARY_SEED` to reproduce one.

use normalizer::{catalog, FunctionId};
use softhsm_tests::canary::{assert_no_canary, Canaries};
use softhsm_tests::client::Target;
use softhsm_tests::rows::assert_gapless_per_writer;
use softhsm_tests::{all_output_bytes, canary, read_rows, Token};
use std::path::Path;

/// What one `pkcs11-tool` run showed.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    args: String,
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The session: every family pkcs11-tool drives, including its own self-test.
fn session(dir: &Path) -> Vec<Vec<String>> {
    let p = |s: &Path| s.to_str().unwrap().to_owned();
    let (msg, digest) = (dir.join("msg"), dir.join("digest32"));
    std::fs::write(&msg, canary::DATA).unwrap();
    std::fs::write(&digest, [0x42u8; 32]).unwrap();
    let user = ["--login", "--pin", canary::USER_PIN];
    let keypair = |key_type, id| {
        let mut c = user.to_vec();
        c.extend(["--keypairgen", "--key-type", key_type, "--id", id]);
        c.extend(["--label", canary::KEY_LABEL]);
        c
    };
    let with_user = |more: &[&'static str]| [&user[..], more].concat();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["-L"],
        vec!["-I"],
        vec!["-M"],
        vec!["--login", "--pin", canary::WRONG_PIN, "-O"],
        with_user(&["-O"]),
        keypair("rsa:2048", "02"),
        // While the RSA key is the only key: SoftHSM enumerates token objects in the order
        // of their random file names, and the self-test prints keys in that order.
        with_user(&["--test"]),
        keypair("EC:prime256v1", "01"),
        with_user(&["-O"]),
        vec!["--hash", "-m", "SHA256"],
        with_user(&["--sign", "--id", "02", "-m", "SHA256-RSA-PKCS"]),
        with_user(&["--sign", "--id", "01", "-m", "ECDSA"]),
        vec![
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            canary::SO_PIN,
            "--init-pin",
        ]
        .into_iter()
        .chain(["--new-pin", canary::INIT_PIN])
        .collect(),
        vec!["--login", "--pin", canary::INIT_PIN, "--change-pin"]
            .into_iter()
            .chain(["--new-pin", canary::SET_PIN])
            .collect(),
        vec![
            "--login",
            "--pin",
            canary::SET_PIN,
            "--generate-random",
            "16",
        ],
    ];
    cmds.into_iter()
        .map(|c| {
            let mut c: Vec<String> = c.into_iter().map(str::to_owned).collect();
            // Inputs for hashing and signing; outputs go to files compared separately.
            if c.iter().any(|a| a == "--hash" || a == "--sign") {
                let ecdsa = c.contains(&"ECDSA".to_owned());
                let input = if ecdsa { &digest } else { &msg };
                let name = match (c.contains(&"--hash".to_owned()), ecdsa) {
                    (true, _) => "out-hash",
                    (false, true) => "out-ecdsa-signature",
                    (false, false) => "out-rsa-signature",
                };
                let out = dir.join(name);
                c.extend(["-i".into(), p(input), "-o".into(), p(&out)]);
            }
            c
        })
        .collect()
}

/// Replaces what differs between two tokens made alike: slot ids and serials (from `-L`),
/// long hex runs (public keys), and the token's temporary directory.
fn normalise(text: &str, token: &Token, ids: &[String]) -> String {
    let mut t = text.replace(token.path().to_str().unwrap(), "<dir>");
    for id in ids {
        t = t.replace(id, "<id>");
    }
    let mut out = String::new();
    let mut run = String::new();
    for ch in t.chars().chain(std::iter::once('\n')) {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
            continue;
        }
        out.push_str(if run.len() >= 32 { "<hex>" } else { &run });
        run.clear();
        out.push(ch);
    }
    out.pop();
    out
}

/// The text's blocks (a line starting in column 0 and its indented lines), sorted.
fn sort_blocks(text: &str) -> String {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => {
                block.push('\n');
                block.push_str(line);
            }
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks.sort();
    blocks.join("\n")
}

/// Slot ids and serial numbers of initialised tokens in `pkcs11-tool -L` output.
fn token_ids(list: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in list.lines() {
        if let Some(rest) = line.strip_prefix("Slot ") {
            if let Some(id) = rest.split(['(', ')']).nth(1).filter(|id| id.len() > 6) {
                ids.push(id.to_owned());
            }
        }
        if let Some(serial) = line.trim().strip_prefix("serial num         : ") {
            ids.push(serial.trim().to_owned());
        }
    }
    ids
}

fn run_session(token: &Token, target: Target) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut ids = Vec::new();
    for args in session(token.path()) {
        let out = token
            .command("pkcs11-tool")
            .arg("--module")
            .arg(target.module())
            .args(&args)
            .output()
            .expect("pkcs11-tool (apt-get install opensc)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if args == ["-L"] {
            ids = token_ids(&stdout);
            assert!(!ids.is_empty(), "no slot id in {stdout}");
        }
        let random = args.contains(&"--generate-random".to_owned());
        // SoftHSM lists token objects in the order of their (random) file names.
        let stdout = if args.contains(&"-O".to_owned()) {
            sort_blocks(&stdout)
        } else {
            stdout
        };
        runs.push(Run {
            args: args
                .join(" ")
                .replace(token.path().to_str().unwrap(), "<dir>"),
            status: out.status.code(),
            // Random bytes: only their number can match.
            stdout: if random {
                format!("{} bytes", out.stdout.len())
            } else {
                normalise(&stdout, token, &ids)
            },
            stderr: normalise(&String::from_utf8_lossy(&out.stderr), token, &ids),
        });
    }
    runs
}

#[test]
fn pkcs11_tool_behaves_the_same_through_the_shim() {
    let (a, b) = (Token::canary(), Token::canary());
    let direct = run_session(&a, Target::Direct);
    let shim = run_session(&b, Target::Shim);
    for (d, s) in direct.iter().zip(&shim) {
        assert_eq!(d, s, "pkcs11-tool {} differs (direct vs shim)", d.args);
    }
    assert_eq!(direct.len(), shim.len());
    // The digest is the same; signatures (random keys, ECDSA nonces) only in length.
    let read = |t: &Token, name: &str| std::fs::read(t.path().join(name)).unwrap();
    assert_eq!(read(&a, "out-hash"), read(&b, "out-hash"));
    assert_eq!(read(&b, "out-hash").len(), 32);
    assert_eq!(read(&b, "out-rsa-signature").len(), 256);
    assert_eq!(
        read(&b, "out-ecdsa-signature").len(),
        read(&a, "out-ecdsa-signature").len()
    );

    // The session did what it says.
    let by_args = |prefix: &str| shim.iter().find(|r| r.args.contains(prefix)).unwrap();
    assert_eq!(by_args(canary::WRONG_PIN).status, Some(1));
    assert_eq!(by_args("EC:prime256v1").status, Some(0));
    assert!(by_args("EC:prime256v1")
        .stdout
        .contains("Key pair generated"));
    assert_eq!(by_args("--init-pin").status, Some(0));
    assert_eq!(by_args("--change-pin").status, Some(0));
    assert_eq!(by_args("--generate-random").stdout, "16 bytes");

    shim_rows(&b);
}

fn shim_rows(token: &Token) {
    let rows = read_rows(&token.out_dir());
    assert_gapless_per_writer(&rows);
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.record_type == "call")
        .collect();
    for row in &rows {
        let f = FunctionId::from_name(&row.pkcs11_function).expect("known function");
        assert_eq!(row.operation_name, catalog::operation(f).name, "{row:?}");
        assert!(row.client_info.starts_with("pkcs11-tool (pid "), "{row:?}");
    }
    let has = |op: &str, function: &str, result: &str, mechanism: &str, user: &str| {
        rows.iter().any(|r| {
            r.operation_name == op
                && r.pkcs11_function == function
                && r.result_signature == result
                && r.mechanism == mechanism
                && r.user_type == user
        })
    };
    assert!(has("CN_LOGIN", "C_Login", "CKR_OK", "", "CKU_USER"));
    assert!(has(
        "CN_LOGIN",
        "C_Login",
        "CKR_PIN_INCORRECT",
        "",
        "CKU_USER"
    ));
    assert!(has("CN_LOGIN", "C_Login", "CKR_OK", "", "CKU_SO"));
    assert!(has(
        "CN_GENERATE_KEY_PAIR",
        "C_GenerateKeyPair",
        "CKR_OK",
        "CKM_EC_KEY_PAIR_GEN",
        ""
    ));
    assert!(has(
        "CN_GENERATE_KEY_PAIR",
        "C_GenerateKeyPair",
        "CKR_OK",
        "CKM_RSA_PKCS_KEY_PAIR_GEN",
        ""
    ));
    assert!(has(
        "HASH_SINGLE_CALL",
        "C_SignInit",
        "CKR_OK",
        "CKM_SHA256_RSA_PKCS",
        ""
    ));
    assert!(has(
        "HASH_SINGLE_CALL",
        "C_SignInit",
        "CKR_OK",
        "CKM_ECDSA",
        ""
    ));
    assert!(has("HASH_SINGLE_CALL", "C_Sign", "CKR_OK", "", ""));
    assert!(has(
        "P11_DIGEST",
        "C_DigestInit",
        "CKR_OK",
        "CKM_SHA256",
        ""
    ));
    assert!(has("CN_CREATE_USER", "C_InitPIN", "CKR_OK", "", ""));
    assert!(has("CN_CHANGE_PSWD", "C_SetPIN", "CKR_OK", "", ""));
    assert!(has("CN_FIPS_RAND", "C_GenerateRandom", "CKR_OK", "", ""));
    assert!(has(
        "CN_FIND_OBJECTS_USING_COUNT",
        "C_FindObjects",
        "CKR_OK",
        "",
        ""
    ));

    // One writer per pkcs11-tool process; the EC key generation run, in order.
    let ec_writer = rows
        .iter()
        .find(|r| r.pkcs11_function == "C_GenerateKeyPair" && r.mechanism == "CKM_EC_KEY_PAIR_GEN")
        .map(|r| r.writer_id.clone())
        .unwrap();
    let ops: Vec<&str> = rows
        .iter()
        .filter(|r| r.writer_id == ec_writer && r.call_origin == "application")
        .map(|r| &*r.pkcs11_function)
        .collect();
    let login = ops.iter().position(|f| *f == "C_Login").expect("login");
    let generate = ops
        .iter()
        .position(|f| *f == "C_GenerateKeyPair")
        .expect("generate");
    assert!(login < generate, "{ops:?}");
    assert_eq!(
        ops.iter().filter(|f| **f == "C_GenerateKeyPair").count(),
        1,
        "{ops:?}"
    );
    assert_eq!(ops.last(), Some(&"C_Finalize"), "{ops:?}");

    // PINs and labels given on the command line never reach what the shim writes.
    for (path, bytes) in all_output_bytes(&token.out_dir()) {
        for (name, secret) in canary::all() {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{name} in {}",
                path.display()
            );
        }
    }
}

/// pkcs11-tool through the shim with random canaries on its command line (the token's
/// label and PINs, the wrong PIN, the new PINs of `--init-pin` and `--change-pin`, the key
/// label and ID) and in its data file: none reaches the rows, their file names or the
/// shim's debug diagnostic log, in any [`canary::forms`].
#[test]
fn random_command_line_canaries_leak_nowhere() {
    for seed in canary::seeds(1) {
        eprintln!("pkcs11-tool canary seed: {seed}");
        if std::panic::catch_unwind(|| random_canary_session(seed)).is_err() {
            panic!(
                "pkcs11-tool with random canaries failed for seed {seed}; reproduce with \
                 {}={seed} cargo test --release -p softhsm-tests --test pkcs11_tool \
                 random_command_line_canaries",
                canary::SEED_ENV
            );
        }
    }
}

fn random_canary_session(seed: u64) {
    let c = Canaries::for_command_line(seed);
    eprintln!("canaries: {c:?}");
    let token = Token::new(c.token_label, c.user_pin, c.so_pin);
    let p = |name: &str| token.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(p("data"), c.data).unwrap();
    let id = hex::encode(c.id);
    let user = |more: &[&str]| -> Vec<String> {
        ["--login", "--pin", c.user_pin]
            .iter()
            .chain(more)
            .map(|s| s.to_string())
            .collect()
    };
    let strings = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    // (arguments, whether pkcs11-tool succeeds)
    let session: Vec<(Vec<String>, bool)> = vec![
        (strings(&["-L"]), true),
        (
            user(&[
                "--keypairgen",
                "--key-type",
                "rsa:2048",
                "--id",
                &id,
                "--label",
                c.key_label,
            ]),
            true,
        ),
        (
            user(&[
                "--sign",
                "--id",
                &id,
                "-m",
                "SHA256-RSA-PKCS",
                "-i",
                &p("data"),
                "-o",
                &p("signature"),
            ]),
            true,
        ),
        (
            strings(&["--hash", "-m", "SHA256", "-i", &p("data"), "-o", &p("hash")]),
            true,
        ),
        (user(&["-O"]), true),
        (strings(&["--login", "--pin", c.wrong_pin, "-O"]), false),
        (
            strings(&[
                "--login",
                "--login-type",
                "so",
                "--so-pin",
                c.so_pin,
                "--init-pin",
                "--new-pin",
                c.init_pin,
            ]),
            true,
        ),
        (
            strings(&[
                "--login",
                "--pin",
                c.init_pin,
                "--change-pin",
                "--new-pin",
                c.set_pin,
            ]),
            true,
        ),
        (
            strings(&["--login", "--pin", c.set_pin, "-O", "--id", &id]),
            true,
        ),
    ];
    let mut listed = Vec::new();
    for (i, (args, succeeds)) in session.iter().enumerate() {
        // A debug log per run, beside the rows: all of it is scanned.
        let log = token.out_dir().join(format!("shim-{i}.log"));
        let out = token
            .command("pkcs11-tool")
            .arg("--module")
            .arg(Target::Shim.module())
            .args(args)
            .env("HSM_AUDIT_LOG_FILE", &log)
            .env("HSM_AUDIT_LOG_LEVEL", "debug")
            .output()
            .expect("pkcs11-tool (apt-get install opensc)");
        assert_eq!(
            out.status.success(),
            *succeeds,
            "pkcs11-tool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log_text = std::fs::read_to_string(&log).expect("the diagnostic log was written");
        assert!(log_text.contains("loaded vendor module"), "{log_text}");
        if args.contains(&"-O".to_owned()) && *succeeds {
            listed.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }

    // The canaries reached SoftHSM: the token, its key and the last PIN work.
    assert!(listed.iter().all(|l| l.contains(c.key_label)), "{listed:?}");
    assert!(listed.last().unwrap().contains(&id), "{listed:?}");
    let read = |name: &str| std::fs::read(p(name)).unwrap();
    assert_eq!(read("signature").len(), 256);
    assert_eq!(read("hash").len(), 32);
    // And the calls carrying them went through the shim.
    let rows = read_rows(&token.out_dir());
    assert_gapless_per_writer(&rows);
    for (function, result) in [
        ("C_GenerateKeyPair", "CKR_OK"),
        ("C_Sign", "CKR_OK"),
        ("C_DigestInit", "CKR_OK"),
        ("C_Login", "CKR_PIN_INCORRECT"),
        ("C_InitPIN", "CKR_OK"),
        ("C_SetPIN", "CKR_OK"),
        ("C_FindObjects", "CKR_OK"),
    ] {
        assert!(
            rows.iter()
                .any(|r| r.pkcs11_function == function && r.result_signature == result),
            "no {function} {result} row"
        );
    }

    assert_no_canary(&token, &c);
}
