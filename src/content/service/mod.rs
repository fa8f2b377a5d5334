//! Rules of the content domain: the directory tree stays a tree, page bodies are
//! sanitised before they are stored, ads show only inside their window, and menu items
//! point at things that exist. Every admin write is in the security log.

pub mod ads;
pub mod directories;
pub mod menus;
pub mod pages;

use sea_orm::ActiveValue::{NotSet, Set};

use crate::platform::error::Validator;

fn set_if<T: Into<sea_orm::Value>>(value: Option<T>) -> sea_orm::ActiveValue<T> {
    value.map_or(NotSet, Set)
}

fn trimmed(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim().to_owned())
}

/// Links and images must be http(s) or site-relative, so no `javascript:` address can be
/// stored.
fn check_url(v: &mut Validator, url: &str, field: &str, required: bool) {
    if url.is_empty() {
        v.check(!required, field, "must not be empty");
        return;
    }
    let ok = url.len() <= 2000
        && (url.starts_with("https://")
            || url.starts_with("http://")
            || (url.starts_with('/') && !url.starts_with("//")))
        && !url.chars().any(char::is_whitespace);
    v.check(
        ok,
        field,
        "must be an http(s) address or a path starting with '/'",
    );
}

fn check_optional_text(v: &mut Validator, value: Option<&String>, field: &str, max: usize) {
    if let Some(value) = value {
        v.check(
            value.chars().count() <= max,
            field,
            &format!("must be at most {max} characters"),
        );
    }
}
