//! Call sites: the stacks captured in the kernel become `function
//! (file:line)` in the user's code, the first frame outside the Go runtime
//! and standard-library plumbing that every map operation and lock wait
//! passes through.

use std::{cell::RefCell, collections::HashMap};

mod globals;
mod maps;

pub use globals::Globals;
pub use maps::{MapFunctions, MapKind, MapName, Origin, map_name, map_origin};

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

    /// The program's functions the site of `stack` lies in: its own, then
    /// those it was inlined into, outward. A lock taken in a small helper
    /// (`func (c *Cache) lock() { c.mu.Lock() }`, which Go inlines) is
    /// taken in the function that called the helper too.
    fn site_functions(&self, stack: &Stack) -> Vec<String> {
        self.site(stack)
            .map(|site| vec![site.function])
            .unwrap_or_default()
    }

    /// Who made the map operation `stack` was captured at; the program,
    /// on a map of unknown kind, when the binary cannot tell.
    fn origin(&self, _stack: &Stack) -> Origin {
        Origin::Program(None)
    }

    /// The map's Go type and the global holding it, as far as the code
    /// calling the map function at `stack` shows.
    fn map_name(&self, _stack: &Stack) -> MapName {
        MapName::default()
    }

    /// The global a lock at `address` (in the target) is, or lies in:
    /// `main.mu`, `main.cache+8`.
    fn lock_global(&self, _address: u64) -> Option<String> {
        None
    }
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

    /// The entry and end of the function `pc` (link-time) is in.
    fn function_bounds(&self, _pc: u64) -> Option<(u64, u64)> {
        None
    }
}

impl Symbols for Symbolizer {
    fn frames(&self, pc: u64) -> Vec<CallSite> {
        Symbolizer::frames(self, pc)
    }

    fn function_bounds(&self, pc: u64) -> Option<(u64, u64)> {
        Symbolizer::function_bounds(self, pc)
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
            Ok(symbolizer) => Some(
                Self::new(symbolizer, target.load_bias.unwrap_or(0))
                    .with_map_functions(MapFunctions::new(&target.binary))
                    .with_globals(Globals::new(&target.binary)),
            ),
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
    /// Each stack's origin and each call's map name, worked out once: a
    /// live view asks every tick.
    origins: RefCell<HashMap<Stack, Origin>>,
    names: RefCell<HashMap<u64, MapName>>,
    /// Tells which map function a stack's first return address returns
    /// from; `None` when not read (map kinds are then unknown).
    map_functions: Option<MapFunctions>,
    /// The program's globals, where the binary names them.
    globals: Globals,
}

impl<S: Symbols> SiteResolver<S> {
    pub fn new(symbols: S, load_bias: u64) -> Self {
        Self {
            symbols,
            load_bias,
            cache: RefCell::default(),
            origins: RefCell::default(),
            names: RefCell::default(),
            map_functions: None,
            globals: Globals::default(),
        }
    }

    /// Learns where the target is loaded, once a PIE contend started
    /// runs; forgets what was resolved before.
    pub fn set_load_bias(&mut self, load_bias: u64) {
        self.load_bias = load_bias;
        self.cache.get_mut().clear();
    }

    pub fn with_globals(self, globals: Globals) -> Self {
        Self { globals, ..self }
    }

    pub fn with_map_functions(self, map_functions: MapFunctions) -> Self {
        Self {
            map_functions: Some(map_functions),
            ..self
        }
    }

    /// Link-time frames at a return address, innermost first.
    fn frames_at_return(&self, pc: u64) -> Vec<CallSite> {
        // A return address points after its call; the call's line is
        // the one of the byte before.
        self.symbols
            .frames(pc.wrapping_sub(self.load_bias).wrapping_sub(1))
    }

