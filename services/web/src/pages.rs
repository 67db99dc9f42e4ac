//! The storefront's catalog pages: home, category, search, product, and what crawlers read
//! (`robots.txt`). Each handler gathers what its page shows from the services, builds the page's
//! view (formatted money, links) and renders its template.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::TryFutureExt as _;

use crate::AppState;
use crate::catalog::{Category, Facets, Product, Query, Results, Summary};
use crate::page::{Caching, Layout, NavLink, PageError, html, money, money_short, product_path, query_string};

/// Products a listing page shows.
const PAGE_SIZE: usize = 24;

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The layout.
    pub layout: Layout,
    /// What happened.
    pub heading: &'static str,
    /// What to do next.
    pub message: &'static str,
}

/// A product as a card of a grid shows it.
pub struct Card {
    /// Its page.
    pub href: String,
    /// Its name.
    pub name: String,
    /// Its brand.
    pub brand: String,
    /// Its price, formatted ("from" when variants differ is not known here: the lowest).
    pub price: String,
    /// Its first image.
    pub image: Option<crate::page::Picture>,
    /// Whether it can be bought now.
    pub in_stock: bool,
    /// The first letter of its name, drawn where there is no image.
    pub initial: String,
    /// The tint of that drawing.
    pub hue: u16,
}

impl Card {
    /// The picture of the first card of a grid that opens the page (the first screen's largest
    /// element), for the `<head>` to ask for.
    fn first_picture(cards: &[Card]) -> Option<(crate::page::Picture, &'static str)> {
        let picture = cards.first()?.image.clone()?;
        Some((picture, crate::page::CARD_SIZES))
    }

    fn of(summary: &Summary) -> Self {
        Self {
            href: product_path(&summary.id, &summary.name),
            name: summary.name.clone(),
            brand: summary.brand.clone(),
            price: money(&summary.price),
            image: summary.image.as_deref().map(|url| crate::page::Picture::of(url, "card")),
            in_stock: summary.in_stock,
            initial: crate::page::initial(&summary.name),
            hue: crate::page::hue(&summary.name),
        }
    }
}

/// The category tree, with lookups.
struct Tree {
    categories: std::sync::Arc<Vec<Category>>,
}

impl Tree {
    fn by_slug(&self, slug: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.slug == slug)
    }

    fn by_id(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    fn children<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Category> + 'a {
        self.categories.iter().filter(move |c| c.parent_id.as_deref() == Some(id))
    }

    fn top(&self) -> impl Iterator<Item = &Category> {
        self.categories.iter().filter(|c| c.parent_id.is_none())
    }

    /// `category` and its ancestors, the top first.
    fn path<'a>(&'a self, category: &'a Category) -> Vec<&'a Category> {
        let mut path = vec![];
        let mut at = Some(category);
        while let Some(c) = at {
            if path.iter().any(|p: &&Category| p.id == c.id) {
                break;
            }
            path.push(c);
            at = c.parent_id.as_deref().and_then(|p| self.by_id(p));
        }
        path.reverse();
        path
    }

    /// The navigation: the top categories, the one holding `current` marked.
    fn nav(&self, current: Option<&Category>) -> Vec<NavLink> {
        let top = current.and_then(|c| self.path(c).first().map(|t| t.id.clone()));
        self.top()
            .map(|c| NavLink {
                name: c.name.clone(),
                href: format!("/c/{}", c.slug),
                current: top.as_deref() == Some(c.id.as_str()),
            })
            .collect()
    }
}

async fn tree(state: &AppState) -> Result<Tree, PageError> {
    Ok(Tree { categories: state.catalog.categories().await? })
}

/// The category tree, read again when the kept one lacks the category `wanted` says (one made
/// since).
async fn tree_with(state: &AppState, wanted: impl Fn(&Tree) -> bool) -> Result<Tree, PageError> {
    let tree = tree(state).await?;
    if wanted(&tree) {
        return Ok(tree);
    }
    Ok(Tree { categories: state.catalog.categories_fresh().await? })
}

/// The navigation of a page that is not in a category.
pub async fn nav(state: &AppState) -> Result<Vec<NavLink>, PageError> {
    Ok(tree(state).await?.nav(None))
}

/// The home page.
#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    layout: Layout,
    departments: Vec<Department>,
    newest: Vec<Card>,
    deals: Vec<Card>,
    /// The promotions in force the shop tells shoppers about: (name, code, until).
    promotions: Vec<(String, Option<String>, Option<String>)>,
}

