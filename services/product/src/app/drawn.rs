//! The demo catalog's pictures: each kind of product drawn as a simple shape in a colour, on a
//! soft background, so a first `shop up` shows a shop rather than empty frames. One picture per
//! kind and colour, shared by the products that are that kind and colour, stored through the
//! object store exactly as published uploads are (with the same resized copies).

use image::{DynamicImage, Rgb, RgbImage};

/// The side of a drawn picture, in pixels.
pub const SIDE: u32 = 1200;

/// The shapes products are drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A tall rounded slab with a screen.
    Phone,
    /// A screen on a base.
    Laptop,
    /// Two ear cups on a band.
    Headphones,
    /// A round pot with a spout and a handle.
    Kettle,
    /// A seat with a back on legs.
    Chair,
    /// A low shoe with a sole.
    Shoe,
    /// A tent.
    Tent,
}

/// The colour a colour or finish name is drawn in.
pub fn colour_of(name: &str) -> Rgb<u8> {
    Rgb(match name {
        "Black" => [34, 36, 40],
        "White" => [246, 246, 244],
        "Silver" => [192, 194, 202],
        "Blue" => [46, 108, 214],
        "Red" => [206, 58, 58],
        "Green" => [46, 150, 92],
        "Graphite" => [78, 82, 90],
        "Sand" => [214, 196, 158],
        "Oak" => [196, 150, 104],
        "Walnut" => [110, 74, 50],
        "Ash" => [222, 208, 186],
        _ => [120, 124, 134],
    })
}

fn mix(a: Rgb<u8>, b: Rgb<u8>, t: f32) -> Rgb<u8> {
    Rgb([0, 1, 2].map(|i| (a.0[i] as f32 * (1.0 - t) + b.0[i] as f32 * t).round() as u8))
}

/// Fills the pixels where `inside(x, y)` holds (in units of the picture's side, 0–1), smoothing the
/// edge by sampling each pixel four times. Only the box around the shape is visited: a coarse grid
/// (finer than any stroke drawn here) finds it first.
fn fill(image: &mut RgbImage, colour: Rgb<u8>, inside: impl Fn(f32, f32) -> bool) {
    const GRID: u32 = 160;
    let (mut low, mut high) = ((GRID, GRID), (0, 0));
    for gy in 0..=GRID {
        for gx in 0..=GRID {
            if inside(gx as f32 / GRID as f32, gy as f32 / GRID as f32) {
                low = (low.0.min(gx), low.1.min(gy));
                high = (high.0.max(gx), high.1.max(gy));
            }
        }
    }
    if low.0 > high.0 {
        return;
    }
    let side = image.width() as f32;
    let to_pixels = |cell: u32| ((cell as f32 / GRID as f32) * side) as u32;
    let (x0, y0) = (to_pixels(low.0.saturating_sub(1)), to_pixels(low.1.saturating_sub(1)));
    let (x1, y1) = (to_pixels(high.0 + 1).min(image.width()), to_pixels(high.1 + 1).min(image.height()));
    for y in y0..y1 {
        for x in x0..x1 {
            let hits = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
                .iter()
                .filter(|(dx, dy)| inside((x as f32 + dx) / side, (y as f32 + dy) / side))
                .count();
            if hits > 0 {
                let pixel = image.get_pixel_mut(x, y);
                *pixel = mix(*pixel, colour, hits as f32 / 4.0);
            }
        }
    }
}

fn rounded(x: f32, y: f32, (left, top, right, bottom): (f32, f32, f32, f32), radius: f32) -> bool {
    if x < left || x > right || y < top || y > bottom {
        return false;
    }
    let radius = radius.min((right - left) / 2.0).min((bottom - top) / 2.0);
    let cx = x.clamp(left + radius, right - radius);
    let cy = y.clamp(top + radius, bottom - radius);
    (x - cx).powi(2) + (y - cy).powi(2) <= radius * radius
}

fn ellipse(x: f32, y: f32, (cx, cy): (f32, f32), (rx, ry): (f32, f32)) -> bool {
    ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0
}

