//! JavaScript values → the beacon's token stream ([`Tokens`]), by walking them by hand.
//! serde-wasm-bindgen would do it in one line, but links ~15 KB (brotli) of formatting code,
//! and a map type in between would cost more again; see BENCHMARKS.md.

use js_sys::{Array, Reflect};
use portrait_core::client::NOT_A_FINITE_NUMBER;
use portrait_core::record::{MAX_RECORD_BYTES, Token, Tokens};
use wasm_bindgen::prelude::*;

/// Deeper than core's limit, so the collector's validation names the problem; bounded, so a
/// cyclic object cannot recurse forever.
const MAX_WALK_DEPTH: usize = 16;
/// The most values one walk reads. With [`MAX_RECORD_BYTES`] written, it bounds the work a
/// value that is no data can cost (a DOM node, a browser event or `window`: thousands of
/// keys at each of [`MAX_WALK_DEPTH`] levels, which no depth bound alone keeps short).
const MAX_WALK_VALUES: u32 = 50_000;

/// Properties (or traits) being written: each top-level key once, the first writer of a key
/// winning (a beacon with a key twice is refused).
#[derive(Default)]
pub struct Props {
    pub tokens: Tokens,
    keys: Vec<String>,
    walk: Walk,
}

/// What a walk has read so far, and whether it stopped at its bounds.
#[derive(Default)]
struct Walk {
    values: u32,
    cut: bool,
}

impl Walk {
    /// Whether one more value may be read into `tokens`.
    fn goes_on(&mut self, tokens: &Tokens) -> bool {
        self.values += 1;
        self.cut |= self.values > MAX_WALK_VALUES || tokens.byte_len() > MAX_RECORD_BYTES;
        !self.cut
    }
}

impl Props {
    /// A JS object's own enumerable properties, as JSON.stringify keeps them (functions,
    /// `undefined` and symbols are left out); anything that is not an object adds nothing.
    pub fn from_object(value: &JsValue) -> Props {
        let mut props = Props::default();
        props.keys = object_entries(&json_view(value), &mut props.tokens, 0, &mut props.walk);
        props
    }

    /// Whether the walk stopped before the end: the value is more than an event can carry,
    /// and what was read of it is not the value.
    pub fn is_cut(&self) -> bool {
        self.walk.cut
    }

    /// Starts `key` unless it is there already: then the caller writes its value.
    fn key(&mut self, key: &str) -> Option<&mut Tokens> {
        if key == FORBIDDEN_KEY || self.keys.iter().any(|held| held == key) {
            return None;
        }
        self.keys.push(key.to_owned());
        Some(self.tokens.key(key))
    }

    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key).map(|tokens| tokens.str(value));
    }

    pub fn int(&mut self, key: &str, value: i64) {
        self.key(key).map(|tokens| tokens.int(value));
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key).map(|tokens| tokens.bool(value));
    }

    /// A JS value; left out as JSON would leave it out.
    pub fn value(&mut self, key: &str, value: &JsValue) {
        let value = json_view(value);
        // Taken out for the write: `key` borrows the whole of `self`.
        let mut walk = std::mem::take(&mut self.walk);
        if kept(&value, 1)
            && let Some(tokens) = self.key(key)
        {
            write_value(&value, tokens, 1, &mut walk);
        }
        self.walk = walk;
    }
}

#[wasm_bindgen]
extern "C" {
    /// `Object.entries`, which runs the object's getters: one that throws must not unwind
    /// through the SDK's borrowed state (js-sys's binding does not catch).
    #[wasm_bindgen(catch, js_namespace = Object, js_name = entries)]
    fn object_entries_of(value: &JsValue) -> Result<Array, JsValue>;
    /// `Array.isArray`, which throws for a revoked `Proxy` (js-sys's binding does not catch).
    #[wasm_bindgen(catch, js_namespace = Array, js_name = isArray)]
    fn is_array_of(value: &JsValue) -> Result<bool, JsValue>;
}

/// Whether `value` is an array (a `Proxy` of one too); not for a revoked `Proxy`.
fn is_array(value: &JsValue) -> bool {
    is_array_of(value) == Ok(true)
}

/// Whether `value` is an object but not an array, nor a revoked `Proxy`, whose every
/// operation throws.
pub fn is_plain_object(value: &JsValue) -> bool {
    value.is_object() && is_array_of(value) == Ok(false)
}

