//! Hand-written JSON reading for the gateway's hottest paths, where serde_json's derive
//! pays per token (a visitor call for every value, a field match for every key, a walk
//! into every skipped value) several times what a direct scan costs.
//!
//! Each fast reader built on this (`openai_chat::summary` for an answer passed through,
//! `openai_chat::request_scan` for a chat request) keeps one contract with its caller:
//! it gives `Some` only when serde's reading would accept the text and produce exactly
//! the same values. Whatever it is not sure of gives `None`, and the caller asks serde,
//! whose answer and error message are then the ones given. Falling back is always
//! allowed; disagreeing never is.
//!
//! The scanning functions take the text and an index and answer the index just past what
//! they read: positions stay in registers, which matters at a few instructions a token.

/// How deep a reader follows nesting (the outermost object is level 1) before it leaves
/// the text to serde: skipped values keep one bit per level in a `u128`. serde_json skips
/// unknown values of any depth; real requests and answers nest a handful of levels.
const MAX_DEPTH: usize = 128;

/// A position in a JSON text. Each method starts at the first byte of the value it reads
/// (whitespace already skipped) and leaves `at` just past it.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the first value of `body`, if `body` is UTF-8. One check of the whole
    /// text, as serde's reading makes; after it, the bytes between two quotes are always
    /// a `str`.
    pub(crate) fn new(body: &'a [u8]) -> Option<Reader<'a>> {
        let text = std::str::from_utf8(body).ok()?;
        Some(Reader { text, at: whitespace_end(body, 0) })
    }

    /// Whether only whitespace follows: serde refuses anything after the value.
    pub(crate) fn at_end(&self) -> bool {
        whitespace_end(self.bytes(), self.at) == self.text.len()
    }

    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Reads an object member by member: `member` gets each key, with the reader at its
    /// value, and must read or skip the value. A key with escapes gives `None`:
    /// unescaped, it might spell a name the caller reads.
    #[inline(always)]
    pub(crate) fn members(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        let bytes = self.bytes();
        if bytes.get(self.at) != Some(&b'{') {
            return None;
        }
        let (mut next, mut at) = token(bytes, self.at + 1)?;
        if next == b'}' {
            self.at = at + 1;
            return Some(());
        }
        loop {
            if next != b'"' {
                return None;
            }
            let key_end = plain_string_end(bytes, at)?;
            let key = bytes.get(at + 1..key_end - 1)?;
            let (colon, colon_at) = token(bytes, key_end)?;
            if colon != b':' {
                return None;
            }
            self.at = token(bytes, colon_at + 1)?.1;
            member(self, key)?;
            let (separator, separator_at) = token(bytes, self.at)?;
            match separator {
                b',' => (next, at) = token(bytes, separator_at + 1)?,
                b'}' => {
                    self.at = separator_at + 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips an unknown member's value. Most are a string or a number, skipped here;
    /// the rest take the call to [`value_end`].
    #[inline(always)]
    pub(crate) fn skip_value(&mut self, depth: usize) -> Option<()> {
        let bytes = self.bytes();
        self.at = match *bytes.get(self.at)? {
            b'"' => string_end(bytes, self.at)?,
            b'-' | b'0'..=b'9' => number_end(bytes, self.at)?,
            _ => value_end(bytes, self.at, depth)?,
        };
        Some(())
    }

    /// A string value without escapes, borrowed from the text. One with escapes gives
    /// `None`: it would need unescaping, and in an id or a model name it is rare.
    pub(crate) fn plain_string(&mut self) -> Option<&'a str> {
        if self.bytes().get(self.at) != Some(&b'"') {
            return None;
        }
        let end = plain_string_end(self.bytes(), self.at)?;
        let text = self.text.get(self.at + 1..end - 1)?;
        self.at = end;
        Some(text)
    }

    /// A count, read as serde_json reads a `u64`: digits only, no leading zero, no
    /// fraction or exponent (those make a float, which serde refuses for an integer),
    /// and no more than `u64::MAX`.
    pub(crate) fn unsigned(&mut self) -> Option<u64> {
        let bytes = self.bytes();
        let end = digits_end(bytes, self.at);
        let digits = bytes.get(self.at..end)?;
        let leading_zero = digits.len() > 1 && digits.first() == Some(&b'0');
        if digits.is_empty() || leading_zero || matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = if digits.len() < 20 {
            // Nineteen digits or fewer cannot overflow.
            digits.iter().fold(0, |value, digit| value * 10 + u64::from(digit - b'0'))
        } else {
            digits.iter().try_fold(0u64, |value, digit| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))?
        };
        self.at = end;
        Some(value)
    }

    /// A time, read as serde_json reads an `i64`. `-0` gives `None`: serde_json reads it
    /// as a float, which it then refuses for an integer.
    pub(crate) fn signed(&mut self) -> Option<i64> {
        if self.bytes().get(self.at) != Some(&b'-') {
            return i64::try_from(self.unsigned()?).ok();
        }
        self.at += 1;
        match self.unsigned()? {
            0 => None,
            magnitude => 0i64.checked_sub_unsigned(magnitude),
        }
    }

    /// A string value, unescaped. The usual string, with no escape, is copied as it is.
    pub(crate) fn string(&mut self) -> Option<String> {
        let bytes = self.bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        let open = self.at;
        if let Some(end) = plain_string_end(bytes, open) {
            self.at = end;
            return Some(self.text.get(open + 1..end - 1)?.to_owned());
        }
        let end = string_end(bytes, open)?;
        self.at = end;
        unescape(self.text.get(open + 1..end - 1)?)
    }

    /// A number as an `f64`, read as serde_json reads one (it rounds correctly, as Rust's
    /// parser does, with the `float_roundtrip` feature this crate turns on). A number too
    /// large for an `f64` gives `None`: serde refuses it.
    pub(crate) fn float(&mut self) -> Option<f64> {
        let end = number_end(self.bytes(), self.at)?;
        let value: f64 = self.text.get(self.at..end)?.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        self.at = end;
        Some(value)
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"true") {
            Some(true)
        } else if self.literal(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// `null` as the outer `None`, or the value `read` reads: serde's reading of an
    /// `Option` member.
    #[inline(always)]
    pub(crate) fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null") {
            return Some(None);
        }
        read(self).map(Some)
    }

    /// Reads an array element by element: `element` starts at each and must read it.
    #[inline(always)]
    pub(crate) fn elements(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        let bytes = self.bytes();
        if bytes.get(self.at) != Some(&b'[') {
            return None;
        }
        let (first, first_at) = token(bytes, self.at + 1)?;
        if first == b']' {
            self.at = first_at + 1;
            return Some(());
        }
        self.at = first_at;
        loop {
            element(self)?;
            let (separator, separator_at) = token(bytes, self.at)?;
            match separator {
                b',' => self.at = token(bytes, separator_at + 1)?.1,
                b']' => {
                    self.at = separator_at + 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Moves past `literal` if it comes next.
    pub(crate) fn literal(&mut self, literal: &[u8]) -> bool {
        match literal_end(self.bytes(), self.at, literal) {
            Some(end) => {
                self.at = end;
                true
            }
            None => false,
        }
    }
}

/// Stores a member's value, or gives `None` if it was already seen: serde's derive
/// refuses a struct with a field twice, whatever the values.
#[inline(always)]
pub(crate) fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// The index just past the value that starts at `at`, checked as serde_json checks a
/// value it skips. `depth` is the nesting of the container holding the value. Nested
/// containers are followed with a loop and a stack of bits, not recursion, so no input
/// can exhaust the call stack.
pub(crate) fn value_end(bytes: &[u8], mut at: usize, depth: usize) -> Option<usize> {
    // One bit per open container, the innermost lowest: set for an object.
    let mut open_objects: u128 = 0;
    let mut nested = 0;
    loop {
        let first = *bytes.get(at)?;
        match first {
            b'"' => at = string_end(bytes, at)?,
            b'{' | b'[' => {
                nested += 1;
                if depth + nested > MAX_DEPTH {
                    return None;
                }
                let is_object = first == b'{';
                let (next, next_at) = token(bytes, at + 1)?;
                if next == if is_object { b'}' } else { b']' } {
                    at = next_at + 1;
                    nested -= 1;
                } else {
                    open_objects = open_objects << 1 | u128::from(is_object);
                    at = if is_object { member_value_start(bytes, next_at)? } else { next_at };
                    continue;
                }
            }
            b't' => at = literal_end(bytes, at, b"true")?,
            b'f' => at = literal_end(bytes, at, b"false")?,
            b'n' => at = literal_end(bytes, at, b"null")?,
            b'-' | b'0'..=b'9' => at = number_end(bytes, at)?,
            _ => return None,
        }
        // A value ended: close the containers it ends, until one has another element.
        loop {
            if nested == 0 {
                return Some(at);
            }
            let (next, next_at) = token(bytes, at)?;
            let in_object = open_objects & 1 == 1;
            match (next, in_object) {
                (b',', true) => {
                    at = member_value_start(bytes, token(bytes, next_at + 1)?.1)?;
                    break;
                }
                (b',', false) => {
                    at = token(bytes, next_at + 1)?.1;
                    break;
                }
                (b'}', true) | (b']', false) => {
                    at = next_at + 1;
                    nested -= 1;
                    open_objects >>= 1;
                }
                _ => return None,
            }
        }
    }
}

/// Where the value of the member at `at` starts: past its key, which may have escapes
/// (this is for members nothing reads), the colon and any whitespace.
#[inline(always)]
fn member_value_start(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let (colon, colon_at) = token(bytes, string_end(bytes, at)?)?;
    if colon != b':' {
        return None;
    }
    Some(token(bytes, colon_at + 1)?.1)
}

/// The index just past the string whose opening quote is at `open`, checked as serde_json
/// checks one: no control characters, and only the escapes JSON has.
#[inline(always)]
fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    scan_string(bytes, open, true)
}

/// Like [`string_end`], for a string the caller needs as text without unescaping:
/// one with escapes gives `None`.
#[inline(always)]
fn plain_string_end(bytes: &[u8], open: usize) -> Option<usize> {
    scan_string(bytes, open, false)
}

/// [`string_end`] and [`plain_string_end`]. The common case, no escape before the closing
/// quote, is all this handles itself, eight bytes a turn. Inlined: most strings in an
/// answer are short, and a call costs about as much as scanning one.
#[inline(always)]
fn scan_string(bytes: &[u8], open: usize, escapes_allowed: bool) -> Option<usize> {
    let mut at = open + 1;
    // Bounded by an index, not by `get` failing: the compiler then checks once a turn.
    let words_end = bytes.len().saturating_sub(7);
    while at < words_end {
        let word = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
        let stops = stop_bytes(word);
        if stops != 0 {
            // The lowest mark is the high bit of the first stop byte.
            let shift = stops.trailing_zeros() & !7;
            at += (shift / 8) as usize;
            if (word >> shift) as u8 == b'"' {
                return Some(at + 1);
            }
            return finish_string(bytes, at, escapes_allowed);
        }
        at += 8;
    }
    // Fewer than eight bytes are left in the text.
    finish_string(bytes, at, escapes_allowed)
}

/// The rest of [`scan_string`], from `at` inside the string: escapes to check, control
/// characters, the end of the text. A lone surrogate escape gives `None`, though serde
/// lets one pass in a string it skips: such text is rare, and serde can judge it.
#[inline(never)]
fn finish_string(bytes: &[u8], mut at: usize, escapes_allowed: bool) -> Option<usize> {
    loop {
        at = string_stop(bytes, at);
        match *bytes.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' if escapes_allowed => at = escape_end(bytes, at + 1)?,
            _ => return None, // an escape where none may be, or a control character
        }
    }
}

/// The index of the first byte at or after `at` that ends a run of plain string text (a
/// quote, a backslash or a control character), or the end of `bytes`.
fn string_stop(bytes: &[u8], mut at: usize) -> usize {
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let stops = stop_bytes(u64::from_le_bytes(*word));
        if stops != 0 {
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes.get(at).is_some_and(|&byte| byte != b'"' && byte != b'\\' && byte >= 0x20) {
        at += 1;
    }
    at
}

const ONE_IN_EACH_BYTE: u64 = u64::MAX / 255;
const HIGH_BIT_OF_EACH_BYTE: u64 = ONE_IN_EACH_BYTE << 7;

/// Eight bytes of a string at once, with the classic has-zero-byte trick: the high bit is
/// set in each byte of the result that is a quote, a backslash or below 0x20. A byte is a
/// control character or a quote exactly when, with its bit 1 flipped, it is below 0x21
/// (0x22 becomes 0x20; the control characters stay below 0x20), so one test finds both.
/// A borrow can also mark bytes above the first real one, never below it, so the lowest
/// mark is exact, and it is the only one the callers use. Eight at a time, not memchr:
/// most strings in an answer are a few dozen bytes, too short for memchr's setup.
#[inline(always)]
fn stop_bytes(word: u64) -> u64 {
    let controls_and_quotes = (word ^ (ONE_IN_EACH_BYTE * 0x02)).wrapping_sub(ONE_IN_EACH_BYTE * 0x21);
    let backslashes = (word ^ (ONE_IN_EACH_BYTE * u64::from(b'\\'))).wrapping_sub(ONE_IN_EACH_BYTE);
    (controls_and_quotes | backslashes) & !word & HIGH_BIT_OF_EACH_BYTE
}

/// The index just past the escape whose letter is at `at` (just after a backslash), if
/// JSON has it. A `\u` escape of a surrogate counts only as a well-formed pair.
fn escape_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 1),
        b'u' => match hex_unit(bytes.get(at + 1..at + 5)?)? {
            0xD800..=0xDBFF => {
                if bytes.get(at + 5..at + 7)? != b"\\u" {
                    return None;
                }
                let trailing = hex_unit(bytes.get(at + 7..at + 11)?)?;
                (0xDC00..=0xDFFF).contains(&trailing).then_some(at + 11)
            }
            0xDC00..=0xDFFF => None,
            _ => Some(at + 5),
        },
        _ => None,
    }
}

/// The text of a string's inside whose escapes [`string_end`] has checked, unescaped as
/// serde_json unescapes it: a surrogate pair becomes its one character.
fn unescape(inside: &str) -> Option<String> {
    let bytes = inside.as_bytes();
    let mut text = String::with_capacity(inside.len());
    let mut at = 0;
    loop {
        let stop = string_stop(bytes, at);
        text.push_str(inside.get(at..stop)?);
        if stop == bytes.len() {
            return Some(text);
        }
        // `string_end` let through no quote or control character inside: this is a backslash.
        let letter = *bytes.get(stop + 1)?;
        at = stop + 2;
        let unescaped = match letter {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex_unit(bytes.get(at..at + 4)?)?;
                at += 4;
                let code = if (0xD800..=0xDBFF).contains(&unit) {
                    // The trailing half, `\uXXXX`, checked to follow.
                    let trailing = hex_unit(bytes.get(at + 2..at + 6)?)?;
                    at += 6;
                    0x10000 + ((unit - 0xD800) << 10) + (trailing - 0xDC00)
                } else {
                    unit
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        text.push(unescaped);
    }
}

/// The UTF-16 unit that four hex digits spell.
fn hex_unit(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |unit, &digit| Some(unit << 4 | char::from(digit).to_digit(16)?))
}

/// The index just past the number that starts at `at`, checked as serde_json skips one:
/// an optional `-`, an integer with no leading zero, then an optional fraction and
/// exponent, each with a digit at least.
#[inline(always)]
fn number_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    match bytes.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at = digits_end(bytes, at + 1),
        _ => return None,
    }
    if bytes.get(at) == Some(&b'.') {
        let end = digits_end(bytes, at + 1);
        if end == at + 1 {
            return None;
        }
        at = end;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let end = digits_end(bytes, at);
        if end == at {
            return None;
        }
        at = end;
    }
    Some(at)
}

