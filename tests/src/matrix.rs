//! The build matrix every catalogue test runs on: both Go map
//! implementations (Go 1.27 Swiss tables, Go 1.19 classic hash maps), each
//! built plainly and as a stripped PIE (no symbol table, no DWARF, loaded at
//! a random address); and for the tests of what the runtime's symbols and
//! layouts decide, the releases between (`release_tests!`).

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
    /// Go 1.N, from `CONTEND_GO_1_N`: a release between the two, which
    /// `cargo xtask setup` installs (its `GO_RELEASES`).
    Release(u32),
}

impl Go {
    /// The variable that names this toolchain's `go`.
    fn variable(self) -> String {
        match self {
            Self::New => "CONTEND_GO_NEW".to_owned(),
            Self::Old => "CONTEND_GO_OLD".to_owned(),
            Self::Release(minor) => format!("CONTEND_GO_1_{minor}"),
        }
    }

    /// What its `go version` starts with.
    fn version(self) -> String {
        match self {
            Self::New => "go1.27".to_owned(),
            Self::Old => "go1.19".to_owned(),
            Self::Release(minor) => format!("go1.{minor}"),
        }
    }
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
        let env = go.variable();
        let toolchain =
            GoToolchain::at(path_from_env(&env)).unwrap_or_else(|error| panic!("{env}: {error}"));
        let expected = go.version();
        assert!(
            toolchain.version == expected || toolchain.version.starts_with(&format!("{expected}.")),
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

/// One test per Go release between 1.19 and 1.27 that `cargo xtask setup`
/// installs (its `GO_RELEASES`: where the runtime's symbols and layouts
/// changed), plain builds only, each calling `check(go, variant)`.
#[macro_export]
macro_rules! release_tests {
    ($check:ident) => {
        #[test]
        fn go_1_21() {
            $check(
                $crate::matrix::Go::Release(21),
                $crate::matrix::Variant::Default,
            );
        }

        #[test]
        fn go_1_23() {
            $check(
                $crate::matrix::Go::Release(23),
                $crate::matrix::Variant::Default,
            );
        }

        #[test]
        fn go_1_24() {
            $check(
                $crate::matrix::Go::Release(24),
                $crate::matrix::Variant::Default,
            );
        }

        #[test]
        fn go_1_26() {
            $check(
                $crate::matrix::Go::Release(26),
                $crate::matrix::Variant::Default,
            );
        }
    };
}
