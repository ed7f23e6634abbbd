//! Call sites: the stacks captured in the kernel become `function
//! (file:line)` in the user's code, the first frame outside the Go runtime
//! and standard-library plumbing that every map operation and lock wait
//! passes through.

use std::{cell::RefCell, collections::HashMap};

use crate::{
    aggregate::StackCounts,
    events::Stack,
    inspect::{Frame, Symbolizer, Target},
};

/// A place in the target's source: the frame a stack is shown as.
pub type CallSite = Frame;

/// A return address nothing could symbolise: shown as itself.
fn unknown(pc: u64) -> CallSite {
    CallSite {
        function: format!("{pc:#x}"),
        file: String::new(),
        line: 0,
    }
}

/// Turns stacks into call sites.
pub trait ResolveSites {
    fn site(&self, stack: &Stack) -> Option<CallSite>;
}

impl<F: Fn(&Stack) -> Option<CallSite>> ResolveSites for F {
    fn site(&self, stack: &Stack) -> Option<CallSite> {
        self(stack)
    }
}

/// Source positions of one program counter, innermost inlined call first;
/// empty when the pc is in no known function.
pub trait Symbols {
    /// `pc` is a link-time address.
    fn frames(&self, pc: u64) -> Vec<CallSite>;
}

impl Symbols for Symbolizer {
    fn frames(&self, pc: u64) -> Vec<CallSite> {
        Symbolizer::frames(self, pc)
    }
}

impl SiteResolver<Symbolizer> {
    /// The resolver for a traced process, from its Go pclntab; `None` when
    /// the binary's tables cannot be read (sites are then left out).
    pub fn for_target(target: &Target) -> Option<Self> {
        let parsed = (target.binary.object())
            .map_err(|error| error.to_string())
            .and_then(|file| Symbolizer::new(&file).map_err(|error| error.to_string()));
        match parsed {
            Ok(symbolizer) => Some(Self::new(symbolizer, target.load_bias.unwrap_or(0))),
            Err(error) => {
                tracing::warn!("no call sites: cannot read the Go pclntab: {error}");
                None
            }
        }
    }
}

/// Resolves stacks of a running target, whose PIE code may be loaded at a
/// bias from its link-time addresses. Each distinct stack is symbolised
/// once.
pub struct SiteResolver<S> {
    symbols: S,
    load_bias: u64,
    cache: RefCell<HashMap<Stack, Option<CallSite>>>,
}

impl<S: Symbols> SiteResolver<S> {
    pub fn new(symbols: S, load_bias: u64) -> Self {
        Self {
            symbols,
            load_bias,
            cache: RefCell::default(),
        }
    }

    /// Learns where the target is loaded, once a PIE contend started
    /// runs; forgets what was resolved before.
    pub fn set_load_bias(&mut self, load_bias: u64) {
        self.load_bias = load_bias;
        self.cache.get_mut().clear();
    }

    fn resolve(&self, stack: &Stack) -> Option<CallSite> {
        let mut fallback = None;
        for pc in stack.frames() {
            // A return address points after its call; the call's line is
            // the one of the byte before.
            let frames = self
                .symbols
                .frames(pc.wrapping_sub(self.load_bias).wrapping_sub(1));
            if let Some(user) = frames.iter().find(|frame| !is_plumbing(&frame.function)) {
                return Some(user.clone());
            }
            if fallback.is_none() {
                fallback = Some(frames.first().cloned().unwrap_or_else(|| unknown(pc)));
            }
        }
        fallback
    }
}

impl<S: Symbols> ResolveSites for SiteResolver<S> {
    fn site(&self, stack: &Stack) -> Option<CallSite> {
        if let Some(known) = self.cache.borrow().get(stack) {
            return known.clone();
        }
        let site = self.resolve(stack);
        self.cache.borrow_mut().insert(*stack, site.clone());
        site
    }
}

/// Whether `function` belongs to the runtime or the synchronisation
/// plumbing between a user's call and the probed function (`runtime`,
/// `sync`, `internal/...`), and so is not a call site worth showing.
pub fn is_plumbing(function: &str) -> bool {
    let package = package_path(function);
    matches!(package, "runtime" | "sync")
        || package.starts_with("internal/")
        || package.starts_with("runtime/")
        || package.starts_with("sync/")
}

