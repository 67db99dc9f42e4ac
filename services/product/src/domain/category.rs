//! Categories: a tree of named nodes, each addressable by a unique slug.

use std::collections::{HashMap, HashSet};

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
/// dropping none: a category whose parent is missing is treated as a root. Linear in the number of
/// categories (it runs on every category-tree read).
pub fn parents_first(categories: Vec<Category>) -> Vec<Category> {
    let known: HashSet<&str> = categories.iter().map(|c| c.id.as_str()).collect();
    let mut by_parent: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for (i, category) in categories.iter().enumerate() {
        let parent = category.parent_id.as_deref().filter(|p| known.contains(p));
        by_parent.entry(parent).or_default().push(i);
    }
    let mut order = Vec::with_capacity(categories.len());
    let mut stack: Vec<Option<&str>> = vec![None];
    while let Some(parent) = stack.pop() {
        let Some(children) = by_parent.remove(&parent) else { continue };
        stack.extend(children.iter().rev().map(|&i| Some(categories[i].id.as_str())));
        order.extend(children);
    }
    // Cycles (not producible through the API) leave nodes unplaced: keep them at the end.
    let mut placed = vec![false; categories.len()];
    for &i in &order {
        placed[i] = true;
    }
    order.extend((0..categories.len()).filter(|&i| !placed[i]));
    let mut slots: Vec<Option<Category>> = categories.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
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
        // An orphan is a root, and a cycle is kept (at the end) rather than dropped.
        let ordered = parents_first(vec![c("a", Some("b")), c("b", Some("a")), c("orphan", Some("gone"))]);
        let ids: Vec<&str> = ordered.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["orphan", "a", "b"]);
    }
}
