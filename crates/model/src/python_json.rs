//! `json.dumps(value, indent=3)` as Python prints it, byte for byte.
//!
//! Slack, HipChat and Jira messages of the original embed the common body rendered this way,
//! and users' filters match on it: 3 spaces per level, `": "` after keys, `","` at line ends,
//! and every non-ASCII character escaped as `\uXXXX` (surrogate pairs beyond the BMP).

use std::fmt::Write;

use serde_json::Value;

/// Renders `value` as Python's `json.dumps(value, indent=3)` (with `ensure_ascii`) would.
pub fn dumps_indent3(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth * 3 {
        out.push(' ');
    }
}

/// Python prints floats with `repr`: `1.0`, `1e+16`, `1.5e-07`.
fn write_number(out: &mut String, n: &serde_json::Number) {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(0.0);
        let abs = f.abs();
        if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
            let s = format!("{f:e}");
            let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            let _ = write!(
                out,
                "{mantissa}e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            );
        } else if f.fract() == 0.0 {
            let _ = write!(out, "{f:.1}");
        } else {
            let _ = write!(out, "{f}");
        }
    } else {
        let _ = write!(out, "{n}");
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e && (c as u32) != 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_layout_matches_python() {
        // python3 -c 'import json; print(json.dumps({"a": 1, "b": [1, {"c": None}], "d": {}, "e": []}, indent=3))'
        let v = json!({"a": 1, "b": [1, {"c": null}], "d": {}, "e": []});
        assert_eq!(
            dumps_indent3(&v),
            "{\n   \"a\": 1,\n   \"b\": [\n      1,\n      {\n         \"c\": null\n      }\n   ],\n   \"d\": {},\n   \"e\": []\n}"
        );
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let v = json!("é \"q\" \\ \n \u{1}\u{7f} 😀 /");
        assert_eq!(
            dumps_indent3(&v),
            "\"\\u00e9 \\\"q\\\" \\\\ \\n \\u0001\u{7f} \\ud83d\\ude00 /\""
        );
    }

    #[test]
    fn floats_print_like_repr() {
        assert_eq!(dumps_indent3(&json!(1.0)), "1.0");
        assert_eq!(dumps_indent3(&json!(0.5)), "0.5");
        assert_eq!(dumps_indent3(&json!(1e16)), "1e+16");
        assert_eq!(dumps_indent3(&json!(1.5e-7)), "1.5e-07");
        assert_eq!(dumps_indent3(&json!(-3)), "-3");
    }
}