/// A top category with its sub-categories, on the home page.
struct Department {
    name: String,
    href: String,
    children: Vec<NavLink>,
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let newest = Query { sort: Some("newest".into()), in_stock: true, limit: Some(6), ..Query::default() };
    let deals = Query { sort: Some("price_asc".into()), in_stock: true, limit: Some(6), ..Query::default() };
    let promotions = async {
        // The banner is a bonus: without the order service the home page still shows the shop.
        state.orders.promotions().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "the home page goes without the current promotions");
            Vec::new()
        })
    };
    let (shelves, promotions) = futures::join!(
        async {
            futures::try_join!(tree(&state), state.catalog.search(&newest).map_err(PageError::from), async {
                Ok(state.catalog.search(&deals).await?)
            })
        },
        promotions
    );
    let (tree, newest, deals) = shelves?;
    let departments = tree
        .top()
        .map(|c| Department {
            name: c.name.clone(),
            href: format!("/c/{}", c.slug),
            children: tree
                .children(&c.id)
                .map(|s| NavLink { name: s.name.clone(), href: format!("/c/{}", s.slug), current: false })
                .collect(),
        })
        .collect();
    let newest: Vec<Card> = newest.items.iter().map(Card::of).collect();
    let page = Home {
        layout: Layout {
            title: "Home".into(),
            description: "Everything for home, work and the outdoors, shipped fast.".into(),
            canonical: Some("/".into()),
            nav: tree.nav(None),
            preload: Card::first_picture(&newest),
            ..Layout::default()
        },
        departments,
        newest,
        deals: deals.items.iter().map(Card::of).collect(),
        promotions: promotions
            .into_iter()
            .take(3)
            .map(|p| (p.name, p.code, p.ends_at.map(|at| at.format("%B %-d").to_string())))
            .collect(),
    };
    render(&headers, &page, Caching::Public)
}

/// What a listing's query string may hold.
#[derive(Debug, Default)]
struct ListingParams {
    q: Option<String>,
    brand: Option<String>,
    /// A price range, `from-to` in minor units (`to` empty for "and above").
    price: Option<String>,
    in_stock: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    category: Option<String>,
}

impl ListingParams {
    fn parse(raw: Option<&str>) -> Self {
        // A query string a person edited by hand is read as far as it makes sense, never refused.
        raw.and_then(read_listing_query).unwrap_or_default()
    }

    fn price_range(&self) -> (Option<i64>, Option<i64>) {
        let Some((from, to)) = self.price.as_deref().and_then(|p| p.split_once('-')) else {
            return (None, None);
        };
        let from = from.parse::<i64>().ok().filter(|v| *v >= 0);
        // The bucket's upper bound is exclusive; the API's max_price is inclusive.
        let to = to.parse::<i64>().ok().filter(|v| *v > 0).map(|v| v - 1);
        (from, to)
    }

    fn sort(&self) -> Option<String> {
        self.sort.clone().filter(|s| SORTS.iter().any(|(value, _)| value == s))
    }
}

/// Reads `a=1&b=2` leniently: unknown keys are ignored, a repeated key keeps its last value.
fn read_listing_query(raw: &str) -> Option<ListingParams> {
    let mut params = ListingParams::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value)?;
        let value = Some(value).filter(|v| !v.trim().is_empty());
        match key {
            "q" => params.q = value,
            "brand" => params.brand = value,
            "price" => params.price = value,
            "in_stock" => params.in_stock = value,
            "sort" => params.sort = value,
            "cursor" => params.cursor = value,
            "category" => params.category = value,
            _ => {}
        }
    }
    Some(params)
}

