//! The build matrix every catalogue test runs on: both Go map
//! implementations (Go 1.27 Swiss tables, Go 1.19 classic hash maps), each
//! built plainly and as a stripped PIE (no symbol table, no DWARF, loaded at
//! a random address).

use std::path::PathBuf;

use crate::{
    go::{Fixture, GoToolchain},
    path_from_env, workspace_root,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Go {
    /// Go 1.27, from `CONTEND_GO_NEW`.
    New,
    /// Go 1.19, from `CONTEND_GO_OLD`.
    Old,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Default,
    /// `-buildmode=pie -ldflags="-s -w"`.
    PieStripped,
}

/// One fixture built by one toolchain in one variant.
pub struct Build {
    pub toolchain: GoToolchain,
    pub binary: PathBuf,
    pub label: String,
}

impl Build {
    /// Builds `tests/fixtures/go/<fixture>`, panicking with the reason if it
    /// cannot.
    pub fn new(fixture: &str, go: Go, variant: Variant) -> Self {
        let env = match go {
            Go::New => "CONTEND_GO_NEW",
            Go::Old => "CONTEND_GO_OLD",
        };
        let toolchain =
            GoToolchain::at(path_from_env(env)).unwrap_or_else(|error| panic!("{env}: {error}"));
        let expected = match go {
            Go::New => "go1.27",
            Go::Old => "go1.19",
        };
        assert!(
            toolchain.version.starts_with(expected),
            "{env} is {}",
            toolchain.version
        );
        let flags: &[&str] = match variant {
            Variant::Default => &[],
            Variant::PieStripped => &["-buildmode=pie", "-ldflags=-s -w"],
        };
        let source = workspace_root().join("tests/fixtures/go").join(fixture);
        let binary = toolchain
            .build(&source, flags)
            .unwrap_or_else(|error| panic!("building {fixture}: {error}"));
        let label = format!("{fixture}-{}-{variant:?}", toolchain.version);
        Self {
            toolchain,
            binary,
            label,
        }
    }

    /// Starts the fixture with `args`.
    pub fn start(&self, args: &[&str]) -> Fixture {
        Fixture::start(&self.binary, args)
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.label))
    }
}

/// One test per toolchain and variant, each calling `check(go, variant)`.
#[macro_export]
macro_rules! matrix_tests {
    ($check:ident) => {
        #[test]
        fn go_1_27_default() {
            $check($crate::matrix::Go::New, $crate::matrix::Variant::Default);
        }

        #[test]
        fn go_1_27_pie_stripped() {
            $check(
                $crate::matrix::Go::New,
                $crate::matrix::Variant::PieStripped,
            );
        }

        #[test]
        fn go_1_19_default() {
            $check($crate::matrix::Go::Old, $crate::matrix::Variant::Default);
        }

        #[test]
        fn go_1_19_pie_stripped() {
            $check(
                $crate::matrix::Go::Old,
                $crate::matrix::Variant::PieStripped,
            );
        }
    };
}
