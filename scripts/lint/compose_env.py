"""Checks the SHOP_* settings of every service in the compose file against the platform's own
configuration loader.

Each compose service's SHOP_* environment goes through the loader (shop_settings.refused) as the
binary it runs reads it (a service binary knows its own service's settings only), so a misspelt,
stale or misplaced variable in the compose file fails here instead of in a container.

    python compose_env.py SHOP_BINARY COMPOSE_FILE
"""

import subprocess
import sys

from ruamel.yaml import YAML

from shop_settings import refused


def main() -> int:
    shop, compose = sys.argv[1], sys.argv[2]
    # `config` resolves anchors, merges and ${VAR:-default} as compose would.
    resolved = subprocess.run(
        ["docker-compose", "-f", compose, "--profile", "demo", "config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    services = YAML(typ="safe").load(resolved)["services"]
    failures = 0
    checked = 0
    for name, service in sorted(services.items()):
        env = {k: str(v) for k, v in (service.get("environment") or {}).items() if k.startswith("SHOP_")}
        if not env:
            continue
        checked += 1
        command = service.get("command") or []
        binary = command[0] if isinstance(command, list) and command else str(command)
        own = binary[: -len("-service")] if binary.endswith("-service") else None
        complaint = refused(shop, env, own)
        if complaint:
            failures += 1
            print(f"compose service {name}: the platform refuses its settings: {complaint}")
    print(f"compose settings: {checked} service(s) checked, {failures} refused")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