/// Decodes a query value (`+` is a space); `None` for invalid UTF-8.
fn decode(value: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The sorts a listing offers.
const SORTS: &[(&str, &str)] = &[
    ("relevance", "Featured"),
    ("newest", "Newest"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
];

/// A listing page: a category, or search results.
#[derive(Template)]
#[template(path = "listing.html")]
struct Listing {
    layout: Layout,
    heading: String,
    breadcrumbs: Vec<NavLink>,
    /// "1,234 products".
    count: String,
    cards: Vec<Card>,
    facets: Vec<FacetGroup>,
    /// Filters in force, each a link that removes it.
    active: Vec<NavLink>,
    sorts: Vec<SortOption>,
    /// The form's hidden fields (the filters kept when the sort changes).
    hidden: Vec<(&'static str, String)>,
    action: String,
    next: Option<String>,
    first_page: Option<String>,
    /// Search only: the words searched.
    searched: Option<String>,
    /// Search only: the words the results matched, when the search's typo tolerance changed the
    /// ones typed, and the link that searches for them.
    suggestion: Option<(String, String)>,
    /// Sub-categories to go down to.
    children: Vec<NavLink>,
}

struct SortOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// A facet: its name and its values, each a link that sets (or clears) it.
struct FacetGroup {
    name: &'static str,
    values: Vec<FacetLink>,
}

struct FacetLink {
    label: String,
    count: Option<u64>,
    href: String,
    selected: bool,
}

/// The listing's own URL with `changes` applied (`None` removes a key); the cursor always goes (a
/// changed filter starts from the first page).
fn listing_href(base: &str, params: &ListingParams, changes: &[(&str, Option<String>)]) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let current: [(&str, &Option<String>); 5] = [
        ("q", &params.q),
        ("category", &params.category),
        ("brand", &params.brand),
        ("price", &params.price),
        ("in_stock", &params.in_stock),
    ];
    for (key, value) in current {
        let changed = changes.iter().find(|(k, _)| *k == key);
        match changed {
            Some((_, Some(v))) => pairs.push((key, v.clone())),
            Some((_, None)) => {}
            None => {
                if let Some(v) = value {
                    pairs.push((key, v.clone()));
                }
            }
        }
    }
    let sort = changes.iter().find(|(k, _)| *k == "sort").map(|(_, v)| v.clone()).unwrap_or_else(|| params.sort());
    if let Some(sort) = sort {
        pairs.push(("sort", sort));
    }
    if let Some((_, Some(cursor))) = changes.iter().find(|(k, _)| *k == "cursor") {
        pairs.push(("cursor", cursor.clone()));
    }
    format!("{base}{}", query_string(&pairs))
}

fn facet_groups(
    base: &str,
    params: &ListingParams,
    facets: &Facets,
    tree: &Tree,
    with_categories: bool,
) -> Vec<FacetGroup> {
    let mut groups = Vec::new();
    if with_categories && params.category.is_none() && !facets.category.is_empty() {
        let values = facets
            .category
            .iter()
            .filter_map(|f| {
                let category = tree.by_id(&f.value)?;
                Some(FacetLink {
                    label: category.name.clone(),
                    count: Some(f.count),
                    href: listing_href(base, params, &[("category", Some(category.slug.clone()))]),
                    selected: false,
                })
            })
            .collect();
        groups.push(FacetGroup { name: "Category", values });
    }
    let brands = facets
        .brand
        .iter()
        .map(|f| {
            let selected = params.brand.as_deref() == Some(f.value.as_str());
            let change = if selected { None } else { Some(f.value.clone()) };
            FacetLink {
                label: f.value.clone(),
                count: Some(f.count),
                href: listing_href(base, params, &[("brand", change)]),
                selected,
            }
        })
        .collect::<Vec<_>>();
    if !brands.is_empty() {
        groups.push(FacetGroup { name: "Brand", values: brands });
    }
    let currency = "USD";
    let prices = facets
        .price
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| {
            let key = format!("{}-{}", b.from, b.to.map(|t| t.to_string()).unwrap_or_default());
            let selected = params.price.as_deref() == Some(key.as_str());
            let at = |v: i64| money_short(&platform::money::Money::new(v, currency));
            let label = match (b.from, b.to) {
                (0, Some(to)) => format!("Under {}", at(to)),
                (from, Some(to)) => format!("{} – {}", at(from), at(to)),
                (from, None) => format!("{} and above", at(from)),
            };
            let change = if selected { None } else { Some(key) };
            FacetLink { label, count: Some(b.count), href: listing_href(base, params, &[("price", change)]), selected }
        })
        .collect::<Vec<_>>();
    if !prices.is_empty() {
        groups.push(FacetGroup { name: "Price", values: prices });
    }
    let in_stock = params.in_stock.is_some();
    groups.push(FacetGroup {
        name: "Availability",
        values: vec![FacetLink {
            label: "In stock only".into(),
            count: None,
            href: listing_href(base, params, &[("in_stock", (!in_stock).then(|| "1".to_owned()))]),
            selected: in_stock,
        }],
    });
    groups
}

fn active_filters(base: &str, params: &ListingParams, tree: &Tree, with_category: bool) -> Vec<NavLink> {
    let mut active = Vec::new();
    if with_category && let Some(category) = params.category.as_deref().and_then(|c| tree.by_slug(c)) {
        active.push(NavLink {
            name: category.name.clone(),
            href: listing_href(base, params, &[("category", None)]),
            current: true,
        });
    }
    if let Some(brand) = &params.brand {
        active.push(NavLink {
            name: brand.clone(),
            href: listing_href(base, params, &[("brand", None)]),
            current: true,
        });
    }
    if let (Some(_), _) | (_, Some(_)) = params.price_range() {
        let (from, to) = params.price_range();
        let usd = |v: i64| money_short(&platform::money::Money::new(v, "USD"));
        let name = match (from, to) {
            (Some(0), Some(t)) | (None, Some(t)) => format!("Under {}", usd(t + 1)),
            (Some(f), Some(t)) => format!("{} – {}", usd(f), usd(t + 1)),
            (Some(f), None) => format!("{} and above", usd(f)),
            (None, None) => unreachable!(),
        };
        active.push(NavLink { name, href: listing_href(base, params, &[("price", None)]), current: true });
    }
    if params.in_stock.is_some() {
        active.push(NavLink {
            name: "In stock".into(),
            href: listing_href(base, params, &[("in_stock", None)]),
            current: true,
        });
    }
    active
}

fn count_text(total: u64) -> String {
    match total {
        1 => "1 product".into(),
        _ => format!("{} products", crate::page::grouped(total)),
    }
}

#[allow(clippy::too_many_arguments)]
fn listing(
    base: &str,
    params: &ListingParams,
    results: &Results,
    tree: &Tree,
    mut layout: Layout,
    heading: String,
    breadcrumbs: Vec<NavLink>,
    children: Vec<NavLink>,
    search: bool,
) -> Listing {
    let sort = params.sort().unwrap_or_else(|| "relevance".into());
    let mut hidden: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in [
        ("q", &params.q),
        ("category", &params.category),
        ("brand", &params.brand),
        ("price", &params.price),
        ("in_stock", &params.in_stock),
    ] {
        if let Some(v) = value {
            hidden.push((key, v.clone()));
        }
    }
    let cards: Vec<Card> = results.items.iter().map(Card::of).collect();
    layout.preload = Card::first_picture(&cards);
    Listing {
        layout,
        heading,
        breadcrumbs,
        count: count_text(results.total),
        cards,
        facets: facet_groups(base, params, &results.facets, tree, search),
        active: active_filters(base, params, tree, search),
        sorts: SORTS.iter().map(|&(value, label)| SortOption { value, label, selected: value == sort }).collect(),
        hidden,
        action: base.to_owned(),
        next: results.next_cursor.as_ref().map(|c| listing_href(base, params, &[("cursor", Some(c.clone()))])),
        first_page: params.cursor.as_ref().map(|_| listing_href(base, params, &[])),
        searched: if search { params.q.clone() } else { None },
        suggestion: None,
        children,
    }
}

fn listing_query(params: &ListingParams) -> Query {
    let (min_price, max_price) = params.price_range();
    Query {
        q: params.q.clone(),
        prefix: false,
        category: params.category.clone(),
        brand: params.brand.clone(),
        min_price,
        max_price,
        in_stock: params.in_stock.is_some(),
        sort: params.sort(),
        cursor: params.cursor.clone(),
        limit: Some(PAGE_SIZE),
    }
}

/// `GET /c/{slug}`: a category, its sub-categories' products with it.
async fn category(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let tree = tree_with(&state, |t| t.by_slug(&slug).is_some()).await?;
    let category = tree.by_slug(&slug).ok_or(PageError::NotFound)?.clone();
    let mut params = ListingParams::parse(raw.as_deref());
    params.q = None;
    params.category = Some(category.slug.clone());
    let results = match state.catalog.search(&listing_query(&params)).await {
        // A cursor from an old page (the catalog changed) or a hand-edited one: start again.
        Err(error) if error.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) && params.cursor.is_some() => {
            params.cursor = None;
            state.catalog.search(&listing_query(&params)).await?
        }
        other => other?,
    };
    let base = format!("/c/{}", category.slug);
    // The category is the page itself, not a filter of it.
    let mut own = ListingParams { category: None, ..params };
    own.q = None;
    let breadcrumbs = std::iter::once(NavLink { name: "Home".into(), href: "/".into(), current: false })
        .chain(tree.path(&category).into_iter().map(|c| NavLink {
            name: c.name.clone(),
            href: format!("/c/{}", c.slug),
            current: c.id == category.id,
        }))
        .collect();
    let children = tree
        .children(&category.id)
        .map(|c| NavLink { name: c.name.clone(), href: format!("/c/{}", c.slug), current: false })
        .collect();
    let filtered = own.brand.is_some() || own.price.is_some() || own.in_stock.is_some() || own.cursor.is_some();
    let layout = Layout {
        title: category.name.clone(),
        description: format!("{} — {} at {}.", category.name, count_text(results.total), crate::page::store_name()),
        canonical: Some(base.clone()),
        nav: tree.nav(Some(&category)),
        // Filtered and later pages are the category again: only its first page is indexed.
        noindex: filtered,
        ..Layout::default()
    };
    let page = listing(&base, &own, &results, &tree, layout, category.name.clone(), breadcrumbs, children, false);
    render(&headers, &page, Caching::Public)
}

