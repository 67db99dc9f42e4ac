"""Runs a set of SHOP_* settings through the platform's own configuration loader.

The platform refuses unknown settings and bad values at start (exit 2, naming the variable).
`refused(shop, env)` runs `shop migrate` (which loads and validates the configuration before
anything else) with exactly `env` and a scratch data dir; the loader's complaint, or None.
compose_env.py and cdk_env.py check the compose file and the ECS tasks with it.
"""

import os
import subprocess
import tempfile


def refused(shop: str, env: dict) -> "str | None":
    with tempfile.TemporaryDirectory() as data_dir:
        run = subprocess.run(
            [shop, "migrate", "--data-dir", data_dir],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SHOP_LOG": "warn", **env},
            capture_output=True,
            text=True,
        )
    return None if run.returncode == 0 else run.stderr.strip()
