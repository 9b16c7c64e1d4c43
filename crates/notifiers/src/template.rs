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
//!
//! The templates are the operator's, but the data is the tenants' (alarm names,
//! descriptions, dimensions), so rendering is bounded: every environment made here runs on
//! [`FUEL`] (a template that loops too long fails for good, with a reason saying so), a
//! recursion limit of [`RECURSION_LIMIT`] (self-including templates and recursive macros stop),
//! no loader (nothing is read from the filesystem while rendering), and [`render_bounded`]
//! keeps at most [`MAX_OUTPUT`] bytes, cutting the rest and ending with [`TRUNCATED`]: a
//! notification whose tenant-given text is huge is still sent, shortened. Data is only ever a
//! value in the context, never template source, so `{{ 7*7 }}` in an alarm name is printed as
//! it is.

use std::io;
use std::path::{Path, PathBuf};

use minijinja::value::{Serde, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, Template};

/// The name a [`TemplateFile`] registers its source under.
const NAME: &str = "template";

/// Instructions one render may execute. A real notification template uses a few hundred; a
/// loop over a huge range runs out and fails.
pub const FUEL: u64 = 1_000_000;

/// How deep includes, macros and nested blocks may go. Far below minijinja's own 500, since a
/// notification template has no reason to nest deeply.
pub const RECURSION_LIMIT: usize = 100;

/// Bytes of rendered text kept; the rest is cut at a character boundary.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// What ends a text that [`render_bounded`] cut at [`MAX_OUTPUT`].
pub const TRUNCATED: &str = "… [truncated]";

/// Applies the bounds of this module (fuel, recursion limit) to an environment. Environments
/// made by [`environment`] have them already.
pub fn bound(env: &mut Environment<'_>) {
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
}

/// Renders `template`, keeping at most [`MAX_OUTPUT`] bytes: longer output is cut and ends
/// with [`TRUNCATED`]. Rendering stops as soon as the limit is reached, so memory stays
/// bounded too. Running out of fuel or any other render error is an error.
pub fn render_bounded(template: &Template<'_, '_>, context: Value) -> Result<String, Error> {
    let mut out = BoundedWriter::default();
    match template.render_captured_to(context, &mut out) {
        Ok(_) => {}
        Err(_) if out.full => {}
        Err(e) if e.kind() == ErrorKind::OutOfFuel => {
            return Err(Error::new(
                ErrorKind::OutOfFuel,
                format!("the template ran more than {FUEL} steps and was stopped"),
            ));
        }
        Err(e) => return Err(e),
    }
    // minijinja writes whole strings, so the text is UTF-8 except where the limit cut it.
    let mut text = match String::from_utf8(out.buf) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    if out.full {
        text.push_str(TRUNCATED);
    }
    Ok(text)
}

/// Collects output up to [`MAX_OUTPUT`] bytes, then refuses more, which stops the render.
#[derive(Default)]
struct BoundedWriter {
    /// What was kept.
    buf: Vec<u8>,
    /// The limit was reached: the render error that follows is this writer's refusal.
    full: bool,
}

impl io::Write for BoundedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = MAX_OUTPUT - self.buf.len();
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            self.full = true;
            return Err(io::Error::other("rendered text exceeds the output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An environment that renders like Jinja2, with HTML auto-escaping on or off for every
/// template added to it, bounded as the module says.
pub fn environment(autoescape: bool) -> Environment<'static> {
    let mut env = Environment::new();
    bound(&mut env);
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

    /// Renders with the keys of `context` (a JSON object) as variables, bounded by
    /// [`render_bounded`].
    pub fn render(&self, context: &serde_json::Value) -> Result<String, Error> {
        render_bounded(&self.env.get_template(NAME)?, Value::from(Serde(context)))
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

    #[test]
    fn tenant_template_syntax_renders_literally() {
        let ctx = json!({"name": "{{ 7*7 }} {% for x in y %}{% endfor %} {# c #}"});
        assert_eq!(
            render("{{ name }}", false, ctx.clone()),
            "{{ 7*7 }} {% for x in y %}{% endfor %} {# c #}"
        );
        assert_eq!(
            render("{{ name }}", true, ctx),
            "{{ 7*7 }} {% for x in y %}{% endfor %} {# c #}"
        );
    }

    #[test]
    fn a_huge_loop_runs_out_of_fuel() {
        let template = TemplateFile::from_source(
            Path::new("loop.j2"),
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
                .into(),
            false,
        )
        .unwrap();
        let err = template.render(&json!({})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfFuel);
        assert!(err.to_string().contains("more than 1000000 steps"), "{err}");
    }

    #[test]
    fn output_is_cut_at_the_limit() {
        // Tenant data of 100,000 characters, printed 10 times: 1 MB without the limit.
        let name = "é".repeat(50_000);
        let out = render(
            "{% for i in range(10) %}{{ name }}{% endfor %}",
            false,
            json!({ "name": name }),
        );
        assert!(out.ends_with(TRUNCATED), "{}", &out[out.len() - 40..]);
        assert!(out.len() <= MAX_OUTPUT + TRUNCATED.len());
        assert!(out.len() > MAX_OUTPUT - 4);
        assert!(out.starts_with("éé"));
        // Under the limit, nothing is added.
        assert_eq!(render("{{ a }}", false, json!({"a": "short"})), "short");
    }

    #[test]
    fn self_inclusion_is_stopped_and_nothing_is_loaded_from_disk() {
        let looping = TemplateFile::from_source(
            Path::new("self.j2"),
            "x{% include \"template\" %}".into(),
            false,
        )
        .unwrap();
        let err = looping.render(&json!({})).unwrap_err();
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            chain.push_str(&format!(": {e}"));
            source = e.source();
        }
        assert!(chain.contains("recursion"), "{chain}");

        let from_disk = TemplateFile::from_source(
            Path::new("disk.j2"),
            "{% include \"/etc/passwd\" %}".into(),
            false,
        )
        .unwrap();
        let err = from_disk.render(&json!({})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TemplateNotFound, "{err}");
    }
}