/// `GET /search?q=…`: search results with the same facets.
async fn search(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let mut params = ListingParams::parse(raw.as_deref());
    let tree = tree_with(&state, |t| params.category.as_deref().is_none_or(|c| t.by_slug(c).is_some())).await?;
    if let Some(q) = &params.q {
        params.q = Some(q.trim().chars().take(200).collect());
    }
    // An unknown category in a hand-edited URL is dropped rather than refused.
    if params.category.as_deref().is_some_and(|c| tree.by_slug(c).is_none()) {
        params.category = None;
    }
    let results = match state.catalog.search(&listing_query(&params)).await {
        Err(error) if error.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => {
            params.cursor = None;
            state.catalog.search(&listing_query(&params)).await?
        }
        other => other?,
    };
    let heading = match &params.q {
        Some(q) => format!("Results for “{q}”"),
        None => "All products".into(),
    };
    let layout = Layout {
        title: heading.clone(),
        description: heading.clone(),
        nav: tree.nav(None),
        query: params.q.clone().unwrap_or_default(),
        noindex: true,
        ..Layout::default()
    };
    let breadcrumbs = vec![NavLink { name: "Home".into(), href: "/".into(), current: false }];
    let mut page = listing("/search", &params, &results, &tree, layout, heading, breadcrumbs, Vec::new(), true);
    page.suggestion = params.q.as_deref().and_then(|q| did_you_mean(q, &results.items)).map(|words| {
        let href = listing_href("/search", &params, &[("q", Some(words.clone()))]);
        (words, href)
    });
    render(&headers, &page, Caching::Public)
}

