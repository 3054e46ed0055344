//! The dashboard's templates (`templates/*.html`), compiled into the binary and loaded once.
//! minijinja escapes every value in a `.html` template unless told otherwise, and no template
//! tells it otherwise.

use minijinja::Environment;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    (
        "pipelines.html",
        include_str!("../templates/pipelines.html"),
    ),
    ("run.html", include_str!("../templates/run.html")),
    ("log.html", include_str!("../templates/log.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    (
        "quarantine.html",
        include_str!("../templates/quarantine.html"),
    ),
    ("keys.html", include_str!("../templates/keys.html")),
    ("users.html", include_str!("../templates/users.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// The stylesheet, served at `/static/style.css`.
pub const STYLE: &str = include_str!("../static/style.css");

/// The icon, served at `/static/favicon.svg`.
pub const ICON: &str = include_str!("../static/favicon.svg");

/// Every template, parsed. A template that does not parse is a bug caught by the tests, which
/// render every page; it is left out here rather than stopping the server.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!("template {name}: {e}");
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap();
        }
        let html = env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! { title => "x", message => "<script>alert(1)</script>" })
            .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }
}