/// A key the collector refuses anywhere in an event (JavaScript consumers of the data would
/// take it for the object's prototype): the SDK leaves it out, so the event still goes.
const FORBIDDEN_KEY: &str = "__proto__";

/// A plain object's own enumerable string-keyed properties but [`FORBIDDEN_KEY`] (none for
/// anything else, or when reading them throws).
pub fn entries(value: &JsValue) -> impl Iterator<Item = (String, JsValue)> {
    let entries = match is_plain_object(value) {
        true => object_entries_of(value).unwrap_or_else(|_| Array::new()),
        false => Array::new(),
    };
    entries.into_iter().filter_map(|entry| {
        let entry: Array = entry.unchecked_into();
        Some((entry.get(0).as_string().filter(|key| key != FORBIDDEN_KEY)?, entry.get(1)))
    })
}

/// A deep copy of a plain object as JSON writes it; `None` for anything else, and for what
/// JSON refuses (a cycle) or leaves out (`JSON.stringify` answers `undefined`, not a string,
/// for a function or `undefined`).
pub fn json_copy(value: &JsValue) -> Option<js_sys::Object> {
    let text = js_sys::JSON::stringify(value).ok()?.as_string()?;
    let copy = js_sys::JSON::parse(&text).ok()?;
    is_plain_object(&copy).then(|| copy.unchecked_into())
}

/// Writes `value`'s own enumerable properties as map entries; answers their keys.
fn object_entries(value: &JsValue, tokens: &mut Tokens, depth: usize, walk: &mut Walk) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, item) in entries(value) {
        if !walk.goes_on(tokens) {
            break;
        }
        let item = json_view(&item);
        if kept(&item, depth + 1) {
            write_value(&item, tokens.key(&key), depth + 1, walk);
            keys.push(key);
        }
    }
    keys
}

/// `value` as JSON writes it: what its `toJSON` answers (a date's ISO text, or null if the
/// date is invalid; a money or a moment type's own value; null if it throws), else itself.
/// Called once per value, as JSON does: the answer's own `toJSON` is not called.
pub fn json_view(value: &JsValue) -> JsValue {
    match field(value, "toJSON").dyn_ref::<js_sys::Function>() {
        Some(to_json) => to_json.call0(value).unwrap_or(JsValue::NULL),
        None => value.clone(),
    }
}

/// Whether JSON would keep `value` (at nesting `depth`): `undefined`, functions, symbols and
/// bigints are left out, and so are containers past [`MAX_WALK_DEPTH`].
fn kept(value: &JsValue, depth: usize) -> bool {
    value.is_string()
        || value.as_f64().is_some()
        || value.as_bool().is_some()
        || value.is_null()
        || (value.is_object() && depth <= MAX_WALK_DEPTH)
}

/// Writes a value [`kept`] keeps; in arrays, what JSON leaves out becomes `null`, as in JSON.
fn write_value(value: &JsValue, tokens: &mut Tokens, depth: usize, walk: &mut Walk) {
    if let Some(text) = value.as_string() {
        tokens.str(&text);
    } else if let Some(number) = value.as_f64() {
        // NaN and the infinities travel as they are; the collector names the field.
        match number.fract() == 0.0 && number.abs() < 9.0e15 {
            true => tokens.int(number as i64),
            false => tokens.float(number),
        };
    } else if let Some(flag) = value.as_bool() {
        tokens.bool(flag);
    } else if value.is_null() {
        tokens.null();
    } else if is_array(value) {
        // Its length and elements read as getters are (a `Proxy`'s traps may throw).
        let length = field(value, "length").as_f64().unwrap_or(0.0) as u32;
        let at = tokens.open(false);
        let mut written = 0;
        for index in 0..length {
            if !walk.goes_on(tokens) {
                break;
            }
            let item = json_view(&Reflect::get(value, &index.into()).unwrap_or(JsValue::UNDEFINED));
            match kept(&item, depth + 1) {
                true => write_value(&item, tokens, depth + 1, walk),
                false => _ = tokens.null(),
            }
            written += 1;
        }
        tokens.close(at, written);
    } else {
        let at = tokens.open(true);
        let entries = object_entries(value, tokens, depth, walk);
        tokens.close(at, entries.len() as u32);
    }
}

