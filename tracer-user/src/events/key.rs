//! Map keys as the user reads them.

use std::fmt::Write as _;

use tracer_common::{KeyStrings, go::Kind};

/// Bytes of a non-text, non-integer key shown before it is abbreviated.
const HEX_SHOWN: usize = 16;

/// A map key as captured in the target.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// The operation has no key (iteration, clear).
    None,
    /// String key bytes; `truncated` when longer than we capture.
    Text {
        bytes: KeyBytes,
        truncated: bool,
    },
    Signed(i64),
    Unsigned(u64),
    Bool(bool),
    /// Floats are kept as their bits, so keys compare and hash exactly.
    Float {
        bits: u64,
        size: u8,
    },
    Pointer(u64),
    /// Any other key type: its first bytes, and whether there were more.
    Bytes {
        bytes: KeyBytes,
        truncated: bool,
    },
    /// A struct or array key holding strings, as captured (see
    /// [`KeyStrings`]): its own `size` bytes, each string's data pointer
    /// zeroed, then the bytes of the strings set in `strings`; so keys
    /// compare by content, as Go compares them.
    WithStrings {
        bytes: KeyBytes,
        size: u32,
        strings: KeyStrings,
    },
    /// The key's memory could not be read at the probe.
    Unreadable,
}

/// The bytes of a key. Most keys are short, and one is decoded for every
/// map operation: those that fit are kept inline, so decoding one costs no
/// allocation and comparing one no pointer chase. Compares, orders and
/// hashes exactly as the byte slice does.
#[derive(Clone)]
pub enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

/// Bytes kept inline: 30 makes a `KeyBytes` 32 bytes, as big as a boxed
/// slice needs with its tag.
const INLINE: usize = 30;

impl KeyBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(bytes) => bytes,
        }
    }
}

impl From<&[u8]> for KeyBytes {
    fn from(slice: &[u8]) -> Self {
        if slice.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..slice.len()].copy_from_slice(slice);
            // Lossless: at most INLINE.
            let len = slice.len() as u8;
            Self::Inline { len, bytes }
        } else {
            Self::Heap(slice.into())
        }
    }
}

impl std::ops::Deref for KeyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for KeyBytes {}

impl PartialOrd for KeyBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::hash::Hash for KeyBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl Key {
    /// Builds a key from what the probe captured: `bytes` copied of a key of
    /// `len` bytes (a string's length) whose Go kind is `kind`.
    pub fn decode(kind: Option<Kind>, bytes: &[u8], len: u32) -> Self {
        Self::decode_with_strings(kind, bytes, len, 0)
    }

    /// As [`Self::decode`], for a key whose strings set in `strings` were
    /// captured by content after its own bytes.
    pub fn decode_with_strings(
        kind: Option<Kind>,
        bytes: &[u8],
        len: u32,
        strings: KeyStrings,
    ) -> Self {
        let Some(kind) = kind else { return Self::None };
        if bytes.is_empty() && len > 0 {
            return Self::Unreadable;
        }
        if strings != 0 && bytes.len() >= len as usize {
            return Self::WithStrings {
                bytes: bytes.into(),
                size: len,
                strings,
            };
        }
        let truncated = bytes.len() < len as usize;
        match kind {
            Kind::String => Self::Text {
                bytes: bytes.into(),
                truncated,
            },
            _ if kind.is_signed_integer() => Self::Signed(signed(bytes)),
            _ if kind.is_unsigned_integer() => Self::Unsigned(unsigned(bytes)),
            Kind::Bool => Self::Bool(unsigned(bytes) != 0),
            Kind::Float32 | Kind::Float64 => Self::Float {
                bits: unsigned(bytes),
                size: bytes.len() as u8,
            },
            Kind::Pointer | Kind::UnsafePointer | Kind::Chan => Self::Pointer(unsigned(bytes)),
            _ => Self::Bytes {
                bytes: bytes.into(),
                truncated,
            },
        }
    }