    fn resolve(&self, stack: &Stack) -> Option<CallSite> {
        let mut fallback = None;
        for pc in stack.frames() {
            let frames = self.frames_at_return(pc);
            if let Some(user) = frames.iter().find(|frame| !is_plumbing(&frame.function)) {
                return Some(user.clone());
            }
            // With no frame of the program's, the first outside the
            // runtime's core says more than its map code does: the
            // profiler's `runtime/pprof.(*profMap).lookup`, not
            // `runtime.mapaccess1_faststr`.
            let settled = (fallback.as_ref())
                .is_some_and(|found: &CallSite| !is_runtime_core(&found.function));
            if !settled {
                match frames
                    .iter()
                    .find(|frame| !is_runtime_core(&frame.function))
                {
                    Some(frame) => fallback = Some(frame.clone()),
                    None if fallback.is_none() => {
                        fallback = Some(frames.first().cloned().unwrap_or_else(|| unknown(pc)));
                    }
                    None => {}
                }
            }
        }
        fallback
    }
}

/// One return address of a stack with every source position it stands
/// for: the functions inlined there (innermost first), then the physical
/// function, as pprof's locations have them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The link-time address of the call (the return address less one).
    pub address: u64,
    pub frames: Vec<CallSite>,
}

/// Turns stacks into every frame they hold, for profiles.
pub trait ResolveStacks {
    /// The stack's locations, leaf (the probed function's caller) first.
    fn locations(&self, stack: &Stack) -> Vec<Location>;
}

impl<F: Fn(&Stack) -> Vec<Location>> ResolveStacks for F {
    fn locations(&self, stack: &Stack) -> Vec<Location> {
        self(stack)
    }
}

/// A stack's return addresses as they are: for recordings whose binary
/// cannot be symbolised.
pub fn unsymbolised(stack: &Stack) -> Vec<Location> {
    stack
        .frames()
        .map(|pc| Location {
            address: pc,
            frames: vec![unknown(pc)],
        })
        .collect()
}