/// A map's tokens (properties, traits, `ContextBlock::to_map`) as a new JS object.
pub fn js_object(map: &Tokens) -> js_sys::Object {
    object_of(&mut map.iter(), u32::MAX)
}

/// The next `entries` key-value pairs of `tokens` (all that are left, at most), as a new
/// JS object. (Tokens never hold `FORBIDDEN_KEY`: setting it would set the prototype.)
fn object_of<'a>(tokens: &mut impl Iterator<Item = Token<'a>>, entries: u32) -> js_sys::Object {
    let object = js_sys::Object::new();
    for _ in 0..entries {
        let Some(Token::Str(key)) = tokens.next() else { break };
        let _ = Reflect::set(&object, &key.into(), &js_value(tokens));
    }
    object
}

/// The next value of `tokens` (a container with its elements), as JS.
fn js_value<'a>(tokens: &mut impl Iterator<Item = Token<'a>>) -> JsValue {
    match tokens.next() {
        Some(Token::False) => false.into(),
        Some(Token::True) => true.into(),
        Some(Token::Int(n)) => (n as f64).into(),
        Some(Token::Float(x)) => x.into(),
        Some(Token::Str(text)) => text.into(),
        Some(Token::Array(elements)) => (0..elements).map(|_| js_value(tokens)).collect::<Array>().into(),
        Some(Token::Object(entries)) => object_of(tokens, entries).into(),
        Some(Token::Null) | None => JsValue::NULL,
    }
}

/// A user, group or previous id: a non-empty string, or an integer written as one.
pub fn id_text(value: &JsValue) -> Option<String> {
    if let Some(text) = value.as_string() {
        return Some(text).filter(|t| !t.is_empty());
    }
    let number = value.as_f64().filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)?;
    js_sys::Number::from(number).to_string_with_radix(10).ok().map(String::from)
}

/// `object[key]`, `undefined` when `object` is not an object.
pub fn field(object: &JsValue, key: &str) -> JsValue {
    match object.is_object() {
        true => Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED),
        false => JsValue::UNDEFINED,
    }
}

/// `key` of `object` when the site set it, to anything but `undefined` or `null`: an option
/// of the wrong type is then a mistake to report, not an absent one.
pub fn stated_field(object: &JsValue, key: &str) -> Option<JsValue> {
    Some(field(object, key)).filter(|value| !value.is_undefined() && !value.is_null())
}

/// The first of `objects` where `key` is a string.
pub fn string_field(objects: &[&JsValue], key: &str) -> Option<String> {
    objects.iter().find_map(|o| field(o, key).as_string())
}

/// The first of `objects` where `key` is a boolean.
pub fn bool_field(objects: &[&JsValue], key: &str) -> Option<bool> {
    objects.iter().find_map(|o| field(o, key).as_bool())
}

/// A `load` option the page stated with a value the SDK cannot read: its name (a dotted path
/// for a switch of `autocapture`) and what the SDK does instead. Reported on `on('error')`.
pub type Unreadable = (String, &'static str);

/// A privacy option's value not read: what the SDK does instead.
pub const MOST_PRIVATE: &str = "unknown value for this option; its most private value is used";

/// A number option that is stated but not a finite number (`NaN`, `"30"`): the SDK uses the
/// default rather than what such a value would turn into (`NaN` as a queue bound is 0).
pub fn number_option(options: &JsValue, key: &str, unreadable: &mut Vec<Unreadable>) -> Option<f64> {
    let value = stated_field(options, key)?;
    let number = value.as_f64().filter(|n| n.is_finite());
    if number.is_none() {
        unreadable.push((key.to_owned(), NOT_A_FINITE_NUMBER));
    }
    number
}

/// A privacy switch of `load`'s options (`respectDoNotTrack`): one stated but not a boolean
/// is `true`, the more private reading, and noted in `unreadable`.
pub fn privacy_switch(options: &JsValue, key: &str, unreadable: &mut Vec<Unreadable>) -> Option<bool> {
    let value = stated_field(options, key)?;
    Some(value.as_bool().unwrap_or_else(|| {
        unreadable.push((key.to_owned(), MOST_PRIVATE));
        true
    }))
}
