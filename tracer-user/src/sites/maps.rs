//! What a map is, from the calls that reach it: a Go `map` or a
//! `sync.Map` (which function was called), the program's or the runtime's
//! own (whose frames the stack holds), its Go type and its global (what
//! the calling code passes).

use std::collections::HashMap;

use super::{Globals, ResolveSites, SiteResolver, Symbols, is_plumbing, package_path};
use crate::{
    aggregate::StackCounts,
    events::Stack,
    inspect::{
        Binary,
        binary::{BinaryImage, DIRECT_CALL_LENGTH},
        disasm,
        types::GoTypes,
    },
    probes::catalogue::GO_MAP_PROBES,
};

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

/// The traced map functions of a binary by address, and the kind of map
/// a call to each operates on.
pub struct MapFunctions {
    image: BinaryImage,
    kinds: HashMap<u64, MapKind>,
    types: GoTypes,
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
        }
    }

    /// The map's type and global from the code of the function (`start`
    /// to `end`, link-time) making the call that returns to
    /// `return_address`, naming a global loaded from by `globals`.
    fn map_name(
        &self,
        (start, end): (u64, u64),
        return_address: u64,
        globals: &Globals,
    ) -> MapName {
        let Some(call) = return_address.checked_sub(DIRECT_CALL_LENGTH) else {
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
                .and_then(|address| globals.at(address).map(str::to_owned)),
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

impl<S: Symbols> SiteResolver<S> {
    /// The map's type and global, from the first call on `stack` made
    /// from outside the traced map functions.
    pub(super) fn name_of_map_at(&self, stack: &Stack) -> MapName {
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
        let name = map_functions.map_name(bounds, return_address, &self.globals);
        self.names.borrow_mut().insert(return_address, name.clone());
        name
    }

    pub(super) fn work_out_origin(&self, stack: &Stack) -> Origin {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::{CallSite, tests::FakeSymbols};

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
}
