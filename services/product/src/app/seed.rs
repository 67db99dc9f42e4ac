//! The demo catalog `shop up` starts with, so a fresh platform has something to browse.

use std::collections::HashMap;

use platform::objects::ObjectStore;

use crate::Catalog;
use crate::app::drawn::Shape;
use crate::domain::category::{Category, slugify};
use crate::store::StoreError;

/// The demo category tree: (name, parent name).
const DEMO_CATEGORIES: &[(&str, Option<&str>)] = &[
    ("Electronics", None),
    ("Phones", Some("Electronics")),
    ("Laptops", Some("Electronics")),
    ("Audio", Some("Electronics")),
    ("Home & Garden", None),
    ("Kitchen", Some("Home & Garden")),
    ("Furniture", Some("Home & Garden")),
    ("Fashion", None),
    ("Shoes", Some("Fashion")),
    ("Outdoor", None),
];

/// Seeds the demo catalog into an empty store; returns the number of categories added (0 when the
/// catalog already has categories).
pub async fn seed_demo(catalog: &Catalog) -> Result<usize, StoreError> {
    if !catalog.categories.list().await?.is_empty() {
        return Ok(0);
    }
    for (name, parent) in DEMO_CATEGORIES {
        let category = Category {
            id: format!("cat-{}", slugify(name)),
            name: (*name).to_owned(),
            parent_id: parent.map(|p| format!("cat-{}", slugify(p))),
            slug: slugify(name),
        };
        catalog.categories.insert(&category).await?;
    }
    Ok(DEMO_CATEGORIES.len())
}

/// One generated product: its id, what an admin would send, the stock of each SKU, and its
/// picture.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The product id (`seed-000001`, …): seeding again updates the same products.
    pub id: String,
    /// The product.
    pub input: crate::domain::product::ProductInput,
    /// Units on hand per SKU.
    pub stock: Vec<(String, i64)>,
    /// How it is drawn.
    pub picture: Picture,
}

/// A drawn picture: a shape in a colour, shared by every product of that kind and colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Picture {
    /// The shape.
    pub shape: Shape,
    /// The colour's name.
    pub colour: &'static str,
}

impl Picture {
    /// Where it is stored (its resized copies beside it).
    pub fn key(&self) -> String {
        format!("images/seed/{:?}-{}.png", self.shape, self.colour).to_lowercase()
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same catalog everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// What the generator knows of a leaf category: brands, nouns, price range in cents, variant axis.
struct Kind {
    category: &'static str,
    brands: &'static [&'static str],
    nouns: &'static [&'static str],
    prices: (i64, i64),
    axis: (&'static str, &'static [&'static str]),
    /// How its products are drawn.
    shape: Shape,
}

const COLOURS: &[&str] = &["Black", "White", "Silver", "Blue", "Red", "Green", "Graphite", "Sand"];

const KINDS: &[Kind] = &[
    Kind {
        category: "cat-phones",
        brands: &["Nokta", "Pixelon", "Aurora", "Zentel", "Kestrel"],
        nouns: &["Smartphone", "Phone", "Flip Phone", "Rugged Phone"],
        prices: (9_900, 129_900),
        axis: ("storage", &["64 GB", "128 GB", "256 GB", "512 GB"]),
        shape: Shape::Phone,
    },
    Kind {
        category: "cat-laptops",
        brands: &["Lumen", "Corvid", "Aurora", "Tessel", "Brightline"],
        nouns: &["Laptop", "Ultrabook", "Notebook", "Gaming Laptop", "Chromebook"],
        prices: (29_900, 349_900),
        axis: ("memory", &["8 GB", "16 GB", "32 GB", "64 GB"]),
        shape: Shape::Laptop,
    },
    Kind {
        category: "cat-audio",
        brands: &["Sonic", "Resona", "Pulse", "Harbor Audio", "Kestrel"],
        nouns: &["Headphones", "Earbuds", "Speaker", "Soundbar", "Turntable", "Microphone"],
        prices: (1_900, 79_900),
        axis: ("colour", COLOURS),
        shape: Shape::Headphones,
    },
    Kind {
        category: "cat-kitchen",
        brands: &["Copperleaf", "Hearth & Co", "Mesa", "Ovenbird", "Brightline"],
        nouns: &["Kettle", "Espresso Machine", "Chef Knife", "Skillet", "Blender", "Toaster", "Dutch Oven"],
        prices: (1_500, 89_900),
        axis: ("colour", COLOURS),
        shape: Shape::Kettle,
    },
    Kind {
        category: "cat-furniture",
        brands: &["Oakhaven", "Nordvik", "Mesa", "Loft & Line"],
        nouns: &["Armchair", "Desk", "Bookshelf", "Sofa", "Dining Table", "Office Chair", "Bed Frame"],
        prices: (4_900, 249_900),
        axis: ("finish", &["Oak", "Walnut", "Ash", "Black", "White"]),
        shape: Shape::Chair,
    },
    Kind {
        category: "cat-shoes",
        brands: &["Stride", "Acme", "Trailhead", "Bolt", "Cobbler & Sons"],
        nouns: &["Running Shoe", "Trail Shoe", "Sneaker", "Leather Boot", "Sandal", "Hiking Boot", "Loafer"],
        prices: (2_900, 24_900),
        axis: ("size", &["38", "39", "40", "41", "42", "43", "44", "45"]),
        shape: Shape::Shoe,
    },
    Kind {
        category: "cat-outdoor",
        brands: &["Trailhead", "Summit", "Northwind", "Acme", "Campfire"],
        nouns: &["Tent", "Backpack", "Sleeping Bag", "Camping Stove", "Headlamp", "Water Filter", "Trekking Poles"],
        prices: (1_200, 69_900),
        axis: ("colour", COLOURS),
        shape: Shape::Tent,
    },
];

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Pro",
    "Ultra",
    "Compact",
    "Lightweight",
    "Premium",
    "Everyday",
    "Rugged",
    "Eco",
    "Smart",
    "Deluxe",
    "Essential",
    "Advanced",
    "Portable",
    "Wireless",
    "Modern",
    "Vintage",
    "Travel",
];
const QUALITIES: &[&str] = &[
    "durable",
    "comfortable",
    "precise",
    "quiet",
    "energy-efficient",
    "water-resistant",
    "hand-finished",
    "versatile",
    "easy to clean",
    "well balanced",
];
const USES: &[&str] = &[
    "daily use",
    "long weekends",
    "small spaces",
    "busy mornings",
    "the whole family",
    "professionals",
    "beginners",
    "travel",
    "the outdoors",
    "gifting",
];

fn attributes(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, serde_json::Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned()))).collect()
}