/// Edits (insertions, deletions, substitutions, swaps of neighbours) between `a` and `b`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![(0..=b.len()).collect::<Vec<_>>(); a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// What the shopper probably meant, when the results matched other words than those typed (the
/// search forgives typos in longer words): each typed word that no result's name or brand holds,
/// replaced by the closest word they hold (at most two edits away). `None` when every word was
/// found as typed, or nothing close enough was.
fn did_you_mean(query: &str, results: &[Summary]) -> Option<String> {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    let found: std::collections::BTreeSet<String> =
        results.iter().flat_map(|r| words(&r.name).into_iter().chain(words(&r.brand))).collect();
    let typed = words(query);
    let mut changed = false;
    let mut meant = Vec::with_capacity(typed.len());
    for word in typed {
        if found.contains(&word) || word.chars().count() < 4 {
            meant.push(word);
            continue;
        }
        let closest = found.iter().map(|f| (distance(&word, f), f)).filter(|(d, _)| *d <= 2).min();
        match closest {
            Some((_, f)) => {
                changed = true;
                meant.push(f.clone());
            }
            None => meant.push(word),
        }
    }
    changed.then(|| meant.join(" "))
}

/// The product page.
#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    layout: Layout,
    breadcrumbs: Vec<NavLink>,
    name: String,
    brand: String,
    price: String,
    description: Vec<String>,
    images: Vec<crate::page::Picture>,
    initial: String,
    hue: u16,
    attributes: Vec<(String, String)>,
    variants: Vec<VariantOption>,
    any_available: bool,
    json_ld: String,
}

struct VariantOption {
    sku: String,
    label: String,
    price: String,
    /// "In stock", "Only 3 left", "Out of stock".
    availability: String,
    available: bool,
    checked: bool,
}

