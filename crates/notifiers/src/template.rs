//! Jinja2-compatible rendering with minijinja, for the notifiers whose messages users write as
//! Jinja2 templates (Slack's `message_template`, Jira's `custom_formatter`).
//!
//! minijinja differs from Jinja2 in what users see, so [`environment`] adjusts it:
//! - HTML auto-escaping escapes exactly Jinja2's five characters, `&` `<` `>` `"` `'`, as
//!   `&amp;` `&lt;` `&gt;` `&#34;` `&#39;` (minijinja writes `&quot;`, `&#x27;`, and escapes `/`);
//!   the `escape`/`e` filters do the same;
//! - `none` renders as Python's `None`, booleans as `True`/`False`;
//! - a single trailing newline of the template is dropped (minijinja's default, as Jinja2's).
//!
//! [`TemplateFile`] is one template read from a file and compiled once, at start.

use std::path::{Path, PathBuf};

use minijinja::value::{Serde, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, Output, State};

/// The name a [`TemplateFile`] registers its source under.
const NAME: &str = "template";

/// An environment that renders like Jinja2, with HTML auto-escaping on or off for every
/// template added to it.
pub fn environment(autoescape: bool) -> Environment<'static> {
    let mut env = Environment::new();
    let mode = if autoescape {
        AutoEscape::Html
    } else {
        AutoEscape::None
    };
    env.set_auto_escape_callback(move |_| mode.clone());
    env.set_formatter(format_value);
    env.add_filter("escape", escape_filter);
    env.add_filter("e", escape_filter);
    env
}

/// `s` escaped as Jinja2 (markupsafe) escapes it: `&` `<` `>` `"` `'` only.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a value is printed, as Python's `str()` would for the scalars users meet.
fn display(value: &Value) -> String {
    match value.kind() {
        ValueKind::None => "None".to_string(),
        ValueKind::Bool if value.is_true() => "True".to_string(),
        ValueKind::Bool => "False".to_string(),
        _ => value.to_string(),
    }
}

/// The formatter: Jinja2's escaping when the template auto-escapes, safe strings untouched.
fn format_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let text = display(value);
    let escape = matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe();
    if escape {
        out.write_str(&escape_html(&text))?;
    } else {
        out.write_str(&text)?;
    }
    Ok(())
}

/// `escape`/`e`: Jinja2's escaping, marking the result safe so it is not escaped twice.
fn escape_filter(value: Value) -> Value {
    if value.is_safe() {
        value
    } else {
        Value::from_safe_string(escape_html(&display(&value)))
    }
}

/// One Jinja2 template file, compiled once.
pub struct TemplateFile {
    /// Holds the compiled template under [`NAME`].
    env: Environment<'static>,
    /// The file it came from, for error messages.
    path: PathBuf,
}

impl TemplateFile {
    /// Reads and compiles `path`. The error names the file and says what is wrong with it.
    pub fn load(path: &Path, autoescape: bool) -> Result<Self, String> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| format!("template {}: {e}", path.display()))?;
        Self::from_source(path, source, autoescape)
    }

    /// Compiles `source`, reporting errors against `path`.
    pub fn from_source(path: &Path, source: String, autoescape: bool) -> Result<Self, String> {
        let mut env = environment(autoescape);
        env.add_template_owned(NAME, source)
            .map_err(|e| format!("template {}: {e}", path.display()))?;
        Ok(TemplateFile {
            env,
            path: path.to_path_buf(),
        })
    }

    /// The file the template came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renders with the keys of `context` (a JSON object) as variables.
    pub fn render(&self, context: &serde_json::Value) -> Result<String, Error> {
        self.env
            .get_template(NAME)?
            .render(Value::from(Serde(context)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, autoescape: bool, context: serde_json::Value) -> String {
        TemplateFile::from_source(Path::new("t.j2"), source.to_string(), autoescape)
            .unwrap()
            .render(&context)
            .unwrap()
    }

    #[test]
    fn template_escapes_like_jinja2() {
        let out = render(
            "{{ name }}|{{ url }}",
            true,
            json!({"name": "<b>\"x\" & 'y'</b>", "url": "http://a/b"}),
        );
        assert_eq!(
            out,
            "&lt;b&gt;&#34;x&#34; &amp; &#39;y&#39;&lt;/b&gt;|http://a/b"
        );
    }

    #[test]
    fn template_safe_and_escape_filters() {
        let ctx = json!({"name": "<i>"});
        assert_eq!(render("{{ name|safe }}", true, ctx.clone()), "<i>");
        assert_eq!(render("{{ name|e }}", true, ctx.clone()), "&lt;i&gt;");
        assert_eq!(render("{{ name|e }}", false, ctx.clone()), "&lt;i&gt;");
        assert_eq!(render("{{ \"'\"|escape }}", false, ctx), "&#39;");
    }

    #[test]
    fn template_without_autoescape_prints_raw() {
        assert_eq!(render("{{ a }}", false, json!({"a": "<&>\"'"})), "<&>\"'");
    }

    #[test]
    fn template_none_bools_and_unknown() {
        let ctx = json!({"d": null, "t": true, "f": false, "m": {"x": 1}});
        assert_eq!(
            render(
                "{{ d }} {{ t }} {{ f }} [{{ nope }}] [{{ m.y }}]",
                true,
                ctx
            ),
            "None True False [] []"
        );
    }

    #[test]
    fn template_drops_one_trailing_newline() {
        assert_eq!(render("a {{ x }}\n", true, json!({"x": 1})), "a 1");
        assert_eq!(render("a\n\n", true, json!({})), "a\n");
    }

    #[test]
    fn template_syntax_error_names_the_file() {
        let err = TemplateFile::from_source(Path::new("/etc/x.j2"), "{{ a ".into(), true)
            .err()
            .unwrap();
        assert!(err.contains("/etc/x.j2"), "{err}");
        let err = TemplateFile::load(Path::new("/nonexistent/y.j2"), true)
            .err()
            .unwrap();
        assert!(err.contains("/nonexistent/y.j2"), "{err}");
    }
}
