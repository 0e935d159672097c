//! Where windows and the ledger live between runs.
//!
//! The CLI keeps them in a local directory: `state.json` (the windows),
//! `ledger.json` (the blocks) and `absorbed.json` (which inputs were
//! already counted, so running twice over the same file counts it once).
//! Each file is written to a temporary name and renamed over the old one,
//! so a crash leaves the previous version whole.

use crate::engine::StoredState;
use crate::ledger::Ledger;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// How many absorbed-input records are kept (oldest dropped first).
pub const ABSORBED_KEEP: usize = 100_000;

/// Inputs already counted: identity → event-time bucket of its newest record.
pub type Absorbed = BTreeMap<String, i64>;

/// State kept in a local directory.
#[derive(Debug, Clone)]
pub struct DirState {
    dir: PathBuf,
}

impl DirState {
    /// State in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirState { dir: dir.into() }
    }

    fn read<T: DeserializeOwned + Default>(&self, name: &str) -> io::Result<T> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.dir.join(name))
    }

    /// Load the windows, the ledger and the absorbed inputs (empty when the
    /// directory is new).
    pub fn load(&self) -> io::Result<(StoredState, Ledger, Absorbed)> {
        Ok((
            self.read("state.json")?,
            self.read("ledger.json")?,
            self.read("absorbed.json")?,
        ))
    }

    /// Save all three.
    pub fn save(
        &self,
        state: &StoredState,
        ledger: &Ledger,
        absorbed: &Absorbed,
    ) -> io::Result<()> {
        let mut absorbed = absorbed.clone();
        while absorbed.len() > ABSORBED_KEEP {
            let oldest = absorbed
                .iter()
                .min_by_key(|(k, v)| (**v, (*k).clone()))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => absorbed.remove(&k),
                None => break,
            };
        }
        self.write("state.json", state)?;
        self.write("ledger.json", ledger)?;
        self.write("absorbed.json", &absorbed)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty_dir() {
        let dir = std::env::temp_dir().join(format!("f2w-state-{}", std::process::id()));
        let s = DirState::new(&dir);
        let (st, l, a) = s.load().unwrap();
        assert_eq!(st, StoredState::default());
        assert!(l.blocks.is_empty() && a.is_empty());
        let mut a = Absorbed::new();
        a.insert("x.log:10:20".into(), 5);
        s.save(&st, &l, &a).unwrap();
        assert_eq!(s.load().unwrap().2, a);
        std::fs::write(dir.join("ledger.json"), b"{not json").unwrap();
        let e = s.load().unwrap_err();
        assert!(e.to_string().contains("ledger.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
