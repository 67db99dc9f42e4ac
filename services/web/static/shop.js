// Enhancements only: every page works without this file.
document.documentElement.classList.add("js");
// A sort select applies itself when changed (without a script, its button does).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}
// On a phone the filters start folded away, so the products come first.
const filters = document.querySelector("details.filters");
if (filters && window.matchMedia("(max-width: 800px)").matches) filters.open = false;
// The header's cart link says how many items the cart holds (the cart pages keep the count).
const count = Number((document.cookie.match(/(?:^|; )shop_cart_count=(\d+)/) || [])[1] || 0);
const cartLink = document.querySelector(".cart-link");
if (cartLink && count > 0) {
  cartLink.textContent = `Cart (${count})`;
  cartLink.setAttribute("aria-label", `Cart, ${count} item${count === 1 ? "" : "s"}`);
}
