//! The compile cache: compiled policy components kept on disk, so that a
//! restart, or a swap back to a module seen before, does not compile again.
//! Compiling a Python or JavaScript policy (a whole language runtime, 12-18
//! MB of wasm) takes seconds; loading it from here takes milliseconds.
//!
//! One file per entry, `<key>.cwasm`, where the key is the SHA-256 of the
//! engine's fingerprint and of the wasm bytes: a changed module, a changed
//! engine configuration or another wasmtime gives another key.
//!
//! # Why loading an entry is safe
//!
//! `Component::deserialize` is `unsafe`: it maps the bytes as machine code
//! and trusts their metadata, so a crafted file is arbitrary code execution
//! in the runtime, which is root. Only files this runtime wrote may ever get
//! there, and the checks are layered:
//!
//! 1. The directory must be a real directory (not a symlink) owned by the
//!    user the runtime runs as, with no access for group or others (0700).
//!    Otherwise the cache is refused and policies are compiled every time.
//!    Nobody but that user (root, for the daemon) can then add, replace or
//!    rename a file in it.
//! 2. Entries are written to a temporary file (0600) in the directory and
//!    renamed into place: a reader never sees half a file.
//! 3. Each entry starts with a header holding its key and an HMAC-SHA256 of
//!    the key and the payload, under a secret generated in the directory
//!    (`hmac-key`, 0600) when the cache is first used. An entry is
//!    deserialized only when both match: a file copied from another cache or
//!    machine, renamed to another key, truncated or corrupted on disk is
//!    rejected, removed, and the module compiled afresh.
//! 4. wasmtime checks its own header (version, target, configuration) too.
//!
//! The secret does not protect against someone who can write the directory:
//! they can read the secret as well. Such a someone is root or the runtime's
//! own user, and could replace the binary itself; check 1 is what keeps
//! everyone else out.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};
use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::text::hex;

/// Where the daemon keeps its cache when the config does not say: state that
/// should survive a reboot (unlike the state file's /run).
pub const DEFAULT_DIR: &str = "/var/lib/wasmwall/cache";
/// Default cap on the total size of the entries.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// First bytes of every entry; the digit is the format version.
const MAGIC: &[u8; 16] = b"wasmwall-cwasm1\n";
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;
const ENTRY_SUFFIX: &str = ".cwasm";
const KEY_FILE: &str = "hmac-key";

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("cannot create cache directory {path}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use cache directory {path}: {why}")]
    Unsafe { path: String, why: String },
    #[error("cache directory {path}: cannot read or create its key file")]
    Key {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where compiled components are kept, and how much of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// None: no cache, every load compiles.
    pub dir: Option<PathBuf>,
    pub max_bytes: u64,
}

impl CacheSettings {
    /// From the config file's `[cache]`: `dir` defaults to [`DEFAULT_DIR`];
    /// `max_mib = 0` turns the cache off.
    pub fn from_config(dir: Option<PathBuf>, max_mib: Option<u64>) -> CacheSettings {
        let max_bytes = max_mib.map_or(DEFAULT_MAX_BYTES, |m| m.saturating_mul(1 << 20));
        CacheSettings {
            dir: (max_bytes > 0).then(|| dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))),
            max_bytes,
        }
    }

    /// No cache.
    pub fn disabled() -> CacheSettings {
        CacheSettings {
            dir: None,
            max_bytes: 0,
        }
    }

    /// Opens the cache. One that cannot be used is logged and left out:
    /// policies are then compiled at every load, which is slow but safe.
    pub fn open(&self) -> Option<CompileCache> {
        let dir = self.dir.as_deref()?;
        match CompileCache::open(dir, self.max_bytes) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(
                    error = %crate::text::error_chain(&e),
                    "compile cache not used; policies are compiled at every load"
                );
                None
            }
        }
    }
}

/// An opened, checked cache directory.
#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    max_bytes: u64,
    secret: [u8; 32],
}

