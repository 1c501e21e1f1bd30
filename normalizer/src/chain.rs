//! The per-writer hash chain (docs/tamper-evidence.md).
//!
//! Canonical form: a row's JSON line always ends with `"RowHash":"<64 hex digits>"}` (RowHash
//! is the last column), and `RowHash` is the lowercase hex SHA-256 of every byte of the line
//! before those 64 digits. Hashing the bytes that are written, rather than some re-rendering
//! of them, means a verifier needs no JSON canonicalisation: it hashes `line[..len - 66]`.
//! `PrevHash` precedes `RowHash`, so each row's hash covers its predecessor's.

use crate::row::Row;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// `PrevHash` of a stream's first row. All zeros: every row already carries its `WriterId`
/// under the hash, so a writer-specific genesis would add nothing.
pub const GENESIS: Hash = [0; 32];

/// `OperationName` of checkpoint rows. Not in the operation catalog: it is not a PKCS#11 call.
pub const CHECKPOINT_OPERATION: &str = "HSM_AUDIT_CHECKPOINT";
/// `RecordType` of a row that records a PKCS#11 call.
pub const RECORD_CALL: &str = "call";
/// `RecordType` of a checkpoint row.
pub const RECORD_CHECKPOINT: &str = "checkpoint";
/// `RecordType` of an `HSM_AUDIT_GAP` row, which reports rows that could not be written.
pub const RECORD_GAP: &str = "gap";

/// Hex digits of a hash.
pub const HASH_HEX_LEN: usize = 64;
/// What follows the hashed prefix of a line: the hash's digits, then `"}`.
const SUFFIX_LEN: usize = HASH_HEX_LEN + 2;
/// What the hashed prefix of a line ends with.
const ROW_HASH_KEY: &[u8] = b"\"RowHash\":\"";

/// The two lowercase hex digits of every byte value: one lookup per byte on the writer's
/// per-row path instead of two.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    pairs
};

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Decodes exactly `N` bytes from lowercase hex; `None` for anything else (uppercase
/// included: the chain compares hashes as the bytes written).
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Splits a line (without its `\n`) in canonical form into the hashed prefix and the
/// RowHash digits it claims; `None` if it does not end the canonical way.
pub fn split_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let prefix_len = line.len().checked_sub(SUFFIX_LEN)?;
    let (prefix, rest) = line.split_at(prefix_len);
    (prefix.ends_with(ROW_HASH_KEY) && rest.ends_with(b"\"}"))
        .then(|| (prefix, &rest[..HASH_HEX_LEN]))
}

/// SHA-256 of the canonical prefix of a line.
pub fn hash_prefix(prefix: &[u8]) -> Hash {
    Sha256::digest(prefix).into()
}

/// One writer's chain: the head (the last row's hash), the committed head (the hash of the
/// last row known to be on disk) and the buffer rows are rendered in.
///
/// Rows that never reach the file must not stay in the chain, or the next row on disk would
/// link to a hash no row on disk has. So the writer commits the head after every successful
/// write and rolls back to the committed head after a failed one: the next row (an
/// `HSM_AUDIT_GAP` row) then links to the last row actually written.
pub struct Chain {
    head: [u8; HASH_HEX_LEN],
    /// `PrevHash` of the last sealed row (the head before it).
    before_last: [u8; HASH_HEX_LEN],
    committed: [u8; HASH_HEX_LEN],
    line: Vec<u8>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// A chain at genesis.
    pub fn new() -> Chain {
        let mut head = [0; HASH_HEX_LEN];
        hex_into(&GENESIS, &mut head);
        Chain {
            head,
            before_last: head,
            committed: head,
            line: Vec::with_capacity(1024),
        }
    }

    /// Every row sealed so far is on disk.
    pub fn commit(&mut self) {
        self.committed = self.head;
    }

    /// Every row sealed so far except the last one is on disk.
    pub fn commit_all_but_last(&mut self) {
        self.committed = self.before_last;
    }

    /// The rows sealed since the last commit were lost: the head goes back to the last row
    /// on disk.
    pub fn roll_back(&mut self) {
        self.head = self.committed;
        self.before_last = self.committed;
    }