/// The `n`-th product (from 0) of the generated catalog.
pub fn generate(n: u64) -> Generated {
    use crate::domain::product::{ProductInput, VariantInput};
    let mut rng = Rng(n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
    let kind = &KINDS[rng.below(KINDS.len())];
    let brand = rng.pick(kind.brands);
    let noun = rng.pick(kind.nouns);
    let adjective = rng.pick(ADJECTIVES);
    let model = 100 + rng.below(900);
    let name = format!("{brand} {adjective} {noun} {model}");
    let description = format!(
        "The {adjective} {noun} {model} from {brand} is {} and {}, made for {}. Backed by a two-year warranty.",
        rng.pick(QUALITIES),
        rng.pick(QUALITIES),
        rng.pick(USES),
    );
    // Log-uniform prices, rounded to end in 99 cents.
    let (low, high) = (kind.prices.0 as f64, kind.prices.1 as f64);
    let fraction = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let base = ((low * (high / low).powf(fraction)) as i64 / 100) * 100 + 99;
    let id = format!("seed-{:06}", n + 1);
    let (axis, values) = kind.axis;
    let count = 1 + rng.below(4.min(values.len()));
    let start = rng.below(values.len() - count + 1);
    let mut variants = Vec::with_capacity(count);
    let mut stock = Vec::with_capacity(count);
    let out_of_stock = rng.below(10) == 0;
    for (i, value) in values[start..start + count].iter().enumerate() {
        let sku = format!("SEED-{:06}-{}", n + 1, i + 1);
        let price = base + (i as i64) * (base / 10 / 100) * 100;
        variants.push(VariantInput {
            sku: sku.clone(),
            price: Some(platform::money::Money::new(price, "USD")),
            attributes: attributes(&[(axis, value)]),
            // Heavier as dearer, from a quarter kilo to about two: weight-tiered shipping has
            // something to weigh.
            weight_grams: Some(250 + u32::try_from(base / 10 % 1_750).unwrap_or(0)),
        });
        stock.push((sku, if out_of_stock { 0 } else { rng.below(200) as i64 + 1 }));
    }
    // Drawn in its first variant's colour or finish, or (phones, laptops, shoes) one of the colours.
    let colour = match axis {
        "colour" | "finish" => values[start],
        _ => COLOURS[(n as usize * 7 + 3) % COLOURS.len()],
    };
    let picture = Picture { shape: kind.shape, colour };
    let input = ProductInput {
        name,
        description,
        brand: brand.to_owned(),
        category_id: kind.category.to_owned(),
        price: platform::money::Money::new(base, "USD"),
        attributes: attributes(&[("model", &model.to_string())]),
        tax_category: Default::default(),
        variants,
    };
    Generated { id, input, stock, picture }
}

/// Writes `count` generated products as NDJSON lines (with their ids), as `shop import` and
/// `POST /admin/v1/products/import` take them.
pub fn write_ndjson(count: u64, out: &mut impl std::io::Write) -> std::io::Result<()> {
    for n in 0..count {
        let generated = generate(n);
        let mut line = serde_json::to_value(&generated.input).map_err(std::io::Error::other)?;
        line["id"] = serde_json::Value::String(generated.id);
        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Where seeded stock goes besides the catalog: the inventory.
#[async_trait::async_trait]
pub trait StockSink: Send + Sync {
    /// Sets the units on hand of each SKU.
    async fn set(&self, levels: &[(String, i64)]) -> anyhow::Result<()>;
}

/// Products the seeder generates and stocks together.
const SEED_BATCH: u64 = 1_000;

/// Seeds `count` generated products into the demo categories (seed those first): each SKU's stock
/// level is recorded with the catalog (so `in_stock` is right at once) and given to `stock` (the
/// inventory), a batch at a time, then the products are imported. `progress` hears the running
/// count.
pub async fn seed_products(
    catalog: &Catalog,
    count: u64,
    stock: &dyn StockSink,
    objects: Option<&dyn ObjectStore>,
    progress: impl FnMut(u64) + Send,
) -> anyhow::Result<crate::app::import::ImportReport> {
    let mut importer = crate::app::import::Importer::new(catalog).with_progress(progress);
    let mut pictures: HashMap<Picture, String> = HashMap::new();
    let mut start = 0;
    while start < count {
        // A batch's stock first, in one write to each store (the catalog keeps the levels for the
        // products' `in_stock`, so they go before the products), then its products.
        let batch: Vec<Generated> = (start..count.min(start + SEED_BATCH)).map(generate).collect();
        let levels: Vec<(String, i64)> = batch.iter().flat_map(|g| g.stock.iter().cloned()).collect();
        catalog.products.set_availabilities(&levels).await?;
        stock.set(&levels).await?;
        for (n, generated) in (start..).zip(batch) {
            let images = match objects {
                Some(objects) => match pictures.get(&generated.picture) {
                    Some(url) => vec![url.clone()],
                    None => {
                        let url = store_picture(objects, generated.picture).await?;
                        pictures.insert(generated.picture, url.clone());
                        vec![url]
                    }
                },
                None => Vec::new(),
            };
            importer.add(n + 1, Some(generated.id), generated.input, images).await?;
        }
        start += SEED_BATCH;
    }
    Ok(importer.finish().await?)
}

/// Draws `picture` and stores it with its resized copies, unless a seeding before did; its URL.
async fn store_picture(objects: &dyn ObjectStore, picture: Picture) -> anyhow::Result<String> {
    let key = picture.key();
    if objects.size(&key).await?.is_none() {
        let (png, variants) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let image = crate::app::drawn::draw(picture.shape, crate::app::drawn::colour_of(picture.colour));
            let mut png = std::io::Cursor::new(Vec::new());
            image.write_to(&mut png, image::ImageFormat::Png)?;
            Ok((png.into_inner(), crate::app::images::variants_of(&image).map_err(|e| anyhow::anyhow!(e))?))
        })
        .await??;
        for (variant, bytes) in variants {
            objects.put(&crate::app::images::variant_key(&key, variant), bytes.into(), "image/jpeg").await?;
        }
        objects.put(&key, png.into(), "image/png").await?;
    }
    Ok(objects.public_url(&key).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_catalog_is_deterministic_and_valid() {
        for n in [0, 1, 99_999] {
            let a = generate(n);
            let b = generate(n);
            assert_eq!(a.id, b.id);
            assert_eq!(a.input.name, b.input.name);
            assert_eq!(a.stock, b.stock);
            let mut v = platform::http::Validator::new();
            let product = crate::domain::product::build(a.input, a.id, vec![], false, chrono::Utc::now(), &mut v);
            assert!(product.is_some(), "{:?}", v.finish());
        }
        assert_ne!(generate(1).input.name, generate(2).input.name);
    }
}