impl CompileCache {
    /// Opens `dir`, creating it (0700) and its secret if missing. Refuses a
    /// directory that others could write to or that is not the current
    /// user's.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<CompileCache, CacheError> {
        let shown = dir.display().to_string();
        let unsafe_dir = |why: String| CacheError::Unsafe {
            path: shown.clone(),
            why,
        };
        if let Err(source) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            return Err(CacheError::Create {
                path: shown.clone(),
                source,
            });
        }
        let meta = fs::symlink_metadata(dir).map_err(|source| CacheError::Create {
            path: shown.clone(),
            source,
        })?;
        if !meta.file_type().is_dir() {
            return Err(unsafe_dir("it is not a directory (a symlink?)".into()));
        }
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(unsafe_dir(format!(
                "it is owned by uid {}, not by the user wasmwall runs as (uid {euid})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(unsafe_dir(format!(
                "its mode is {:o}; it must be 0700 (chmod 700 {shown})",
                meta.mode() & 0o7777
            )));
        }
        let secret = read_or_create_secret(dir, euid).map_err(|e| match e {
            SecretError::Io(source) => CacheError::Key {
                path: shown.clone(),
                source,
            },
            SecretError::Unsafe(why) => unsafe_dir(why),
        })?;
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            max_bytes,
            secret,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compiled component for `wasm`: from the cache when a valid entry
    /// exists, else compiled and stored. Problems with the cache are logged
    /// and fall back to compiling; only a compile error is returned.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        let key = cache_key(&engine_fingerprint(engine), wasm);
        let path = self.entry_path(&key);
        let started = Instant::now();
        match self.load(engine, &key, &path) {
            Ok(Some(component)) => {
                tracing::debug!(key = %hex(&key), elapsed_ms = started.elapsed().as_millis() as u64, "compile cache hit");
                return Ok(component);
            }
            Ok(None) => tracing::debug!(key = %hex(&key), "compile cache miss"),
            Err(why) => {
                tracing::warn!(entry = %path.display(), %why, "compile cache entry rejected; compiling again");
                let _ = fs::remove_file(&path);
            }
        }
        let component = Component::new(engine, wasm)?;
        tracing::debug!(
            key = %hex(&key),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled"
        );
        match self.store(&key, &path, &component) {
            Ok(()) => self.evict(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write to the compile cache")
            }
        }
        Ok(component)
    }

    fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}{ENTRY_SUFFIX}", hex(key)))
    }

    /// `Ok(None)`: no entry. `Err`: an entry that must not be used.
    fn load(
        &self,
        engine: &Engine,
        key: &[u8; 32],
        path: &Path,
    ) -> Result<Option<Component>, String> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open it: {e}")),
        };
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
            return Err(format!(
                "owner uid {} or mode {:o} is not this runtime's",
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read it: {e}"))?;
        let payload = verify_entry(&self.secret, key, &bytes)?;
        // SAFETY: see the module documentation. The file lies in a directory
        // only this user can write, was written whole (temp file + rename),
        // and carries a MAC under this cache's secret over its key and
        // payload, which was just verified: these bytes are exactly what
        // `Component::serialize` produced in this cache for this key.
        // wasmtime checks its own version and configuration header on top.
        let component = unsafe { Component::deserialize(engine, payload) }
            .map_err(|e| format!("wasmtime refused it: {e}"))?;
        // Recently used entries are evicted last.
        let _ = file.set_modified(SystemTime::now());
        Ok(Some(component))
    }

    fn store(&self, key: &[u8; 32], path: &Path, component: &Component) -> std::io::Result<()> {
        let payload = component.serialize().map_err(std::io::Error::other)?;
        let mut file = tempfile::Builder::new()
            .prefix(".entry-")
            .tempfile_in(&self.dir)?;
        file.write_all(&entry_header(&self.secret, key, &payload))?;
        file.write_all(&payload)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes the least recently used entries until the total size is under
    /// the cap. Also removes temporary files a crash left behind.
    fn evict(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if name.starts_with(".entry-") {
                // Another process may be writing it right now: only old ones.
                if modified.elapsed().is_ok_and(|age| age.as_secs() > 3600) {
                    let _ = fs::remove_file(entry.path());
                }
            } else if name.ends_with(ENTRY_SUFFIX) {
                files.push((modified, meta.len(), entry.path()));
            }
        }
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                tracing::debug!(entry = %path.display(), "compile cache: evicted");
                total -= len;
            }
        }
    }
}

