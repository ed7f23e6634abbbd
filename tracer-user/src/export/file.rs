//! Reading and writing export files.
//!
//! contend writes as root, often into shared directories, and reads files
//! anyone may have written. So an export is written through a temporary
//! file created exclusively, with an unpredictable name, beside the
//! destination, readable by its owner alone, and renamed into place: a
//! link planted at a predictable name is replaced, never written through
//! (only links root owns, like `/dev/stdout`, are followed).
//! A device or FIFO named on purpose (`-o /dev/null`) is written to, not
//! replaced. Reading takes regular files up to a size limit only, streamed.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read as _, Write as _},
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use super::schema::{Export, SCHEMA_V1};

/// The largest export `contend report` reads unless told otherwise: far
/// above a real recording's few megabytes, far below what hurts a laptop.
pub const DEFAULT_READ_LIMIT: u64 = 256 << 20;

/// Exports hold the traced program's keys: only their owner reads them.
const EXPORT_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("cannot read {}: it is {what}, not an export file", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
    #[error(
        "cannot read {}: it is {size} bytes, over the limit of {limit} (raise it with --max-size)",
        path.display()
    )]
    TooBig {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
    #[error("cannot write to {}: {} is not a directory", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error(
        "cannot write to {}: it is {what}; name a file, a character device, a FIFO or `-`",
        path.display()
    )]
    Unwritable { path: PathBuf, what: &'static str },
    #[error("{} is not a contend export: {cause}", path.display())]
    Corrupt {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("{} has schema {found:?}; this contend reads {SCHEMA_V1:?} (upgrade contend to read it)", path.display())]
    UnknownSchema { path: PathBuf, found: String },
    #[error("{first}; the fallback copy failed too")]
    FallBackFailed {
        first: Box<ExportError>,
        #[source]
        fallback: Box<ExportError>,
    },
}

/// Where [`write_or_fall_back`] put an export.
#[derive(Debug)]
pub struct Saved {
    pub path: PathBuf,
    /// Why it is not at the path asked for, when it is not.
    pub instead_of: Option<ExportError>,
}

/// Writes `export` to `path`; if that fails (disk full, directory gone),
/// to a new file in the temporary directory instead, so a recording is
/// never lost.
pub fn write_or_fall_back(path: &Path, export: &Export) -> Result<Saved, ExportError> {
    let Err(first) = write(path, export) else {
        return Ok(Saved {
            path: path.to_owned(),
            instead_of: None,
        });
    };
    match write_fallback(export) {
        Ok(fallback) => Ok(Saved {
            path: fallback,
            instead_of: Some(first),
        }),
        Err(fallback) => Err(ExportError::FallBackFailed {
            first: Box::new(first),
            fallback: Box::new(fallback),
        }),
    }
}

/// What a path to write to is.
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    /// `-`.
    Stdout,
    /// A character device or FIFO the user named: written to as it is.
    Stream,
    /// A regular file, or nothing yet, at `path` (the one asked for, or
    /// where trusted links lead), in `dir`.
    File { path: PathBuf, dir: PathBuf },
}

/// Links followed at most, as the kernel does.
const MAX_LINKS: usize = 40;

/// Fails unless an export could be written to `path`: its directory
/// exists and it is not itself a directory, a socket or a block device.
/// `record` asks before attaching, so a typo in `-o` costs nothing.
pub fn check_destination(path: &Path) -> Result<(), ExportError> {
    destination(path).map(drop)
}

