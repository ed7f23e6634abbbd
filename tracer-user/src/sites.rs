//! Call sites: the stacks captured in the kernel become `function
//! (file:line)` in the user's code, the first frame outside the Go runtime
//! and standard-library plumbing that every map operation and lock wait
//! passes through.

use std::{cell::RefCell, collections::HashMap};

use crate::{
    aggregate::StackCounts,
    events::Stack,
    inspect::{Binary, Frame, Symbolizer, Target, binary::BinaryImage, disasm, types::GoTypes},
    probes::catalogue::GO_MAP_PROBES,
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
}

/// What the code calling a map function says of the map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapName {
    /// `map[string]int`.
    pub go_type: Option<String>,
    /// `main.events`: the global the map was loaded from (only where the
    /// binary has symbols for its data).
    pub global: Option<String>,
}

/// The first type and global the busiest of `stacks` show.
pub fn map_name(stacks: &StackCounts, resolver: &dyn ResolveSites) -> MapName {
    let mut name = MapName::default();
    for (stack, _) in stacks.by_count() {
        let MapName { go_type, global } = resolver.map_name(&stack);
        name.go_type = name.go_type.or(go_type);
        name.global = name.global.or(global);
        if name.go_type.is_some() && name.global.is_some() {
            break;
        }
    }
    name
}

impl<F: Fn(&Stack) -> Option<CallSite>> ResolveSites for F {
    fn site(&self, stack: &Stack) -> Option<CallSite> {
        self(stack)
    }
}

/// What a map is, as the function its operations call shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapKind {
    /// A Go `map`.
    Map,
    /// A `sync.Map`.
    SyncMap,
}

impl MapKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::SyncMap => "sync.Map",
        }
    }
}

/// Who made a map operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The program, on a map of this kind (`None` when the call does not
    /// show it: an indirect call, or a binary we cannot read).
    Program(Option<MapKind>),
    /// A `sync.Map` method, on one of the runtime maps it keeps its
    /// entries in (before Go 1.24): part of an operation the `sync.Map`'s
    /// own probe already counted.
    SyncMapInternals,
    /// The Go runtime or standard library on its own behalf (the
    /// profiler's maps, …): no frame of the stack is the program's.
    Runtime,
}

/// Who made a map's operations, from all its stacks: the program if any
/// stack is the program's (its kind the one its calls show), otherwise
/// `sync.Map` internals or the runtime.
pub fn map_origin(stacks: &StackCounts, resolver: &dyn ResolveSites) -> Origin {
    let (mut program, mut kind, mut sync_map_internals) = (false, None, false);
    for (stack, _) in stacks.by_count() {
        match resolver.origin(&stack) {
            Origin::Program(shown) => {
                program = true;
                // A map's address is a sync.Map's or a runtime map's,
                // never both: any call to a sync.Map method settles it.
                kind = kind.max(shown);
            }
            Origin::SyncMapInternals => sync_map_internals = true,
            Origin::Runtime => {}
        }
    }
    match (program, sync_map_internals) {
        (true, _) => Origin::Program(kind),
        (false, true) => Origin::SyncMapInternals,
        // No stack at all (every one beyond the table) counts as the
        // program's: nothing shows otherwise.
        (false, false) if stacks.by_count().is_empty() => Origin::Program(None),
        (false, false) => Origin::Runtime,
    }
}

/// Data symbols by address: globals' names, in binaries not stripped.
fn data_symbols(binary: &Binary) -> HashMap<u64, String> {
    use object::{Object as _, ObjectSymbol as _};
    let Ok(file) = binary.object() else {
        return HashMap::new();
    };
    file.symbols()
        .filter(|symbol| symbol.kind() == object::SymbolKind::Data)
        .filter_map(|symbol| Some((symbol.address(), symbol.name().ok()?.to_owned())))
        .collect()
}

/// The traced map functions of a binary by address, and the kind of map
/// a call to each operates on.
pub struct MapFunctions {
    image: BinaryImage,
    kinds: HashMap<u64, MapKind>,
    types: GoTypes,
    /// Data symbols by address, where the binary has them.
    globals: HashMap<u64, String>,
}

impl MapFunctions {
    pub fn new(binary: &Binary) -> Self {
        let kinds = GO_MAP_PROBES
            .iter()
            .filter_map(|probe| {
                let function = binary.function(probe.symbol)?;
                let kind = if probe.synchronized {
                    MapKind::SyncMap
                } else {
                    MapKind::Map
                };
                Some((function.address, kind))
            })
            .collect();
        Self {
            image: binary.image(),
            kinds,
            types: GoTypes::new(binary),
            globals: data_symbols(binary),
        }
    }

    /// The map's type and global from the code of the function (`start`
    /// to `end`, link-time) making the call that returns to
    /// `return_address`.
    fn map_name(&self, (start, end): (u64, u64), return_address: u64) -> MapName {
        let Some(call) = return_address.checked_sub(5) else {
            return MapName::default();
        };
        let length = usize::try_from(end.saturating_sub(start)).unwrap_or(0);
        let Some(code) = self.image.bytes_at(start, length) else {
            return MapName::default();
        };
        let arguments = disasm::map_call_arguments(code, start, call);
        MapName {
            go_type: (arguments.rax_address).and_then(|address| self.types.map_type_name(address)),
            global: (arguments.rbx_loaded_from)
                .and_then(|address| self.globals.get(&address).cloned()),
        }
    }

    /// Whether a traced map function starts at `entry`.
    fn is_traced(&self, entry: u64) -> bool {
        self.kinds.contains_key(&entry)
    }