/// Words of an attribute value as a shopper reads them.
fn attribute_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "Yes".into(),
        serde_json::Value::Bool(false) => "No".into(),
        serde_json::Value::Array(items) => items.iter().map(attribute_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// An attribute's name as a label: `screen_size` → `Screen size`.
fn label(name: &str) -> String {
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The candidate ids at the end of `/p/{slug}-{id}`, shortest first: ids may hold hyphens
/// themselves (`seed-000001`, UUIDs), so which hyphen starts the id is tried, a UUID first.
fn id_candidates(key: &str) -> Vec<&str> {
    let mut candidates = Vec::new();
    if key.len() >= 36 {
        let tail = &key[key.len() - 36..];
        let uuid_shaped = tail.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        if uuid_shaped {
            candidates.push(tail);
        }
    }
    let hyphens: Vec<usize> = key.match_indices('-').map(|(i, _)| i).collect();
    for &i in hyphens.iter().rev().take(5) {
        let tail = &key[i + 1..];
        if !tail.is_empty() && !candidates.contains(&tail) {
            candidates.push(tail);
        }
    }
    if !candidates.contains(&key) {
        candidates.push(key);
    }
    candidates
}

/// `GET /p/{slug}-{id}`: a product; an old slug redirects to the current one.
async fn product(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let requested = format!("/p/{key}");
    let mut found: Option<Product> = None;
    for id in id_candidates(&key) {
        if let Some(product) = state.catalog.product(id).await? {
            let exact = product_path(&product.id, &product.name) == requested;
            if exact || found.is_none() {
                found = Some(product);
            }
            if exact {
                break;
            }
        }
    }
    let product = found.ok_or(PageError::NotFound)?;
    let canonical = product_path(&product.id, &product.name);
    if canonical != requested {
        return Ok(Redirect::permanent(&canonical).into_response());
    }
    let skus: Vec<String> = product.variants.iter().map(|v| v.sku.clone()).collect();
    let (tree, available) = futures::try_join!(
        tree_with(&state, |t| t.by_id(&product.category_id).is_some()),
        state.catalog.available(&skus).map_err(PageError::from)
    )?;
    let category = tree.by_id(&product.category_id);
    let mut breadcrumbs = vec![NavLink { name: "Home".into(), href: "/".into(), current: false }];
    if let Some(category) = category {
        breadcrumbs.extend(tree.path(category).into_iter().map(|c| NavLink {
            name: c.name.clone(),
            href: format!("/c/{}", c.slug),
            current: false,
        }));
    }
    let first_available = product.variants.iter().position(|v| available.get(&v.sku).copied().unwrap_or(0) > 0);
    let variants: Vec<VariantOption> = product
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let units = available.get(&v.sku).copied().unwrap_or(0);
            let described: Vec<String> = v.attributes.values().map(attribute_text).collect();
            VariantOption {
                sku: v.sku.clone(),
                label: if described.is_empty() { v.sku.clone() } else { described.join(" / ") },
                price: money(&v.price),
                availability: match units {
                    0 => "Out of stock".into(),
                    1..=5 => format!("Only {units} left"),
                    _ => "In stock".into(),
                },
                available: units > 0,
                checked: Some(i) == first_available,
            }
        })
        .collect();
    let attributes = product.attributes.iter().map(|(k, v)| (label(k), attribute_text(v))).collect();
    let description: Vec<String> =
        product.description.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
    let json_ld = json_ld(&product, &canonical, &available);
    let images: Vec<_> = product.images.iter().map(|url| crate::page::Picture::of(url, "full")).collect();
    let page = ProductPage {
        layout: Layout {
            title: product.name.clone(),
            description: product.description.chars().take(155).collect(),
            canonical: Some(canonical),
            nav: tree.nav(category),
            preload: images.first().map(|first| (first.clone(), crate::page::PRODUCT_SIZES)),
            ..Layout::default()
        },
        breadcrumbs,
        name: product.name.clone(),
        brand: product.brand.clone(),
        price: match product.variants.iter().any(|v| v.price != product.price) {
            true => format!("From {}", money(&product.price)),
            false => money(&product.price),
        },
        description,
        images,
        initial: crate::page::initial(&product.name),
        hue: crate::page::hue(&product.name),
        attributes,
        any_available: first_available.is_some(),
        variants,
        json_ld,
    };
    render(&headers, &page, Caching::Public)
}

/// schema.org `Product` with one `Offer` per variant, as JSON safe inside a `<script>` element.
fn json_ld(product: &Product, path: &str, available: &HashMap<String, i64>) -> String {
    let offers: Vec<serde_json::Value> = product
        .variants
        .iter()
        .map(|v| {
            let stock = match available.get(&v.sku).copied().unwrap_or(0) {
                0 => "https://schema.org/OutOfStock",
                _ => "https://schema.org/InStock",
            };
            serde_json::json!({
                "@type": "Offer",
                "sku": v.sku,
                "price": format!("{}.{:02}", v.price.amount / 100, v.price.amount % 100),
                "priceCurrency": v.price.currency,
                "availability": stock,
                "url": path,
            })
        })
        .collect();
    let value = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product.name,
        "description": product.description,
        "brand": {"@type": "Brand", "name": product.brand},
        "image": product.images,
        "offers": offers,
    });
    // `<`, `>` and `&` escaped, so no text in the product can close the script element.
    value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// Any other path a browser asks for: the "not found" page.
pub fn not_found() -> Response {
    PageError::NotFound.into_response()
}

fn render(headers: &HeaderMap, page: &impl Template, caching: Caching) -> Result<Response, PageError> {
    match page.render() {
        Ok(body) => Ok(html(headers, body, caching)),
        Err(error) => {
            tracing::error!(%error, "a template did not render");
            Err(PageError::Unavailable)
        }
    }
}

