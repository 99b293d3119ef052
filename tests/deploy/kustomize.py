"""A minimal kustomize renderer for the features deploy/k8s uses (CI may lack kubectl)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

# kustomize's `labels` with includeTemplates also label these pod templates
_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_SUPPORTED = {"apiVersion", "kind", "resources", "labels", "images", "patches"}


def _load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _apply_op(obj: Obj, op: Obj) -> None:
    """One RFC 6902 operation (add, replace, remove), in place."""
    *parents, last = _pointer(op["path"])
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        if kind == "add":
            node.insert(len(node) if last == "-" else int(last), copy.deepcopy(op["value"]))
        elif kind == "replace":
            node[int(last)] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[int(last)]
        else:
            raise ValueError(f"unsupported patch op {kind}")
        return
    if kind in ("add", "replace"):
        if kind == "replace" and last not in node:
            raise KeyError(f"replace of missing {op['path']}")
        node[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del node[last]
    else:
        raise ValueError(f"unsupported patch op {kind}")


def _matches(obj: Obj, target: Obj) -> bool:
    meta = obj["metadata"]
    return all([target.get("kind") in (None, obj["kind"]),
                target.get("name") in (None, meta["name"])])


def _set_images(objs: list[Obj], images: list[Obj]) -> None:
    for obj in objs:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name = container["image"].split(":")[0]
            for image in images:
                if image["name"] == name:
                    new = image.get("newName", name)
                    tag = image.get("newTag") or container["image"].partition(":")[2]
                    container["image"] = f"{new}:{tag}" if tag else new


def _add_labels(objs: list[Obj], entries: list[Obj]) -> None:
    for entry in entries:
        if entry.get("includeSelectors"):
            raise ValueError("includeSelectors is not supported by this renderer")
        pairs = entry["pairs"]
        for obj in objs:
            obj["metadata"].setdefault("labels", {}).update(pairs)
            if entry.get("includeTemplates") and obj["kind"] in _TEMPLATE_KINDS:
                meta = obj["spec"]["template"].setdefault("metadata", {})
                meta.setdefault("labels", {}).update(pairs)
                for claim in obj["spec"].get("volumeClaimTemplates", []):
                    claim.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def render(directory: Path) -> list[Obj]:
    """Objects of the kustomization in `directory`, transformers applied."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kust) - _SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: kustomize fields {unknown} need the real kustomize")
    objs: list[Obj] = []
    for resource in kust.get("resources", []):
        path = (directory / resource).resolve()
        objs.extend(render(path) if path.is_dir() else _load_all(path))
    for patch in kust.get("patches", []):
        ops = yaml.safe_load((directory / patch["path"]).read_text())
        hits = [o for o in objs if _matches(o, patch["target"])]
        if not hits:
            raise ValueError(f"{directory}: patch {patch['path']} matches nothing")
        for obj in hits:
            for op in ops:
                _apply_op(obj, op)
    _set_images(objs, kust.get("images", []))
    _add_labels(objs, kust.get("labels", []))
    return objs