    /// The key as users read it: text (bytes that are not UTF-8 written
    /// `\xff`, `…` when truncated), integers in decimal, pointers in hex,
    /// other types as hex bytes (the first few, then a hash of all
    /// captured).
    pub fn display(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Text { bytes, truncated } => {
                let mut text = escaped_text(whole_characters(bytes, *truncated));
                if *truncated {
                    text.push('…');
                }
                text
            }
            Self::Signed(value) => value.to_string(),
            Self::Unsigned(value) => value.to_string(),
            Self::Bool(value) => value.to_string(),
            Self::Float { bits, size: 4 } => f32::from_bits(*bits as u32).to_string(),
            Self::Float { bits, .. } => f64::from_bits(*bits).to_string(),
            Self::Pointer(address) => format!("{address:#x}"),
            Self::Bytes { bytes, truncated } => hex_key(bytes, *truncated),
            Self::WithStrings {
                bytes,
                size,
                strings,
            } => with_strings(bytes, *size as usize, *strings),
            Self::Unreadable => "<unreadable>".to_owned(),
        }
    }

    /// A text key's bytes in hex, when they are not UTF-8: Go strings hold
    /// any bytes, and two such keys may read alike once escaped.
    pub fn raw_hex(&self) -> Option<String> {
        let Self::Text { bytes, truncated } = self else {
            return None;
        };
        let shown = whole_characters(bytes, *truncated);
        if std::str::from_utf8(shown).is_ok() {
            return None;
        }
        let mut hex = String::with_capacity(2 * bytes.len());
        for byte in bytes.iter() {
            let _ = write!(hex, "{byte:02x}");
        }
        Some(hex)
    }
}

/// A struct or array key with its strings by content, word by word:
/// `{"https", "example.com:443", 1}`. Words that are not strings read as
/// little-endian integers (ints, bools and small enums read as written),
/// in hex past 32 bits (pointers, hashes).
fn with_strings(bytes: &[u8], size: usize, strings: KeyStrings) -> String {
    let (own, mut appended) = bytes.split_at(size.min(bytes.len()));
    let mut parts = Vec::new();
    let mut word = 0;
    while 8 * word < own.len() {
        let at = 8 * word;
        if strings & (1 << word) != 0 && at + 16 <= own.len() {
            let len = unsigned(&own[at + 8..at + 16]) as usize;
            let (text, rest) = appended.split_at(len.min(appended.len()));
            appended = rest;
            let truncated = text.len() < len;
            let mut shown = escaped_text(whole_characters(text, truncated));
            if truncated {
                shown.push('…');
            }
            parts.push(format!("\"{}\"", shown.replace('"', "\\\"")));
            word += 2;
            continue;
        }
        let value = unsigned(&own[at..own.len().min(at + 8)]);
        parts.push(if value >> 32 == 0 {
            value.to_string()
        } else {
            format!("{value:#x}")
        });
        word += 1;
    }
    format!("{{{}}}", parts.join(", "))
}

/// `bytes` without a character cut in two at the end by truncation.
fn whole_characters(bytes: &[u8], truncated: bool) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Err(error) if truncated && error.error_len().is_none() => &bytes[..error.valid_up_to()],
        _ => bytes,
    }
}

/// UTF-8 as it is, each byte that is not UTF-8 as `\xNN`, so that keys
/// differing in those bytes stay apart (a lossy conversion made them all
/// `�`).
fn escaped_text(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text
}

fn hex_key(bytes: &[u8], truncated: bool) -> String {
    let mut text = String::from("hex:");
    for byte in bytes.iter().take(HEX_SHOWN) {
        let _ = write!(text, "{byte:02x}");
    }
    if bytes.len() > HEX_SHOWN || truncated {
        let _ = write!(text, "…#{:016x}", fnv1a(bytes));
    }
    text
}

