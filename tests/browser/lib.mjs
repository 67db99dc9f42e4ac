// What the journeys share: the browser, a page per journey with its problems collected, the
// accessibility check and screenshots of a failed journey's pages.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = require("axe-core").source;

/** The shop under test (scripts/browser-tests starts it). */
export const BASE = process.env.BROWSER_URL ?? "http://127.0.0.1:8080";
const SHOTS = process.env.BROWSER_SHOTS ?? "shots";

/** Phone and desktop sizes the journeys run at. */
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
});
after(async () => {
  await browser?.close();
});

/**
 * A journey: `body(page, shop)` runs in a fresh browser context (its own cookies) at `viewport`,
 * on the shop at `base()` (the one scripts/browser-tests started with the simulated provider).
 * Whatever the page logs as an error (a script error, a refused Content-Security-Policy, a failed
 * load of the shop's own files) fails the journey; so does an unexpected JS exception. On failure
 * each page the journey opened is saved as a full-page screenshot named after the journey.
 */
export function journey(name, body, { viewport = DESKTOP, base = () => BASE } = {}) {
  test(name, async () => {
    const baseURL = base();
    const context = await browser.newContext({ viewport, baseURL, locale: "en-US" });
    const problems = [];
    const pages = [];
    const watch = (page) => {
      pages.push(page);
      page.on("console", (message) => {
        // A page answered with an error status (a 404 page, a form shown again with a 422) is
        // logged as a failed load: the journeys check statuses themselves.
        if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
          problems.push(`console: ${message.text()}`);
        }
      });
      page.on("pageerror", (error) => problems.push(`script: ${error.message}`));
      page.on("response", (response) => {
        const url = response.url();
        const subresource = response.request().resourceType() !== "document";
        if (url.startsWith(baseURL) && subresource && response.status() >= 400) {
          problems.push(`${response.status()} for ${url}`);
        }
      });
    };
    context.on("page", watch);
    const page = await context.newPage();
    const shop = new Shop(page);
    try {
      await body(page, shop);
      assert.deepEqual(problems, [], "the pages logged no errors");
    } catch (error) {
      mkdirSync(SHOTS, { recursive: true });
      const stem = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      for (const [i, p] of pages.entries()) {
        await p
          .screenshot({ path: `${SHOTS}/${stem}-${i + 1}.png`, fullPage: true })
          .catch(() => {});
      }
      if (problems.length > 0) error.message += `\nthe pages logged: ${problems.join("\n")}`;
      throw error;
    } finally {
      await context.close();
    }
  });
}

/** Helpers over one page. */
export class Shop {
  constructor(page) {
    this.page = page;
  }

  /** Opens `path` of the shop and checks the answer. */
  async open(path, status = 200) {
    const response = await this.page.goto(path);
    assert.equal(response.status(), status, `GET ${path}`);
    return response;
  }

  /**
   * axe-core's check of the page as it is now: no serious or critical violation (the report
   * names each rule with the elements it found). `what` names the page type in the message.
   */
  async accessible(what) {
    // Evaluated through the DevTools protocol, which the page's CSP does not govern.
    await this.page.evaluate(axeSource);
    const results = await this.page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ["violations"] }),
    );
    const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    const report = bad.map(
      (v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.map((n) => n.target.join(" ")).join("\n  ")}`,
    );
    assert.deepEqual(report, [], `${what}: accessibility violations`);
  }

  /** Clicks `locator` and waits for the page it leads to. */
  async follow(locator) {
    await Promise.all([this.page.waitForNavigation(), locator.click()]);
  }

  /** The page's text. */
  async text(selector = "main") {
    return (await this.page.locator(selector).innerText()).replace(/\s+/g, " ");
  }

  /** The amount in `text`, e.g. "$1,234.50" → 123450 cents. */
  static cents(text) {
    const m = /\$([\d,]+)\.(\d\d)/.exec(text);
    assert.ok(m, `an amount in ${JSON.stringify(text)}`);
    return Number(m[1].replaceAll(",", "")) * 100 + Number(m[2]);
  }

  /** Fills the checkout's address with one in New York. */
  async address(name) {
    const p = this.page;
    await p.getByLabel("Full name").fill(name);
    await p.getByLabel("Street address").fill("350 Fifth Avenue");
    await p.getByLabel("City").fill("New York");
    await p.getByLabel("State or province").fill("NY");
    await p.getByLabel("Postal code").fill("10118");
    await p.getByLabel("Country").selectOption("US");
  }

  /** Adds the first product of category `slug` that can be bought, `quantity` of it; its name. */
  async addSomething(slug = "kitchen", quantity = 1) {
    const p = this.page;
    await this.open(`/c/${slug}?in_stock=1`);
    await this.follow(p.locator("ul.grid a").first());
    const name = await p.locator("h1").innerText();
    await p.locator("input[name=sku]:not([disabled])").first().check();
    await p.getByLabel("Quantity").fill(String(quantity));
    await this.follow(p.getByRole("button", { name: "Add to cart" }));
    assert.match(p.url(), /\/cart$/);
    return name;
  }

  /** Waits until the page (reloading itself or reloaded here) says `words`. */
  async waitForText(words, { timeout = 30_000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const text = await this.text().catch(() => "");
      if (text.includes(words)) return text;
      assert.ok(Date.now() < deadline, `"${words}" did not appear; the page says: ${text}`);
      await this.page.waitForTimeout(500);
      await this.page.reload();
    }
  }
}

/** A fresh email address for an account of one journey. */
export function email(who) {
  return `${who}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}
