"""The deployable template: batchpipe/resources/cloudformation/template.json (package data, so an installed batchpipe
finds it from any directory) with its placeholders filled in.

The template refers to the state machines as "@asl:NAME" (the first argument of their Fn::Sub) and to the Lambda's
code as "@lambda:MODULE.py" (handlers.py: the plan function; stranded.py: the Spot fallback's), so the ASL files and
the handler modules stay readable and testable on their own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "resources" / "cloudformation"
LAMBDA_DIR = Path(__file__).parent  # batchpipe/aws: the inlined Lambda modules
INLINE_CODE_LIMIT = 4096  # CloudFormation's limit on Lambda ZipFile code


def template_dir() -> Path:
    """The folder of template.json, the ASL files and checkov-skips.yaml, inside the batchpipe package."""
    return TEMPLATE_DIR


def _fill(node: Any, folder: Path) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, folder) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, folder) for v in node]
    if isinstance(node, str) and node.startswith("@asl:"):
        text = (folder / node.removeprefix("@asl:")).read_text()
        json.loads(text)  # a broken ASL file fails here, not in CloudFormation
        return text
    if isinstance(node, str) and node.startswith("@lambda:"):
        module = LAMBDA_DIR / node.removeprefix("@lambda:")
        code = module.read_text()
        if len(code.encode()) >= INLINE_CODE_LIMIT:
            raise ValueError(f"{module.name} is {len(code.encode())} bytes: inline Lambda code must stay under 4096")
        return code
    return node


def build_template(folder: Path | None = None) -> dict[str, Any]:
    """template.json with the ASL files and the Lambda handlers inlined."""
    folder = folder or template_dir()
    doc: dict[str, Any] = _fill(json.loads((folder / "template.json").read_text()), folder)
    return doc