fn destination(path: &Path) -> Result<Destination, ExportError> {
    if path == Path::new("-") {
        return Ok(Destination::Stdout);
    }
    let unwritable = |what| ExportError::Unwritable {
        path: path.to_owned(),
        what,
    };
    // Through links only if all are trusted (`/dev/stdout` is one): a
    // planted link to `/dev/mem` is replaced by the rename, not written
    // through.
    if let Ok(metadata) = fs::metadata(path).and_then(|metadata| {
        trusted_chain(path)
            .then_some(metadata)
            .ok_or_else(|| io::Error::other("a link of another user's"))
    }) {
        let kind = metadata.file_type();
        if kind.is_char_device() || kind.is_fifo() {
            // Someone else's FIFO at the name we write to would read the
            // export: only ours, root's or the sudo user's is written to.
            if !owned_by_us(metadata.uid()) {
                return Err(unwritable("a FIFO or device of another user's"));
            }
            return Ok(Destination::Stream);
        }
        if kind.is_dir() {
            return Err(unwritable("a directory"));
        }
        if kind.is_block_device() {
            return Err(unwritable("a block device"));
        }
        if kind.is_socket() {
            return Err(unwritable("a socket"));
        }
    }
    let target = through_trusted_links(path);
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ExportError::NoDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    Ok(Destination::File {
        dir: dir.to_owned(),
        path: target,
    })
}

/// Whether a file owned by `uid` is ours to write to: root's, ours, or
/// that of the user who ran `sudo contend`.
fn owned_by_us(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    uid == 0 || uid == euid || invoking_user().is_some_and(|owner| owner.uid == uid)
}

/// Where `path` leads through links owned by root or by us: `-o
/// /dev/stdout` with stdout redirected to a file is that file, not a
/// reason to replace `/dev/stdout`. A link anyone else owns is not
/// followed: it may have been planted, and the rename replaces it.
fn through_trusted_links(path: &Path) -> PathBuf {
    let mut path = path.to_owned();
    for _ in 0..MAX_LINKS {
        match link_step(&path) {
            Some(Link::Trusted(next)) => path = next,
            Some(Link::Untrusted) | None => break,
        }
    }
    path
}

/// Whether every link from `path` to the file it names is trusted. A
/// link whose target is not a path (`/proc/self/fd/1` to `pipe:[…]`) ends
/// the chain: the kernel resolves it.
fn trusted_chain(path: &Path) -> bool {
    let mut path = path.to_owned();
    for _ in 0..MAX_LINKS {
        match link_step(&path) {
            Some(Link::Untrusted) => return false,
            Some(Link::Trusted(next)) if fs::symlink_metadata(&next).is_ok() => path = next,
            Some(Link::Trusted(_)) | None => return true,
        }
    }
    false
}

/// One step through a symbolic link.
enum Link {
    /// Owned by root or by us: where it leads.
    Trusted(PathBuf),
    /// Owned by anyone else.
    Untrusted,
}

/// `None` when `path` is not a link (or cannot be read as one).
fn link_step(path: &Path) -> Option<Link> {
    let metadata = fs::symlink_metadata(path).ok()?;
    if !metadata.file_type().is_symlink() {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if metadata.uid() != 0 && metadata.uid() != euid {
        return Some(Link::Untrusted);
    }
    let target = fs::read_link(path).ok()?;
    // Relative to the link's directory; an absolute target replaces it.
    Some(Link::Trusted(
        path.parent().unwrap_or(Path::new("/")).join(target),
    ))
}

/// Writes `export` to `path` (`-` for standard output). A file appears
/// whole or not at all, mode 0600, owned by whoever ran `sudo contend`.
pub fn write(path: &Path, export: &Export) -> Result<(), ExportError> {
    write_as(path, export, invoking_user())
}

fn write_as(path: &Path, export: &Export, owner: Option<Owner>) -> Result<(), ExportError> {
    let json = to_json(export).map_err(|cause| ExportError::Write {
        path: path.to_owned(),
        cause,
    })?;
    write_bytes_as(path, &json, owner)
}

/// Writes `bytes` to `path` the way an export is written (see [`write`]):
/// for the other files a recording leaves, such as profiles.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    write_bytes_as(path, bytes, invoking_user())
}

