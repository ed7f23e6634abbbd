//! Probes as `uprobe_multi` links (Linux 6.6+), which leave a target in
//! milliseconds.
//!
//! aya 0.14 attaches a uprobe as a perf event. Releasing one waits for RCU
//! grace periods while it holds the kernel's trace event mutex, so taking
//! the map probes out of a target releases them one after another: ~0.7 s
//! for the demo's, all the while trapping at the ones still in, which the
//! budget pays for. A `uprobe_multi` link's release takes its breakpoint
//! out first, then waits, under no global lock: links released together
//! wait together.
//!
//! The kernel only links programs loaded for it (expected attach type
//! `BPF_TRACE_UPROBE_MULTI`), which aya 0.14 cannot load. So contend's
//! programs are loaded a second time here: `aya_obj` relocates them against
//! the maps aya created for the first load, and the load names the attach
//! type. The two loads share every map; only one is ever attached.

use std::{
    collections::{HashMap, HashSet},
    ffi::{CStr, CString},
    io, mem,
    os::{
        fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
    time::Duration,
};

use aya::{Btf, Ebpf, maps::Map};
use aya_obj::{
    Object,
    generated::{
        bpf_attach_type::BPF_TRACE_UPROBE_MULTI, bpf_attr, bpf_cmd, bpf_prog_info,
        bpf_prog_type::BPF_PROG_TYPE_KPROBE,
    },
};

use super::placement::Program;

/// Bytes of verifier log kept when a load fails.
const VERIFIER_LOG_BYTES: usize = 1 << 22;

/// contend's programs, loaded for `uprobe_multi` links.
pub struct MultiPrograms {
    programs: Vec<(Program, OwnedFd)>,
}

#[derive(Debug, thiserror::Error)]
pub enum MultiError {
    #[error("cannot read the eBPF object: {0}")]
    Parse(#[from] aya_obj::ParseError),
    #[error("cannot relocate the eBPF object: {0}")]
    Relocate(String),
    #[error("the eBPF object's map {0:?} is not loaded")]
    MissingMap(String),
    #[error("the eBPF object's map {0:?} is of a kind this loader does not know")]
    UnknownMap(String),
    #[error("the eBPF object has no {0:?}")]
    MissingProgram(&'static str),
    #[error("the kernel rejected {program} ({error}); its verifier said: {log}")]
    Load {
        program: &'static str,
        error: io::Error,
        log: String,
    },
    #[error("this kernel does not make uprobe_multi links ({0})")]
    Unsupported(io::Error),
}

impl MultiPrograms {
    /// Loads every [`Program`] of `object`, which `ebpf` was loaded from,
    /// for `uprobe_multi` links: relocated against `ebpf`'s maps (so that
    /// both see the same tables and rings) and against the kernel's `btf`.
    /// Then checks that the kernel makes such links at all.
    pub fn load(ebpf: &Ebpf, object: &[u8], btf: Option<&Btf>) -> Result<Self, MultiError> {
        let relocated = relocate(ebpf, object, btf)?;
        let programs = Program::ALL
            .into_iter()
            .map(|program| Ok((program, load_program(&relocated, program.name())?)))
            .collect::<Result<Vec<_>, MultiError>>()?;
        let loaded = Self { programs };
        loaded.check_links()?;
        Ok(loaded)
    }

    /// Attaches `program` at `file_offset` of the executable at `path`, in
    /// process `pid` only (any, if 0), with `cookie`. Dropping the link
    /// takes the probe out.
    pub fn attach(
        &self,
        program: Program,
        path: &Path,
        file_offset: u64,
        cookie: u64,
        pid: u32,
    ) -> io::Result<OwnedFd> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.link(program, &path, file_offset, cookie, pid)
    }

    /// Runs and run time of `program` so far, while the kernel's BPF
    /// run-time statistics are on.
    pub fn run_time(&self, program: Program) -> Option<(u64, Duration)> {
        // SAFETY: bpf_prog_info is plain data; all zeroes is its default.
        let mut info: bpf_prog_info = unsafe { mem::zeroed() };
        // SAFETY: bpf_attr is plain data; all zeroes is its default.
        let mut attr: bpf_attr = unsafe { mem::zeroed() };
        attr.info.bpf_fd = self.fd(program).as_raw_fd() as u32;
        attr.info.info_len = mem::size_of::<bpf_prog_info>() as u32;
        attr.info.info = (&raw mut info) as u64;
        bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).ok()?;
        Some((info.run_cnt, Duration::from_nanos(info.run_time_ns)))
    }

    fn fd(&self, program: Program) -> &OwnedFd {
        let (_, fd) = (self.programs.iter())
            .find(|(loaded, _)| *loaded == program)
            .expect("every program is loaded");
        fd
    }

    fn link(
        &self,
        program: Program,
        path: &CStr,
        file_offset: u64,
        cookie: u64,
        pid: u32,
    ) -> io::Result<OwnedFd> {
        let offsets = [file_offset];
        let cookies = [cookie];
        // SAFETY: bpf_attr is plain data; all zeroes is its default.
        let mut attr: bpf_attr = unsafe { mem::zeroed() };
        // SAFETY: writing plain integers into the union's `link_create`
        // member, whose every field is an integer.
        unsafe {
            let create = &mut attr.link_create;
            create.__bindgen_anon_1.prog_fd = self.fd(program).as_raw_fd() as u32;
            create.attach_type = BPF_TRACE_UPROBE_MULTI as u32;
            let multi = &mut create.__bindgen_anon_3.uprobe_multi;
            multi.path = path.as_ptr() as u64;
            multi.offsets = offsets.as_ptr() as u64;
            multi.cookies = cookies.as_ptr() as u64;
            multi.cnt = 1;
            multi.pid = pid;
        }
        bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr).and_then(fd_of)
    }

    /// Asks for a link in `/`, which is no executable: a kernel that makes
    /// `uprobe_multi` links says the file is bad (EBADF); one that does
    /// not knows no such attach type. As libbpf checks it.
    fn check_links(&self) -> Result<(), MultiError> {
        match self.link(Program::Lock, c"/", 0, 0, 0) {
            Err(error) if error.raw_os_error() == Some(libc::EBADF) => Ok(()),
            Err(error) => Err(MultiError::Unsupported(error)),
            Ok(_) => Err(MultiError::Unsupported(io::Error::other(
                "a link in / was made",
            ))),
        }
    }
}

