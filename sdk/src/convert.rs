//! JavaScript values ↔ `portrait_core::Value`, by walking them by hand. serde-wasm-bindgen
//! would do it in one line, but links ~15 KB (brotli) of formatting code; see BENCHMARKS.md.

use js_sys::{Array, Object, Reflect};
use portrait_core::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};

/// Deeper than core's limit, so the collector's validation names the problem; bounded, so a
/// cyclic object cannot recurse forever.
const MAX_WALK_DEPTH: usize = 16;

/// A JS object's own enumerable properties as a map; anything that is not an object is an
/// empty map. Functions, `undefined` and symbols are skipped (as JSON.stringify does).
pub fn to_map(value: &JsValue) -> Map {
    object_entries(value, 0)
}

fn object_entries(value: &JsValue, depth: usize) -> Map {
    let mut map = Map::new();
    if !value.is_object() || Array::is_array(value) {
        return map;
    }
    let entries = Object::entries(value.unchecked_ref());
    for entry in entries.iter() {
        let entry: Array = entry.unchecked_into();
        let (Some(key), item) = (entry.get(0).as_string(), entry.get(1)) else { continue };
        if let Some(item) = to_value(&item, depth + 1) {
            map.insert(key, item);
        }
    }
    map
}

/// `None` for what JSON would leave out.
pub fn to_value(value: &JsValue, depth: usize) -> Option<Value> {
    if let Some(text) = value.as_string() {
        return Some(Value::String(text));
    }
    if let Some(number) = value.as_f64() {
        let int = number as i64;
        return Some(match number.fract() == 0.0 && number.abs() < 9.0e15 {
            true => Value::Int(int),
            // NaN and the infinities travel as they are; the collector names the field.
            false => Value::Float(number),
        });
    }
    if let Some(flag) = value.as_bool() {
        return Some(Value::Bool(flag));
    }
    if value.is_null() {
        return Some(Value::Null);
    }
    if value.is_undefined() || value.is_function() || value.is_symbol() || depth > MAX_WALK_DEPTH {
        return None;
    }
    if let Some(date) = value.dyn_ref::<js_sys::Date>() {
        return Some(Value::String(date.to_iso_string().into()));
    }
    if Array::is_array(value) {
        let array: &Array = value.unchecked_ref();
        return Some(Value::Array(
            array.iter().map(|item| to_value(&item, depth + 1).unwrap_or(Value::Null)).collect(),
        ));
    }
    if value.is_object() {
        return Some(Value::Object(object_entries(value, depth)));
    }
    None // bigint
}

/// A map as a plain JS object.
pub fn from_map(map: &Map) -> JsValue {
    let object = Object::new();
    for (key, value) in map {
        let _ = Reflect::set(&object, &key.into(), &from_value(value));
    }
    object.into()
}

pub fn from_value(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(flag) => (*flag).into(),
        Value::Int(int) => (*int as f64).into(),
        Value::Float(number) => (*number).into(),
        Value::String(text) => text.into(),
        Value::Array(items) => items.iter().map(from_value).collect::<Array>().into(),
        Value::Object(map) => from_map(map),
    }
}

/// `object[key]`, `undefined` when `object` is not an object.
pub fn field(object: &JsValue, key: &str) -> JsValue {
    match object.is_object() {
        true => Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED),
        false => JsValue::UNDEFINED,
    }
}

/// The first of `objects` where `key` is a string.
pub fn string_field(objects: &[&JsValue], key: &str) -> Option<String> {
    objects.iter().find_map(|o| field(o, key).as_string())
}

/// The first of `objects` where `key` is a boolean.
pub fn bool_field(objects: &[&JsValue], key: &str) -> Option<bool> {
    objects.iter().find_map(|o| field(o, key).as_bool())
}

/// The first of `objects` where `key` is a number.
pub fn number_field(objects: &[&JsValue], key: &str) -> Option<f64> {
    objects.iter().find_map(|o| field(o, key).as_f64())
}
