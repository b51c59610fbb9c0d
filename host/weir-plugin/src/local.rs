//! Where weir keeps files on this machine, and how it writes them: the
//! user's cache and data directories (XDG base directories), and files
//! written whole (aside, then renamed over), so that a reader never sees
//! half of one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A per-user base directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDir {
    /// `$XDG_CACHE_HOME`, else `~/.cache`: what can be made again.
    Cache,
    /// `$XDG_DATA_HOME`, else `~/.local/share`: what the user installed.
    Data,
}

/// `dir`'s path from the environment as `var` reads it (an empty value
/// counts as unset); `None` without it or `HOME`.
pub fn user_dir(dir: UserDir, var: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (xdg, under_home) = match dir {
        UserDir::Cache => ("XDG_CACHE_HOME", ".cache"),
        UserDir::Data => ("XDG_DATA_HOME", ".local/share"),
    };
    set(xdg).or_else(|| set("HOME").map(|h| h.join(under_home)))
}

/// The process environment, for [`user_dir`].
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Writes `bytes` to `path` whole: into a file beside it (named by this
/// process), then renamed over it; the directory is created if missing.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_directories_win_over_home_and_empty_values_do_not_count() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let home = env(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "")]);
        assert_eq!(
            user_dir(UserDir::Data, &home),
            Some(PathBuf::from("/home/u/.local/share"))
        );
        assert_eq!(
            user_dir(UserDir::Cache, &home),
            Some(PathBuf::from("/home/u/.cache"))
        );
        let xdg = env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")]);
        assert_eq!(user_dir(UserDir::Cache, &xdg), Some(PathBuf::from("/c")));
        assert_eq!(user_dir(UserDir::Data, &env(&[])), None);
    }

    #[test]
    fn a_whole_write_replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = std::env::temp_dir().join(format!("weir-local-test-{}", std::process::id()));
        let file = dir.join("deep/index.json");
        write_whole(&file, b"one").unwrap();
        write_whole(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.join("deep")).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
