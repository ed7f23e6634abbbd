//! Empty library target: it lets `tracer-user` list this crate as a build
//! dependency, so cargo rebuilds the eBPF object when these sources change.
#![no_std]
