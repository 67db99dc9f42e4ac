"""Checks the SHOP_* settings of every ECS container in the synthesized CloudFormation templates
against the platform's own configuration loader, as compose_env.py does for the local stack.

Values CloudFormation fills in at deploy time (a `Fn::GetAtt`, `Fn::Join`, `Ref`…) and secrets
injected from Secrets Manager become placeholders of the right shape (a URL for `*_URL`, text
otherwise); a setting read from a Parameter Store parameter of the same template takes the value
the parameter is created with. So what is checked is that every variable is one the platform knows
and every literal value is one it takes.

    python cdk_env.py SHOP_BINARY CDK_OUT_DIR...
"""

import glob
import json
import os
import sys

from shop_settings import refused


def placeholder(name: str) -> str:
    if name.endswith("_URL"):
        # A scheme the setting accepts: Redis takes redis(s)://, PostgreSQL postgres://.
        if "REDIS" in name:
            return "rediss://cache.internal:6379"
        if "DATABASE" in name:
            return "postgres://user:password@db.internal:5432/shop"
        return "https://placeholder.internal/"
    if name == "SHOP_COGNITO_ISSUER":
        return "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_placeholder"
    if name == "SHOP_JWT_PRIVATE_KEYS":
        return ""
    return "placeholder"


def containers(template_path: str):
    with open(template_path) as f:
        template = json.load(f)
    resources = template.get("Resources", {})
    parameters = {
        logical_id: resource["Properties"]["Value"]
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::SSM::Parameter" and isinstance(resource.get("Properties", {}).get("Value"), str)
    }

    def secret_value(name: str, value_from) -> str:
        text = json.dumps(value_from)
        for logical_id, value in parameters.items():
            if json.dumps({"Ref": logical_id}) in text:
                return value
        return placeholder(name)

    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::ECS::TaskDefinition":
            continue
        for container in resource.get("Properties", {}).get("ContainerDefinitions", []):
            env = {}
            for entry in container.get("Environment", []):
                name, value = entry["Name"], entry.get("Value")
                env[name] = value if isinstance(value, str) else placeholder(name)
            for entry in container.get("Secrets", []):
                env[entry["Name"]] = secret_value(entry["Name"], entry.get("ValueFrom"))
            entry_point = (container.get("EntryPoint") or [""])[0]
            binary = os.path.basename(entry_point) if isinstance(entry_point, str) else ""
            service = binary[: -len("-service")] if binary.endswith("-service") else None
            yield f"{os.path.basename(template_path)}:{logical_id}:{container.get('Name', '?')}", env, service


def main() -> int:
    shop, out_dirs = sys.argv[1], sys.argv[2:]
    checked = failures = 0
    for out_dir in out_dirs:
        for template in sorted(glob.glob(os.path.join(out_dir, "*.template.json"))):
            for where, env, service in containers(template):
                shop_env = {k: v for k, v in env.items() if k.startswith("SHOP_") and v != ""}
                if not shop_env:
                    continue
                checked += 1
                complaint = refused(shop, shop_env, service)
                if complaint:
                    failures += 1
                    print(f"{where}: the platform refuses its settings: {complaint}")
    print(f"ECS task settings: {checked} container(s) checked, {failures} refused")
    if checked == 0:
        print("no ECS container with SHOP_* settings found: nothing was checked")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
