//! JSON for Rust guests: a `Value` like serde_json's (with `payload["key"].as_str()` and friends),
//! a strict RFC 8259 parser (errors with line, column and byte offset, a nesting limit for the small
//! guest stack), a compact writer whose bytes match the C SDK's (integral numbers as integers, other
//! numbers in the fewest digits that round-trip, `%g` style), and the `json!` macro.
//! Objects keep their members in order, as the C SDK does; a later duplicate key wins on lookup.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Nesting deeper than this is refused (the parser recurses; the default guest stack is 64 KiB).
pub const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug)]
pub enum Number {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
}
impl PartialEq for Number {
    fn eq(&self, o: &Number) -> bool {
        match (self.as_i128(), o.as_i128()) {
            (Some(a), Some(b)) => a == b,
            _ => self.as_f64() == o.as_f64(),
        }
    }
}
impl Number {
    fn as_i128(&self) -> Option<i128> {
        match *self {
            Number::PosInt(u) => Some(u as i128),
            Number::NegInt(i) => Some(i as i128),
            Number::Float(_) => None,
        }
    }
    pub fn as_f64(&self) -> f64 {
        match *self {
            Number::PosInt(u) => u as f64,
            Number::NegInt(i) => i as f64,
            Number::Float(f) => f,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Number::PosInt(u) if u <= i64::MAX as u64 => Some(u as i64),
            Number::NegInt(i) => Some(i),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Number::PosInt(u) => Some(u),
            _ => None,
        }
    }
    pub fn is_integer(&self) -> bool {
        !matches!(self, Number::Float(_))
    }
    pub fn from_f64(f: f64) -> Number {
        Number::Float(f)
    }
}

/// An object: members in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}
impl Map {
    pub fn new() -> Map {
        Map { entries: Vec::new() }
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    fn find(&self, key: &str) -> Option<usize> {
        self.entries.iter().rposition(|(k, _)| k == key)
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).map(|i| &self.entries[i].1)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self.find(key) {
            Some(i) => Some(&mut self.entries[i].1),
            None => None,
        }
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }
    /// Sets key to value (replacing an existing member in place); returns the old value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.find(&key) {
            Some(i) => Some(core::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }
    /// Appends a member without looking for an existing one (what the parser does).
    pub fn push(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

static NULL: Value = Value::Null;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_boolean(&self) -> bool {
        matches!(self, Value::Bool(_))
    }
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }
    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }
    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }
    pub fn is_i64(&self) -> bool {
        self.as_i64().is_some()
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n.as_f64()),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
    /// `v.get("key")` for objects, `v.get(3)` for arrays.
    pub fn get<I: Index>(&self, i: I) -> Option<&Value> {
        i.index_into(self)
    }
    /// The C SDK's type names: "null", "bool", "number", "string", "array", "object".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// What `Value::get` and `value[...]` accept: a key or an array index.
pub trait Index {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value>;
}
impl Index for usize {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_array().and_then(|a| a.get(*self))
    }
}
impl Index for str {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_object().and_then(|o| o.get(self))
    }
}
impl Index for String {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.as_str().index_into(v)
    }
}
impl<'a, T: ?Sized + Index> Index for &'a T {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        (**self).index_into(v)
    }
}
/// `payload["key"]` and `payload[0]`: Null when missing, as in serde_json.
impl<I: Index> core::ops::Index<I> for Value {
    type Output = Value;
    fn index(&self, i: I) -> &Value {
        i.index_into(self).unwrap_or(&NULL)
    }
}

// ---- Conversions (what json! accepts as a value) ------------------------------------------------------
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
macro_rules! from_unsigned {
    ($($t:ty)*) => {$(impl From<$t> for Value {
        fn from(u: $t) -> Value { Value::Number(Number::PosInt(u as u64)) }
    })*};
}
macro_rules! from_signed {
    ($($t:ty)*) => {$(impl From<$t> for Value {
        fn from(i: $t) -> Value {
            if i < 0 { Value::Number(Number::NegInt(i as i64)) } else { Value::Number(Number::PosInt(i as u64)) }
        }
    })*};
}
from_unsigned!(u8 u16 u32 u64 usize);
from_signed!(i8 i16 i32 i64 isize);
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Number(Number::Float(f))
    }
}
impl From<f32> for Value {
    fn from(f: f32) -> Value {
        Value::Number(Number::Float(f as f64))
    }
}
impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(String::from(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Object(m)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        match o {
            Some(v) => v.into(),
            None => Value::Null,
        }
    }
}
impl From<&Value> for Value {
    fn from(v: &Value) -> Value {
        v.clone()
    }
}
impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Null
    }
}

