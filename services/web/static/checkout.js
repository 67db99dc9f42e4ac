// The card form when the shop takes cards through Stripe: Stripe's Payment Element (its own
// frames, served by Stripe) collects the card; when "Place order" is pressed, Stripe's script
// turns it into a payment method whose id alone goes into the form. No card number reaches the
// shop. Without this script (or Stripe's) the page says that the card form needs JavaScript.
const mount = document.getElementById("payment-element");
if (mount && typeof window.Stripe === "function") {
  const form = mount.closest("form");
  const field = form.elements.namedItem("payment");
  const place = form.querySelector("button.place");
  const problem = document.getElementById("payment-error");
  const stripe = window.Stripe(mount.dataset.key);
  const elements = stripe.elements({
    mode: "payment",
    amount: Number(mount.dataset.amount),
    currency: mount.dataset.currency,
    paymentMethodCreation: "manual",
    paymentMethodTypes: ["card"],
  });
  elements.create("payment").mount(mount);
  const say = (message) => {
    problem.textContent = message;
    problem.hidden = !message;
  };
  let busy = false;
  form.addEventListener("submit", async (event) => {
    // Only placing the order needs the card; "Update shipping options" posts as it is.
    if (event.submitter !== place || field.value) return;
    event.preventDefault();
    if (busy) return;
    busy = true;
    place.disabled = true;
    say("");
    try {
      const checked = await elements.submit();
      if (checked.error) throw checked.error;
      const email = form.elements.namedItem("email");
      const name = form.elements.namedItem("name");
      const made = await stripe.createPaymentMethod({
        elements,
        params: { billing_details: { name: name?.value || undefined, email: email?.value || undefined } },
      });
      if (made.error) throw made.error;
      field.value = made.paymentMethod.id;
      // Posted as the place button would have: the same attempt key, so a second post is one order.
      const action = document.createElement("input");
      action.type = "hidden";
      action.name = "action";
      action.value = "place";
      form.append(action);
      form.submit();
    } catch (error) {
      say(error?.message || "The card could not be checked. Please try again.");
      place.disabled = false;
      busy = false;
    }
  });
}