/// The part of the cache key that stands for the engine: anything that
/// changes the compiled code changes it. wasmtime's compatibility hash covers
/// the target, the compiler flags, the tunables (epoch interruption, memory
/// layout...), the enabled wasm features and the wasmtime version.
pub fn engine_fingerprint(engine: &Engine) -> [u8; 32] {
    use std::hash::Hash;
    let mut hasher = Sha256Hasher(Sha256::new());
    MAGIC.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// The key of `wasm` compiled by an engine with `fingerprint`.
pub fn cache_key(fingerprint: &[u8; 32], wasm: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(fingerprint);
    h.update(Sha256::digest(wasm));
    h.finalize().into()
}

/// `std::hash::Hasher` over SHA-256, to digest a `Hash` value with a stable
/// function (the standard hasher is randomly seeded per process).
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is used")
    }
}

fn entry_header(secret: &[u8; 32], key: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(key);
    header.extend_from_slice(&entry_mac(secret, key, payload));
    header
}

fn entry_mac(secret: &[u8; 32], key: &[u8; 32], payload: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[MAGIC, key, payload])
}

/// The payload of an entry whose header matches `key` and whose MAC is right.
fn verify_entry<'a>(
    secret: &[u8; 32],
    key: &[u8; 32],
    bytes: &'a [u8],
) -> Result<&'a [u8], String> {
    if bytes.len() < HEADER_LEN || !bytes.starts_with(MAGIC) {
        return Err("not a wasmwall cache entry (no header)".into());
    }
    let (stored_key, rest) = bytes[MAGIC.len()..].split_at(32);
    let (stored_mac, payload) = rest.split_at(32);
    if stored_key != key {
        return Err("it holds another key than its name says".into());
    }
    let mac = entry_mac(secret, key, payload);
    // Constant time, as MACs are compared.
    if stored_mac
        .iter()
        .zip(mac.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        != 0
    {
        return Err("its MAC does not match (written by someone else, or corrupted)".into());
    }
    Ok(payload)
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
fn hmac_sha256(secret: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for (i, b) in secret.iter().enumerate() {
        inner_pad[i] ^= b;
        outer_pad[i] ^= b;
    }
    let mut inner = Sha256::new();
    inner.update(inner_pad);
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(outer_pad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

enum SecretError {
    Io(std::io::Error),
    Unsafe(String),
}

/// The cache's secret: 32 random bytes in `dir/hmac-key`, created once
/// (exclusively, 0600), then only read, after checking owner and mode.
fn read_or_create_secret(dir: &Path, euid: u32) -> Result<[u8; 32], SecretError> {
    let path = dir.join(KEY_FILE);
    let mut secret = [0u8; 32];
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut secret))
                .and_then(|()| file.write_all(&secret))
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    let _ = fs::remove_file(&path);
                    SecretError::Io(e)
                })?;
            return Ok(secret);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SecretError::Io(e)),
    }
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(SecretError::Io)?;
    let meta = file.metadata().map_err(SecretError::Io)?;
    if !meta.is_file() || meta.uid() != euid || meta.mode() & 0o077 != 0 {
        return Err(SecretError::Unsafe(format!(
            "its {KEY_FILE} must be a file of uid {euid} with mode 0600"
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(SecretError::Io)?;
    if bytes.len() != secret.len() {
        // Another process may be writing it this very moment; better to
        // skip the cache once than to race.
        return Err(SecretError::Unsafe(format!(
            "its {KEY_FILE} is {} bytes, not 32",
            bytes.len()
        )));
    }
    secret.copy_from_slice(&bytes);
    Ok(secret)
}

/// The cache directory for a command run by a user: `$XDG_CACHE_HOME/wasmwall`
/// or `~/.cache/wasmwall`; the daemon's [`DEFAULT_DIR`] for root.
pub fn user_dir() -> Option<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from(DEFAULT_DIR));
    }
    let from_env = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    from_env("XDG_CACHE_HOME")
        .or_else(|| from_env("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("wasmwall"))
}

#[cfg(test)]
mod tests;