// ---- Parsing -------------------------------------------------------------------------------------------
/// Why input is not JSON, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub message: String,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} at line {}, column {} (byte {})", self.message, self.line, self.column, self.offset)
    }
}

/// Parses one JSON value (whitespace around it allowed, nothing else).
pub fn from_slice(s: &[u8]) -> Result<Value, Error> {
    let mut p = Parser { s, pos: 0, depth: 0 };
    p.ws();
    if p.pos >= s.len() {
        return Err(p.err(p.pos, String::from("empty input: expected a JSON value")));
    }
    let v = p.value()?;
    p.ws();
    if p.pos < s.len() {
        return Err(p.unexpected("the end of input after the JSON value"));
    }
    Ok(v)
}

/// `from_slice` for text.
pub fn from_str(s: &str) -> Result<Value, Error> {
    from_slice(s.as_bytes())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, at: usize, message: String) -> Error {
        let mut line = 1;
        let mut col = 1;
        for &c in &self.s[..at.min(self.s.len())] {
            if c == b'\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        Error { message, offset: at, line, column: col }
    }
    fn unexpected(&self, expected: &str) -> Error {
        match self.s.get(self.pos) {
            None => self.err(self.pos, alloc::format!("unexpected end of input: expected {}", expected)),
            Some(&c) if (0x20..0x7f).contains(&c) => self.err(
                self.pos,
                alloc::format!("unexpected character '{}': expected {}", c as char, expected),
            ),
            Some(&c) => self.err(self.pos, alloc::format!("unexpected byte 0x{:02X}: expected {}", c, expected)),
        }
    }
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }
    fn value(&mut self) -> Result<Value, Error> {
        match self.s.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(self.unexpected("a value")),
        }
    }
    fn literal(&mut self, word: &str, v: Value) -> Result<Value, Error> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err(self.pos, alloc::format!("invalid literal: expected '{}'", word)))
        }
    }
    fn enter(&mut self, open: usize) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(open, alloc::format!("nesting deeper than {} levels", MAX_DEPTH)));
        }
        Ok(())
    }
    fn array(&mut self) -> Result<Value, Error> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let mut a = Vec::new();
        self.ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(a));
        }
        loop {
            self.ws();
            a.push(self.value()?);
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Array(a));
                }
                _ => return Err(self.unexpected("',' or ']' after an array element")),
            }
        }
    }
    fn object(&mut self) -> Result<Value, Error> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let mut m = Map::new();
        self.ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(m));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.unexpected("a string (an object member name)"));
            }
            let k = self.string()?;
            self.ws();
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.unexpected("':' after an object member name"));
            }
            self.pos += 1;
            self.ws();
            let v = self.value()?;
            m.push(k, v);
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Object(m));
                }
                _ => return Err(self.unexpected("',' or '}' after an object member")),
            }
        }
    }
    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        Some(v)
    }
    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = match self.s.get(self.pos) {
                Some(&c) => c,
                None => return Err(self.err(start, String::from("unterminated string"))),
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    // Every byte was checked below: valid UTF-8.
                    return Ok(String::from_utf8(out).unwrap_or_default());
                }
                b'\\' => {
                    let e = match self.s.get(self.pos + 1) {
                        Some(&e) => e,
                        None => return Err(self.err(start, String::from("unterminated string"))),
                    };
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        _ => None,
                    };
                    if let Some(b) = simple {
                        out.push(b);
                        self.pos += 2;
                        continue;
                    }
                    if e != b'u' {
                        let m = if (0x20..0x7f).contains(&e) {
                            alloc::format!("invalid escape '\\{}' in string", e as char)
                        } else {
                            String::from("invalid escape in string")
                        };
                        return Err(self.err(self.pos, m));
                    }
                    let mut cp = match self.hex4(self.pos + 2) {
                        Some(v) => v,
                        None => {
                            return Err(self.err(self.pos, String::from("invalid \\u escape: expected four hex digits")))
                        }
                    };
                    let at = self.pos;
                    self.pos += 6;
                    if (0xDC00..0xE000).contains(&cp) {
                        return Err(self.err(at, alloc::format!("invalid \\u escape: unpaired low surrogate \\u{:04X}", cp)));
                    }
                    if (0xD800..0xDC00).contains(&cp) {
                        let lo = if self.s.get(self.pos) == Some(&b'\\') && self.s.get(self.pos + 1) == Some(&b'u') {
                            self.hex4(self.pos + 2)
                        } else {
                            None
                        };
                        match lo {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                self.pos += 6;
                            }
                            _ => {
                                return Err(self.err(at, alloc::format!(
                                    "invalid \\u escape: high surrogate \\u{:04X} not followed by a low surrogate", cp)))
                            }
                        }
                    }
                    let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => {
                    return Err(self.err(self.pos, alloc::format!("control character 0x{:02X} in string (it must be escaped)", c)))
                }
                0x80..=0xff => {
                    let n = utf8_len(&self.s[self.pos..]);
                    if n == 0 {
                        return Err(self.err(self.pos, alloc::format!("invalid UTF-8 in string (byte 0x{:02X})", c)));
                    }
                    out.extend_from_slice(&self.s[self.pos..self.pos + n]);
                    self.pos += n;
                }
                _ => {
                    // A run of plain ASCII in one copy.
                    let run = self.s[self.pos..]
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || b < 0x20 || b >= 0x80)
                        .unwrap_or(self.s.len() - self.pos);
                    out.extend_from_slice(&self.s[self.pos..self.pos + run]);
                    self.pos += run;
                }
            }
        }
    }
    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let s = self.s;
        let mut i = self.pos;
        let neg = s[i] == b'-';
        if neg {
            i += 1;
        }
        let digits = |mut j: usize| {
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            j
        };
        if i >= s.len() || !s[i].is_ascii_digit() {
            return Err(self.err(i, String::from("invalid number: expected a digit after '-'")));
        }
        if s[i] == b'0' && i + 1 < s.len() && s[i + 1].is_ascii_digit() {
            return Err(self.err(start, String::from("invalid number: leading zeros are not allowed")));
        }
        i = digits(i);
        let mut int = true;
        if i < s.len() && s[i] == b'.' {
            int = false;
            i += 1;
            if i >= s.len() || !s[i].is_ascii_digit() {
                return Err(self.err(i, String::from("invalid number: expected a digit after '.'")));
            }
            i = digits(i);
        }
        if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
            int = false;
            i += 1;
            if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
                i += 1;
            }
            if i >= s.len() || !s[i].is_ascii_digit() {
                return Err(self.err(i, String::from("invalid number: expected a digit in the exponent")));
            }
            i = digits(i);
        }
        self.pos = i;
        // ASCII digits, signs, '.', 'e': always UTF-8.
        let text = core::str::from_utf8(&s[start..i]).unwrap_or("");
        if int {
            if neg {
                if let Ok(v) = text.parse::<i64>() {
                    return Ok(Value::Number(if v == 0 { Number::Float(-0.0) } else { Number::NegInt(v) }));
                }
            } else if let Ok(v) = text.parse::<u64>() {
                return Ok(Value::Number(Number::PosInt(v)));
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Number(Number::Float(f))),
            _ => Err(self.err(start, String::from("number out of range (too large for a double)"))),
        }
    }
}