/// FNV-1a: a short, stable name for bytes we do not show in full.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Little-endian unsigned integer of up to 8 bytes.
fn unsigned(bytes: &[u8]) -> u64 {
    let mut buffer = [0u8; 8];
    let n = bytes.len().min(8);
    buffer[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(buffer)
}

/// Little-endian signed integer of 1, 2, 4 or 8 bytes, sign-extended.
fn signed(bytes: &[u8]) -> i64 {
    let bits = 8 * bytes.len().clamp(1, 8) as u32;
    let value = unsigned(bytes);
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(kind: Kind, bytes: &[u8], len: u32) -> String {
        Key::decode(Some(kind), bytes, len).display()
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(show(Kind::Int32, &(-7i32).to_le_bytes(), 4), "-7");
        assert_eq!(
            show(Kind::Int64, &(-1234567890123i64).to_le_bytes(), 8),
            "-1234567890123"
        );
        assert_eq!(
            show(Kind::Int, &i64::MIN.to_le_bytes(), 8),
            i64::MIN.to_string()
        );
        assert_eq!(
            show(Kind::Uint64, &u64::MAX.to_le_bytes(), 8),
            u64::MAX.to_string()
        );
        assert_eq!(show(Kind::Uint8, &[200], 1), "200");
        assert_eq!(show(Kind::Int8, &[200], 1), "-56");
    }

    #[test]
    fn strings_pointers_and_others() {
        assert_eq!(show(Kind::String, b"sku-42", 6), "sku-42");
        assert_eq!(show(Kind::String, b"abc", 10), "abc…");
        assert_eq!(show(Kind::String, b"", 0), "");
        assert_eq!(
            show(Kind::Pointer, &0xc000_0100u64.to_le_bytes(), 8),
            "0xc0000100"
        );
        assert_eq!(show(Kind::Bool, &[1], 1), "true");
        assert_eq!(show(Kind::Float64, &1.5f64.to_le_bytes(), 8), "1.5");
        let point = [3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0];
        assert_eq!(
            show(Kind::Struct, &point, 12),
            "hex:030000000400000005000000"
        );
        let long = [0xab; 40];
        assert!(show(Kind::Array, &long, 40).starts_with(&format!("hex:{}…#", "ab".repeat(16))));
    }

    #[test]
    fn text_that_is_not_utf8_stays_distinguishable() {
        let ff = Key::decode(Some(Kind::String), b"id-\xff", 4);
        let fe = Key::decode(Some(Kind::String), b"id-\xfe", 4);
        assert_eq!(ff.display(), "id-\\xff");
        assert_ne!(ff.display(), fe.display());
        assert_eq!(ff.raw_hex().as_deref(), Some("69642dff"));
        assert_eq!(
            Key::decode(Some(Kind::String), "ключ".as_bytes(), 8).raw_hex(),
            None,
            "UTF-8 needs no hex"
        );
        // A capture that ends inside a character is truncation, not bad text.
        let cut = Key::decode(Some(Kind::String), &"ключ".as_bytes()[..3], 8);
        assert_eq!(cut.display(), "к…");
        assert_eq!(cut.raw_hex(), None);
    }

    #[test]
    fn short_and_long_bytes_are_the_same_slices() {
        let short = KeyBytes::from(&b"sku-42"[..]);
        let long = KeyBytes::from(&[7u8; 100][..]);
        assert!(matches!(short, KeyBytes::Inline { .. }));
        assert!(matches!(long, KeyBytes::Heap(_)));
        assert_eq!(&*short, b"sku-42");
        assert_eq!(&*long, &[7u8; 100][..]);
        let edge = [1u8; INLINE + 1];
        for len in [0, INLINE - 1, INLINE, INLINE + 1] {
            assert_eq!(&*KeyBytes::from(&edge[..len]), &edge[..len]);
        }
        assert!(short < KeyBytes::from(&b"sku-5"[..]), "slice order");
    }

    /// A `struct{Scheme, Host string; Port int}` key as the probe captures
    /// it: headers with their data pointers zeroed, the port, then the
    /// strings' bytes (`host` cut to `host_copied` bytes).
    fn route(scheme: &str, host: &str, host_copied: usize, port: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        for text in [scheme, host] {
            bytes.extend(0u64.to_le_bytes());
            bytes.extend((text.len() as u64).to_le_bytes());
        }
        bytes.extend(port.to_le_bytes());
        bytes.extend(scheme.as_bytes());
        bytes.extend(&host.as_bytes()[..host_copied]);
        bytes
    }

    #[test]
    fn strings_inside_a_key_read_as_text() {
        let strings = 0b101;
        let key = |bytes: &[u8]| Key::decode_with_strings(Some(Kind::Struct), bytes, 40, strings);
        let https = key(&route("https", "example.com", 11, 443));
        assert_eq!(https.display(), r#"{"https", "example.com", 443}"#);
        assert_eq!(https, key(&route("https", "example.com", 11, 443)));
        assert_ne!(https, key(&route("https", "example.org", 11, 443)));
        assert_ne!(https, key(&route("http", "example.com", 11, 443)));
        // Cut where the capture ended.
        assert_eq!(
            key(&route("https", "example.com", 3, 443)).display(),
            r#"{"https", "exa…", 443}"#
        );
        // Words that are not strings: small ones as integers, others in hex.
        let mut far = route("", "", 0, 0x1_0000_0000);
        far[16..24].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(
            Key::decode_with_strings(Some(Kind::Struct), &far, 40, 0b1).display(),
            r#"{"", 0, 0, 0x100000000}"#
        );
        // Without its whole struct, a key reads as bytes.
        assert!(
            key(&route("https", "example.com", 11, 443)[..32])
                .display()
                .starts_with("hex:")
        );
    }

    #[test]
    fn unreadable_and_keyless_operations() {
        assert_eq!(Key::decode(Some(Kind::String), b"", 5), Key::Unreadable);
        assert_eq!(Key::decode(None, b"", 0), Key::None);
    }
}