/// `internal/sync` of `internal/sync.(*HashTrieMap[...]).Load`: up to the
/// first dot after the last slash, ignoring type arguments (which may hold
/// slashes and dots of their own).
fn package_path(function: &str) -> &str {
    let plain = function.split('[').next().unwrap_or(function);
    let name_start = plain.rfind('/').map_or(0, |slash| slash + 1);
    match plain[name_start..].find('.') {
        Some(dot) => &plain[..name_start + dot],
        None => plain,
    }
}

/// `cache.go` of `/src/shop/cache.go`: in a one-line site, the file's name
/// is enough to find it.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Counts by stack, merged into counts by call site, busiest first. Stacks
/// without a site are left out.
pub fn merge(stacks: &StackCounts, resolver: &dyn ResolveSites) -> Vec<(CallSite, u64)> {
    let mut sites: HashMap<CallSite, u64> = HashMap::new();
    for (stack, count) in stacks.by_count() {
        if let Some(site) = resolver.site(&stack) {
            *sites.entry(site).or_default() += count;
        }
    }
    let mut sites: Vec<_> = sites.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sites
}

/// Resolves nothing: for recordings whose binary cannot be symbolised.
pub fn no_sites(_: &Stack) -> Option<CallSite> {
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn site(function: &str, line: u32) -> CallSite {
        CallSite {
            function: function.to_owned(),
            file: "/src/main.go".to_owned(),
            line,
        }
    }

    /// pc 0x100: runtime code; 0x200: main.get with sync.(*Map).Load
    /// inlined into it; 0x300: main.handler.
    struct FakeSymbols;

    impl Symbols for FakeSymbols {
        fn frames(&self, pc: u64) -> Vec<CallSite> {
            match pc {
                0xff => vec![site("runtime.mapaccess2_faststr", 1)],
                0x1ff => vec![site("sync.(*Map).Load", 2), site("main.get", 20)],
                0x2ff => vec![site("main.handler", 30)],
                _ => Vec::new(),
            }
        }
    }

    #[test]
    fn the_site_is_the_first_frame_outside_the_plumbing() {
        let resolver = SiteResolver::new(FakeSymbols, 0x1000);
        let stack = Stack([0x1100, 0x1200, 0x1300, 0]);
        assert_eq!(resolver.site(&stack), Some(site("main.get", 20)));
        let runtime_only = Stack([0x1100, 0, 0, 0]);
        assert_eq!(
            resolver.site(&runtime_only),
            Some(site("runtime.mapaccess2_faststr", 1)),
            "a stack of plumbing only falls back to its first frame"
        );
        assert_eq!(
            resolver
                .site(&Stack([0x9999, 0, 0, 0]))
                .map(|site| site.function),
            Some("0x9999".to_owned())
        );
        assert_eq!(resolver.site(&Stack::default()), None);
    }

    #[test]
    fn plumbing_is_runtime_sync_and_internal() {
        for plumbing in [
            "runtime.mapassign_faststr",
            "sync.(*Mutex).Lock",
            "internal/sync.(*HashTrieMap[go.shape.interface {},go.shape.interface {}]).Load",
            "sync/atomic.(*Int64).Add",
            "runtime/internal/atomic.Load",
        ] {
            assert!(is_plumbing(plumbing), "{plumbing}");
        }
        for user in [
            "main.(*Cache).Get",
            "github.com/acme/sync.(*Pool).Get",
            "example.com/runtime.Start",
            "main.Get[go.shape.*example.com/sync.T]",
        ] {
            assert!(!is_plumbing(user), "{user}");
        }
    }

    #[test]
    fn merges_stacks_that_share_a_site() {
        let mut stacks = StackCounts::default();
        stacks.add(Stack([1, 0, 0, 0]), 5);
        stacks.add(Stack([2, 0, 0, 0]), 7);
        stacks.add(Stack([3, 0, 0, 0]), 1);
        let resolver = |stack: &Stack| match stack.0[0] {
            1 | 2 => Some(site("main.get", 20)),
            _ => Some(site("main.set", 30)),
        };
        assert_eq!(
            merge(&stacks, &resolver),
            [(site("main.get", 20), 12), (site("main.set", 30), 1)]
        );
    }
}
