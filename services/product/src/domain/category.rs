//! Categories: a tree of named nodes, each addressable by a unique slug.

use serde::Serialize;

/// One node of the category tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Category {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The parent, or `None` at the top of the tree.
    pub parent_id: Option<String>,
    /// URL-safe unique name.
    pub slug: String,
}

/// Whether `slug` is lowercase ASCII letters and digits separated by single hyphens.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 100
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The slug of a display name: `"Home & Garden"` → `home-garden`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// Orders `categories` so every parent comes before its children (and siblings keep their order),
/// dropping none: a category whose parent is missing is treated as a root.
pub fn parents_first(categories: Vec<Category>) -> Vec<Category> {
    let known: std::collections::HashSet<String> = categories.iter().map(|c| c.id.clone()).collect();
    let mut ordered = Vec::with_capacity(categories.len());
    let mut stack: Vec<Option<String>> = vec![None];
    let mut placed = std::collections::HashSet::new();
    while let Some(parent) = stack.pop() {
        let children: Vec<&Category> = categories
            .iter()
            .filter(|c| {
                let effective = c.parent_id.clone().filter(|p| known.contains(p));
                effective == parent && !placed.contains(&c.id)
            })
            .collect();
        for child in children.iter().rev() {
            stack.push(Some(child.id.clone()));
        }
        for child in children {
            placed.insert(child.id.clone());
            ordered.push(child.clone());
        }
    }
    // Cycles (not producible through the API) would leave nodes unplaced: keep them at the end.
    ordered.extend(categories.into_iter().filter(|c| !placed.contains(&c.id)));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_hyphens() {
        assert_eq!(slugify("Home & Garden"), "home-garden");
        assert_eq!(slugify("  TVs / 4K  "), "tvs-4k");
        assert!(is_valid_slug("home-garden"));
        for bad in ["", "Home", "a--b", "-a", "a-", "a b", "ä"] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn parents_come_before_children() {
        let c = |id: &str, parent: Option<&str>| Category {
            id: id.into(),
            name: id.into(),
            parent_id: parent.map(Into::into),
            slug: id.into(),
        };
        let ordered = parents_first(vec![c("phones", Some("electronics")), c("electronics", None), c("toys", None)]);
        let ids: Vec<&str> = ordered.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["electronics", "toys", "phones"]);
    }
}