fn write_bytes_as(path: &Path, bytes: &[u8], owner: Option<Owner>) -> Result<(), ExportError> {
    let write_error = |cause| ExportError::Write {
        path: path.to_owned(),
        cause,
    };
    match destination(path)? {
        Destination::Stdout => io::stdout().lock().write_all(bytes),
        Destination::Stream => write_stream(path, bytes),
        Destination::File { path, dir } => {
            let name = path.file_name().unwrap_or(path.as_os_str());
            let mut prefix = std::ffi::OsString::from(".");
            prefix.push(name);
            prefix.push(".");
            new_file(&dir, &prefix, ".tmp", bytes, owner)
                .and_then(|file| file.persist(&path).map_err(|error| error.error))
                .map(drop)
        }
    }
    .map_err(write_error)
}

/// Writes `export` to a new file of its own in the temporary directory.
fn write_fallback(export: &Export) -> Result<PathBuf, ExportError> {
    let dir = std::env::temp_dir();
    let write_error = |cause| ExportError::Write {
        path: dir.clone(),
        cause,
    };
    let json = to_json(export).map_err(write_error)?;
    let prefix = format!("contend-{}-", export.target.pid);
    new_file(&dir, prefix.as_ref(), ".json", &json, invoking_user())
        .and_then(|file| file.keep().map_err(|error| error.error))
        .map(|(_, path)| path)
        .map_err(write_error)
}

fn to_json(export: &Export) -> io::Result<Vec<u8>> {
    let mut json = serde_json::to_vec_pretty(export)?;
    json.push(b'\n');
    Ok(json)
}

/// A new file in `dir`, created exclusively under a random name (never
/// through a link), holding `json` on disk, mode 0600, given to `owner`.
/// Dropped before it is persisted, it is removed.
fn new_file(
    dir: &Path,
    prefix: &std::ffi::OsStr,
    suffix: &str,
    json: &[u8],
    owner: Option<Owner>,
) -> io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(suffix)
        .permissions(fs::Permissions::from_mode(EXPORT_MODE))
        .tempfile_in(dir)?;
    file.write_all(json)?;
    // On disk before the rename, so a crash leaves the old file or the
    // new one, not an empty one.
    file.as_file().sync_all()?;
    if let Some(owner) = owner {
        std::os::unix::fs::fchown(file.as_file(), Some(owner.uid), Some(owner.gid))?;
    }
    Ok(file)
}

/// Writes to a character device or FIFO as it is: never created,
/// truncated or replaced. Checked again once open, in case a regular file
/// took its place meanwhile.
fn write_stream(path: &Path, json: &[u8]) -> io::Result<()> {
    let mut stream = OpenOptions::new().write(true).open(path)?;
    if stream.metadata()?.is_file() {
        return Err(io::Error::other(
            "it became a regular file while contend was recording",
        ));
    }
    stream.write_all(json)
}

/// Who an export is given to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// The user behind `sudo`, when we are root because of it: their exports
/// are theirs, as if they had written them, so `contend report` needs no
/// root.
fn invoking_user() -> Option<Owner> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let variable = |name| std::env::var(name).ok();
    sudo_user(euid, variable("SUDO_UID"), variable("SUDO_GID"))
}

fn sudo_user(euid: u32, uid: Option<String>, gid: Option<String>) -> Option<Owner> {
    if euid != 0 {
        return None;
    }
    Some(Owner {
        uid: uid?.parse().ok()?,
        gid: gid?.parse().ok()?,
    })
}

/// Reads an export, checking that it is one and that we know its schema,
/// and bringing its values into range (see `clamp`).
pub fn read(path: &Path) -> Result<Export, ExportError> {
    read_at_most(path, DEFAULT_READ_LIMIT)
}

/// [`read`], refusing files over `limit` bytes.
pub fn read_at_most(path: &Path, limit: u64) -> Result<Export, ExportError> {
    let file = open_regular(path, limit)?;
    let parsed = serde_json::from_reader::<_, Export>(BufReader::new(file.take(limit)));
    let mut export = match parsed {
        Ok(export) => export,
        Err(cause) => return Err(why_unreadable(path, limit, cause)),
    };
    if export.schema != SCHEMA_V1 {
        return Err(ExportError::UnknownSchema {
            path: path.to_owned(),
            found: export.schema,
        });
    }
    super::clamp::clamp(&mut export);
    Ok(export)
}