/// `object` relocated as aya relocated it for `ebpf`: against the
/// kernel's `btf`, and against the maps aya created from it.
fn relocate(ebpf: &Ebpf, object: &[u8], btf: Option<&Btf>) -> Result<Object, MultiError> {
    let mut obj = Object::parse(object)?;
    if let Some(btf) = btf {
        obj.relocate_btf(btf)
            .map_err(|error| MultiError::Relocate(error.to_string()))?;
    }
    let fds = (ebpf.maps())
        .map(|(name, map)| Ok((name, map_fd(name, map)?)))
        .collect::<Result<HashMap<&str, RawFd>, MultiError>>()?;
    // A copy: relocating borrows the object, definitions and all.
    let definitions = obj.maps.clone();
    let maps = (definitions.iter())
        .map(|(name, map)| {
            let fd = fds.get(name.as_str()).copied();
            let fd = fd.ok_or_else(|| MultiError::MissingMap(name.clone()))?;
            Ok((name.as_str(), fd, map))
        })
        .collect::<Result<Vec<_>, MultiError>>()?;
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
    obj.relocate_maps(maps.into_iter(), &text_sections)
        .and_then(|()| obj.relocate_calls(&text_sections))
        .map_err(|error| MultiError::Relocate(error.to_string()))?;
    Ok(obj)
}

/// The descriptor of a map aya loaded. Only the kinds contend's object
/// declares (aya-log's included) are known.
fn map_fd(name: &str, map: &Map) -> Result<RawFd, MultiError> {
    let data = match map {
        Map::Array(data)
        | Map::ArrayOfMaps(data)
        | Map::HashMap(data)
        | Map::LruHashMap(data)
        | Map::PerCpuArray(data)
        | Map::PerCpuHashMap(data)
        | Map::PerfEventArray(data)
        | Map::RingBuf(data) => data,
        _ => return Err(MultiError::UnknownMap(name.to_owned())),
    };
    Ok(data.fd().as_fd().as_raw_fd())
}

/// Loads `name` from the relocated `obj` as a kprobe-type program for
/// `uprobe_multi` links. Without BTF function records: contend's
/// programs have no global functions, which are what need them.
fn load_program(obj: &Object, name: &'static str) -> Result<OwnedFd, MultiError> {
    let program = obj
        .programs
        .get(name)
        .ok_or(MultiError::MissingProgram(name))?;
    let function = obj
        .functions
        .get(&program.function_key())
        .ok_or(MultiError::MissingProgram(name))?;
    let load = |log: &mut [u8]| {
        // SAFETY: bpf_attr is plain data; all zeroes is its default.
        let mut attr: bpf_attr = unsafe { mem::zeroed() };
        // SAFETY: writing plain integers into the union's program-load
        // member, whose every field is an integer (or an array of them).
        unsafe {
            let load = &mut attr.__bindgen_anon_3;
            load.prog_type = BPF_PROG_TYPE_KPROBE as u32;
            load.expected_attach_type = BPF_TRACE_UPROBE_MULTI as u32;
            load.insns = function.instructions.as_ptr() as u64;
            load.insn_cnt = function.instructions.len() as u32;
            load.license = program.license.as_ptr() as u64;
            for (to, from) in load.prog_name.iter_mut().zip(name.bytes().take(15)) {
                *to = from as libc::c_char;
            }
            if !log.is_empty() {
                load.log_level = 1;
                load.log_size = log.len() as u32;
                load.log_buf = log.as_mut_ptr() as u64;
            }
        }
        bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr).and_then(fd_of)
    };
    load(&mut []).or_else(|_| {
        let mut log = vec![0; VERIFIER_LOG_BYTES];
        load(&mut log).map_err(|error| MultiError::Load {
            program: name,
            error,
            log: verifier_gist(&log),
        })
    })
}

/// The verifier's last lines, which say what it refused.
fn verifier_gist(log: &[u8]) -> String {
    let end = log.iter().position(|&byte| byte == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text.lines().filter(|line| !line.is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// The `bpf` system call; returns what it returned.
fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    // SAFETY: `attr` is a bpf_attr filled in for `cmd`, and every buffer
    // it points to outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr as *mut bpf_attr,
            mem::size_of::<bpf_attr>() as u32,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// Takes ownership of the descriptor a program load or link creation
/// returned.
fn fd_of(ret: i64) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(ret).map_err(io::Error::other)?;
    // SAFETY: BPF_PROG_LOAD and BPF_LINK_CREATE return a new descriptor,
    // which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
