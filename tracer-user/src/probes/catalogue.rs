//! The probe catalogue: for each Go runtime entry point we trace, which
//! operation it is, which Go versions have it with this calling convention,
//! and which registers carry the map and the key. This table is the only
//! place that knows; the eBPF side follows the cookie built from it.

use tracer_common::{KeyAbi, MapOp, ProbeCookie, Reg};

use super::go_version::GoVersion;

/// The register ABI (ABIInternal) arrived in Go 1.17 on amd64; before it,
/// arguments were on the stack and none of these register layouts hold.
pub const FIRST_REGISTER_ABI: GoVersion = GoVersion::new(17, 0);

/// An entry point of the Go runtime's map implementation.
#[derive(Clone, Copy, Debug)]
pub struct MapProbe {
    pub symbol: &'static str,
    pub op: MapOp,
    /// Oldest Go release where `symbol` has this register layout.
    pub since: GoVersion,
    /// Register holding the map header pointer (`*hmap`, or `*maps.Map` for
    /// Swiss tables).
    pub map: Reg,
    pub key: KeyArgs,
    /// In some Go releases this function does nothing but call another
    /// traced entry point (Go 1.27's `mapaccess1_faststr` calls
    /// `mapaccess2_faststr`). Where the binary shows that, we leave it out:
    /// the callee's probe already counts the operation.
    pub may_forward_to: Option<&'static str>,
}

/// Where the key of a map operation is.
#[derive(Clone, Copy, Debug)]
pub enum KeyArgs {
    /// A Go string passed as (pointer, length).
    GoString { ptr: Reg, len: Reg },
}

/// `func(t *maptype, m *hmap, key string)`: type in RAX, map in RBX, the
/// string's data and length in RCX and RDI. Classic maps (≤1.23) and Swiss
/// tables (1.24+) share the signature.
const FASTSTR: (Reg, KeyArgs) = (
    Reg::Rbx,
    KeyArgs::GoString {
        ptr: Reg::Rcx,
        len: Reg::Rdi,
    },
);

pub const GO_MAP_PROBES: &[MapProbe] = &[
    MapProbe {
        symbol: "runtime.mapaccess1_faststr",
        op: MapOp::Read,
        since: FIRST_REGISTER_ABI,
        map: FASTSTR.0,
        key: FASTSTR.1,
        may_forward_to: Some("runtime.mapaccess2_faststr"),
    },
    MapProbe {
        symbol: "runtime.mapaccess2_faststr",
        op: MapOp::Read,
        since: FIRST_REGISTER_ABI,
        map: FASTSTR.0,
        key: FASTSTR.1,
        may_forward_to: None,
    },
    MapProbe {
        symbol: "runtime.mapassign_faststr",
        op: MapOp::Write,
        since: FIRST_REGISTER_ABI,
        map: FASTSTR.0,
        key: FASTSTR.1,
        may_forward_to: None,
    },
];

impl MapProbe {
    /// Whether this probe applies to a binary built by `go`.
    pub fn applies_to(&self, go: GoVersion) -> bool {
        go >= self.since
    }

    /// The attach cookie that tells the eBPF program how to read this probe.
    pub fn cookie(&self) -> ProbeCookie {
        let KeyArgs::GoString { ptr, len } = self.key;
        ProbeCookie {
            op: self.op,
            key_abi: KeyAbi::GoString,
            map_reg: self.map,
            key_ptr_reg: ptr,
            key_len_reg: len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_survives_the_trip_to_the_kernel() {
        for probe in GO_MAP_PROBES {
            let cookie = probe.cookie();
            assert_eq!(
                ProbeCookie::decode(cookie.encode()),
                Some(cookie),
                "{}",
                probe.symbol
            );
        }
    }

    #[test]
    fn symbols_are_unique() {
        let mut symbols: Vec<_> = GO_MAP_PROBES.iter().map(|probe| probe.symbol).collect();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), GO_MAP_PROBES.len());
    }

    #[test]
    fn nothing_applies_before_the_register_abi() {
        let go_1_16 = GoVersion::new(16, 15);
        assert!(GO_MAP_PROBES.iter().all(|probe| !probe.applies_to(go_1_16)));
    }
}
