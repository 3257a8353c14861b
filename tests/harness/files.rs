//! A test's own files: its temporary directory, the TOML it writes, the
//! scripts it runs, files it replaces, directories it lists.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use tempfile::TempDir;

/// A fresh temporary directory for one test's config, state and logs; it is
/// removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("wasmwall-e2e-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Quotes `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            // TOML allows no other control character in a basic string.
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The files directly inside `dir`; none when `dir` does not exist.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("read a directory entry").path())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    }
}

/// `path` as a TOML basic string.
pub fn toml_path(path: &Path) -> String {
    toml_string(&path.to_string_lossy())
}

/// Writes an executable (0755) shell script.
pub fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot make {} executable: {e}", path.display()));
}

/// Replaces `path` with `bytes` the way the README tells operators to: a
/// new file beside it, renamed over it, so that a daemon watching it never
/// reads half a file.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    let temp = PathBuf::from(temp);
    fs::write(&temp, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", temp.display()));
    fs::rename(&temp, path).unwrap_or_else(|e| {
        panic!(
            "cannot rename {} to {}: {e}",
            temp.display(),
            path.display()
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_string_escapes_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"/tmp/a"b\c"#), r#""/tmp/a\"b\\c""#);
    }
}