/// Length of the UTF-8 sequence at the start of s, 0 if it is not valid (overlong, surrogate, > U+10FFFF).
fn utf8_len(s: &[u8]) -> usize {
    let n = match s.first() {
        Some(&c) if c < 0x80 => return 1,
        Some(&c) if (0xC2..0xE0).contains(&c) => 2,
        Some(&c) if (0xE0..0xF0).contains(&c) => 3,
        Some(&c) if (0xF0..0xF5).contains(&c) => 4,
        _ => return 0,
    };
    match s.get(..n).map(core::str::from_utf8) {
        Some(Ok(_)) => n,
        _ => 0,
    }
}

// ---- Writing ---------------------------------------------------------------------------------------
/// The compact JSON text of v, as bytes (the C SDK's writer produces the same bytes).
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(v, &mut out);
    out
}

/// The compact JSON text of v.
pub fn to_string(v: &Value) -> String {
    // The writer emits valid UTF-8 only (strings are UTF-8, everything else ASCII).
    String::from_utf8(to_vec(v)).unwrap_or_default()
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&to_string(self))
    }
}

fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(x, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(x, out);
            }
            out.push(b'}');
        }
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);
impl<'a> fmt::Write for VecWriter<'a> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn write_number(n: &Number, out: &mut Vec<u8>) {
    use fmt::Write;
    let mut w = VecWriter(out);
    let d = match *n {
        Number::PosInt(u) => {
            let _ = write!(w, "{}", u);
            return;
        }
        Number::NegInt(i) => {
            let _ = write!(w, "{}", i);
            return;
        }
        Number::Float(d) => d,
    };
    if !d.is_finite() {
        let _ = w.write_str("null");
        return;
    }
    // Integral values a double holds exactly: as integers.
    if d > -9007199254740992.0 && d < 9007199254740992.0 && d == (d as i64) as f64 {
        if d == 0.0 && d.is_sign_negative() {
            let _ = w.write_str("-0");
        } else {
            let _ = write!(w, "{}", d as i64);
        }
        return;
    }
    // Otherwise the shortest digits that round-trip (Rust's {:e}), laid out as C's %.Pg with
    // P = max(15, digits): the precision the C SDK's writer settles on.
    let mut sci: Vec<u8> = Vec::new();
    let _ = write!(VecWriter(&mut sci), "{:e}", d);
    let (neg, body) = if sci.first() == Some(&b'-') { (true, &sci[1..]) } else { (false, &sci[..]) };
    let epos = body.iter().position(|&c| c == b'e').unwrap_or(body.len());
    let digits: Vec<u8> = body[..epos].iter().copied().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = core::str::from_utf8(&body[(epos + 1).min(body.len())..]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let p = (digits.len() as i32).max(15);
    if neg {
        w.0.push(b'-');
    }
    if exp < -4 || exp >= p {
        w.0.push(digits[0]);
        if digits.len() > 1 {
            w.0.push(b'.');
            w.0.extend_from_slice(&digits[1..]);
        }
        let _ = write!(w, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        w.0.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            w.0.push(b'0');
        }
        w.0.extend_from_slice(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            w.0.extend_from_slice(&digits);
            for _ in digits.len()..int_len {
                w.0.push(b'0');
            }
        } else {
            w.0.extend_from_slice(&digits[..int_len]);
            w.0.push(b'.');
            w.0.extend_from_slice(&digits[int_len..]);
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &c in s.as_bytes() {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

// ---- json! ------------------------------------------------------------------------------------------
/// Builds a `Value` from JSON-like syntax, as serde_json's macro does: `json!({"a": [1, x, null],
/// "b": {"c": s.len()}})`. Keys are string literals or `(expressions)`; values are `null`, nested
/// `[...]`/`{...}`, or any expression with a `From` conversion into `Value`.
#[macro_export]
macro_rules! json {
    (null) => { $crate::Value::Null };
    ([ $($tt:tt)* ]) => {
        $crate::Value::Array({
            #[allow(unused_mut)]
            let mut v: $crate::Vec<$crate::Value> = $crate::Vec::new();
            $crate::__json_array!(v $($tt)*);
            v
        })
    };
    ({ $($tt:tt)* }) => {
        $crate::Value::Object({
            #[allow(unused_mut)]
            let mut m = $crate::Map::new();
            $crate::__json_object!(m $($tt)*);
            m
        })
    };
    ($other:expr) => { $crate::Value::from($other) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __json_array {
    ($v:ident) => {};
    ($v:ident null $(, $($rest:tt)*)?) => {
        $v.push($crate::Value::Null);
        $crate::__json_array!($v $($($rest)*)?);
    };
    ($v:ident [ $($a:tt)* ] $(, $($rest:tt)*)?) => {
        $v.push($crate::json!([ $($a)* ]));
        $crate::__json_array!($v $($($rest)*)?);
    };
    ($v:ident { $($o:tt)* } $(, $($rest:tt)*)?) => {
        $v.push($crate::json!({ $($o)* }));
        $crate::__json_array!($v $($($rest)*)?);
    };
    ($v:ident $e:expr , $($rest:tt)*) => {
        $v.push($crate::json!($e));
        $crate::__json_array!($v $($rest)*);
    };
    ($v:ident $e:expr) => {
        $v.push($crate::json!($e));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __json_object {
    ($m:ident) => {};
    ($m:ident ($k:expr) : $($rest:tt)*) => {
        $crate::__json_member!($m ($crate::String::from($k)) $($rest)*);
    };
    ($m:ident $k:literal : $($rest:tt)*) => {
        $crate::__json_member!($m ($crate::String::from($k)) $($rest)*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __json_member {
    ($m:ident ($k:expr) null $(, $($rest:tt)*)?) => {
        $m.insert($k, $crate::Value::Null);
        $crate::__json_object!($m $($($rest)*)?);
    };
    ($m:ident ($k:expr) [ $($a:tt)* ] $(, $($rest:tt)*)?) => {
        $m.insert($k, $crate::json!([ $($a)* ]));
        $crate::__json_object!($m $($($rest)*)?);
    };
    ($m:ident ($k:expr) { $($o:tt)* } $(, $($rest:tt)*)?) => {
        $m.insert($k, $crate::json!({ $($o)* }));
        $crate::__json_object!($m $($($rest)*)?);
    };
    ($m:ident ($k:expr) $e:expr , $($rest:tt)*) => {
        $m.insert($k, $crate::json!($e));
        $crate::__json_object!($m $($rest)*);
    };
    ($m:ident ($k:expr) $e:expr) => {
        $m.insert($k, $crate::json!($e));
    };
}
