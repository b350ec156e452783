"""A stand-in for ``kustomize edit set image`` (the kustomize CLI is not installed here).

It edits ``kustomization.yaml`` in the current directory as kustomize does
(sigs.k8s.io/kustomize, ``kustomize/commands/edit/set/setimage.go``): each argument is
``NAME=NEWNAME[:TAG][@DIGEST]`` (or ``NAME:TAG`` / ``NAME@DIGEST``); an entry of ``images``
with the same ``name`` is replaced whole, any other is appended, and the list is sorted by name.
Comments are not kept. Run as ``python kustomize_edit.py edit set image ARG...``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def split_image(image: str) -> tuple[str, str, str]:
    """``name``, ``tag``, ``digest`` of an image reference (kustomize's SplitImageName)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def parse(arg: str) -> dict[str, str]:
    key, equals, value = arg.partition("=")
    name, tag, digest = split_image(value if equals else arg)
    image = {"name": key if equals else name}
    if equals:
        image["newName"] = name
    if tag:
        image["newTag"] = tag
    if digest:
        image["digest"] = digest
    return image


def main(argv: list[str]) -> int:
    if argv[:3] != ["edit", "set", "image"] or len(argv) < 4:
        print(f"kustomize stand-in: unsupported arguments {argv}", file=sys.stderr)
        return 2
    path = Path("kustomization.yaml")
    kustomization: dict[str, Any] = yaml.safe_load(path.read_text())
    images = {image["name"]: image for image in kustomization.get("images", [])}
    for arg in argv[3:]:
        image = parse(arg)
        images[image["name"]] = image
    kustomization["images"] = [images[name] for name in sorted(images)]
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
