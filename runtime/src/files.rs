//! Reading a file the runtime is given (a policy, the config, a world
//! state, its own state, snapshot and kept leases, dnsmasq's lease file, a
//! fixture, a file a policy is given as input):
//! only a regular file, of at most a size set per kind of file, is read.
//! The open never blocks (a FIFO would hang it), the type and size are
//! checked on the opened descriptor before reading, and the read stops one
//! byte past the maximum (the file can grow while it is read).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use thiserror::Error;

/// What a file is to the runtime, and so how large it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A policy component (.wasm). Python and JavaScript policies carry
    /// their interpreter: about 18 and 12 MiB.
    Policy,
    /// The runtime's config (TOML).
    Config,
    /// A world state for `eval --state` (JSON).
    WorldState,
    /// The runtime's own state file (JSON: the policies' records and the
    /// sysctls' original values).
    State,
    /// The snapshot of the table beside the state file (JSON: the whole
    /// table as last observed, so as large as what the limits allow).
    Snapshot,
    /// The table as last applied, beside the state file (JSON: every rule
    /// and element the policies wanted, so as large as a snapshot).
    Applied,
    /// A change waiting for `wasmwall confirm`, beside the state file (JSON:
    /// the table to roll back to, so as large as a snapshot).
    Confirmation,
    /// The leases kept for a restart (JSON, at most `leases.max` of at most
    /// about 400 bytes each).
    KeptLeases,
    /// dnsmasq's lease file (text, read line by line).
    LeaseFile,
    /// A file of a fixture of `wasmwall test` (its TOML, the expected
    /// ruleset or error).
    Fixture,
    /// A file of `[policy.files]` (or a fixture's `[files]`) whose text a
    /// policy receives as a config value: OpenWrt's UCI files are a few KiB.
    PolicyInput,
}

impl Kind {
    /// The most bytes read of a file of this kind.
    pub const fn max_bytes(self) -> u64 {
        match self {
            Kind::Policy => 64 << 20,
            Kind::Config => 1 << 20,
            Kind::WorldState => 16 << 20,
            Kind::State => 16 << 20,
            Kind::Snapshot | Kind::Applied | Kind::Confirmation => 256 << 20,
            Kind::KeptLeases => 512 << 20,
            Kind::LeaseFile => 64 << 20,
            Kind::Fixture => 16 << 20,
            Kind::PolicyInput => 1 << 20,
        }
    }

    /// How errors name it.
    pub const fn what(self) -> &'static str {
        match self {
            Kind::Policy => "policy file",
            Kind::Config => "config file",
            Kind::WorldState => "world state file",
            Kind::State => "state file",
            Kind::Snapshot => "snapshot",
            Kind::Applied => "record of the applied table",
            Kind::Confirmation => "pending confirmation",
            Kind::KeptLeases => "kept leases",
            Kind::LeaseFile => "lease file",
            Kind::Fixture => "fixture file",
            Kind::PolicyInput => "policy input file",
        }
    }
}

#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot read {} {path}", kind.what())]
    Open {
        kind: Kind,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{} {path} is {found}, not a regular file", kind.what())]
    NotRegular {
        kind: Kind,
        path: String,
        found: &'static str,
    },
    #[error("{} {path} is larger than {} (the most read of a {})", kind.what(), mib(kind.max_bytes()), kind.what())]
    TooLarge { kind: Kind, path: String },
    #[error("{} {path} is not UTF-8 text", kind.what())]
    NotText { kind: Kind, path: String },
}