/// The index of the first byte at or after `at` that is not a decimal digit.
#[inline(always)]
fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

/// The index just past `literal` if it comes at `at`.
#[inline(always)]
fn literal_end(bytes: &[u8], at: usize, literal: &[u8]) -> Option<usize> {
    bytes.get(at..)?.starts_with(literal).then_some(at + literal.len())
}

/// The first byte at or after `at` that is not whitespace, and its index; `None` at the
/// end of the text. Compact JSON has no whitespace between tokens, so a byte above the
/// space is answered at once and the loop is left to [`whitespace_end`].
#[inline(always)]
fn token(bytes: &[u8], at: usize) -> Option<(u8, usize)> {
    let byte = *bytes.get(at)?;
    if byte > b' ' {
        return Some((byte, at));
    }
    let at = whitespace_end(bytes, at);
    Some((*bytes.get(at)?, at))
}

/// The index of the first byte at or after `at` that is not JSON whitespace, which is
/// serde_json's too: no other space counts.
fn whitespace_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The lowest mark of [`stop_bytes`], and its lane, as a byte-at-a-time search finds it.
    fn first_stop(word: [u8; 8]) -> (Option<usize>, Option<usize>) {
        let stops = stop_bytes(u64::from_le_bytes(word));
        let found = (stops != 0).then(|| (stops.trailing_zeros() / 8) as usize);
        let expected = word.iter().position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20);
        (found, expected)
    }

    #[test]
    fn the_first_quote_backslash_or_control_character_in_a_word_is_found_exactly() {
        // Every byte value in every lane, after plain text and before bytes of every kind:
        // a borrow from a stop must not mark a lane below it, and nothing else may mark one.
        for lane in 0..8 {
            for byte in 0..=255u8 {
                for after in [b'a', 0x00, b'"', b'\\', 0x1f, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff] {
                    let mut word = [b'x'; 8];
                    word[lane] = byte;
                    word[lane + 1..].fill(after);
                    let (found, expected) = first_stop(word);
                    assert_eq!(found, expected, "{word:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_word_has_its_first_stop_byte_found_exactly(word in prop::array::uniform8(prop_oneof![any::<u8>(), prop::sample::select(b"\"\\\x00\x1f\x20\x21\x22\x5c\x7f\x80\xff".to_vec())])) {
            let (found, expected) = first_stop(word);
            prop_assert_eq!(found, expected, "{:?}", word);
        }
    }
}