/// Opens `path` if it is a regular file of at most `limit` bytes. Opened
/// without blocking, so a FIFO is refused rather than waited on.
fn open_regular(path: &Path, limit: u64) -> Result<File, ExportError> {
    let read_error = |cause| ExportError::Read {
        path: path.to_owned(),
        cause,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(ExportError::NotAFile {
            path: path.to_owned(),
            what: kind_of(&metadata.file_type()),
        });
    }
    if metadata.size() > limit {
        return Err(ExportError::TooBig {
            path: path.to_owned(),
            size: metadata.size(),
            limit,
        });
    }
    Ok(file)
}

fn kind_of(kind: &fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something other than a file"
    }
}

/// Why an export did not parse: a schema we do not know (a future one may
/// have another shape), or a corrupt file. The header is read again on
/// its own, streamed, only on this path.
fn why_unreadable(path: &Path, limit: u64, cause: serde_json::Error) -> ExportError {
    #[derive(serde::Deserialize)]
    struct Header {
        schema: String,
    }
    let header = open_regular(path, limit).ok().and_then(|file| {
        serde_json::from_reader::<_, Header>(BufReader::new(file.take(limit))).ok()
    });
    match header {
        Some(Header { schema }) if schema != SCHEMA_V1 => ExportError::UnknownSchema {
            path: path.to_owned(),
            found: schema,
        },
        _ => ExportError::Corrupt {
            path: path.to_owned(),
            cause,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt as _;

    use super::*;
    use crate::export::schema::{self, KeyReport, MapReport, Ops, Window};

    fn sample() -> Export {
        Export {
            schema: SCHEMA_V1.to_owned(),
            target: schema::Target {
                pid: 1234,
                exe: "/srv/shop".to_owned(),
                language: "go".to_owned(),
                go_version: Some("go1.27.3".to_owned()),
                ..schema::Target::default()
            },
            window: Window {
                start_unix_ns: 1,
                duration_ns: 2,
            },
            tracer: schema::Tracer {
                events: 10,
                maps_seen: 1,
                ..schema::Tracer::default()
            },
            maps: vec![MapReport {
                id: "0xc000123000".to_owned(),
                ops: Ops {
                    read: 6,
                    write: 4,
                    ..Ops::default()
                },
                top_keys: vec![KeyReport {
                    key: "sku-42".to_owned(),
                    count: 4,
                    share: 0.4,
                    error: 0,
                    key_hex: None,
                }],
                ..MapReport::default()
            }],
            locks: vec![],
            findings: vec![],
        }
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("contend-{}-{name}", std::process::id()))
    }

    #[test]
    fn round_trips_through_a_file() {
        let path = temp_path("roundtrip.json");
        write(&path, &sample()).expect("write export");
        assert_eq!(read(&path).expect("read export"), sample());
        fs::remove_file(path).expect("clean up");
    }

    #[test]
    fn an_unwritable_path_falls_back_to_the_temporary_directory() {
        let saved = write_or_fall_back(Path::new("/nonexistent/dir/run.json"), &sample())
            .expect("the fallback copy");
        let error = saved.instead_of.expect("says why it is elsewhere");
        assert!(
            error.to_string().contains("/nonexistent/dir/run.json"),
            "{error}"
        );
        assert!(
            saved.path.starts_with(std::env::temp_dir()),
            "{}",
            saved.path.display()
        );
        assert_eq!(read(&saved.path).expect("read the fallback"), sample());
        fs::remove_file(saved.path).expect("clean up");
    }

    /// Names of the files in `dir`.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list the directory")
            .map(|entry| {
                let entry = entry.expect("directory entry");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn links_planted_where_the_export_goes_are_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").expect("write the victim");
        let output = dir.path().join("run.json");
        // The temporary name contend once used, and the output itself.
        std::os::unix::fs::symlink(&victim, dir.path().join("run.json.tmp")).expect("plant");
        write(&output, &sample()).expect("write export");
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");

        fs::remove_file(&output).expect("remove the export");
        std::os::unix::fs::symlink(&victim, &output).expect("plant");
        // Planted by someone else: a link of ours would be followed.
        std::os::unix::fs::lchown(&output, Some(65534), Some(65534)).expect("chown the link");
        write(&output, &sample()).expect("write export over a link");
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");
        assert!(fs::symlink_metadata(&output).expect("stat").is_file());
        assert_eq!(read(&output).expect("read export"), sample());
        assert_eq!(listing(dir.path()), ["run.json", "run.json.tmp", "victim"]);
    }

    #[test]
    fn links_of_our_own_are_followed() {
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::create_dir(dir.path().join("real")).expect("a directory");
        let link = dir.path().join("stdout");
        // Like /dev/stdout -> /proc/self/fd/1 -> a file the shell opened.
        std::os::unix::fs::symlink("real/out.json", &link).expect("link");
        write(&link, &sample()).expect("write through the link");
        assert!(fs::symlink_metadata(&link).expect("stat").is_symlink());
        assert_eq!(read(&link).expect("read export"), sample());
        assert_eq!(listing(&dir.path().join("real")), ["out.json"]);
    }

    #[test]
    fn exports_and_their_fallback_copies_are_for_their_owner_alone() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let output = dir.path().join("run.json");
        fs::write(&output, "old").expect("an older export");
        fs::set_permissions(&output, fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&output, &sample()).expect("write export");
        assert_eq!(mode(&output), 0o600);

        let saved = write_or_fall_back(&dir.path().join("gone/run.json"), &sample())
            .expect("the fallback copy");
        assert_eq!(mode(&saved.path), 0o600);
        fs::remove_file(saved.path).expect("clean up");
    }

    #[test]
    fn under_sudo_the_export_is_given_to_the_invoking_user() {
        let sudo = |euid, uid: &str, gid: &str| sudo_user(euid, Some(uid.into()), Some(gid.into()));
        assert_eq!(
            sudo(0, "1000", "100"),
            Some(Owner {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(sudo(1000, "1000", "100"), None, "not root: nothing to give");
        assert_eq!(sudo(0, "x", "100"), None);
        assert_eq!(sudo_user(0, None, None), None, "not under sudo");

        let dir = tempfile::tempdir().expect("temporary directory");
        let output = dir.path().join("run.json");
        let nobody = Owner {
            uid: 65534,
            gid: 65534,
        };
        write_as(&output, &sample(), Some(nobody)).expect("write export");
        let metadata = fs::metadata(&output).expect("stat");
        assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    }

    #[test]
    fn a_fifo_is_written_to_not_replaced() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || fs::read(fifo).expect("read the FIFO")
        });
        write(&fifo, &sample()).expect("write to the FIFO");
        let json = reader.join().expect("reader thread");
        assert!(
            fs::symlink_metadata(&fifo)
                .expect("stat")
                .file_type()
                .is_fifo(),
            "still a FIFO"
        );
        let export: Export = serde_json::from_slice(&json).expect("the export came through");
        assert_eq!(export, sample());
        assert_eq!(listing(dir.path()), ["fifo"], "nothing left beside it");
    }

    #[test]
    fn a_planted_link_to_a_device_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let output = dir.path().join("contend-1234.json");
        // /dev/full: were it written through, the write would fail.
        std::os::unix::fs::symlink("/dev/full", &output).expect("plant");
        std::os::unix::fs::lchown(&output, Some(65534), Some(65534)).expect("chown the link");
        write(&output, &sample()).expect("the link replaced by the export");
        assert!(fs::symlink_metadata(&output).expect("stat").is_file());
        assert!(
            fs::metadata("/dev/full")
                .expect("stat /dev/full")
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn another_users_fifo_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let fifo = dir.path().join("contend-1234.json");
        mkfifo(&fifo);
        std::os::unix::fs::lchown(&fifo, Some(65534), Some(65534)).expect("chown");
        // Its owner listening: a write would not block, it would leak.
        let _listening = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("open the FIFO to read");
        let error = write(&fifo, &sample()).expect_err("someone else's FIFO");
        assert!(error.to_string().contains("of another user's"), "{error}");
    }

    #[test]
    fn a_directory_is_refused_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let output = dir.path().join("out");
        fs::create_dir(&output).expect("create a directory");
        fs::write(output.join("keep"), "x").expect("fill it");
        let error = write(&output, &sample()).expect_err("a directory");
        assert!(error.to_string().contains("it is a directory"), "{error}");
        assert_eq!(listing(dir.path()), ["out"]);
        assert!(check_destination(&dir.path().join("no/such/file.json")).is_err());
    }

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let error = read(Path::new("/dev/zero")).expect_err("a device");
        assert!(error.to_string().contains("a character device"), "{error}");

        let dir = tempfile::tempdir().expect("temporary directory");
        let error = read(dir.path()).expect_err("a directory");
        assert!(error.to_string().contains("a directory"), "{error}");

        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let error = read(&fifo).expect_err("a FIFO, without waiting for a writer");
        assert!(error.to_string().contains("a FIFO"), "{error}");

        let path = dir.path().join("run.json");
        write(&path, &sample()).expect("write export");
        let error = read_at_most(&path, 100).expect_err("over the limit");
        assert!(
            error.to_string().contains("over the limit of 100"),
            "{error}"
        );
    }

    #[test]
    fn hostile_numbers_are_brought_into_range() {
        let mut json = serde_json::to_value(sample()).expect("to json");
        json["maps"][0]["top_keys"][0]["share"] = 1e308.into();
        json["maps"][0]["ops"]["read"] = u64::MAX.into();
        json["maps"][0]["ops"]["write"] = u64::MAX.into();
        json["maps"][0]["coverage"] = (-3.0).into();
        json["tracer"]["estimated_overhead"] = (-1.0).into();
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("hostile.json");
        fs::write(&path, json.to_string()).expect("write");
        let export = read(&path).expect("a hostile but well-formed export");
        assert_eq!(export.maps[0].top_keys[0].share, 1.0);
        assert_eq!(export.maps[0].coverage, Some(0.0));
        assert_eq!(export.tracer.estimated_overhead, None);
        let text = crate::export::report::render(&export);
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 200, "a line of {longest} bytes");

        json["maps"][0]["top_keys"][0]["share"] = 1e7.into();
        fs::write(&path, json.to_string()).expect("write");
        let text = crate::export::report::render(&read(&path).expect("read"));
        assert!(text.lines().all(|line| line.len() < 200), "{text}");
    }

    #[test]
    fn corrupt_and_foreign_files_are_explained() {
        let path = temp_path("corrupt.json");
        fs::write(&path, "{\"schema\": \"contend/v1\", \"maps\": [").expect("write");
        let error = read(&path).expect_err("truncated JSON");
        assert!(
            error.to_string().contains("is not a contend export"),
            "{error}"
        );

        fs::write(&path, "{\"schema\": \"contend/v9\"}").expect("write");
        let error = read(&path).expect_err("future schema");
        assert!(error.to_string().contains("contend/v9"), "{error}");
        fs::remove_file(path).expect("clean up");
    }

    #[test]
    fn unknown_fields_from_newer_writers_are_ignored() {
        let mut json = serde_json::to_value(sample()).expect("to json");
        json["maps"][0]["shards"] = 3.into();
        json["tracer"]["cpu_overhead"] = 0.01.into();
        let path = temp_path("newer.json");
        fs::write(&path, json.to_string()).expect("write");
        assert_eq!(read(&path).expect("newer v1 file"), sample());
        fs::remove_file(path).expect("clean up");
    }
}
