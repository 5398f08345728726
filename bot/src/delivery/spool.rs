//! The spool: finished results waiting to be delivered, on disk (in-process mode), so that a bot
//! restarted before Telegram took them still delivers them. One `<job>.json` (who, where, what)
//! and one `<job>.jpg` per result, written before the first attempt and removed once the result is
//! delivered or given up. The folder is private to the bot's user (mode 0700).
use std::path::{Path, PathBuf};

use crate::store::Finished;

/// Results waiting for delivery, in a folder.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool in `dir`, created (private to this user) when missing.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Spool {
            dir: dir.to_owned(),
        })
    }

    fn paths(&self, id: u64) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{id}.json")),
            self.dir.join(format!("{id}.jpg")),
        )
    }

    /// Keeps job `id`'s result until [`Spool::remove`]; the picture first, then the record, each
    /// written whole (a crash leaves no half record).
    pub fn keep(&self, id: u64, finished: &Finished) -> std::io::Result<()> {
        let (json, jpg) = self.paths(id);
        write_whole(&jpg, &finished.jpeg)?;
        write_whole(&json, &serde_json::to_vec(finished)?)
    }

    /// Forgets job `id`'s result (delivered, or given up).
    pub fn remove(&self, id: u64) {
        let (json, jpg) = self.paths(id);
        for path in [json, jpg] {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }

    /// Every result waiting, oldest job first; unreadable entries are logged and removed.
    pub fn pending(&self) -> Vec<(u64, Finished)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| match self.read(id) {
                Ok(finished) => Some((id, finished)),
                Err(e) => {
                    tracing::warn!(job = id, "unreadable spooled result dropped: {e}");
                    self.remove(id);
                    None
                }
            })
            .collect()
    }

    fn read(&self, id: u64) -> anyhow::Result<Finished> {
        let (json, jpg) = self.paths(id);
        let mut finished: Finished = serde_json::from_slice(&std::fs::read(json)?)?;
        finished.jpeg = std::fs::read(jpg)?;
        Ok(finished)
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use crate::session::Draft;

    fn finished(jpeg: &[u8]) -> Finished {
        Finished {
            user: 7,
            chat: 7,
            lang: Lang::Ru,
            draft: Draft {
                photo: "p".into(),
                style: None,
                mix: None,
                mode: stylegram_engine::Mode::Fast,
                strength: stylegram_engine::Strength::DEFAULT,
                preserve_colors: false,
            },
            caption: "done".into(),
            status_message: Some(3),
            finished_ms: 1,
            jpeg: jpeg.to_vec(),
        }
    }

    #[test]
    fn results_survive_a_reopen_until_removed() {
        let dir = std::env::temp_dir().join(format!("stylegram-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Spool::open(&dir).unwrap();
        spool.keep(12, &finished(b"twelve")).unwrap();
        spool.keep(3, &finished(b"three")).unwrap();
        std::fs::write(dir.join("9.json"), b"not json").unwrap();

        let reopened = Spool::open(&dir).unwrap();
        let pending = reopened.pending();
        let ids: Vec<u64> = pending.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [3, 12], "oldest first, the broken entry dropped");
        assert_eq!(pending[1].1.jpeg, b"twelve");
        assert_eq!(pending[1].1.lang, Lang::Ru);
        assert_eq!(pending[1].1.status_message, Some(3));
        assert!(!dir.join("9.json").exists());

        reopened.remove(3);
        reopened.remove(12);
        assert!(reopened.pending().is_empty());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "no picture left"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
