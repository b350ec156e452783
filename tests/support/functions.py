"""Load the real function entry points (functions/*/main.py) through functions-framework."""

from __future__ import annotations

from flask import Flask
from functions_framework import create_app

from tests.support.processes import ROOT


def function_app(function: str, target: str | None = None) -> Flask:
    """The functions-framework app serving ``functions/<function>/main.py``'s ``target``."""
    app: Flask = create_app(  # type: ignore[no-untyped-call]
        target=target or function, source=str(ROOT / "functions" / function / "main.py")
    )
    return app
