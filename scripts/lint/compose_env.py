"""Checks the SHOP_* settings of every service in the compose file against the platform's own
configuration loader.

The platform refuses unknown settings and bad values at start (exit 2, naming the variable). This
runs `shop migrate` (which loads and validates the configuration before anything else) once per
compose service, with exactly that service's SHOP_* environment and a scratch data dir, so a
misspelt or stale variable in the compose file fails here instead of in a container.

    python compose_env.py SHOP_BINARY COMPOSE_FILE
"""

import os
import subprocess
import sys
import tempfile

from ruamel.yaml import YAML


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
        with tempfile.TemporaryDirectory() as data_dir:
            run = subprocess.run(
                [shop, "migrate", "--data-dir", data_dir],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SHOP_LOG": "warn", **env},
                capture_output=True,
                text=True,
            )
        if run.returncode != 0:
            failures += 1
            print(f"compose service {name}: the platform refuses its settings: {run.stderr.strip()}")
    print(f"compose settings: {checked} service(s) checked, {failures} refused")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
