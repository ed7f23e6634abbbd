//! An empty uprobe: the kernel's trap and no program, the floor any
//! tracer's probe at the same instruction is measured against. It is a
//! perf event of the kernel's `uprobe` PMU in counting mode (the count is
//! never read), so it can sit at any instruction, where bpftrace 0.17
//! probes only function entries.

use std::{
    ffi::CString,
    fs,
    mem::{self, size_of},
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use anyhow::{Context as _, bail};
use aya_obj::generated::{PERF_FLAG_FD_CLOEXEC, perf_event_attr};
use object::{Object as _, ObjectSegment as _, ObjectSymbol as _};

/// The dynamic PMU number of uprobes.
const UPROBE_PMU_TYPE: &str = "/sys/bus/event_source/devices/uprobe/type";

/// An attached empty uprobe; dropping it detaches it.
pub struct EmptyUprobe {
    _event: OwnedFd,
}

impl EmptyUprobe {
    /// Probes the instruction at `file_offset` of `binary` in process `pid`.
    pub fn attach(binary: &Path, file_offset: u64, pid: u32) -> anyhow::Result<Self> {
        let pmu_type: u32 = fs::read_to_string(UPROBE_PMU_TYPE)
            .with_context(|| format!("reading {UPROBE_PMU_TYPE}"))?
            .trim()
            .parse()
            .with_context(|| format!("parsing {UPROBE_PMU_TYPE}"))?;
        let path = CString::new(binary.as_os_str().as_bytes())?;
        // SAFETY: perf_event_attr is plain data; all zeroes is its default.
        let mut attr: perf_event_attr = unsafe { mem::zeroed() };
        attr.type_ = pmu_type;
        attr.size = size_of::<perf_event_attr>() as u32;
        attr.__bindgen_anon_3.uprobe_path = path.as_ptr() as u64;
        attr.__bindgen_anon_4.probe_offset = file_offset;
        // SAFETY: attr and the path it points to outlive the call; the
        // kernel copies both.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr,
                pid as libc::pid_t,
                -1,
                -1,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            bail!(
                "attaching an empty uprobe at {}+{file_offset:#x}: {}",
                binary.display(),
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: the syscall returned a new descriptor that nothing else
        // owns.
        let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Self { _event: event })
    }
}

/// The file offset of a function's first instruction in an ELF binary.
pub fn function_file_offset(binary: &Path, symbol: &str) -> anyhow::Result<u64> {
    let data = fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let elf = object::File::parse(&*data)?;
    let address = elf
        .symbols()
        .find(|candidate| candidate.name() == Ok(symbol))
        .with_context(|| format!("{} has no symbol {symbol}", binary.display()))?
        .address();
    elf.segments()
        .find_map(|segment| {
            let (offset, size) = segment.file_range();
            let delta = address.checked_sub(segment.address())?;
            (delta < size).then_some(offset + delta)
        })
        .with_context(|| format!("{symbol} at {address:#x} is outside the loaded segments"))
}
