// A stand-in for Stripe.js (https://js.stripe.com/v3/), served in its place by the browser tests:
// the calls the checkout makes, answered as Stripe documents them (Stripe cannot be reached from
// the tests). Its "Payment Element" is a card-number field; a payment method is made from Stripe's
// test card numbers, named as Stripe names their test payment methods.
(() => {
  const TEST_CARDS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
  };
  window.__stripe = { keys: [], elementsOptions: [], created: [] };
  window.Stripe = (key) => {
    window.__stripe.keys.push(key);
    let field = null;
    return {
      elements(options) {
        window.__stripe.elementsOptions.push(options);
        return {
          create(type) {
            return {
              mount(target) {
                const label = document.createElement("label");
                label.textContent = "Card number";
                field = document.createElement("input");
                field.inputMode = "numeric";
                field.autocomplete = "cc-number";
                label.append(field);
                target.append(label);
              },
              type,
            };
          },
          async submit() {
            const number = (field?.value ?? "").replace(/\s+/g, "");
            if (number.length < 12) return { error: { type: "validation_error", message: "Your card number is incomplete." } };
            return {};
          },
        };
      },
      async createPaymentMethod({ params }) {
        const number = (field?.value ?? "").replace(/\s+/g, "");
        const id = TEST_CARDS[number];
        if (!id) return { error: { type: "card_error", code: "invalid_number", message: "Your card number is invalid." } };
        window.__stripe.created.push({ id, params });
        return { paymentMethod: { id, object: "payment_method", type: "card" } };
      },
    };
  };
})();
