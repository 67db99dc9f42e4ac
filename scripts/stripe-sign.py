"""Signs a webhook payload with Stripe's own Python library (an implementation independent of
ours), printing the Stripe-Signature header: the tests check the payment service accepts it.

Usage: python stripe-sign.py PAYLOAD_FILE SECRET [TIMESTAMP]
"""

import sys
import time

import stripe


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as payload_file:
        payload = payload_file.read()
    secret = sys.argv[2]
    timestamp = int(sys.argv[3]) if len(sys.argv) > 3 else None
    signature = stripe.WebhookSignature
    if hasattr(signature, "generate_signature_header"):
        header = signature.generate_signature_header(payload, secret, timestamp)
    else:  # older releases: the library's own HMAC over "{timestamp}.{payload}"
        timestamp = timestamp if timestamp is not None else int(time.time())
        header = f"t={timestamp},v1={signature._compute_signature(f'{timestamp}.{payload}', secret)}"
    # The library's own verifier accepts what it signed.
    stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    print(header)


if __name__ == "__main__":
    main()
