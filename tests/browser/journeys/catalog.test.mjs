// Browsing: the home page, a department, filters and sorting, search with a typo, a product.
import assert from "node:assert/strict";
import { journey, PHONE, Shop } from "../lib.mjs";

journey("a shopper browses a department, filters it by brand and sorts it by price", async (page, shop) => {
  await shop.open("/");
  const offers = await shop.text("[aria-label='Offers now']");
  assert.match(offers, /10 % off your first order with code WELCOME10/, "the demo's featured promotions");
  await shop.accessible("home page");
  const departments = page.getByRole("navigation", { name: "Departments" });
  await shop.follow(departments.getByRole("link", { name: "Electronics" }));
  assert.match(page.url(), /\/c\/electronics$/);
  assert.equal(await page.locator("h1").innerText(), "Electronics");
  await shop.accessible("category page");

  // A brand from the facet: every card is of that brand, and the filter shows as applied.
  const brandLink = page.locator("section:has(h2:text-is('Brand')) ul.facet a").first();
  const brand = (await brandLink.innerText()).replace(/\s*\(\d+\)$/, "");
  await shop.follow(brandLink);
  assert.match(page.url(), /brand=/);
  const brands = await page.locator("ul.grid .card-brand").allInnerTexts();
  assert.ok(brands.length > 0, "products of the brand");
  for (const b of brands) assert.equal(b.trim(), brand);
  await page.getByRole("link", { name: `Remove ${brand}` }).waitFor();

  // The sort applies itself when chosen (the script submits the form).
  await Promise.all([page.waitForNavigation(), page.getByLabel("Sort by").selectOption("price_asc")]);
  assert.match(page.url(), /sort=price_asc/);
  assert.match(page.url(), /brand=/, "the filter stays");
  const prices = (await page.locator("ul.grid .card-price").allInnerTexts()).map(Shop.cents);
  assert.ok(prices.length > 1, "several products");
  assert.deepEqual(prices, [...prices].sort((a, b) => a - b), "cheapest first");
});

journey("a shopper searches with a typo and is offered the right word", async (page, shop) => {
  await shop.open("/");
  await page.getByLabel("Search products").fill("clasic");
  await Promise.all([page.waitForNavigation(), page.getByLabel("Search products").press("Enter")]);
  assert.match(page.url(), /\/search\?q=clasic/);
  const suggestion = page.locator(".suggestion a");
  assert.equal(await suggestion.innerText(), "classic");
  assert.ok((await page.locator("ul.grid li").count()) > 0, "results despite the typo");
  await shop.accessible("search page");
  await shop.follow(suggestion);
  const names = await page.locator("ul.grid .card-name").allInnerTexts();
  assert.ok(names.length > 0 && names.every((n) => /classic/i.test(n)), names.join(", "));

  // Nothing found: a page that helps.
  await shop.open("/search?q=zzzzqqqq");
  assert.match(await shop.text(), /No products match “zzzzqqqq”/);
  await shop.accessible("empty search page");
});

journey("a shopper types a few letters, is offered products and opens one by keyboard", async (page, shop) => {
  await shop.open("/");
  const box = page.getByRole("combobox", { name: "Search products" });
  await box.pressSequentially("gaming lapt", { delay: 30 });
  const options = page.getByRole("option");
  await options.first().waitFor();
  const names = await page.locator(".suggestion-name").allInnerTexts();
  assert.ok(names.length > 0 && names.length <= 6, names.join(", "));
  for (const name of names) assert.match(name, /gaming/i);
  assert.ok(names.some((n) => /laptop/i.test(n)), names.join(", "));
  assert.equal(await box.getAttribute("aria-expanded"), "true");
  await shop.accessible("home page with suggestions open");
  await page.keyboard.press("ArrowDown");
  assert.equal(await box.getAttribute("aria-activedescendant"), "search-suggestion-0");
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  assert.match(page.url(), /\/p\//);
  assert.equal(await page.locator("h1").innerText(), names[0]);
  // Escape closes them; without a choice, Enter searches as before.
  await box.pressSequentially("head", { delay: 30 });
  await options.first().waitFor();
  await page.keyboard.press("Escape");
  assert.equal(await box.getAttribute("aria-expanded"), "false");
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  assert.match(page.url(), /\/search\?q=head/);
});

journey(
  "on a phone a shopper opens a product, picks a variant and adds two to the cart",
  async (page, shop) => {
    await shop.open("/c/shoes?in_stock=1");
    assert.equal(await page.locator("details.filters").getAttribute("open"), null, "filters folded on a phone");
    await shop.follow(page.locator("ul.grid a").first());
    assert.match(page.url(), /\/p\/[a-z0-9-]+-[A-Za-z0-9_-]+$/);
    const name = await page.locator("h1").innerText();
    await shop.accessible("product page");
    const structured = JSON.parse(await page.locator("script[type='application/ld+json']").innerText());
    assert.equal(structured["@type"], "Product");
    assert.equal(structured.name, name);

    // The second variant that can be bought, by keyboard: its label names its size.
    const variants = page.locator("label.variant:not(.unavailable)");
    assert.ok((await variants.count()) > 1, "several sizes in stock");
    const chosen = variants.nth(1);
    const sku = await chosen.locator("input").getAttribute("value");
    await chosen.locator("input").focus();
    await page.keyboard.press("Space");
    assert.ok(await chosen.locator("input").isChecked());
    await page.getByLabel("Quantity").fill("2");
    await shop.follow(page.getByRole("button", { name: "Add to cart" }));

    assert.match(page.url(), /\/cart$/);
    const line = page.locator("li.line").first();
    assert.equal(await line.locator(".line-name").innerText(), name);
    assert.ok((await line.locator(".line-sku").innerText()).startsWith(`${sku} · `), "the variant picked");
    assert.equal(await line.getByLabel(`Quantity of ${name}`).inputValue(), "2");
    assert.equal(await page.locator(".cart-link").innerText(), "Cart (2)");
    await shop.accessible("cart page");
  },
  { viewport: PHONE },
);

journey("a product that does not exist is a page in the shop's look", async (page, shop) => {
  await shop.open("/p/nothing-prod_missing", 404);
  assert.match(await page.locator("h1").innerText(), /couldn't find that page/i);
  await page.getByRole("link", { name: /home/i }).first().waitFor();
  await shop.accessible("error page");
});
