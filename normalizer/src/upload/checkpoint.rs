//! What the service has accepted: per row file, the byte offset up to which every line was
//! sent and answered with success. Saved atomically (write, fsync, rename) after each
//! accepted batch, so a rerun after a crash or a network cut resumes right after the last
//! accepted batch.
//!
//! Row files are append-only (see `sink::jsonl`), so "accepted up to offset N" is the whole
//! state. The inode is kept too: a file removed and re-created under the same name (pid
//! reuse on the same day) starts again at 0 instead of skipping rows.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Where one row file stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePos {
    /// Inode of the file the offset belongs to.
    pub ino: u64,
    /// Bytes from the start that have been accepted (always at a line boundary).
    pub offset: u64,
}

/// Positions by row file name.
pub type Positions = BTreeMap<String, FilePos>;

/// The saved state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `<dcr>/<stream>`: a checkpoint is only valid for the destination it was made for.
    pub destination: String,
    /// Accepted positions.
    pub files: Positions,
}

/// A checkpoint file held under an exclusive lock for the life of this value.
pub struct Store {
    path: PathBuf,
    _lock: Option<File>,
    /// Current state (what has been accepted).
    pub state: Checkpoint,
}

/// The default checkpoint path: in the row directory, named for the destination, so one
/// directory can be uploaded to several DCRs independently.
pub fn default_path(dir: &Path, dcr: &str, stream: &str) -> PathBuf {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    dir.join(format!(
        ".hsm-audit-upload-{}-{}.json",
        clean(dcr),
        clean(stream)
    ))
}

impl Store {
    /// Opens (or starts) the checkpoint at `path` for `destination`. With `lock`, takes an
    /// exclusive lock so two uploaders cannot send the same rows.
    pub fn open(path: &Path, destination: &str, lock: bool) -> Result<Store, String> {
        let lock = if lock { Some(take_lock(path)?) } else { None };
        let state = match std::fs::read(path) {
            Ok(bytes) => {
                let state: Checkpoint = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("checkpoint {} is unreadable: {e}", path.display()))?;
                if state.destination != destination {
                    return Err(format!(
                        "checkpoint {} belongs to {}, not {destination}; pass --checkpoint to use another file",
                        path.display(),
                        state.destination
                    ));
                }
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Checkpoint {
                destination: destination.to_owned(),
                files: Positions::new(),
            },
            Err(e) => return Err(format!("cannot read checkpoint {}: {e}", path.display())),
        };
        Ok(Store {
            path: path.to_owned(),
            _lock: lock,
            state,
        })
    }

    /// Records new positions and saves them durably.
    pub fn commit<'a>(
        &mut self,
        positions: impl IntoIterator<Item = (&'a str, FilePos)>,
    ) -> Result<(), String> {
        for (name, pos) in positions {
            self.state.files.insert(name.to_owned(), pos);
        }
        self.save()
            .map_err(|e| format!("cannot save checkpoint {}: {e}", self.path.display()))
    }

    fn save(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(&self.state)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // Makes the rename itself durable; best effort where directories cannot be opened.
            if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

fn take_lock(path: &Path) -> Result<File, String> {
    let lock_path = path.with_extension("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot create lock file {}: {e}", lock_path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!(
            "another upload holds {}; only one uploader may use a checkpoint",
            lock_path.display()
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_destination_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_path(dir.path(), "dcr-1", "Custom-X");
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".hsm-audit-upload-dcr-1-Custom-X"));
        {
            let mut s = Store::open(&path, "dcr-1/Custom-X", true).unwrap();
            // A second uploader is refused while the first holds the lock.
            let e = Store::open(&path, "dcr-1/Custom-X", true).err().unwrap();
            assert!(e.contains("another upload"), "{e}");
            s.commit([("a.jsonl", FilePos { ino: 7, offset: 42 })])
                .unwrap();
        }
        let s = Store::open(&path, "dcr-1/Custom-X", true).unwrap();
        assert_eq!(s.state.files["a.jsonl"], FilePos { ino: 7, offset: 42 });
        drop(s);
        let e = Store::open(&path, "dcr-2/Custom-X", false).err().unwrap();
        assert!(
            e.contains("belongs to dcr-1/Custom-X") && !e.contains('\n'),
            "{e}"
        );
        std::fs::write(&path, b"{nope").unwrap();
        assert!(Store::open(&path, "dcr-1/Custom-X", false)
            .err()
            .unwrap()
            .contains("unreadable"));
    }
}