/// Most suggestions the search box offers.
const SUGGESTIONS: usize = 6;

/// `GET /search/suggest?q=`: products whose names hold what was typed, the last word maybe only
/// begun, for the search box's suggestions (`static/shop.js`): `{"items": [{name, brand, price,
/// href}]}`. The same for everyone, so cacheable a minute; without at least two letters, none.
async fn suggest(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let typed: String = ListingParams::parse(raw.as_deref()).q.unwrap_or_default().trim().chars().take(100).collect();
    let items = if typed.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        Ok(Vec::new())
    } else {
        let query = Query { q: Some(typed), prefix: true, limit: Some(SUGGESTIONS), ..Query::default() };
        state.catalog.search(&query).await.map(|found| found.items)
    };
    let (caching, items) = match items {
        Ok(items) => ("public, max-age=60", items),
        Err(error) => {
            // Suggestions are a convenience: the search box still submits.
            tracing::warn!(%error, "no search suggestions");
            ("no-store", Vec::new())
        }
    };
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|p| {
            serde_json::json!({"name": p.name, "brand": p.brand, "price": money(&p.price), "href": product_path(&p.id, &p.name)})
        })
        .collect();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json"), (axum::http::header::CACHE_CONTROL, caching)],
        serde_json::json!({ "items": items }).to_string(),
    )
        .into_response()
}

/// The catalog's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/c/{slug}", get(category))
        .route("/p/{key}", get(product))
        .route("/search", get(search))
        .route("/search/suggest", get(suggest))
}

#[cfg(test)]
mod tests {
    use platform::money::Money;

    use super::*;

    fn hostile_product() -> Product {
        let name = "<script>alert('x')</script> Lamp";
        serde_json::from_value(serde_json::json!({
            "id": "p-1", "name": name, "description": "Bright.\n\n</script><img src=x onerror=alert(1)>",
            "brand": "A&B \"Lights\"", "category_id": "cat-x", "price": {"amount": 2500, "currency": "USD"},
            "images": [], "attributes": {"<b>": "<i>bold</i>"}, "in_stock": true,
            "variants": [{"sku": "L-1", "price": {"amount": 2500, "currency": "USD"}, "attributes": {"colour": "<red>"}}]
        }))
        .unwrap()
    }

