// The checkout of a shop that takes cards through Stripe: the Payment Element (Stripe's script,
// here a stand-in served at Stripe's address) collects the card and only the payment method's id
// is posted; a number Stripe refuses is said in the page; a declined card comes back to checkout.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { email, journey, Shop } from "../lib.mjs";

const STRIPE_SHOP = process.env.BROWSER_STRIPE_URL;
const fakeStripe = readFileSync(new URL("./fake-stripe.js", import.meta.url), "utf8");

journey(
  "a guest pays by card in Stripe's form and no card number reaches the shop",
  async (page, shop) => {
    assert.ok(STRIPE_SHOP, "BROWSER_STRIPE_URL: the shop with a Stripe publishable key");
    await page.route("https://js.stripe.com/v3/", (route) =>
      route.fulfill({ contentType: "text/javascript", body: fakeStripe }),
    );
    const posted = [];
    page.on("request", (request) => {
      if (request.method() === "POST") posted.push(request.postData() ?? "");
    });

    await shop.addSomething("kitchen", 1);
    const checkout = await shop.open("/checkout");
    const policy = checkout.headers()["content-security-policy"];
    assert.match(policy, /script-src 'self' 'sha256-[^']+' https:\/\/js\.stripe\.com/);
    assert.match(policy, /frame-src https:\/\/js\.stripe\.com/);
    assert.match(policy, /connect-src 'self' https:\/\/api\.stripe\.com/);
    assert.equal(await page.getByLabel(/Test Visa card/).count(), 0, "no test methods");
    const options = await page.evaluate(() => window.__stripe);
    assert.deepEqual(options.keys, ["pk_test_browser"]);
    const total = Shop.cents(await page.locator("button.place").innerText());
    assert.equal(options.elementsOptions[0].amount, total, "the element shows the order's amount");
    assert.equal(options.elementsOptions[0].currency, "usd");
    assert.equal(options.elementsOptions[0].paymentMethodCreation, "manual");

    const buyer = email("card");
    await page.getByLabel("Email").fill(buyer);
    await shop.address("Carla Card");
    // An incomplete number is said beside the form and nothing is posted.
    await page.getByLabel("Card number").fill("4242");
    const before = posted.length;
    await page.locator("button.place").click();
    await page.locator("#payment-error").waitFor();
    assert.match(await page.locator("#payment-error").innerText(), /incomplete/);
    assert.equal(posted.length, before, "nothing posted");
    await shop.accessible("checkout page with Stripe's form");

    // A declined card: back at checkout with the reason, then a card that pays.
    await page.getByLabel("Card number").fill("4000 0000 0000 0002");
    await Promise.all([page.waitForURL(/\/orders\/ord_/), page.locator("button.place").click()]);
    await shop.waitForText("Your payment didn't go through");
    await shop.follow(page.getByRole("button", { name: "Try another way to pay" }));
    assert.match(await shop.text(".alert"), /declined/i);
    await page.getByLabel("Email").fill(buyer);
    await shop.address("Carla Card");
    await page.getByLabel("Card number").fill("4242 4242 4242 4242");
    await Promise.all([page.waitForURL(/\/orders\/ord_/), page.locator("button.place").click()]);
    await shop.waitForText("Your order is on its way");

    for (const body of posted) {
      assert.doesNotMatch(body, /4242|4000000000000002|4000\+0000/, "no card number in a form the shop received");
    }
    const places = posted.filter((b) => b.includes("action=place"));
    assert.ok(places.some((b) => b.includes("payment=pm_card_visa")), "the payment method's id was posted");
  },
  { base: () => STRIPE_SHOP },
);
