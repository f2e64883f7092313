//! The config file's versions, and the watcher that queues a reload when it settles on a new one
//! (see `super::reload` for what a reload does).

use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::control::Control;
use super::reload::{ReloadSource, Trigger};

/// How often the config file is checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// What identifies a version of the config file: an editor's atomic rename changes the inode, an
/// in-place write the size or modification time, and the content digest catches a rewrite that
/// keeps both (timestamps coarser than the writes, `cp -p`, `touch -r`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
    digest: u64,
}

impl FileStamp {
    /// The stamp of the file at `path` (following symlinks); `None` while it does not exist, cannot
    /// be read, or changes while it is read.
    pub(super) fn of(path: &Path) -> Option<FileStamp> {
        read_file(path).ok().map(|(_, stamp)| stamp)
    }

    /// The metadata part of a stamp (digest 0).
    fn meta(path: &Path) -> std::io::Result<FileStamp> {
        let m = std::fs::metadata(path)?;
        Ok(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
            device: m.dev(),
            digest: 0,
        })
    }
}

/// Why the config file could not be read as one settled version.
#[derive(Debug)]
pub(super) enum FileRead {
    /// Missing or unreadable.
    Unreadable(std::io::Error),
    /// Its metadata changed while it was read, or it is shorter or longer than it says: a writer
    /// is at work (an in-place write truncates first).
    Changing,
}

/// Reads the config file once, with the stamp of exactly what was read.
pub(super) fn read_file(path: &Path) -> Result<(Vec<u8>, FileStamp), FileRead> {
    let before = FileStamp::meta(path).map_err(FileRead::Unreadable)?;
    let bytes = std::fs::read(path).map_err(FileRead::Unreadable)?;
    let after = FileStamp::meta(path).map_err(FileRead::Unreadable)?;
    if before != after || bytes.len() as u64 != after.len {
        return Err(FileRead::Changing);
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let digest = hasher.finish();
    Ok((bytes, FileStamp { digest, ..after }))
}

/// Polls the config file every [`WATCH_INTERVAL`] and queues a reload when it changed and then
/// stayed the same for one interval (an editor still writing is not read half-way). A file that
/// is briefly missing (delete and re-create) is waited for. The reload applies the version seen
/// settled or nothing (`ReloadError::FileChanging`: written again meanwhile; the next settled
/// version applies), so a write that truncates the file in place is never read half-way either.
/// Ends when reloads are refused.
pub async fn watch_file(control: Rc<Control>, path: PathBuf) {
    let mut seen = FileStamp::of(&path);
    let mut requested = seen.clone();
    loop {
        monoio::time::sleep(WATCH_INTERVAL).await;
        let now = FileStamp::of(&path);
        if now != seen {
            seen = now;
            continue;
        }
        let read = control.reload.borrow().file_stamp.clone();
        if now.is_none() || now == read || now == requested {
            continue;
        }
        log::info!("config file {} changed: reloading", path.display());
        control.reload.borrow_mut().settled = now.clone();
        requested = now;
        if !control.reloader.trigger(ReloadSource::File, Trigger::File) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ringgate-reload-{}-{tag}.toml", std::process::id()))
    }

    /// Rewrites `path` in place (same inode, same length) and puts its old modification time back:
    /// what two writes within one timestamp tick, or `cp -p`, leave behind.
    fn rewrite_keeping_mtime(path: &Path, text: &str) {
        let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
        std::fs::write(path, text).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(mtime).unwrap();
    }

    #[test]
    fn a_stamp_names_the_content_read() {
        let path = temp("stamp");
        std::fs::write(&path, "# prefix aa\n").unwrap();
        let (bytes, stamp) = read_file(&path).unwrap();
        assert_eq!(bytes, b"# prefix aa\n");
        assert_eq!(
            FileStamp::of(&path),
            Some(stamp.clone()),
            "unchanged: same stamp"
        );
        rewrite_keeping_mtime(&path, "# prefix bb\n");
        let meta = FileStamp::meta(&path).unwrap();
        assert_eq!(
            meta,
            FileStamp {
                digest: 0,
                ..stamp.clone()
            },
            "metadata alone is blind"
        );
        let (bytes, again) = read_file(&path).unwrap();
        assert_eq!(bytes, b"# prefix bb\n");
        assert_ne!(again, stamp, "the digest tells the versions apart");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_missing_file_has_no_stamp() {
        let path = temp("missing");
        assert!(matches!(read_file(&path), Err(FileRead::Unreadable(_))));
        assert_eq!(FileStamp::of(&path), None);
    }
}
