//! Shipping labels: a one-page PDF (4 × 6 inches) with the sender, the recipient's address, the
//! items and the tracking number, written directly (PDF 1.4, the standard Helvetica font).

use sha2::{Digest, Sha256};

use crate::domain::order::Order;

/// The object-store key of an order's shipping label.
pub fn label_key(order_id: &str) -> String {
    format!("labels/{order_id}.pdf")
}

/// Where the API serves an order's label (to its owner and admins only: it carries addresses).
pub fn label_url(order_id: &str) -> String {
    format!("/v1/orders/{order_id}/label")
}

/// The tracking number of an order: 12 digits derived from its id.
pub fn tracking_number(order_id: &str) -> String {
    let digest = Sha256::digest(order_id.as_bytes());
    let number = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    format!("SHP{number:012}")
}

/// The sender printed on every label.
const SENDER: [&str; 3] = ["Shop Fulfillment", "1 Warehouse Way", "Springfield, 12345, US"];

/// Text as a PDF string literal: parentheses and backslashes escaped, anything outside printable
/// ASCII replaced (the standard fonts have no other glyphs in this encoding).
fn pdf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// The label of `order` with `tracking`.
pub fn render(order: &Order, tracking: &str) -> Vec<u8> {
    let address = &order.shipping_address;
    let mut lines: Vec<(u32, String)> = vec![(9, "FROM".into())];
    lines.extend(SENDER.iter().map(|l| (10, (*l).to_owned())));
    lines.push((9, String::new()));
    lines.push((9, "SHIP TO".into()));
    lines.push((14, address.name.clone()));
    lines.push((12, address.line1.clone()));
    if let Some(line2) = &address.line2 {
        lines.push((12, line2.clone()));
    }
    let region = address.region.as_deref().map(|r| format!(", {r}")).unwrap_or_default();
    lines.push((12, format!("{}{region} {}", address.city, address.postal_code)));
    lines.push((12, address.country.clone()));
    lines.push((9, String::new()));
    lines.push((16, format!("TRACKING {tracking}")));
    lines.push((9, format!("ORDER {}", order.id)));
    lines.push((9, String::new()));
    for item in order.items.iter().take(12) {
        lines.push((9, format!("{} x {}  {}", item.quantity, item.sku, item.name)));
    }
    if order.items.len() > 12 {
        lines.push((9, format!("... and {} more lines", order.items.len() - 12)));
    }
    lines.push((9, String::new()));
    let pricing = &order.pricing;
    if let Some(shipping) = &pricing.shipping {
        lines.push((10, format!("SHIP VIA {}", shipping.name)));
    }
    let amount = platform::money::decimal;
    lines.push((
        9,
        format!(
            "SUBTOTAL {}  DISCOUNTS -{}  SHIPPING {}  TAX {}{}",
            amount(pricing.subtotal),
            amount(pricing.discount_total),
            amount(pricing.shipping_total),
            amount(pricing.tax_total),
            if pricing.tax_inclusive { " (included)" } else { "" },
        ),
    ));
    lines.push((10, format!("TOTAL {} {}", amount(pricing.grand_total), pricing.currency)));

    let mut content = String::from("BT\n");
    let mut y = 410;
    for (size, text) in &lines {
        content.push_str(&format!("/F1 {size} Tf 1 0 0 1 18 {y} Tm {} Tj\n", pdf_text(text)));
        y -= size + 4;
    }
    content.push_str("ET\n");

    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 288 432] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use platform::address::AddressInput;
    use platform::money::Money;

    use super::*;
    use crate::domain::order::{OrderItem, OrderStatus};

    fn order() -> Order {
        Order {
            id: "ord_1".into(),
            customer_id: "u".into(),
            status: OrderStatus::Confirmed,
            items: vec![OrderItem {
                sku: "MUG-1".into(),
                product_id: "p".into(),
                name: "Mug (large) — blue".into(),
                quantity: 2,
                unit_price: Money::new(500, "USD"),
                line_total: Money::new(1000, "USD"),
            }],
            total: Money::new(1000, "USD"),
            pricing: crate::domain::pricing::Breakdown {
                currency: "USD".into(),
                tax_inclusive: false,
                lines: vec![],
                shipping: Some(crate::domain::pricing::PricedShipping {
                    method_id: "standard".into(),
                    name: "Standard".into(),
                    price: 599,
                    discounts: vec![],
                    discount_total: 0,
                    taxes: vec![],
                    tax_total: 0,
                    total: 599,
                }),
                subtotal: 1000,
                discount_total: 100,
                shipping_total: 599,
                tax_total: 72,
                grand_total: 1571,
                promotions: vec![],
            },
            redemptions: vec![],
            shipping_address: AddressInput {
                name: "Ada Lovelace".into(),
                line1: "12 St James's Square".into(),
                line2: None,
                city: "London".into(),
                region: None,
                postal_code: "SW1Y 4JH".into(),
                country: "GB".into(),
            },
            payment_method: "pm_card_visa".into(),
            label_url: None,
            tracking_number: None,
            history: vec![],
            email: None,
            token: None,
            refunds: Vec::new(),
            deadline: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_label_is_a_well_formed_pdf_with_the_address_items_and_tracking_number() {
        let pdf = render(&order(), "SHP000000000042");
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        for expected in [
            "(Ada Lovelace)",
            "(London SW1Y 4JH)",
            "(TRACKING SHP000000000042)",
            "(2 x MUG-1  Mug \\(large\\) ? blue)",
            "(SHIP VIA Standard)",
            "(SUBTOTAL 10.00  DISCOUNTS -1.00  SHIPPING 5.99  TAX 0.72)",
            "(TOTAL 15.71 USD)",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        // The cross-reference table points at each object.
        let xref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(text[xref..].starts_with("xref\n0 6\n"));
        for (i, line) in text[xref..].lines().skip(3).take(5).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(text[offset..].starts_with(&format!("{} 0 obj", i + 1)), "object {}", i + 1);
        }
    }

    #[test]
    fn tracking_numbers_are_stable_per_order() {
        assert_eq!(tracking_number("ord_1"), tracking_number("ord_1"));
        assert_ne!(tracking_number("ord_1"), tracking_number("ord_2"));
        assert_eq!(tracking_number("ord_1").len(), 15);
    }
}
