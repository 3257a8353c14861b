//! The compile cache's checks, each against a real directory.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    Engine::new(&config).unwrap()
}

/// The smallest component there is: the preamble and no sections.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn hmac_matches_rfc_4231() {
    // RFC 4231 test case 2 uses a 4-byte key; HMAC pads keys shorter
    // than a block with zeros, so the same key padded to 32 bytes gives
    // the same MAC.
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(b"Jefe");
    assert_eq!(
        hex(&hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"])),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn key_depends_on_module_and_engine() {
    let a = engine_fingerprint(&engine());
    assert_eq!(a, engine_fingerprint(&engine()), "stable for one config");
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(false);
    let b = engine_fingerprint(&Engine::new(&config).unwrap());
    assert_ne!(a, b, "epoch interruption changes the compiled code");
    assert_eq!(cache_key(&a, b"x"), cache_key(&a, b"x"));
    assert_ne!(cache_key(&a, b"x"), cache_key(&a, b"y"));
    assert_ne!(cache_key(&a, b"x"), cache_key(&b, b"x"));
}

#[test]
fn second_load_is_a_hit() {
    let dir = private_dir();
    let engine = engine();
    let cache = CompileCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
    cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
    let key = cache_key(&engine_fingerprint(&engine), EMPTY_COMPONENT);
    let path = cache.entry_path(&key);
    let mode = fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(cache.load(&engine, &key, &path).unwrap().is_some());
    // Reopened, as after a restart: same secret, still a hit.
    let cache = CompileCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
    assert!(cache.load(&engine, &key, &path).unwrap().is_some());
}

#[test]
fn tampered_or_foreign_entries_are_rejected() {
    let dir = private_dir();
    let engine = engine();
    let cache = CompileCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
    cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
    let key = cache_key(&engine_fingerprint(&engine), EMPTY_COMPONENT);
    let path = cache.entry_path(&key);
    let good = fs::read(&path).unwrap();

    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    fs::write(&path, &flipped).unwrap();
    let err = cache.load(&engine, &key, &path).unwrap_err();
    assert!(err.contains("MAC"), "{err}");

    fs::write(&path, &good[..HEADER_LEN - 1]).unwrap();
    let err = cache.load(&engine, &key, &path).unwrap_err();
    assert!(err.contains("no header"), "{err}");

    // A valid entry of another cache (another secret).
    let other = private_dir();
    let other = CompileCache::open(other.path(), DEFAULT_MAX_BYTES).unwrap();
    other.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
    fs::copy(other.entry_path(&key), &path).unwrap();
    let err = cache.load(&engine, &key, &path).unwrap_err();
    assert!(err.contains("MAC"), "{err}");

    // A valid entry under another key's name.
    fs::write(&path, &good).unwrap();
    let renamed = cache.entry_path(&[7; 32]);
    fs::rename(&path, &renamed).unwrap();
    let err = cache.load(&engine, &[7; 32], &renamed).unwrap_err();
    assert!(err.contains("another key"), "{err}");

    // A rejected entry is replaced by a fresh compile.
    fs::write(&path, &flipped).unwrap();
    cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
    assert!(cache.load(&engine, &key, &path).unwrap().is_some());
}

#[test]
fn refuses_a_directory_others_can_write() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o770)).unwrap();
    let err = CompileCache::open(dir.path(), DEFAULT_MAX_BYTES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("770") && err.contains("0700"), "{err}");
}

#[test]
fn refuses_a_symlink() {
    let dir = private_dir();
    let link = dir.path().join("link");
    let target = dir.path().join("real");
    fs::create_dir(&target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = CompileCache::open(&link, DEFAULT_MAX_BYTES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn refuses_a_directory_of_another_user() {
    if !nix::unistd::geteuid().is_root() {
        return; // only root can give a directory away
    }
    let dir = private_dir();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let err = CompileCache::open(dir.path(), DEFAULT_MAX_BYTES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("owned by uid 65534"), "{err}");
}

#[test]
fn refuses_a_readable_secret() {
    let dir = private_dir();
    CompileCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
    let key = dir.path().join(KEY_FILE);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = CompileCache::open(dir.path(), DEFAULT_MAX_BYTES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hmac-key") && err.contains("0600"), "{err}");
}

#[test]
fn evicts_least_recently_used_beyond_the_cap() {
    let dir = private_dir();
    let engine = engine();
    let cache = CompileCache::open(dir.path(), 0).unwrap();
    cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
    let entries = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(ENTRY_SUFFIX)
        })
        .count();
    assert_eq!(entries, 0, "a cap of 0 keeps nothing");
}
