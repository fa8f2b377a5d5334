//! Rich text that staff write and the storefront renders (pages, product descriptions).

/// Keeps only allow-listed tags, attributes and URL schemes, so stored HTML can never carry
/// a script, an event handler or a `javascript:` link to the storefront.
pub fn sanitize(html: &str) -> String {
    ammonia::clean(html)
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitising_removes_scripts_handlers_and_javascript_links() {
        let clean = sanitize(
            r#"<p>Hi<script>alert(1)</script><img src="x.png" onerror="alert(2)"><a href="javascript:alert(3)">x</a></p>"#,
        );
        assert!(!clean.contains("<script"), "{clean}");
        assert!(!clean.contains("onerror"), "{clean}");
        assert!(!clean.contains("javascript:"), "{clean}");
        assert!(clean.contains("<p>Hi"), "{clean}");
    }
}
