//! [`Page`]: what every list of the public API answers, its items and the cursor of the next page.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref, Schema, SchemaType, Type};

/// One page of a list: `{"items": [...], "next_cursor": "..."}`. A client passes `next_cursor` as
/// `?cursor=` to read on, and stops at the page whose `next_cursor` is null.
///
/// In the OpenAPI document it is one schema per item type (`body = Page<Order>` is `Page_Order`)
/// whose items refer to the item's own schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `items` read with `limit`: a full page names its last item (through `cursor`)
    /// as where the next one starts; a shorter page is the last.
    pub fn new(items: Vec<T>, limit: usize, cursor: impl FnOnce(&T) -> String) -> Self {
        let next_cursor = if items.len() == limit { items.last().map(cursor) } else { None };
        Self { items, next_cursor }
    }

    /// A list that always fits one page (an address book, an order's payments): no next page.
    pub fn whole(items: Vec<T>) -> Self {
        Self { items, next_cursor: None }
    }
}

// Written out rather than derived: the derived schema of a generic type copies the item's whole
// schema into every page (utoipa inlines type parameters); this one refers to it, as the lists'
// own types did.
impl<T: ToSchema> utoipa::__dev::ComposeSchema for Page<T> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        let next_cursor = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("Pass as `cursor` for the next page; `null` on the last."));
        ObjectBuilder::new()
            .description(Some("One page of a list."))
            .property(
                "items",
                ArrayBuilder::new().items(Ref::from_schema_name(T::name())).description(Some("This page's items.")),
            )
            .required("items")
            .property("next_cursor", next_cursor)
            .into()
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        // The document names each page after its items (`Page_Order`).
        Cow::Borrowed("Page")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_full_page_names_its_last_item_as_the_next_cursor() {
        let page = Page::new(vec![1, 2, 3], 3, i32::to_string);
        assert_eq!(page.next_cursor.as_deref(), Some("3"));
        assert_eq!(serde_json::to_value(&page).unwrap(), json!({"items": [1, 2, 3], "next_cursor": "3"}));
    }

    #[test]
    fn a_short_or_empty_page_is_the_last() {
        assert_eq!(Page::new(vec![1, 2], 3, i32::to_string).next_cursor, None);
        assert_eq!(Page::new(Vec::<i32>::new(), 3, i32::to_string).next_cursor, None);
        assert_eq!(serde_json::to_value(Page::whole(vec!["a"])).unwrap(), json!({"items": ["a"], "next_cursor": null}));
    }

    #[test]
    fn the_document_names_a_page_after_its_items_and_refers_to_their_schema() {
        #[derive(utoipa::ToSchema)]
        struct Item {
            #[allow(dead_code)]
            id: String,
        }
        #[derive(utoipa::OpenApi)]
        #[openapi(components(schemas(Page<Item>)))]
        struct Doc;

        let document = serde_json::to_value(<Doc as utoipa::OpenApi>::openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        assert_eq!(schemas["Page_Item"]["properties"]["items"]["items"], json!({"$ref": "#/components/schemas/Item"}));
        assert_eq!(schemas["Page_Item"]["required"], json!(["items"]));
        assert_eq!(schemas["Page_Item"]["properties"]["next_cursor"]["type"], json!(["string", "null"]));
        assert!(schemas["Item"].is_object(), "{schemas}");
    }
}
