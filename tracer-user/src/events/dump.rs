//! Raw kernel records saved to a file, to replay them later without the
//! kernel: benchmarks of decoding and aggregation, and bug reports that
//! need the exact stream.
//!
//! The format: the magic [`MAGIC`], then each record as the eBPF programs
//! wrote it (the bytes [`super::decode`] takes), preceded by its length as
//! a little-endian u32. Records are kept verbatim, so a dump written by one
//! build only decodes with a build that has the same `tracer-common`
//! layouts; the magic's last byte is the version of this framing, not of
//! the layouts.

use std::{
    fs::File,
    io::{self, BufWriter, Write as _},
    ops::Range,
    path::{Path, PathBuf},
};

/// The first bytes of every dump.
pub const MAGIC: [u8; 8] = *b"CONTEND\x01";

/// Bytes of the length before each record.
const LENGTH_BYTES: usize = 4;

/// Writes records to a dump file as they arrive.
#[derive(Debug)]
pub struct DumpWriter {
    // Buffered: records are a couple of hundred bytes, and the reader that
    // writes them must not make a system call per record.
    out: BufWriter<File>,
}

impl DumpWriter {
    /// Creates (or truncates) the file at `path` and writes the magic.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        out.write_all(&MAGIC)?;
        Ok(Self { out })
    }

    /// Appends one record: the bytes of one kernel sample, unchanged.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let length = u32::try_from(record.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a record of {} bytes is too long to dump", record.len()),
            )
        })?;
        self.out.write_all(&length.to_le_bytes())?;
        self.out.write_all(record)
    }

    /// Flushes what is buffered and syncs nothing more: a dump is scratch
    /// data, not worth an fsync.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read the event dump {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("not an event dump: it starts with {found:?}, not {MAGIC:?}")]
    BadMagic { found: Vec<u8> },
    #[error("the event dump is cut short in record {record} (at byte {offset})")]
    Truncated { record: usize, offset: usize },
}

/// A whole dump in memory: one buffer and where each record lies in it,
/// so replaying touches no allocator and no file.
#[derive(Debug, Default)]
pub struct Dump {
    bytes: Vec<u8>,
    records: Vec<Range<usize>>,
}

impl Dump {
    /// Reads and checks the dump at `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, DumpError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DumpError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(bytes)
    }

    /// Checks the magic and finds every record in `bytes`.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, DumpError> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            let found = bytes[..bytes.len().min(MAGIC.len())].to_vec();
            return Err(DumpError::BadMagic { found });
        }
        let mut records = Vec::new();
        let mut offset = MAGIC.len();
        while offset < bytes.len() {
            let truncated = DumpError::Truncated {
                record: records.len(),
                offset,
            };
            let Some(length) = bytes.get(offset..offset + LENGTH_BYTES) else {
                return Err(truncated);
            };
            let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]);
            let start = offset + LENGTH_BYTES;
            let end = start.saturating_add(length as usize);
            if end > bytes.len() {
                return Err(truncated);
            }
            records.push(start..end);
            offset = end;
        }
        Ok(Self { bytes, records })
    }

    /// The records, in the order they were written.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.records.iter().map(|range| &self.bytes[range.clone()])
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            Self(std::env::temp_dir().join(format!("contend-{}-{name}", std::process::id())))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn records_round_trip() {
        let file = TempFile::new("round-trip.dump");
        let records: [&[u8]; 4] = [b"first", b"", &[0xff; 300], b"last"];
        let mut writer = DumpWriter::create(&file.0).unwrap();
        for record in records {
            writer.write_record(record).unwrap();
        }
        writer.finish().unwrap();
        let dump = Dump::read(&file.0).unwrap();
        assert_eq!(dump.len(), 4);
        assert!(dump.records().eq(records));
    }

    #[test]
    fn an_empty_dump_has_no_records() {
        let dump = Dump::parse(MAGIC.to_vec()).unwrap();
        assert!(dump.is_empty());
    }

    #[test]
    fn other_files_are_not_dumps() {
        for bytes in [&b""[..], b"CONTEND", b"CONTEND\x02rest", b"{\"schema\": 1}"] {
            assert!(
                matches!(Dump::parse(bytes.to_vec()), Err(DumpError::BadMagic { .. })),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn a_cut_record_is_an_error() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let whole = bytes.len();
        bytes.extend_from_slice(&5u32.to_le_bytes());
        bytes.extend_from_slice(b"de");
        let Err(DumpError::Truncated { record, offset }) = Dump::parse(bytes.clone()) else {
            panic!("a record cut in its bytes was accepted");
        };
        assert_eq!((record, offset), (1, whole));
        bytes.truncate(whole + 2);
        assert!(matches!(
            Dump::parse(bytes),
            Err(DumpError::Truncated { record: 1, .. })
        ));
    }

    #[test]
    fn a_missing_file_says_which() {
        let error = Dump::read("/nonexistent/contend.dump").unwrap_err();
        assert!(error.to_string().contains("/nonexistent/contend.dump"));
    }
}
