// Enhancements only: every page works without this file.
document.documentElement.classList.add("js");
// A sort select applies itself when changed (without a script, its button does).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}
// On a phone the filters start folded away, so the products come first.
const filters = document.querySelector("details.filters");
if (filters && window.matchMedia("(max-width: 800px)").matches) filters.open = false;
