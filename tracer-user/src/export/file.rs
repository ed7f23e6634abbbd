//! Reading and writing export files.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use super::schema::{Export, SCHEMA_V1};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
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
/// to the temporary directory instead, so a recording is never lost.
pub fn write_or_fall_back(path: &Path, export: &Export) -> Result<Saved, ExportError> {
    let Err(first) = write(path, export) else {
        return Ok(Saved {
            path: path.to_owned(),
            instead_of: None,
        });
    };
    let fallback = std::env::temp_dir().join(format!(
        "contend-{}-{}.json",
        export.target.pid, export.window.start_unix_ns
    ));
    match write(&fallback, export) {
        Ok(()) => Ok(Saved {
            path: fallback,
            instead_of: Some(first),
        }),
        Err(fallback) => Err(ExportError::FallBackFailed {
            first: Box::new(first),
            fallback: Box::new(fallback),
        }),
    }
}

/// Writes `export` to `path` (`-` for standard output). The file appears
/// whole or not at all: we write a temporary file and rename it.
pub fn write(path: &Path, export: &Export) -> Result<(), ExportError> {
    let write_error = |cause| ExportError::Write {
        path: path.to_owned(),
        cause,
    };
    let mut json = serde_json::to_vec_pretty(export)
        .map_err(io::Error::from)
        .map_err(write_error)?;
    json.push(b'\n');
    if path == Path::new("-") {
        return io::stdout().lock().write_all(&json).map_err(write_error);
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    fs::write(&temporary, &json)
        .and_then(|()| fs::rename(&temporary, path))
        .map_err(write_error)
}

/// Reads an export, checking that it is one and that we know its schema.
pub fn read(path: &Path) -> Result<Export, ExportError> {
    let bytes = fs::read(path).map_err(|cause| ExportError::Read {
        path: path.to_owned(),
        cause,
    })?;
    let corrupt = |cause| ExportError::Corrupt {
        path: path.to_owned(),
        cause,
    };
    // Check the schema before the shape, so a future schema gets the right
    // message instead of a parse error.
    #[derive(serde::Deserialize)]
    struct Header {
        schema: String,
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if header.schema != SCHEMA_V1 {
        return Err(ExportError::UnknownSchema {
            path: path.to_owned(),
            found: header.schema,
        });
    }
    serde_json::from_slice(&bytes).map_err(corrupt)
}

#[cfg(test)]
mod tests {
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
                exit: None,
                exec: None,
            },
            window: Window {
                start_unix_ns: 1,
                duration_ns: 2,
            },
            tracer: schema::Tracer {
                events: 10,
                dropped: 0,
                dropped_by_cpu: Vec::new(),
                maps_seen: 1,
                attach_ns: 0,
                probes: vec![],
                max_overhead: None,
                estimated_overhead: None,
                exact: false,
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
                }],
                ..MapReport::default()
            }],
            locks: vec![],
            findings: vec![],
        }
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
