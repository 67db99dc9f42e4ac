// Enhancements only: every page works without this file.
document.documentElement.classList.add("js");
// A sort select applies itself when changed (without a script, its button does).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}
// The filters come folded (on a phone the products come first); wider screens show them open, by
// CSS where the browser styles a closed <details>' content, else here.
const filters = document.querySelector("details.filters");
if (filters && window.matchMedia("(min-width: 801px)").matches && !CSS.supports("selector(::details-content)")) {
  filters.open = true;
}
// The header's cart link says how many items the cart holds (the cart pages keep the count).
const count = Number((document.cookie.match(/(?:^|; )shop_cart_count=(\d+)/) || [])[1] || 0);
const cartLink = document.querySelector(".cart-link");
if (cartLink && count > 0) {
  cartLink.textContent = `Cart (${count})`;
  cartLink.setAttribute("aria-label", `Cart, ${count} item${count === 1 ? "" : "s"}`);
}
// Suggestions as one types in the search box (a combobox with a list of products): the arrow keys
// move through them, Enter opens the one chosen, Escape closes them. Without this the box submits
// to the search page as before.
const box = document.getElementById("search-q");
if (box && window.fetch) {
  const list = document.createElement("ul");
  list.id = "search-suggestions";
  list.className = "suggestions";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Suggested products");
  list.hidden = true;
  box.form.append(list);
  box.setAttribute("role", "combobox");
  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-controls", list.id);
  box.setAttribute("aria-expanded", "false");
  let active = -1;
  let asked = 0;
  let timer;
  const options = () => [...list.children];
  const close = () => {
    list.hidden = true;
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const choose = (index) => {
    options().forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    active = index;
    if (index >= 0) box.setAttribute("aria-activedescendant", options()[index].id);
    else box.removeAttribute("aria-activedescendant");
  };
  const show = (items) => {
    list.replaceChildren(
      ...items.map((item, i) => {
        const option = document.createElement("li");
        option.id = `search-suggestion-${i}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.href = item.href;
        const name = document.createElement("span");
        name.className = "suggestion-name";
        name.textContent = item.name;
        const more = document.createElement("span");
        more.className = "suggestion-more";
        more.textContent = `${item.brand} · ${item.price}`;
        option.append(name, more);
        // Before the box loses focus, so the click is not lost to the list closing.
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          window.location.assign(item.href);
        });
        return option;
      }),
    );
    active = -1;
    list.hidden = items.length === 0;
    box.setAttribute("aria-expanded", String(items.length > 0));
  };
  box.addEventListener("input", () => {
    clearTimeout(timer);
    const typed = box.value.trim();
    if (typed.length < 2) return close();
    timer = setTimeout(async () => {
      const mine = ++asked;
      try {
        const answer = await fetch(`/search/suggest?q=${encodeURIComponent(typed)}`, { headers: { Accept: "application/json" } });
        const found = answer.ok ? await answer.json() : { items: [] };
        // Only the answer to what the box says now.
        if (mine === asked && box.value.trim() === typed) show(found.items || []);
      } catch {
        close();
      }
    }, 120);
  });
  box.addEventListener("keydown", (event) => {
    const count = options().length;
    if (event.key === "ArrowDown" && count > 0) {
      event.preventDefault();
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      choose((active + 1) % count);
    } else if (event.key === "ArrowUp" && count > 0) {
      event.preventDefault();
      choose(active <= 0 ? count - 1 : active - 1);
    } else if (event.key === "Enter" && active >= 0 && !list.hidden) {
      event.preventDefault();
      window.location.assign(options()[active].dataset.href);
    } else if (event.key === "Escape" && !list.hidden) {
      // Only the suggestions close; a second Escape clears the box as usual.
      event.preventDefault();
      close();
    }
  });
  box.addEventListener("blur", close);
}