/// `shape` in `colour`, [`SIDE`] pixels square.
pub fn draw(shape: Shape, colour: Rgb<u8>) -> DynamicImage {
    let background = mix(colour, Rgb([255, 255, 255]), 0.86);
    let mut image = RgbImage::from_pixel(SIDE, SIDE, background);
    // A light body is outlined and detailed in a darker tone, a dark one in a lighter tone.
    let light = colour.0.iter().map(|c| *c as u32).sum::<u32>() > 540;
    let detail = if light { mix(colour, Rgb([0, 0, 0]), 0.45) } else { mix(colour, Rgb([255, 255, 255]), 0.35) };
    let shadow = mix(background, Rgb([0, 0, 0]), 0.12);
    fill(&mut image, shadow, |x, y| ellipse(x, y, (0.5, 0.86), (0.32, 0.035)));
    match shape {
        Shape::Phone => {
            fill(&mut image, detail, |x, y| rounded(x, y, (0.33, 0.1, 0.67, 0.84), 0.06));
            fill(&mut image, colour, |x, y| rounded(x, y, (0.34, 0.11, 0.66, 0.83), 0.055));
            fill(&mut image, mix(detail, Rgb([20, 24, 32]), 0.6), |x, y| rounded(x, y, (0.36, 0.15, 0.64, 0.76), 0.02));
            fill(&mut image, detail, |x, y| ellipse(x, y, (0.5, 0.795), (0.02, 0.02)));
        }
        Shape::Laptop => {
            fill(&mut image, colour, |x, y| rounded(x, y, (0.2, 0.2, 0.8, 0.62), 0.025));
            fill(&mut image, mix(detail, Rgb([20, 24, 32]), 0.6), |x, y| rounded(x, y, (0.23, 0.23, 0.77, 0.59), 0.01));
            fill(&mut image, colour, |x, y| {
                (0.64..=0.7).contains(&y) && x >= 0.12 - (y - 0.64) && x <= 0.88 + (y - 0.64)
            });
            fill(&mut image, detail, |x, y| rounded(x, y, (0.44, 0.645, 0.56, 0.66), 0.008));
        }
        Shape::Headphones => {
            fill(&mut image, colour, |x, y| {
                let r = ((x - 0.5).powi(2) + (y - 0.5).powi(2)).sqrt();
                y < 0.55 && (0.26..=0.31).contains(&r)
            });
            for cx in [0.21, 0.79] {
                fill(&mut image, detail, |x, y| rounded(x, y, (cx - 0.08, 0.47, cx + 0.08, 0.75), 0.06));
                fill(&mut image, colour, |x, y| rounded(x, y, (cx - 0.07, 0.48, cx + 0.07, 0.74), 0.055));
            }
        }
        Shape::Kettle => {
            fill(&mut image, colour, |x, y| {
                let r = ((x - 0.78).powi(2) + (y - 0.5).powi(2)).sqrt();
                (0.1..=0.15).contains(&r) && x > 0.72
            });
            fill(&mut image, colour, |x, y| (0.2..=0.3).contains(&x) && y >= 0.45 + (0.3 - x) * 1.2 && y <= 0.62);
            fill(&mut image, colour, |x, y| ellipse(x, y, (0.5, 0.58), (0.27, 0.25)));
            fill(&mut image, detail, |x, y| rounded(x, y, (0.36, 0.26, 0.64, 0.33), 0.03));
            fill(&mut image, colour, |x, y| rounded(x, y, (0.37, 0.27, 0.63, 0.32), 0.025));
            fill(&mut image, detail, |x, y| rounded(x, y, (0.3, 0.78, 0.7, 0.82), 0.02));
        }
        Shape::Chair => {
            fill(&mut image, detail, |x, y| {
                [(0.3, 0.62), (0.66, 0.62)].iter().any(|(l, t)| x >= *l && x <= l + 0.04 && y >= *t && y <= 0.84)
            });
            fill(&mut image, colour, |x, y| rounded(x, y, (0.27, 0.18, 0.73, 0.5), 0.06));
            fill(&mut image, colour, |x, y| rounded(x, y, (0.22, 0.48, 0.78, 0.64), 0.05));
            fill(&mut image, mix(colour, detail, 0.35), |x, y| rounded(x, y, (0.3, 0.24, 0.7, 0.44), 0.04));
        }
        Shape::Shoe => {
            fill(&mut image, detail, |x, y| rounded(x, y, (0.14, 0.66, 0.88, 0.74), 0.035));
            fill(&mut image, colour, |x, y| {
                (ellipse(x, y, (0.56, 0.66), (0.32, 0.14)) && y <= 0.67)
                    || rounded(x, y, (0.16, 0.38, 0.46, 0.67), 0.08)
            });
            fill(&mut image, detail, |x, y| {
                [0.5, 0.56, 0.62].iter().any(|cx| ellipse(x, y, (*cx, 0.56 - (cx - 0.5) * 0.4), (0.022, 0.012)))
            });
        }
        Shape::Tent => {
            fill(&mut image, colour, |x, y| (0.2..=0.8).contains(&y) && (x - 0.5).abs() <= (y - 0.2) * 0.62);
            fill(&mut image, mix(colour, Rgb([0, 0, 0]), 0.35), |x, y| {
                (0.48..=0.8).contains(&y) && (x - 0.5).abs() <= (y - 0.48) * 0.38
            });
            fill(&mut image, detail, |x, y| (x - 0.5).abs() <= 0.006 && (0.14..=0.22).contains(&y));
        }
    }
    DynamicImage::ImageRgb8(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_is_drawn_in_its_colour_on_a_paler_ground() {
        for shape in
            [Shape::Phone, Shape::Laptop, Shape::Headphones, Shape::Kettle, Shape::Chair, Shape::Shoe, Shape::Tent]
        {
            let red = colour_of("Red");
            let image = draw(shape, red).to_rgb8();
            assert_eq!(image.dimensions(), (SIDE, SIDE));
            let painted = image.pixels().filter(|p| **p == red).count();
            let share = painted as f64 / (SIDE * SIDE) as f64;
            assert!((0.03..0.5).contains(&share), "{shape:?} covers {share:.3} of the picture");
            assert_ne!(*image.get_pixel(2, 2), red, "{shape:?}: the ground is not the colour");
        }
    }
}
