// Buying: a code in the cart, a guest checkout followed to shipped, an account's declined card
// and second try, its order history and a cancellation.
import assert from "node:assert/strict";
import { email, journey, PHONE, Shop } from "../lib.mjs";

journey("a guest applies a code, checks out with a test Visa card and watches the order ship", async (page, shop) => {
  const name = await shop.addSomething("kitchen", 1);

  // A code that does not exist is refused beside the field; the welcome code applies.
  await page.getByLabel("Discount code").fill("NOSUCHCODE");
  await shop.follow(page.getByRole("button", { name: "Apply" }));
  assert.match(await page.locator("#code-error").innerText(), /\S/);
  assert.equal(await page.getByLabel("Discount code").getAttribute("aria-invalid"), "true");
  await page.getByLabel("Discount code").fill("welcome10");
  await shop.follow(page.getByRole("button", { name: "Apply" }));
  await page.getByRole("button", { name: "Remove code WELCOME10" }).waitFor();
  const summary = await shop.text("aside.summary");
  assert.match(summary, /10 % off your first order/);
  await shop.accessible("cart page with a code");

  await shop.follow(page.getByRole("link", { name: "Check out" }));
  await shop.accessible("checkout page");
  // Placing with nothing filled in names each missing field and changes nothing.
  await shop.follow(page.locator("button.place"));
  assert.match(page.url(), /\/checkout$/);
  const alert = await shop.text(".alert");
  assert.match(alert, /Please check these fields/);
  assert.equal(await page.getByLabel("Email").getAttribute("aria-invalid"), "true");
  await shop.accessible("checkout page with errors");

  const buyer = email("guest");
  await page.getByLabel("Email").fill(buyer);
  await shop.address("Grace Guest");
  await shop.follow(page.getByRole("button", { name: "Update shipping options" }));
  await page.getByLabel(/Test Visa card/).check();
  const place = page.locator("button.place");
  const total = Shop.cents(await place.innerText());
  // A double click is one order: the second click goes with the same attempt key.
  await Promise.all([page.waitForNavigation(), place.dblclick()]);
  assert.match(page.url(), /\/orders\/ord_[^?]+\?token=/);
  const text = await shop.waitForText("Your order is on its way");
  assert.match(text, new RegExp(name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  assert.equal(Shop.cents(await shop.text(".grand dd")), total, "charged what the button said");
  assert.match(text, new RegExp(`Updates go to ${buyer}`));
  const steps = await page.locator("ol.timeline li.done").count();
  assert.ok(steps >= 3, `the timeline shows placed, confirmed and shipped (${steps} done)`);
  await shop.accessible("order page");
  assert.equal(await page.locator(".cart-link").innerText(), "Cart", "the cart was emptied");
});

journey(
  "on a phone a shopper signs up, is declined, pays another way, finds the order again and cancels one",
  async (page, shop) => {
    const who = email("buyer");
    const password = "correct horse battery staple";
    await shop.open("/account/register?next=/checkout");
    await shop.accessible("registration page");
    await page.getByLabel("Your name").fill("Ada Buyer");
    await page.getByLabel("Email").fill(who);
    await page.getByLabel("Password").fill(password);
    await shop.follow(page.getByRole("button", { name: "Create account" }));

    const name = await shop.addSomething("furniture", 1);
    await shop.follow(page.getByRole("link", { name: "Check out" }));
    assert.match(await shop.text(), new RegExp(`Signed in as ${who.replace(/[.+]/g, "\\$&")}`));
    await shop.address("Ada Buyer");
    await page.getByLabel("Test card that is declined").check();
    await shop.follow(page.locator("button.place"));
    assert.match(page.url(), /\/account\/orders\/ord_/);
    const declined = page.url();

    // The reason, then the way back to checkout with the cart as it was.
    const text = await shop.waitForText("Your payment didn't go through");
    assert.match(text, /Your card was declined/);
    await shop.accessible("declined order page");
    await shop.follow(page.getByRole("button", { name: "Try another way to pay" }));
    assert.match(page.url(), /\/checkout\?declined=/);
    assert.match(await shop.text(".alert"), /declined/i);
    assert.match(await shop.text("aside.summary"), new RegExp(name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    await shop.address("Ada Buyer");
    await page.getByLabel(/Test Mastercard/).check();
    await shop.follow(page.locator("button.place"));
    const paid = page.url();
    assert.notEqual(paid, declined);
    await shop.waitForText("Your order is on its way");

    // Signed out and in again: both orders are in the history.
    await shop.open("/account");
    await shop.follow(page.getByRole("button", { name: "Sign out" }));
    await shop.open("/account/sign-in?next=/account");
    await shop.accessible("sign-in page");
    await page.getByLabel("Email").fill(who);
    await page.getByLabel("Password").fill("not the password");
    await shop.follow(page.getByRole("button", { name: "Sign in" }));
    assert.match(await shop.text(".alert"), /don't match an account/);
    await page.getByLabel("Password").fill(password);
    await shop.follow(page.getByRole("button", { name: "Sign in" }));
    assert.match(page.url(), /\/account$/);
    await shop.accessible("account page");
    const rows = page.locator("table.orders tbody tr");
    assert.equal(await rows.count(), 2);
    const history = await shop.text("table.orders");
    assert.match(history, /Shipped/);
    assert.match(history, /Payment declined/);
    await shop.follow(page.getByRole("link", { name: new URL(paid).pathname.split("/").pop() }));
    assert.equal(page.url(), paid);

    // A third order, cancelled while its payment is still being taken (the shop's test provider
    // takes 1.5 s a call).
    await shop.addSomething("kitchen", 1);
    await shop.follow(page.getByRole("link", { name: "Check out" }));
    await shop.address("Ada Buyer");
    await page.getByLabel(/Test Visa card/).check();
    await shop.follow(page.locator("button.place"));
    await shop.follow(page.getByRole("button", { name: /Cancel order/ }));
    await shop.waitForText("This order was cancelled");
    assert.equal(await page.getByRole("button", { name: /Cancel order/ }).count(), 0);
  },
  { viewport: PHONE },
);