impl FileError {
    /// The file does not exist (callers that take no file as empty ask).
    pub fn not_found(&self) -> bool {
        matches!(self, FileError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// A regular file opened for reading, its size checked against `kind`'s
/// maximum, and a reader that stops one byte past it.
pub struct Opened {
    kind: Kind,
    path: String,
    reader: io::Take<File>,
}

impl Opened {
    /// Opens `path` without blocking and checks what it is and its size.
    pub fn open(path: &Path, kind: Kind) -> Result<Opened, FileError> {
        let shown = path.display().to_string();
        let open_error = |source| FileError::Open {
            kind,
            path: shown.clone(),
            source,
        };
        // O_NONBLOCK: opening a FIFO for reading waits for a writer without
        // it. A regular file ignores the flag.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(open_error)?;
        let meta = file.metadata().map_err(open_error)?;
        let found = meta.file_type();
        let not = |found| FileError::NotRegular {
            kind,
            path: shown.clone(),
            found,
        };
        if !found.is_file() {
            return Err(not(if found.is_fifo() {
                "a FIFO (named pipe)"
            } else if found.is_char_device() {
                "a character device"
            } else if found.is_block_device() {
                "a block device"
            } else if found.is_dir() {
                "a directory"
            } else if found.is_socket() {
                "a socket"
            } else {
                "of an unknown type"
            }));
        }
        if meta.len() > kind.max_bytes() {
            return Err(FileError::TooLarge { kind, path: shown });
        }
        Ok(Opened {
            kind,
            reader: file.take(kind.max_bytes() + 1),
            path: shown,
        })
    }

    /// The file's content; an error when it grew past the maximum.
    pub fn bytes(mut self) -> Result<Vec<u8>, FileError> {
        let mut bytes = Vec::new();
        self.reader
            .read_to_end(&mut bytes)
            .map_err(|source| self.read_error(source))?;
        if bytes.len() as u64 > self.kind.max_bytes() {
            return Err(self.too_large());
        }
        Ok(bytes)
    }

    /// The reader itself, for a file read piece by piece: it ends one byte
    /// past the maximum, which [`Opened::past_max`] then tells.
    pub fn reader(&mut self) -> &mut io::Take<File> {
        &mut self.reader
    }

    /// Whether more than the maximum was read.
    pub fn past_max(&self) -> bool {
        self.reader.limit() == 0
    }

    pub fn too_large(&self) -> FileError {
        FileError::TooLarge {
            kind: self.kind,
            path: self.path.clone(),
        }
    }

    pub fn read_error(&self, source: io::Error) -> FileError {
        FileError::Open {
            kind: self.kind,
            path: self.path.clone(),
            source,
        }
    }
}

/// The content of the regular file at `path`, at most `kind`'s maximum.
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>, FileError> {
    Opened::open(path, kind)?.bytes()
}

/// As [`read`], as UTF-8 text.
pub fn read_text(path: &Path, kind: Kind) -> Result<String, FileError> {
    String::from_utf8(read(path, kind)?).map_err(|_| FileError::NotText {
        kind,
        path: path.display().to_string(),
    })
}

/// What is wrong with a record the runtime wrote itself.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Read(#[from] FileError),
    /// Not the JSON of the record, or of another version: why.
    #[error("{0}")]
    Corrupt(String),
}

/// A versioned JSON record the runtime wrote itself (its state file, the
/// applied table, a pending confirmation), of version `expected` as
/// `version` reads it; `Ok(None)` when there is none.
pub fn read_record<T: serde::de::DeserializeOwned>(
    path: &Path,
    kind: Kind,
    expected: u32,
    version: impl Fn(&T) -> u32,
) -> Result<Option<T>, RecordError> {
    let bytes = match read(path, kind) {
        Ok(b) => b,
        Err(e) if e.not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let record: T =
        serde_json::from_slice(&bytes).map_err(|e| RecordError::Corrupt(e.to_string()))?;
    let found = version(&record);
    if found != expected {
        return Err(RecordError::Corrupt(format!(
            "version {found} (expected {expected})"
        )));
    }
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "table = \"t\"\n").unwrap();
        assert_eq!(read_text(&path, Kind::Config).unwrap(), "table = \"t\"\n");
        let err = read(&dir.path().join("none"), Kind::Config).unwrap_err();
        assert!(err.not_found(), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        let err = read(&path, Kind::Config).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            err,
            format!(
                "config file {} is a FIFO (named pipe), not a regular file",
                path.display()
            )
        );
    }

    #[test]
    fn devices_directories_and_sockets_are_refused() {
        let err = read(Path::new("/dev/zero"), Kind::Policy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy file /dev/zero is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), Kind::WorldState).unwrap_err().to_string();
        assert!(err.ends_with("is a directory, not a regular file"), "{err}");
        let socket = dir.path().join("s");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        // A socket cannot be opened at all; either way it is not read.
        assert!(read(&socket, Kind::State).is_err());
    }

    #[test]
    fn a_file_over_its_maximum_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let file = File::create(&path).unwrap();
        // Sparse: no disk is used.
        file.set_len(Kind::Config.max_bytes() + 1).unwrap();
        let err = read(&path, Kind::Config).unwrap_err().to_string();
        assert!(err.contains("larger than 1 MiB"), "{err}");
        file.set_len(Kind::Config.max_bytes()).unwrap();
        assert_eq!(
            read(&path, Kind::Config).unwrap().len() as u64,
            Kind::Config.max_bytes()
        );
    }

    #[test]
    fn a_file_that_grows_while_read_is_cut_one_byte_past_the_maximum() {
        // /proc files say their size is 0 and have more: as a file that
        // grew after its size was checked. Take one with a small maximum
        // by reading it piece by piece.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"x").unwrap();
        let mut opened = Opened::open(&path, Kind::LeaseFile).unwrap();
        // It grows past the maximum after the check.
        file.set_len(Kind::LeaseFile.max_bytes() + 10).unwrap();
        let copied = io::copy(opened.reader(), &mut io::sink()).unwrap();
        assert_eq!(copied, Kind::LeaseFile.max_bytes() + 1);
        assert!(opened.past_max());
        let err = Opened::open(&path, Kind::LeaseFile).err().unwrap();
        assert!(err.to_string().contains("larger than 64 MiB"), "{err}");
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, b"{\xff}").unwrap();
        let err = read_text(&path, Kind::WorldState).unwrap_err().to_string();
        assert!(err.ends_with("is not UTF-8 text"), "{err}");
    }
}
