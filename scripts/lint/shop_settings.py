"""Runs a set of SHOP_* settings through the platform's own configuration loader.

The platform refuses unknown settings and bad values at start (exit 2, naming the variable). A
service binary knows the platform's settings and its own service's; the `shop` binary all five.
`refused(shop, env, service)` runs `shop check-config` (with `--service NAME` for a service's own
binary) with exactly `env`; the loader's complaint, or None.
compose_env.py and cdk_env.py check the compose file and the ECS tasks with it.
"""

import os
import subprocess
import tempfile


def refused(shop: str, env: dict, service: "str | None" = None) -> "str | None":
    with tempfile.TemporaryDirectory() as data_dir:
        run = subprocess.run(
            [shop, "check-config", *(["--service", service] if service else [])],
            cwd=data_dir,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SHOP_LOG": "warn", **env},
            capture_output=True,
            text=True,
        )
    return None if run.returncode == 0 else run.stderr.strip()