impl<S: Symbols> ResolveStacks for SiteResolver<S> {
    fn locations(&self, stack: &Stack) -> Vec<Location> {
        stack
            .frames()
            .map(|pc| {
                let address = pc.wrapping_sub(self.load_bias).wrapping_sub(1);
                let mut frames = self.symbols.frames(address);
                if frames.is_empty() {
                    frames.push(unknown(pc));
                }
                Location { address, frames }
            })
            .collect()
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

    fn site_functions(&self, stack: &Stack) -> Vec<String> {
        for pc in stack.frames() {
            let frames = self.frames_at_return(pc);
            let mut program = frames
                .iter()
                .skip_while(|frame| is_plumbing(&frame.function))
                .filter(|frame| !is_plumbing(&frame.function))
                .map(|frame| frame.function.clone())
                .peekable();
            if program.peek().is_some() {
                return program.collect();
            }
        }
        self.site(stack)
            .map(|site| vec![site.function])
            .unwrap_or_default()
    }

    fn map_name(&self, stack: &Stack) -> MapName {
        self.name_of_map_at(stack)
    }

    fn lock_global(&self, address: u64) -> Option<String> {
        self.globals
            .containing(address.wrapping_sub(self.load_bias))
    }

    fn origin(&self, stack: &Stack) -> Origin {
        if let Some(known) = self.origins.borrow().get(stack) {
            return *known;
        }
        let origin = self.work_out_origin(stack);
        self.origins.borrow_mut().insert(*stack, origin);
        origin
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

/// The runtime proper (`runtime`, `internal/runtime/...`), as opposed to
/// the libraries under `runtime/` that use it.
fn is_runtime_core(function: &str) -> bool {
    let package = package_path(function);
    package == "runtime" || package.starts_with("internal/runtime/")
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
    pub struct FakeSymbols;

    impl Symbols for FakeSymbols {
        fn frames(&self, pc: u64) -> Vec<CallSite> {
            match pc {
                0xff => vec![site("runtime.mapaccess2_faststr", 1)],
                0x1ff => vec![site("sync.(*Map).Load", 2), site("main.get", 20)],
                0x2ff => vec![site("main.handler", 30)],
                0x3ff => vec![site("sync.(*Map).Load", 50)],
                0x4ff => vec![site("runtime/pprof.(*profMap).lookup", 60)],
                0x5ff => vec![
                    site("sync.(*Mutex).Lock", 70),
                    site("main.(*C).lock", 71),
                    site("main.(*C).Get", 72),
                ],
                _ => Vec::new(),
            }
        }
    }

    #[test]
    fn a_site_lies_in_its_function_and_those_it_was_inlined_into() {
        let resolver = SiteResolver::new(FakeSymbols, 0x1000);
        let helper = Stack::of([0x1100, 0x1600, 0x1300, 0]);
        assert_eq!(resolver.site(&helper), Some(site("main.(*C).lock", 71)));
        assert_eq!(
            resolver.site_functions(&helper),
            ["main.(*C).lock", "main.(*C).Get"],
            "the helper's caller, not the plumbing inlined into it nor the next frame"
        );
        let plain = Stack::of([0x1100, 0x1300, 0, 0]);
        assert_eq!(resolver.site_functions(&plain), ["main.handler"]);
    }

    #[test]
    fn the_site_is_the_first_frame_outside_the_plumbing() {
        let resolver = SiteResolver::new(FakeSymbols, 0x1000);
        let stack = Stack::of([0x1100, 0x1200, 0x1300, 0]);
        assert_eq!(resolver.site(&stack), Some(site("main.get", 20)));
        let runtime_only = Stack::of([0x1100, 0, 0, 0]);
        assert_eq!(
            resolver.site(&runtime_only),
            Some(site("runtime.mapaccess2_faststr", 1)),
            "a stack of plumbing only falls back to its first frame"
        );
        assert_eq!(
            resolver.site(&Stack::of([0x1100, 0x1500, 0x1100, 0])),
            Some(site("runtime/pprof.(*profMap).lookup", 60)),
            "without the program's frames, the first outside the runtime's core"
        );
        assert_eq!(
            resolver.origin(&Stack::of([0x1100, 0x1500, 0, 0])),
            Origin::Runtime
        );
        assert_eq!(
            resolver
                .site(&Stack::of([0x9999, 0, 0, 0]))
                .map(|site| site.function),
            Some("0x9999".to_owned())
        );
        assert_eq!(resolver.site(&Stack::default()), None);
    }

    #[test]
    fn a_lock_in_a_pie_is_named_by_its_link_time_global() {
        let resolver = SiteResolver::new(FakeSymbols, 0x7f00_0000)
            .with_globals(Globals::from_symbols([(0x5000, 32, "main.cache")]));
        assert_eq!(
            resolver.lock_global(0x7f00_5010).as_deref(),
            Some("main.cache+16")
        );
        assert_eq!(resolver.lock_global(0x5010), None, "not placed at the bias");
    }

    #[test]
    fn locations_keep_every_frame_and_inlined_call() {
        let resolver = SiteResolver::new(FakeSymbols, 0x1000);
        let locations = resolver.locations(&Stack::of([0x1200, 0x1300, 0x1999, 0]));
        let functions: Vec<Vec<&str>> = (locations.iter())
            .map(|location| {
                location
                    .frames
                    .iter()
                    .map(|f| f.function.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            functions,
            [
                vec!["sync.(*Map).Load", "main.get"],
                vec!["main.handler"],
                vec!["0x1999"],
            ],
            "leaf first, inlined calls innermost first, unknown pcs as themselves"
        );
        assert_eq!(locations[0].address, 0x1ff);
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
        stacks.add(Stack::of([1, 0, 0, 0]), 5);
        stacks.add(Stack::of([2, 0, 0, 0]), 7);
        stacks.add(Stack::of([3, 0, 0, 0]), 1);
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
