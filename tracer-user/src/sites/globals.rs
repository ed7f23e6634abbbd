//! The program's global variables by address, from the binary's data
//! symbols (binaries not stripped): a map loaded from one, or a lock that
//! is one or lies inside one, is named by it.

use crate::inspect::Binary;

/// One global variable: where it starts (link-time), its size, its name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Global {
    address: u64,
    size: u64,
    name: String,
}

/// Data symbols sorted by address.
#[derive(Debug, Default)]
pub struct Globals {
    sorted: Vec<Global>,
}

impl Globals {
    pub fn new(binary: &Binary) -> Self {
        use object::{Object as _, ObjectSymbol as _};
        let Ok(file) = binary.object() else {
            return Self::default();
        };
        let symbols = (file.symbols())
            .filter(|symbol| symbol.kind() == object::SymbolKind::Data)
            .filter_map(|symbol| Some((symbol.address(), symbol.size(), symbol.name().ok()?)));
        Self::from_symbols(symbols)
    }

    /// From (address, size, name) triples, in any order.
    pub fn from_symbols<'a>(symbols: impl IntoIterator<Item = (u64, u64, &'a str)>) -> Self {
        let mut sorted: Vec<Global> = (symbols.into_iter())
            .map(|(address, size, name)| Global {
                address,
                size,
                name: name.to_owned(),
            })
            .collect();
        sorted.sort_by_key(|global| global.address);
        Self { sorted }
    }

    /// The global starting at `address` (link-time).
    pub fn at(&self, address: u64) -> Option<&str> {
        let index = (self.sorted)
            .binary_search_by_key(&address, |global| global.address)
            .ok()?;
        Some(&self.sorted[index].name)
    }

    /// The global `address` (link-time) lies in, as its name, with `+N`
    /// for a field `N` bytes into it: `main.mu`, `main.cache+8`.
    pub fn containing(&self, address: u64) -> Option<String> {
        let after = self
            .sorted
            .partition_point(|global| global.address <= address);
        let global = self.sorted[..after].last()?;
        let offset = address - global.address;
        if offset >= global.size.max(1) {
            return None;
        }
        Some(match offset {
            0 => global.name.clone(),
            _ => format!("{}+{offset}", global.name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_named_by_the_global_it_lies_in() {
        let globals = Globals::from_symbols([
            (0x5000, 24, "main.cache"),
            (0x4000, 8, "main.mu"),
            (0x6000, 0, "runtime.end"),
        ]);
        assert_eq!(globals.containing(0x4000).as_deref(), Some("main.mu"));
        assert_eq!(globals.containing(0x5008).as_deref(), Some("main.cache+8"));
        assert_eq!(globals.containing(0x5018), None, "past main.cache's end");
        assert_eq!(globals.containing(0x3fff), None, "before every global");
        assert_eq!(globals.containing(0x6000).as_deref(), Some("runtime.end"));
        assert_eq!(globals.containing(0x6001), None);
        assert_eq!(globals.containing(0x00c0_0001_0000), None, "the heap");
        assert_eq!(globals.at(0x5000), Some("main.cache"));
        assert_eq!(globals.at(0x5008), None);
    }
}