    /// The current head as hex: the `PrevHash` the next row will carry.
    pub fn head(&self) -> &str {
        std::str::from_utf8(&self.head).expect("hex digits are ASCII")
    }

    /// Links `row` to the head: fills `PrevHash` and `RowHash`, renders the row's JSON line
    /// once (the bytes RowHash covers, then `\n`), advances the head and hands the sealed row
    /// and its line to `emit`. With `head` (the row's shape columns, already rendered and
    /// hashed) only the per-row columns are rendered and hashed here; the line and its hash
    /// are the same bytes either way.
    pub fn seal<R>(
        &mut self,
        row: Row<'_>,
        head: Option<&Head>,
        emit: impl FnOnce(&Row<'_>, &[u8]) -> R,
    ) -> R {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let result = self.seal_into(row, head, &mut line, emit);
        self.line = line;
        result
    }

    /// [`Chain::seal`], rendering the line at the end of `out` (a sink's write buffer).
    pub fn seal_into<R>(
        &mut self,
        row: Row<'_>,
        head: Option<&Head>,
        out: &mut Vec<u8>,
        emit: impl FnOnce(&Row<'_>, &[u8]) -> R,
    ) -> R {
        let prev = self.head;
        self.before_last = prev;
        let mut row = Row {
            prev_hash: Cow::Borrowed(std::str::from_utf8(&prev).expect("hex digits are ASCII")),
            row_hash: Cow::Borrowed(""),
            ..row
        };
        let start = out.len();
        let (mut hasher, hashed_from) = match head {
            Some(head) => {
                out.extend_from_slice(&head.line);
                (head.hashed.clone(), out.len())
            }
            None => {
                row.write_json_shape(out);
                (Sha256::new(), start)
            }
        };
        row.write_json_per_row(out);
        // With RowHash empty the line ends `"RowHash":""}`: hash up to the second-last quote.
        let hashed_to = out.len() - 2;
        debug_assert!(out[..hashed_to].ends_with(ROW_HASH_KEY));
        hasher.update(&out[hashed_from..hashed_to]);
        hex_into(&hasher.finalize(), &mut self.head);
        out.truncate(hashed_to);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"\"}\n");
        row.row_hash = Cow::Borrowed(std::str::from_utf8(&self.head).expect("hex"));
        emit(&row, &out[start..])
    }
}

/// The start of every line of one row shape (`row::SHAPE_COLUMNS`): rendered once, and
/// SHA-256's state after those bytes, so a row of that shape only renders and hashes its
/// per-row columns (about a fifth of the line).
#[derive(Clone)]
pub struct Head {
    line: Vec<u8>,
    hashed: Sha256,
}

impl Head {
    /// The head of `row`'s shape.
    pub fn of(row: &Row<'_>) -> Head {
        let mut line = Vec::with_capacity(768);
        row.write_json_shape(&mut line);
        let mut hashed = Sha256::new();
        hashed.update(&line);
        Head { line, hashed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::context::Context;
    use crate::row::parse_line;
    use crate::transform::Normalizer;
    use crate::{Event, FunctionId};

    fn normalizer() -> Normalizer {
        let mut context = Context::current(&Config {
            caller_ip_address: "192.0.2.1".into(),
            ..Config::default()
        });
        // Characters JSON escapes or encodes as multi-byte UTF-8.
        context.client_info = "caf\u{e9} \"quoted\"\n".into();
        Normalizer::new(context)
    }

    #[test]
    fn sealed_lines_link_and_hash_their_own_bytes() {
        let mut chain = Chain::new();
        assert_eq!(chain.head(), "0".repeat(64));
        let mut lines = Vec::new();
        let mut n = normalizer();
        for i in 0..3 {
            let row = n.row(&Event::new(
                FunctionId::Sign,
                i,
                1_763_762_603_000_000_000,
                5,
            ));
            chain.seal(row, None, |sealed, line| {
                // The line is exactly the sealed row's JSON, so any sink renders the same bytes.
                let mut rendered = serde_json::to_vec(sealed).unwrap();
                rendered.push(b'\n');
                assert_eq!(line, rendered);
                lines.push(line.to_vec());
            });
        }
        let mut prev = hex(&GENESIS);
        for line in &lines {
            let line = line.strip_suffix(b"\n").unwrap();
            let parsed = parse_line(std::str::from_utf8(line).unwrap()).unwrap();
            let (prefix, claimed) = split_line(line).unwrap();
            assert_eq!(claimed, parsed.row_hash.as_bytes());
            assert_eq!(hex(&hash_prefix(prefix)), parsed.row_hash);
            assert_eq!(parsed.prev_hash, prev);
            prev = parsed.row_hash.into_owned();
        }
        assert_eq!(chain.head(), prev);
    }

    #[test]
    fn cached_heads_give_the_same_lines_as_full_rendering() {
        let (mut cached, mut full) = (Chain::new(), Chain::new());
        let mut a = normalizer();
        let mut b = Normalizer::new(a.context().clone());
        let functions = [
            FunctionId::Sign,
            FunctionId::Login,
            FunctionId::GenerateRandom,
        ];
        for i in 0..600u64 {
            if i == 300 {
                // A context column changes mid-stream: no stale head may be reused.
                a.set_sdk_version("Vendor \"X\" 2.0".into());
                b.set_sdk_version("Vendor \"X\" 2.0".into());
            }
            let mut event = Event::new(
                functions[(i % 3) as usize],
                [0, 0xa0, 0x80000001][(i % 5 % 3) as usize],
                1_763_762_603_000_000_000 + i * 999_999_937,
                i * 7_777,
            );
            event.mechanism = (i % 2 == 0).then_some(0x1041 + i % 4);
            event.user_type = (i % 7 == 0).then_some(1);
            let (row, head) = a.row_with_head(&event);
            let with_head = cached.seal(row, Some(head), |_, line| line.to_vec());
            let without = full.seal(b.row(&event), None, |_, line| line.to_vec());
            assert_eq!(
                String::from_utf8_lossy(&with_head),
                String::from_utf8_lossy(&without)
            );
        }
        assert_eq!(cached.head(), full.head());
    }

    #[test]
    fn sealing_into_a_buffer_appends_the_same_line() {
        let (mut a, mut b) = (Chain::new(), Chain::new());
        let mut n = normalizer();
        let mut m = Normalizer::new(n.context().clone());
        let mut buffer = b"earlier lines\n".to_vec();
        let mut expected = buffer.clone();
        for i in 0..3 {
            let event = Event::new(FunctionId::Sign, i, 1_763_762_603_000_000_000, 5);
            let (row, head) = n.row_with_head(&event);
            let emitted = a.seal_into(row, Some(head), &mut buffer, |_, line| line.to_vec());
            let line = b.seal(m.row(&event), None, |_, line| line.to_vec());
            assert_eq!(emitted, line);
            expected.extend_from_slice(&line);
        }
        assert_eq!(buffer, expected);
    }

    #[test]
    fn roll_back_returns_to_the_last_committed_row() {
        let mut chain = Chain::new();
        let mut n = normalizer();
        let mut seal = |chain: &mut Chain| {
            let row = n.row(&Event::new(FunctionId::Sign, 0, 0, 0));
            chain.seal(row, None, |sealed, _| sealed.row_hash.to_string())
        };
        let a = seal(&mut chain);
        chain.commit();
        seal(&mut chain);
        chain.roll_back();
        assert_eq!(chain.head(), a);
        let c = seal(&mut chain);
        seal(&mut chain);
        // Everything before the last row was written.
        chain.commit_all_but_last();
        chain.roll_back();
        assert_eq!(chain.head(), c);
    }

    #[test]
    fn known_answer() {
        // SHA-256("abc"), so a re-implementation can check its hex step.
        assert_eq!(
            hex(&hash_prefix(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_non_canonical_text() {
        let h = hash_prefix(b"x");
        assert_eq!(unhex::<32>(&hex(&h)), Some(h));
        assert_eq!(unhex::<32>(&hex(&h).to_uppercase()), None);
        assert_eq!(unhex::<32>("00"), None);
        assert_eq!(unhex::<1>("0g"), None);
        assert_eq!(split_line(b"{}"), None);
        assert_eq!(split_line(&[b'"'; 80]), None);
    }
}