    /// The kind of map the call returning to `return_address` (link-time)
    /// operates on; `None` if it calls no traced map function directly.
    fn kind_called_before(&self, return_address: u64) -> Option<MapKind> {
        let callee = self.image.called_before(return_address)?;
        self.kinds.get(&callee).copied()
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
                    .with_map_functions(MapFunctions::new(&target.binary)),
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
        }
    }

    /// Learns where the target is loaded, once a PIE contend started
    /// runs; forgets what was resolved before.
    pub fn set_load_bias(&mut self, load_bias: u64) {
        self.load_bias = load_bias;
        self.cache.get_mut().clear();
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

    /// Whether the first function of `stack` outside the runtime (the
    /// function that called the runtime's map code) is a `sync.Map`
    /// method.
    fn called_by_sync_map(&self, stack: &Stack) -> bool {
        for pc in stack.frames() {
            let frames = self.frames_at_return(pc);
            // The function the code is in, not one inlined into it.
            let Some(physical) = frames.last() else {
                return false;
            };
            if package_path(&physical.function) != "runtime" {
                return physical.function.starts_with("sync.(*Map).");
            }
        }
        false
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

    fn map_name(&self, stack: &Stack) -> MapName {
        let Some(map_functions) = &self.map_functions else {
            return MapName::default();
        };
        // The first call from outside the traced map functions: one may
        // call another (Go 1.27's mapaccess1 calls mapaccess2), passing on
        // the type it was given.
        let Some((bounds, return_address)) = stack.frames().find_map(|pc| {
            let return_address = pc.wrapping_sub(self.load_bias);
            let bounds = self
                .symbols
                .function_bounds(return_address.wrapping_sub(1))?;
            (!map_functions.is_traced(bounds.0)).then_some((bounds, return_address))
        }) else {
            return MapName::default();
        };
        if let Some(known) = self.names.borrow().get(&return_address) {
            return known.clone();
        }
        let name = map_functions.map_name(bounds, return_address);
        self.names.borrow_mut().insert(return_address, name.clone());
        name
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

impl<S: Symbols> SiteResolver<S> {
    fn work_out_origin(&self, stack: &Stack) -> Origin {
        let kind = stack.frames().next().and_then(|pc| {
            let map_functions = self.map_functions.as_ref()?;
            map_functions.kind_called_before(pc.wrapping_sub(self.load_bias))
        });
        if kind != Some(MapKind::SyncMap) && self.called_by_sync_map(stack) {
            return Origin::SyncMapInternals;
        }
        match self.site(stack) {
            Some(site) if is_plumbing(&site.function) => Origin::Runtime,
            _ => Origin::Program(kind),
        }
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
    struct FakeSymbols;

    impl Symbols for FakeSymbols {
        fn frames(&self, pc: u64) -> Vec<CallSite> {
            match pc {
                0xff => vec![site("runtime.mapaccess2_faststr", 1)],
                0x1ff => vec![site("sync.(*Map).Load", 2), site("main.get", 20)],
                0x2ff => vec![site("main.handler", 30)],
                0x3ff => vec![site("sync.(*Map).Load", 50)],
                0x4ff => vec![site("runtime/pprof.(*profMap).lookup", 60)],
                _ => Vec::new(),
            }
        }
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
    fn a_stack_tells_the_program_from_the_runtime_and_sync_map_internals() {
        let resolver = SiteResolver::new(FakeSymbols, 0x1000);
        let origin = |pcs: [u64; 4]| resolver.origin(&Stack::of(pcs));
        assert_eq!(
            origin([0x1400, 0x1300, 0, 0]),
            Origin::SyncMapInternals,
            "a runtime map called by a sync.Map method (Go before 1.24)"
        );
        assert_eq!(
            origin([0x1100, 0x1400, 0x1300, 0]),
            Origin::SyncMapInternals,
            "through runtime code that forwards"
        );
        assert_eq!(origin([0x1100, 0, 0, 0]), Origin::Runtime);
        assert_eq!(
            origin([0x1100, 0x1200, 0x1300, 0]),
            Origin::Program(None),
            "sync.(*Map).Load inlined into the program's function (Go 1.24+)"
        );
    }

    /// Resolves stacks whose first pc is 1 to the program's map, 2 to a
    /// sync.Map's, 3 to sync.Map internals and 4 to the runtime.
    struct Origins;

    impl ResolveSites for Origins {
        fn site(&self, _: &Stack) -> Option<CallSite> {
            None
        }

        fn origin(&self, stack: &Stack) -> Origin {
            match stack.0[0] {
                1 => Origin::Program(Some(MapKind::Map)),
                2 => Origin::Program(Some(MapKind::SyncMap)),
                3 => Origin::SyncMapInternals,
                4 => Origin::Runtime,
                _ => Origin::Program(None),
            }
        }
    }

    #[test]
    fn a_map_is_the_programs_if_any_of_its_operations_is() {
        let origin = |pcs: &[u64]| {
            let mut stacks = StackCounts::default();
            for &pc in pcs {
                stacks.observe(Stack::of([pc, 0, 0, 0]));
            }
            map_origin(&stacks, &Origins)
        };
        assert_eq!(origin(&[3, 3]), Origin::SyncMapInternals);
        assert_eq!(origin(&[4, 4, 3]), Origin::SyncMapInternals);
        assert_eq!(origin(&[4]), Origin::Runtime);
        assert_eq!(origin(&[4, 5]), Origin::Program(None));
        assert_eq!(origin(&[1, 5]), Origin::Program(Some(MapKind::Map)));
        assert_eq!(origin(&[5, 2]), Origin::Program(Some(MapKind::SyncMap)));
        assert_eq!(origin(&[]), Origin::Program(None));
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