    #[test]
    fn text_from_the_catalog_renders_inert_in_pages_and_json_ld() {
        let product = hostile_product();
        let available = HashMap::from([("L-1".to_owned(), 3)]);
        let json_ld = json_ld(&product, "/p/x-p-1", &available);
        assert!(!json_ld.contains('<') && !json_ld.contains('>'), "{json_ld}");
        let parsed: serde_json::Value = serde_json::from_str(&json_ld).unwrap();
        assert_eq!(parsed["name"], product.name, "escaped, not changed");
        assert_eq!(parsed["offers"][0]["price"], "25.00");
        assert_eq!(parsed["offers"][0]["availability"], "https://schema.org/InStock");

        let page = ProductPage {
            layout: Layout { title: product.name.clone(), ..Layout::default() },
            breadcrumbs: vec![NavLink { name: "<Home>".into(), href: "/".into(), current: false }],
            name: product.name.clone(),
            brand: product.brand.clone(),
            price: money(&product.price),
            description: vec![product.description.clone()],
            images: vec![crate::page::Picture::of("/files/images/seed/a.png\" onload=\"alert(1)", "full")],
            initial: "<".into(),
            hue: 10,
            attributes: vec![("<b>".into(), "<i>bold</i>".into())],
            variants: vec![VariantOption {
                sku: "L-1\"><script>".into(),
                label: "<red>".into(),
                price: "$25.00".into(),
                availability: "Only 3 left".into(),
                available: true,
                checked: true,
            }],
            any_available: true,
            json_ld,
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<i>bold"));
        assert!(!html.contains("onload=\"alert"));
        assert!(
            html.contains("<h1>&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; Lamp</h1>"),
            "shown, escaped: {html}"
        );
        assert!(html.contains("A&#38;B &#34;Lights&#34;"), "{html}");
        assert_eq!(html.matches("<h1").count(), 1, "one heading");
        assert!(html.contains(r#"<script type="application/ld+json">"#));
    }

    #[test]
    fn product_urls_find_ids_with_hyphens_in_them() {
        assert_eq!(id_candidates("desk-lamp-seed-000001")[..2], ["000001", "seed-000001"]);
        let uuid = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(id_candidates(&format!("desk-lamp-{uuid}"))[0], uuid);
        assert!(id_candidates("plain").contains(&"plain"));
        assert!(id_candidates(&"a-".repeat(50)).len() <= 7, "a bounded number of lookups");
    }

    #[test]
    fn listing_links_keep_the_filters_and_start_again_from_the_first_page() {
        let params = read_listing_query("brand=Acme&price=2500-5000&sort=price_asc&cursor=abc&utm=x").unwrap();
        assert_eq!(params.price_range(), (Some(2500), Some(4999)), "the bucket's top is exclusive");
        assert_eq!(
            listing_href("/c/lamps", &params, &[("brand", None)]),
            "/c/lamps?price=2500-5000&sort=price_asc",
            "a changed filter drops the cursor"
        );
        assert_eq!(
            listing_href("/c/lamps", &params, &[("brand", Some("A&B".into()))]),
            "/c/lamps?brand=A%26B&price=2500-5000&sort=price_asc"
        );
        let unknown_sort = read_listing_query("sort=drop%20table&q=red+shoes").unwrap();
        assert_eq!(unknown_sort.sort(), None);
        assert_eq!(unknown_sort.q.as_deref(), Some("red shoes"));
        assert!(read_listing_query("q=%FF").is_none(), "not UTF-8: read as no query");
        assert_eq!(read_listing_query("q=100%").unwrap().q.as_deref(), Some("100%"));
    }

    #[test]
    fn a_search_whose_words_were_forgiven_suggests_the_ones_found() {
        let result = |name: &str, brand: &str| Summary {
            id: "p".into(),
            name: name.into(),
            brand: brand.into(),
            category_id: "c".into(),
            price: Money::new(1, "USD"),
            image: None,
            in_stock: true,
        };
        let found = [result("Reading Light", "Brightline"), result("Desk Lamp", "Lumo")];
        assert_eq!(did_you_mean("redaing light", &found).as_deref(), Some("reading light"));
        assert_eq!(did_you_mean("Brigthline lamp", &found).as_deref(), Some("brightline lamp"));
        assert_eq!(did_you_mean("reading light", &found), None, "found as typed");
        assert_eq!(did_you_mean("zzzzzz", &found), None, "nothing close");
        assert_eq!(did_you_mean("lmap", &found), Some("lamp".into()), "a swap is one edit");
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn cards_and_counts_read_well() {
        let summary = Summary {
            id: "seed-000001".into(),
            name: "Trail Shoe".into(),
            brand: "Stride".into(),
            category_id: "cat-shoes".into(),
            price: Money::new(123_456, "USD"),
            image: None,
            in_stock: false,
        };
        let card = Card::of(&summary);
        assert_eq!(
            (card.href.as_str(), card.price.as_str(), card.initial.as_str()),
            ("/p/trail-shoe-seed-000001", "$1,234.56", "T")
        );
        assert_eq!(count_text(1), "1 product");
        assert_eq!(count_text(43_210), "43,210 products");
    }

    #[test]
    fn the_first_screens_first_picture_is_asked_for_first_and_the_others_wait() {
        let card = |n: u32| {
            Card::of(&Summary {
                id: format!("seed-{n:06}"),
                name: format!("Lamp {n}"),
                brand: "Lumen".into(),
                category_id: "cat-x".into(),
                price: Money::new(2_500, "USD"),
                image: Some(format!("/files/images/seed/lamp-{n}.png")),
                in_stock: true,
            })
        };
        let newest = vec![card(1), card(2), card(3)];
        let page = Home {
            layout: Layout { preload: Card::first_picture(&newest), ..Layout::default() },
            departments: Vec::new(),
            newest,
            deals: vec![card(4)],
            promotions: Vec::new(),
        };
        let html = page.render().unwrap();
        let head = html.split("</head>").next().unwrap();
        assert!(
            head.contains(r#"<link rel="preload" as="image" href="/files/images/seed/lamp-1.card.jpg" imagesrcset="/files/images/seed/lamp-1.thumb.jpg 160w, /files/images/seed/lamp-1.card.jpg 400w""#),
            "{head}"
        );
        let images: Vec<&str> = html.split("<img ").skip(1).map(|i| i.split('>').next().unwrap()).collect();
        assert_eq!(images.len(), 4, "{html}");
        assert!(images[0].contains(r#"fetchpriority="high""#) && !images[0].contains("lazy"), "{}", images[0]);
        for later in &images[1..] {
            assert!(later.contains(r#"loading="lazy" fetchpriority="low""#), "{later}");
        }
        assert!(html.contains(&format!("<script>{}</script>", crate::assets::script())), "the page script inline");
    }
}
